//! TLS to the aggregator, with rustls (ring backend; no OpenSSL).
//!
//! The agent trusts one of: a CA file, a pinned SHA-256 fingerprint of the
//! aggregator's certificate, or the Mozilla roots compiled in by
//! `webpki-roots` (the same everywhere, including static musl builds and
//! minimal containers without `/etc/ssl`). There is deliberately no way to
//! skip verification. [`Connector`] does the TCP connect and the handshake
//! for tonic, so a failed verification comes back as an error that says why.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fleetwatch_common::pem::{
    PemError, format_fingerprint, load_certs, load_key, provider, sha256,
};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// What the agent trusts for the aggregator's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The Mozilla root store (webpki-roots).
    PublicRoots,
    /// Certificates chaining to the CA(s) in this PEM file.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint.
    Pin([u8; 32]),
}

/// TLS settings of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub trust: Trust,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("{path}: {reason}")]
    BadCa { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Parses a SHA-256 fingerprint: 64 hex digits, colons optional.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{text}` is not a SHA-256 fingerprint (64 hex digits, colons optional)"
        ));
    }
    let mut pin = [0u8; 32];
    for (i, byte) in pin.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| format!("`{text}`: {e}"))?;
    }
    Ok(pin)
}

/// Builds the rustls client config for `settings`.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &settings.trust {
        Trust::PublicRoots => builder.with_root_certificates(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Trust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::BadCa {
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            builder.with_root_certificates(roots)
        }
        Trust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: *pin,
                provider,
            })),
    };
    let mut config = match &settings.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The pinned certificate is not the one the aggregator presented.
#[derive(Debug)]
pub struct PinMismatch {
    pub expected: [u8; 32],
    pub presented: [u8; 32],
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate fingerprint mismatch: pinned {}, aggregator presented {}",
            format_fingerprint(&self.expected),
            format_fingerprint(&self.presented)
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Accepts exactly the certificate with the pinned SHA-256 fingerprint. The
/// pin replaces chain and name validation (a self-signed certificate has no
/// chain); the handshake signature is still checked, so the server must hold
/// the certificate's private key.
#[derive(Debug)]
pub struct PinVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    pub fn new(pin: [u8; 32]) -> Self {
        Self {
            pin,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = sha256(end_entity.as_ref());
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch {
                    expected: self.pin,
                    presented,
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Rewrites a handshake failure so the log names the cause and what to
/// change; other I/O errors pass through.
fn explain(error: io::Error, host: &str) -> io::Error {
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return error;
    };
    let message = match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "TLS: the aggregator's certificate is signed by an unknown CA (not in the \
                 CA file or the trusted roots): {tls}"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "TLS: name mismatch: the aggregator's certificate is not valid for `{host}`: {tls}"
                )
            }
            CertificateError::Other(other) if other.0.downcast_ref::<PinMismatch>().is_some() => {
                format!("TLS: {}", other.0)
            }
            _ => format!("TLS: the aggregator's certificate was rejected: {tls}"),
        },
        rustls::Error::AlertReceived(alert) => format!(
            "TLS: the aggregator refused the handshake ({alert:?}); it may require a client \
             certificate (client_cert/client_key) from its CA"
        ),
        _ => format!("TLS handshake failed: {tls}"),
    };
    io::Error::new(error.kind(), message)
}

/// Connects over TCP and TLS for tonic's `Endpoint::connect_with_connector`.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
}

impl Connector {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }
}

impl tonic::codegen::Service<tonic::codegen::http::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::codegen::http::Uri) -> Self::Future {
        let config = self.config.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URL has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone()).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("`{host}`: {e}"))
            })?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| explain(e, &host))?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_with_or_without_colons() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&plain), Ok([0xab; 32]));
        assert_eq!(parse_pin(&colons), Ok([0xab; 32]));
        assert_eq!(format_fingerprint(&[0xab; 32]), colons);
        for bad in ["", "ab", &"ab".repeat(33), &"zz".repeat(32), "ab:cd"] {
            assert!(parse_pin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pin_verifier_accepts_only_the_pinned_certificate() {
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let name = ServerName::try_from("localhost").expect("name");
        let pinned = PinVerifier::new(sha256(&[1, 2, 3]));
        assert!(
            pinned
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let other = PinVerifier::new([0; 32]);
        let err = other
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .expect_err("mismatch");
        // What the connector turns it into, as the agent logs it.
        let io = io::Error::new(io::ErrorKind::InvalidData, err);
        let text = explain(io, "localhost").to_string();
        assert!(
            text.contains("fingerprint mismatch")
                && text.contains(&format_fingerprint(&[0; 32]))
                && text.contains(&format_fingerprint(&sha256(&[1, 2, 3]))),
            "{text}"
        );
        assert!(!other.supported_verify_schemes().is_empty());
    }
}
