//! Certificates and private keys from PEM files, certificate fingerprints,
//! and the rustls crypto provider (ring: no OpenSSL, no cmake, builds for
//! musl).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

fn read(path: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|source| PemError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads every certificate of a PEM file; at least one must be there.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let invalid = |reason: String| PemError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE in the PEM file".to_owned()));
    }
    Ok(certs)
}

/// Reads the private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| PemError::Invalid {
        path: path.to_owned(),
        reason: format!("no usable private key: {e}"),
    })
}

/// SHA-256 of some bytes (a DER certificate).
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Colon-separated upper-case hex, the form `--pin-sha256` takes and the
/// aggregator prints.
pub fn format_fingerprint(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The SHA-256 fingerprint of a certificate, formatted.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    format_fingerprint(&sha256(cert.as_ref()))
}

/// The crypto provider both sides build their rustls configs with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("x.pem");
        let err = load_certs(&path).expect_err("missing").to_string();
        assert!(
            err.contains("x.pem") && err.contains("cannot read"),
            "{err}"
        );
        std::fs::write(&path, "not pem").expect("write");
        let err = load_certs(&path).expect_err("no cert").to_string();
        assert!(err.contains("no CERTIFICATE"), "{err}");
        let err = load_key(&path).expect_err("no key").to_string();
        assert!(err.contains("no usable private key"), "{err}");
    }

    #[test]
    fn fingerprints_are_colon_hex() {
        assert_eq!(format_fingerprint(&[0xab, 0x01]), "AB:01");
        // SHA-256 of the empty string.
        assert!(format_fingerprint(&sha256(b"")).starts_with("E3:B0:C4:42"));
    }
}
