//! Which `Host` names the HTTP listener answers while reads are open: the
//! defence against DNS rebinding.
//!
//! A page on `attacker.example` whose name the attacker re-points at
//! 127.0.0.1 can make a browser on this machine fetch from the aggregator
//! as "same origin", and with open reads read every host and command line.
//! The browser still sends `Host: attacker.example`, so while reads are open
//! every request must name this server: an IP literal (a rebinding needs a
//! domain name), the listen address, the name in `public_url`, the
//! certificate's `tls_names`, `localhost` (and `*.localhost`) when the
//! listener is a loopback address, and the machine's own name when it
//! listens on every address. When reads need a login the session or token
//! is the defence, and any name is answered.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

/// The names a request's `Host` may carry; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    names: HashSet<String>,
    localhost: bool,
}

impl AllowedHosts {
    /// The names for a listener on `listen`, with the configured
    /// `public_url` and certificate names.
    pub fn new(listen: SocketAddr, public_url: Option<&str>, tls_names: &[String]) -> Self {
        let mut names = HashSet::new();
        let mut add = |name: &str| {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            if !name.is_empty() {
                names.insert(name);
            }
        };
        for name in tls_names {
            add(name);
        }
        if let Some(url) = public_url
            && let Some((_, rest)) = url.split_once("://")
        {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let authority = authority.rsplit('@').next().unwrap_or_default();
            add(strip_port(authority));
        }
        if listen.ip().is_unspecified()
            && let Some(name) = crate::tls::hostname()
        {
            add(&name);
        }
        Self {
            names,
            localhost: listen.ip().is_loopback(),
        }
    }

    /// Whether a request with these headers names this server. HTTP/1.1
    /// requires `Host`; HTTP/2 carries it as the URI's authority, which
    /// hyper presents as `Host` too. No `Host` at all is refused.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        self.allows_name(host)
    }

    fn allows_name(&self, host: &str) -> bool {
        let name = strip_port(host.trim()).trim_end_matches('.');
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = name.to_ascii_lowercase();
        if self.localhost && (name == "localhost" || name.ends_with(".localhost")) {
            return true;
        }
        self.names.contains(&name)
    }
}

/// `name:port` → `name`; `[v6]:port` → `[v6]`; a bare v6 address stays.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_ip_literals_localhost_and_configured_names_only() {
        let listen: SocketAddr = "127.0.0.1:7401".parse().unwrap();
        let hosts = AllowedHosts::new(
            listen,
            Some("https://Fleet.Example.com:8443/dash"),
            &["tls.example".to_owned()],
        );
        for ok in [
            "127.0.0.1:7401",
            "127.0.0.1",
            "[::1]:7401",
            "localhost:7401",
            "LOCALHOST",
            "app.localhost:7401",
            "fleet.example.com",
            "fleet.example.com:8443",
            "tls.example.",
        ] {
            assert!(hosts.allows_name(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:7401",
            "localhost.attacker.example",
            "example.com",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert!(!hosts.allows_name(bad), "{bad}");
        }
        assert!(!hosts.allows(&HeaderMap::new()), "no Host at all");
    }

    #[test]
    fn localhost_is_only_for_loopback_listeners() {
        let listen: SocketAddr = "10.0.0.5:7401".parse().unwrap();
        let hosts = AllowedHosts::new(listen, None, &[]);
        assert!(!hosts.allows_name("localhost:7401"));
        assert!(hosts.allows_name("10.0.0.5:7401"));
    }
}
