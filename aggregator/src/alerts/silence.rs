//! Silences: an operator's "I know, stop telling me" for alerts matching a
//! rule, a host and/or a pool until an expiry time. Silenced alerts still
//! change state and are recorded; they are only not notified.

use super::rules::glob_match;
use crate::model::TimestampMs;

pub use crate::model::Silence;

/// A silence that cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs at least one of `rule`, `host` or `pool`")]
    NoMatcher,
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    #[error("`expires_at_ms` is already in the past")]
    Expired,
}

/// What a silence is matched against.
#[derive(Debug, Clone, Copy)]
pub struct AlertRef<'a> {
    pub rule: &'a str,
    pub host_id: &'a str,
    pub hostname: &'a str,
    /// The pool name for worker rules, `None` otherwise.
    pub pool: Option<&'a str>,
}

impl Silence {
    /// Rejects silences that would match everything, nothing, or never apply.
    pub fn validate(&self, now_ms: TimestampMs) -> Result<(), SilenceError> {
        if self.rule.is_none() && self.host.is_none() && self.pool.is_none() {
            return Err(SilenceError::NoMatcher);
        }
        for (key, value) in [
            ("rule", &self.rule),
            ("host", &self.host),
            ("pool", &self.pool),
        ] {
            if value.as_deref() == Some("") {
                return Err(SilenceError::Empty(key));
            }
        }
        if !self.is_active(now_ms) {
            return Err(SilenceError::Expired);
        }
        Ok(())
    }

    pub fn is_active(&self, now_ms: TimestampMs) -> bool {
        now_ms < self.expires_at_ms
    }

    /// Whether this silence, if still active, covers the alert.
    pub fn matches(&self, alert: AlertRef<'_>, now_ms: TimestampMs) -> bool {
        let rule = self
            .rule
            .as_deref()
            .is_none_or(|p| glob_match(p, alert.rule));
        let host = self
            .host
            .as_deref()
            .is_none_or(|p| glob_match(p, alert.host_id) || glob_match(p, alert.hostname));
        let pool = match (self.pool.as_deref(), alert.pool) {
            (None, _) => true,
            (Some(p), Some(pool)) => glob_match(p, pool),
            (Some(_), None) => false,
        };
        self.is_active(now_ms) && rule && host && pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(rule: Option<&str>, host: Option<&str>, pool: Option<&str>) -> Silence {
        Silence {
            id: 0,
            rule: rule.map(str::to_owned),
            host: host.map(str::to_owned),
            pool: pool.map(str::to_owned),
            expires_at_ms: 1000,
            comment: String::new(),
        }
    }

    const CPU: AlertRef<'static> = AlertRef {
        rule: "cpu",
        host_id: "id-1",
        hostname: "web-1",
        pool: None,
    };

    #[test]
    fn matchers_combine() {
        assert!(silence(Some("cpu"), None, None).matches(CPU, 0));
        assert!(silence(None, Some("web-*"), None).matches(CPU, 0));
        assert!(silence(None, Some("id-1"), None).matches(CPU, 0));
        assert!(!silence(Some("cpu"), Some("db-*"), None).matches(CPU, 0));
        assert!(!silence(Some("memory"), None, None).matches(CPU, 0));
        // A pool silence does not cover host-wide alerts.
        assert!(!silence(None, Some("web-1"), Some("api")).matches(CPU, 0));
        let pool_alert = AlertRef {
            rule: "worker_pool",
            pool: Some("api"),
            ..CPU
        };
        assert!(silence(None, None, Some("api")).matches(pool_alert, 0));
        assert!(!silence(None, None, Some("batch")).matches(pool_alert, 0));
    }

    #[test]
    fn expired_silences_no_longer_match() {
        let s = silence(Some("cpu"), None, None);
        assert!(s.matches(CPU, 999));
        assert!(!s.matches(CPU, 1000));
        assert_eq!(s.validate(1000), Err(SilenceError::Expired));
    }

    #[test]
    fn validation_rejects_catch_all_and_empty_matchers() {
        assert_eq!(
            silence(None, None, None).validate(0),
            Err(SilenceError::NoMatcher)
        );
        assert_eq!(
            silence(Some(""), None, None).validate(0),
            Err(SilenceError::Empty("rule"))
        );
        assert_eq!(silence(None, Some("web-1"), None).validate(0), Ok(()));
        let parsed: Result<Silence, _> =
            serde_json::from_str(r#"{"host":"web-*","expires_at_ms":5,"comment":"deploy"}"#);
        assert_eq!(
            parsed
                .map(|s| (s.host, s.comment))
                .map_err(|e| e.to_string()),
            Ok((Some("web-*".into()), "deploy".into()))
        );
    }

    mod through_the_engine {
        use crate::alerts::fixtures::*;
        use crate::alerts::instance::AlertState::{Firing, Resolved};
        use crate::alerts::silence::{Silence, SilenceError};

        fn silence(
            rule: Option<&str>,
            host: Option<&str>,
            pool: Option<&str>,
            expires_at_ms: i64,
        ) -> Silence {
            Silence {
                id: 0,
                rule: rule.map(str::to_owned),
                host: host.map(str::to_owned),
                pool: pool.map(str::to_owned),
                expires_at_ms,
                comment: "maintenance".into(),
            }
        }

        #[test]
        fn silenced_alerts_still_transition_but_do_not_notify() {
            let mut e = defaults();
            let web = host("web-1");
            let id = e.silence(
                silence(Some("worker_pool"), Some("web-*"), Some("api"), 10_000),
                0,
            );
            assert_eq!(id, Ok(1));
            assert_eq!(
                e.silence(silence(None, None, None, 10_000), 0),
                Err(SilenceError::NoMatcher)
            );
            let t = e.observe(
                &web,
                &pools(vec![group("api", 1, 0, 0), group("batch", 1, 0, 0)]),
                0,
            );
            let flags: Vec<_> = t
                .iter()
                .map(|t| (t.scope.as_str(), t.to, t.silenced, t.notify))
                .collect();
            assert_eq!(
                flags,
                [("api", Firing, true, false), ("batch", Firing, false, true)]
            );
            assert!(
                e.active(5000)
                    .iter()
                    .any(|a| a.scope == "api" && a.silenced)
            );
            // Once the silence expires, the resolution is notified again.
            assert!(e.tick(10_000).is_empty());
            assert!(e.silences(10_000).is_empty());
            let t = e.observe(
                &web,
                &pools(vec![group("api", 1, 1, 0), group("batch", 1, 1, 0)]),
                12_000,
            );
            assert!(
                t.iter()
                    .all(|t| t.to == Resolved && !t.silenced && t.notify),
                "{t:?}"
            );
            assert_eq!(t.len(), 2);
        }

        #[test]
        fn unsilence_lifts_a_silence() {
            let mut e = defaults();
            let web = host("web-1");
            let id = e
                .silence(silence(None, Some("web-1"), None, 100_000), 0)
                .unwrap_or(0);
            assert_eq!(e.silences(0).len(), 1);
            assert!(e.unsilence(id));
            assert!(!e.unsilence(id));
            let t = e.observe(&web, &pools(vec![group("api", 1, 0, 0)]), 1000);
            assert!(t[0].notify && !t[0].silenced);
        }
    }
}
