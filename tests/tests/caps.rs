//! End-to-end: the agent's cap on the processes it reports per worker
//! group. A group larger than the cap is reported with all its processes
//! counted alive and only the cap's worth listed, so the host is never
//! silenced by a prefork pool.

use std::time::Duration;

use anyhow::{Result, ensure};
use fleetwatch_tests::{Agent, Aggregator, Workers, wait_for};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_group_past_the_cap_is_counted_whole_and_listed_in_part() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let mut workers = Workers::new(&Workers::unique_tag(41));
    for _ in 0..3 {
        workers.spawn()?;
    }
    let spec = format!("pool={}:3", workers.regex());
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--interval",
            "200ms",
            "--host-id",
            "capped",
            "--worker",
            &spec,
            "--max-workers-per-group",
            "1",
        ],
    )?;
    let group = wait_for("the pool reported", WAIT, || async {
        let status = agg.get_ok("/api/workers/status?host=capped").await.ok()?;
        let group = status[0]["groups"]
            .as_array()?
            .iter()
            .find(|g| g["name"] == "pool")
            .cloned()?;
        (group["alive"] == 3).then_some(group)
    })
    .await?;
    let listed = group["workers"].as_array().map_or(0, Vec::len);
    ensure!(listed == 1, "one worker listed under a cap of 1: {group}");
    ensure!(group["met"] == true, "alive counts every process: {group}");
    agent.stop().await?;
    agg.stop().await
}
