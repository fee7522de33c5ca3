//! Secrets handed to people and programs: agent tokens, API tokens and
//! session ids. Each is 32 random bytes from the operating system, written
//! as hex behind a short prefix that says what it is. Only the SHA-256 of a
//! secret is stored: the secrets are random, so a fast hash is enough and a
//! stolen database holds nothing that can be replayed.

use ring::rand::{SecureRandom, SystemRandom};

/// Random bytes in each secret.
const SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// `N` random bytes from the operating system (secrets, password salts).
pub fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A new secret: `prefix` followed by 64 hex digits.
pub fn generate(prefix: &str) -> Result<String, RandomError> {
    Ok(format!("{prefix}{}", hex(&random::<SECRET_BYTES>()?)))
}

/// The form a secret is stored and looked up in: lower-case hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex(&fleetwatch_common::pem::sha256(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_hex() {
        let a = generate("fwa_").unwrap();
        let b = generate("fwa_").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("fwa_"));
        assert_eq!(a.len(), 4 + 64);
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn hash_is_stable_and_differs_from_the_secret() {
        assert_eq!(hash("x"), hash("x"));
        assert_ne!(hash("x"), hash("y"));
        assert_eq!(hash("x").len(), 64);
    }
}
