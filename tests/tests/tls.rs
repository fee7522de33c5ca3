//! End-to-end TLS: agents reach a TLS aggregator with a CA file, a pinned
//! fingerprint, a client certificate, or a self-signed certificate; wrong
//! trust fails with an error that names the cause and stores nothing; plain
//! text to a TLS port fails. Certificates are made with rcgen per test.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use fleetwatch_aggregator::tls::{TlsConfig, TlsMode};
use fleetwatch_tests::{Agent, Aggregator, TestCa, stored_counts, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
/// How long an agent that must fail gets to (not) deliver anything.
const REFUSED_FOR: Duration = Duration::from_secs(2);

fn has_host(hosts: &Value, id: &str) -> bool {
    hosts
        .as_array()
        .is_some_and(|a| a.iter().any(|h| h["host_id"] == id))
}

/// An aggregator serving TLS with a certificate from `ca` for localhost and 127.0.0.1.
async fn tls_aggregator(dir: &Path, ca: &TestCa, client_ca: Option<&Path>) -> Result<Aggregator> {
    let (cert, key) = ca
        .server(&["localhost", "127.0.0.1"])?
        .write(dir, "server")?;
    let config = fleetwatch_aggregator::Config {
        tls: TlsConfig {
            mode: TlsMode::Files { cert, key },
            client_ca: client_ca.map(Path::to_owned),
        },
        ..Default::default()
    };
    let any = "127.0.0.1:0".parse()?;
    Aggregator::start_tls(&dir.join("fw.db"), any, any, config, Some(&ca.cert_pem())).await
}

fn write(dir: &Path, name: &str, text: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

async fn wait_for_host(agg: &Aggregator, id: &str) -> Result<()> {
    wait_for(&format!("host {id} in /api/hosts"), WAIT, || async {
        let hosts = agg.get_ok("/api/hosts").await.ok()?;
        has_host(&hosts, id).then_some(())
    })
    .await
}

/// Runs an agent that must not get through, then checks nothing was stored.
async fn assert_refused(agg: &Aggregator, id: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["--interval", "200ms", "--host-id", id];
    all.extend_from_slice(args);
    let agent = Agent::start(agg, &all)?;
    tokio::time::sleep(REFUSED_FOR).await;
    agent.stop().await?;
    let hosts = agg.get_ok("/api/hosts").await?;
    assert!(!has_host(&hosts, id), "{id} got through: {hosts}");
    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, id).await?, (0, 0));
    Ok(())
}

/// The error the agent logs when it cannot connect with `settings`.
async fn connect_error(url: &str, settings: fleetwatch_agent::tls::TlsSettings) -> Result<String> {
    let config = fleetwatch_agent::tls::client_config(&settings)?;
    let result = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(fleetwatch_agent::tls::Connector::new(config))
        .await;
    match result {
        Ok(_) => anyhow::bail!("connected to {url} but should not have"),
        Err(e) => Ok(fleetwatch_agent::shipper::source_chain(&e)),
    }
}

fn fingerprint_of(pem_path: &Path) -> Result<String> {
    let certs = fleetwatch_aggregator::tls::load_certs(pem_path)?;
    Ok(fleetwatch_aggregator::tls::fingerprint(&certs[0]))
}

#[tokio::test]
async fn agent_with_ca_file_streams_and_api_is_https_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("fleetwatch test CA")?;
    let agg = tls_aggregator(dir.path(), &ca, None).await?;
    let ca_file = write(dir.path(), "ca.pem", &ca.cert_pem())?;
    let url = agg.grpc_url();
    assert!(url.starts_with("https://"), "{url}");
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &url,
            "--ca-file",
            &ca_file,
            "--interval",
            "200ms",
            "--host-id",
            "tls-ca",
        ],
    )?;
    wait_for_host(&agg, "tls-ca").await?;
    let health = agg.get_ok("/health").await?;
    assert_eq!(health["agents_connected"], 1);

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/health", agg.http))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // Plain gRPC to the TLS port cannot open a stream.
    let plain_grpc = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", agg.grpc))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        let mut client = fleetwatch_proto::IngestClient::new(channel);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(fleetwatch_tests::hello_msg("plain")).await?;
        let mut inbound = client
            .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        inbound.message().await?;
        anyhow::Ok(())
    };
    let plain_grpc = tokio::time::timeout(Duration::from_secs(10), plain_grpc)
        .await
        .context("plain gRPC hung")?;
    assert!(plain_grpc.is_err(), "plain gRPC went through");
    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "plain").await?, (0, 0));

    agent.stop().await?;
    agg.stop().await
}

#[tokio::test]
async fn pinned_fingerprint_connects_and_wrong_trust_is_refused_with_the_cause() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("fleetwatch test CA")?;
    let agg = tls_aggregator(dir.path(), &ca, None).await?;
    let url = agg.grpc_url();
    let pin = fingerprint_of(&dir.path().join("server.pem"))?;

    let pinned = Agent::start(
        &agg,
        &[
            "--aggregator",
            &url,
            "--pin-sha256",
            &pin,
            "--interval",
            "200ms",
            "--host-id",
            "pinned",
        ],
    )?;
    wait_for_host(&agg, "pinned").await?;
    pinned.stop().await?;

    // A wrong pin: the error shows both fingerprints.
    let wrong_pin = "00".repeat(32);
    assert_refused(
        &agg,
        "wrong-pin",
        &["--aggregator", &url, "--pin-sha256", &wrong_pin],
    )
    .await?;
    let err = connect_error(
        &url,
        fleetwatch_agent::tls::TlsSettings {
            trust: fleetwatch_agent::tls::Trust::Pin([0; 32]),
            client: None,
        },
    )
    .await?;
    let zeros = vec!["00"; 32].join(":");
    assert!(
        err.contains("fingerprint mismatch") && err.contains(&zeros) && err.contains(&pin),
        "{err}"
    );

    // Another CA: unknown issuer.
    let other = TestCa::new("some other CA")?;
    let other_file = write(dir.path(), "other-ca.pem", &other.cert_pem())?;
    assert_refused(
        &agg,
        "wrong-ca",
        &["--aggregator", &url, "--ca-file", &other_file],
    )
    .await?;
    let err = connect_error(
        &url,
        fleetwatch_agent::tls::TlsSettings {
            trust: fleetwatch_agent::tls::Trust::CaFile(other_file.into()),
            client: None,
        },
    )
    .await?;
    assert!(err.contains("unknown CA"), "{err}");

    // The right CA, but the certificate is not for this name.
    let ca_file = write(dir.path(), "ca.pem", &ca.cert_pem())?;
    let by_name = url.replace("127.0.0.1", "localhost");
    let wrong_name = dir.path().join("wrong-name");
    std::fs::create_dir(&wrong_name)?;
    let named = tls_named_aggregator(&wrong_name, &ca, "elsewhere.example").await?;
    let err = connect_error(
        &named.grpc_url().replace("127.0.0.1", "localhost"),
        fleetwatch_agent::tls::TlsSettings {
            trust: fleetwatch_agent::tls::Trust::CaFile(ca_file.clone().into()),
            client: None,
        },
    )
    .await?;
    assert!(err.contains("name mismatch"), "{err}");
    named.stop().await?;

    // The right CA by host name works too.
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &by_name,
            "--ca-file",
            &ca_file,
            "--interval",
            "200ms",
            "--host-id",
            "by-name",
        ],
    )?;
    wait_for_host(&agg, "by-name").await?;
    agent.stop().await?;
    agg.stop().await
}

/// An aggregator whose certificate names `name` and 127.0.0.1 (the
/// fixture's readiness check needs the address), but not `localhost`.
async fn tls_named_aggregator(dir: &Path, ca: &TestCa, name: &str) -> Result<Aggregator> {
    let (cert, key) = ca.server(&[name, "127.0.0.1"])?.write(dir, "server")?;
    let config = fleetwatch_aggregator::Config {
        tls: TlsConfig {
            mode: TlsMode::Files { cert, key },
            client_ca: None,
        },
        ..Default::default()
    };
    let any = "127.0.0.1:0".parse()?;
    let agg =
        Aggregator::start_tls(&dir.join("fw.db"), any, any, config, Some(&ca.cert_pem())).await?;
    Ok(agg)
}

#[tokio::test]
async fn mutual_tls_refuses_agents_without_a_client_certificate() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("fleetwatch server CA")?;
    let clients = TestCa::new("fleetwatch agents CA")?;
    let client_ca = dir.path().join("clients-ca.pem");
    std::fs::write(&client_ca, clients.cert_pem())?;
    let agg = tls_aggregator(dir.path(), &ca, Some(&client_ca)).await?;
    let url = agg.grpc_url();
    let ca_file = write(dir.path(), "ca.pem", &ca.cert_pem())?;

    assert_refused(
        &agg,
        "no-cert",
        &["--aggregator", &url, "--ca-file", &ca_file],
    )
    .await?;

    // A certificate from another CA is refused as well.
    let (bad_cert, bad_key) = ca.client("rogue")?.write(dir.path(), "rogue")?;
    let (bad_cert, bad_key) = (
        bad_cert.display().to_string(),
        bad_key.display().to_string(),
    );
    assert_refused(
        &agg,
        "rogue",
        &[
            "--aggregator",
            &url,
            "--ca-file",
            &ca_file,
            "--client-cert",
            &bad_cert,
            "--client-key",
            &bad_key,
        ],
    )
    .await?;

    let (cert, key) = clients.client("good-agent")?.write(dir.path(), "agent")?;
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &url,
            "--ca-file",
            &ca_file,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
            "--interval",
            "200ms",
            "--host-id",
            "mtls",
        ],
    )?;
    wait_for_host(&agg, "mtls").await?;
    // HTTP stays server-authenticated only.
    let health = agg.get_ok("/health").await?;
    assert_eq!(health["agents_connected"], 1);
    agent.stop().await?;
    agg.stop().await
}

#[tokio::test]
async fn self_signed_certificate_is_created_once_and_pinnable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let config = || fleetwatch_aggregator::Config {
        tls: TlsConfig {
            mode: TlsMode::SelfSigned {
                names: vec!["fleet.test".to_owned()],
            },
            client_ca: None,
        },
        ..Default::default()
    };
    let any = "127.0.0.1:0".parse()?;
    let agg = Aggregator::start_tls(&db, any, any, config(), None).await?;
    let cert_path = dir.path().join("tls/cert.pem");
    let key_path = dir.path().join("tls/key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key_path)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    let first = fingerprint_of(&cert_path)?;
    let key_before = std::fs::read(&key_path)?;

    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--pin-sha256",
            &first,
            "--interval",
            "200ms",
            "--host-id",
            "self-signed",
        ],
    )?;
    wait_for_host(&agg, "self-signed").await?;
    agent.stop().await?;
    let (grpc, http) = (agg.grpc, agg.http);
    agg.stop().await?;

    // The second start reuses the pair, so the pin still holds.
    let agg = Aggregator::start_tls(&db, grpc, http, config(), None).await?;
    assert_eq!(fingerprint_of(&cert_path)?, first);
    assert_eq!(std::fs::read(&key_path)?, key_before);
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--pin-sha256",
            &first.replace(':', ""),
            "--interval",
            "200ms",
            "--host-id",
            "self-signed-2",
        ],
    )?;
    wait_for_host(&agg, "self-signed-2").await?;
    agent.stop().await?;
    agg.stop().await
}
