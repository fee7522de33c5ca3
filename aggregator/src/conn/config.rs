//! The `[limits]` section: how long a connection may take to send its
//! request head (HTTP) or its HTTP/2 preface (gRPC), how long it may sit
//! idle, how many connections one address may hold open per listener, and
//! what one agent token may take (host ids, bytes per second; see
//! `auth::quota`).

use std::time::Duration;

use serde::Deserialize;

/// The `[limits]` section as written in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFileConfig {
    pub http_header_timeout: Option<String>,
    pub grpc_preface_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub connections_per_address: Option<usize>,
    pub hosts_per_token: Option<usize>,
    pub bytes_per_second_per_token: Option<u64>,
}

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// An HTTP connection must have sent a whole request head within this.
    pub http_header_timeout: Duration,
    /// A gRPC connection must have started sending (its HTTP/2 preface)
    /// within this.
    pub grpc_preface_timeout: Duration,
    /// A connection on which nothing was read or written for this long is
    /// closed. Agents' streams carry HTTP/2 pings every 20 s and WebSockets
    /// the server's pings, so only dead or idle ones hit it.
    pub idle_timeout: Duration,
    /// Connections one IP address may hold open, per listener. A fleet
    /// behind one NAT address shares it.
    pub connections_per_address: usize,
    /// Host ids one agent token may own. A token made for one host owns
    /// one; this bounds what a shared (enrollment) token, or a leaked one,
    /// can claim.
    pub hosts_per_token: usize,
    /// Bytes of batches per second all streams of one agent token may send
    /// together; a stream over it is read more slowly, not refused.
    pub bytes_per_second_per_token: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            http_header_timeout: Duration::from_secs(10),
            grpc_preface_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            connections_per_address: 1024,
            // The fleet size one aggregator is built for.
            hosts_per_token: 10_000,
            // 10,000 hosts with 20 workers each send ~40 MB/s at 1 s.
            bytes_per_second_per_token: 64 << 20,
        }
    }
}

impl LimitsFileConfig {
    /// The limits in force; the error is the key (`limits.…`) and why.
    pub fn build(&self) -> Result<Limits, (String, String)> {
        let d = Limits::default();
        let parse = |key: &str, text: &Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(text) => {
                let value = humantime::parse_duration(text).map_err(|e| {
                    (
                        format!("limits.{key}"),
                        format!("`{text}` is not a duration: {e}"),
                    )
                })?;
                if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&value) {
                    return Err((format!("limits.{key}"), "must be 1s to 1h".to_owned()));
                }
                Ok(value)
            }
        };
        let idle_timeout = parse("idle_timeout", &self.idle_timeout, d.idle_timeout)?;
        if idle_timeout < Duration::from_secs(30) {
            // Shorter would close agents between their HTTP/2 pings.
            return Err((
                "limits.idle_timeout".to_owned(),
                "must be at least 30s".to_owned(),
            ));
        }
        let connections_per_address = self
            .connections_per_address
            .unwrap_or(d.connections_per_address);
        if connections_per_address == 0 {
            return Err((
                "limits.connections_per_address".to_owned(),
                "must be at least 1".to_owned(),
            ));
        }
        let hosts_per_token = self.hosts_per_token.unwrap_or(d.hosts_per_token);
        if hosts_per_token == 0 {
            return Err((
                "limits.hosts_per_token".to_owned(),
                "must be at least 1".to_owned(),
            ));
        }
        let bytes_per_second_per_token = self
            .bytes_per_second_per_token
            .unwrap_or(d.bytes_per_second_per_token);
        if bytes_per_second_per_token < 1024 {
            return Err((
                "limits.bytes_per_second_per_token".to_owned(),
                "must be at least 1024".to_owned(),
            ));
        }
        Ok(Limits {
            http_header_timeout: parse(
                "http_header_timeout",
                &self.http_header_timeout,
                d.http_header_timeout,
            )?,
            grpc_preface_timeout: parse(
                "grpc_preface_timeout",
                &self.grpc_preface_timeout,
                d.grpc_preface_timeout,
            )?,
            idle_timeout,
            connections_per_address,
            hosts_per_token,
            bytes_per_second_per_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values_name_the_key() {
        assert_eq!(LimitsFileConfig::default().build(), Ok(Limits::default()));
        let bad = [
            (
                LimitsFileConfig {
                    idle_timeout: Some("5s".into()),
                    ..Default::default()
                },
                "limits.idle_timeout",
            ),
            (
                LimitsFileConfig {
                    http_header_timeout: Some("soon".into()),
                    ..Default::default()
                },
                "limits.http_header_timeout",
            ),
            (
                LimitsFileConfig {
                    connections_per_address: Some(0),
                    ..Default::default()
                },
                "limits.connections_per_address",
            ),
            (
                LimitsFileConfig {
                    hosts_per_token: Some(0),
                    ..Default::default()
                },
                "limits.hosts_per_token",
            ),
            (
                LimitsFileConfig {
                    bytes_per_second_per_token: Some(10),
                    ..Default::default()
                },
                "limits.bytes_per_second_per_token",
            ),
        ];
        for (file, key) in bad {
            assert_eq!(file.build().expect_err(key).0, key);
        }
    }
}
