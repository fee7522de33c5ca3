//! `Hello`, the first message on an agent's stream, checked and turned
//! into the host's [`HostInfo`].

use fleetwatch_proto as wire;

use super::limits::{At, MAX_GROUPS, MAX_TEXT, bounded, text};
use crate::ids::{Invalid, MAX_GROUP_NAME, check_host_id, check_id, invalid};
use crate::model::{HostInfo, WorkerGroup};

/// Checks and converts an agent's `Hello`.
pub fn hello(h: wire::Hello) -> Result<HostInfo, Invalid> {
    check_host_id("hello.host_id", &h.host_id)?;
    if !(100..=3_600_000).contains(&h.interval_ms) {
        return Err(invalid(
            "hello.interval_ms",
            format!("{} is outside 100..=3600000", h.interval_ms),
        ));
    }
    if h.cpu_count > 65_536 {
        return Err(invalid("hello.cpu_count", "is more than 65536"));
    }
    bounded("hello.worker_groups", &h.worker_groups, MAX_GROUPS)?;
    let mut worker_groups = Vec::with_capacity(h.worker_groups.len());
    let groups = At::root("hello.worker_groups");
    for (i, g) in h.worker_groups.into_iter().enumerate() {
        check_id(groups.item(i).field("name"), &g.name, MAX_GROUP_NAME)?;
        worker_groups.push(WorkerGroup {
            name: g.name,
            min_alive: g.min_alive,
        });
    }
    Ok(HostInfo {
        host_id: h.host_id,
        hostname: text("hello.hostname", h.hostname, MAX_TEXT)?,
        os: text("hello.os", h.os, MAX_TEXT)?,
        kernel: text("hello.kernel", h.kernel, MAX_TEXT)?,
        cpu_count: h.cpu_count,
        memory_total_bytes: h.memory_total_bytes,
        agent_version: text("hello.agent_version", h.agent_version, MAX_TEXT)?,
        interval_ms: h.interval_ms,
        worker_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_hello() {
        let good = wire::Hello {
            host_id: "web-1".into(),
            interval_ms: 1000,
            worker_groups: vec![wire::WorkerGroup {
                name: "queue".into(),
                min_alive: 3,
            }],
            ..Default::default()
        };
        let host = hello(good.clone()).expect("valid");
        assert_eq!(host.worker_groups[0].min_alive, 3);
        for (h, field) in [
            (
                wire::Hello {
                    host_id: "".into(),
                    ..good.clone()
                },
                "hello.host_id",
            ),
            (
                wire::Hello {
                    host_id: "a/b".into(),
                    ..good.clone()
                },
                "hello.host_id",
            ),
            (
                wire::Hello {
                    host_id: "h".repeat(200),
                    ..good.clone()
                },
                "hello.host_id",
            ),
            (
                wire::Hello {
                    host_id: "..".into(),
                    ..good.clone()
                },
                "hello.host_id",
            ),
            (
                wire::Hello {
                    host_id: ".".into(),
                    ..good.clone()
                },
                "hello.host_id",
            ),
            (
                wire::Hello {
                    interval_ms: 0,
                    ..good.clone()
                },
                "hello.interval_ms",
            ),
            (
                wire::Hello {
                    hostname: "h".repeat(300),
                    ..good.clone()
                },
                "hello.hostname",
            ),
        ] {
            assert_eq!(hello(h).expect_err(field).field, field);
        }
    }
}
