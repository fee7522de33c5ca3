//! TLS for both listeners, with rustls (ring backend; no OpenSSL).
//!
//! [`ServerTls::load`] turns the `tls_*` settings into rustls server configs:
//! the operator's certificate and key, or a self-signed pair generated on
//! first start and reused after. [`spawn_acceptor`] runs the TLS handshakes
//! off the accept loop, so one slow or hostile client cannot stall the
//! others, and hands finished connections to ingest's gRPC server
//! (`ingest::server`) and to axum (`conn::listen::ChannelListener`). Protocol-neutral
//! below HTTP: nothing here names tonic. [`config`] checks the `tls_*` keys
//! of the config into a [`TlsConfig`].

pub mod config;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleetwatch_common::pem::provider;
pub use fleetwatch_common::pem::{PemError, fingerprint, load_certs, load_key};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// A client gets this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the aggregator's certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text.
    #[default]
    Off,
    /// PEM files given by the operator.
    Files { cert: PathBuf, key: PathBuf },
    /// Generated on first start next to the database, reused afterwards.
    /// `names` are extra subject alternative names.
    SelfSigned { names: Vec<String> },
}

/// The TLS settings of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub mode: TlsMode,
    /// CA (PEM) that agents' client certificates must chain to; gRPC only.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
}

/// The server configs of the two listeners.
#[derive(Clone)]
pub struct ServerTls {
    pub grpc: Arc<ServerConfig>,
    pub http: Arc<ServerConfig>,
    /// SHA-256 fingerprint of the leaf certificate.
    pub fingerprint: String,
    /// Where the certificate is (for the log).
    pub cert_path: PathBuf,
}

impl ServerTls {
    /// Builds the configs; `None` when TLS is off. In self-signed mode the
    /// pair lives in `<db dir>/tls/`.
    pub fn load(config: &TlsConfig, db: &Path) -> Result<Option<Self>, TlsError> {
        let (cert_path, key_path) = match &config.mode {
            TlsMode::Off => return Ok(None),
            TlsMode::Files { cert, key } => (cert.clone(), key.clone()),
            TlsMode::SelfSigned { names } => self_signed(db, names)?,
        };
        let certs = load_certs(&cert_path)?;
        let key = load_key(&key_path)?;
        let fingerprint = fingerprint(&certs[0]);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let http_builder = builder.clone();
        let grpc_builder = match &config.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(path)? {
                    roots.add(cert).map_err(|e| TlsError::ClientCa {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| TlsError::ClientCa {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut grpc = grpc_builder.with_single_cert(certs.clone(), key.clone_key())?;
        grpc.alpn_protocols = vec![b"h2".to_vec()];
        // The HTTP API never asks for client certificates; axum serves HTTP/1.1.
        let mut http = http_builder
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Self {
            grpc: Arc::new(grpc),
            http: Arc::new(http),
            fingerprint,
            cert_path,
        }))
    }
}

/// Directory of the self-signed pair for the database at `db`.
pub fn self_signed_dir(db: &Path) -> PathBuf {
    let parent = db.parent().filter(|p| !p.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join("tls")
}

/// Returns the self-signed pair's paths, generating it if it is not there.
fn self_signed(db: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = self_signed_dir(db);
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = hostname() {
        sans.push(host);
    }
    for name in names {
        if !sans.contains(name) {
            sans.push(name.clone());
        }
    }
    let generated = rcgen::generate_simple_self_signed(sans.clone())?;
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())
        .map_err(write_err(&key_path))?;
    std::fs::write(&cert_path, generated.cert.pem()).map_err(write_err(&cert_path))?;
    tracing::info!(cert = %cert_path.display(), key = %key_path.display(), names = ?sans, "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

/// Writes a file only its owner can read (mode 0600 from creation on).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

pub(crate) fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// A TCP connection under the `[limits]` (see [`crate::conn`]).
pub type Tcp = crate::conn::Guarded<TcpStream>;

/// Accepts TCP connections on `listener` (under the per-address cap and
/// idle timeout of `limits`) and runs each TLS handshake in its own task;
/// finished connections go to `tx`. Stops on `shutdown`.
pub fn spawn_acceptor(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    limits: crate::conn::Limits,
    shutdown: CancellationToken,
    what: &'static str,
) -> mpsc::Receiver<(TlsStream<Tcp>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    let cap = crate::conn::PerAddress::new(limits.connections_per_address);
    tokio::spawn(async move {
        while let Some((tcp, peer, permit)) =
            crate::conn::listen::next(&listener, &cap, what, &shutdown).await
        {
            // The handshake has its own deadline; then the idle timeout.
            let tcp = crate::conn::Guarded::new(
                tcp,
                permit,
                crate::conn::Until::Never,
                HANDSHAKE_TIMEOUT,
                limits.idle_timeout,
            );
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => {
                        let hint = handshake_hint(&e);
                        tracing::warn!(listener = what, %peer, error = %e, hint, "TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::warn!(listener = what, %peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    rx
}

/// What a handshake error most likely means, for the log.
fn handshake_hint(error: &io::Error) -> &'static str {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(_)) => "the client did not speak TLS (plain http:// ?)",
        Some(rustls::Error::NoCertificatesPresented) => {
            "the client sent no certificate; mutual TLS requires one from tls_client_ca"
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            "the client certificate does not chain to tls_client_ca"
        }
        Some(rustls::Error::AlertReceived(_)) => {
            "the client rejected this certificate (check its CA file or pin)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_is_created_once_with_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("fw.db");
        let config = TlsConfig {
            mode: TlsMode::SelfSigned {
                names: vec!["agg.example".to_owned()],
            },
            client_ca: None,
        };
        let first = ServerTls::load(&config, &db)
            .expect("load")
            .expect("tls on");
        let key = dir.path().join("tls/key.pem");
        let mode = std::fs::metadata(&key).expect("key").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let second = ServerTls::load(&config, &db)
            .expect("load")
            .expect("tls on");
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn bad_pem_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, "not pem").expect("write");
        let err = load_certs(&path).expect_err("no cert").to_string();
        assert!(err.contains("cert.pem"), "{err}");
        let err = load_key(&path).expect_err("no key").to_string();
        assert!(
            err.contains("cert.pem") && err.contains("private key"),
            "{err}"
        );
    }
}
