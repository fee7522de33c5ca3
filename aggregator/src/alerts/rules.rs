//! Alert rules as written under `[[alerts.rules]]`: what to measure, how to
//! compare it, the warning/critical/clear thresholds, the `for` delay and the
//! scope (hosts, mount point, worker pool), plus their validation.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::threshold::Threshold;

/// What a rule measures. Host-wide metrics have one instance per host;
/// `filesystem_used_percent` one per mount point; `worker_*` one per pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Busy CPU without iowait and steal (`top`'s us+sy+ni+hi+si).
    CpuPercent,
    /// CPU time the hypervisor gave to other guests.
    CpuStealPercent,
    /// CPU idle while waiting for I/O.
    CpuIowaitPercent,
    MemoryPercent,
    SwapPercent,
    /// Used space of each filesystem, per mount point.
    FilesystemUsedPercent,
    /// `load1` divided by the host's CPU count.
    LoadPerCore,
    DiskReadBytesPerSec,
    DiskWriteBytesPerSec,
    NetRxBytesPerSec,
    NetTxBytesPerSec,
    /// Alive workers in a pool; compare with `"min_alive"` for its declared minimum.
    WorkerPoolAlive,
    /// The busiest worker of a pool (maximum over its processes).
    WorkerCpuPercent,
    /// The largest worker of a pool (maximum RSS over its processes).
    WorkerRssBytes,
    /// How much a pool's `restarts` counter rose within the rule's `window`.
    WorkerRestarts,
    /// Seconds since the host's last sample (evaluated by `Engine::tick`).
    HostSilence,
}

impl Metric {
    /// Whether the rule has one instance per worker pool.
    pub fn is_pool(self) -> bool {
        matches!(
            self,
            Self::WorkerPoolAlive
                | Self::WorkerCpuPercent
                | Self::WorkerRssBytes
                | Self::WorkerRestarts
        )
    }

    /// Whether the rule has one instance per mount point.
    pub fn is_filesystem(self) -> bool {
        self == Self::FilesystemUsedPercent
    }
}

/// How the measured value is compared with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
}

impl Comparison {
    /// Whether `value <op> threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Ge => value >= threshold,
            Self::Gt => value > threshold,
            Self::Le => value <= threshold,
            Self::Lt => value < threshold,
        }
    }

    /// True for `>=` and `>`: a larger value is worse.
    pub fn is_upward(self) -> bool {
        matches!(self, Self::Ge | Self::Gt)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ge => ">=",
            Self::Gt => ">",
            Self::Le => "<=",
            Self::Lt => "<",
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::model::Severity;

/// One alert rule. In TOML (`[[alerts.rules]]`):
///
/// ```toml
/// [[alerts.rules]]
/// name = "web-load"          # unique; built-in rules use cpu, memory, disk, ...
/// metric = "load_per_core"
/// comparison = ">="
/// warning = 2.0              # at least one of warning / critical
/// critical = 4.0
/// clear = 1.5                # optional hysteresis: resolve only below 1.5
/// for = "5m"                 # optional: must hold this long before firing
/// hosts = ["web-*"]          # optional: host ids or hostnames, globs allowed
/// ```
///
/// `mount` (filesystem rules), `pool` (worker rules) and `window` (for
/// `worker_restarts`, default 5m) narrow the scope; `enabled = false` keeps a
/// rule in the file but off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub metric: Metric,
    pub comparison: Comparison,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<Threshold>,
    /// Where a firing alert resolves; defaults to the least severe firing
    /// threshold. Each level keeps the same margin: with warning 80,
    /// critical 90 and clear 70, critical de-escalates below 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<Threshold>,
    #[serde(rename = "for", default, with = "duration_str")]
    pub for_duration: Duration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_str"
    )]
    pub window: Option<Duration>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Window of `worker_restarts` rules that set none.
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(300);

/// A config rule that does not make sense, naming the rule and the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("alert rule `{rule}`: `{key}` {reason}")]
    Invalid {
        rule: String,
        key: &'static str,
        reason: String,
    },
    #[error(
        "alert rule `{name}` is defined twice (built-in rules: cpu, steal, memory, disk, worker_pool, offline, crash_loop)"
    )]
    Duplicate { name: String },
}

impl Rule {
    /// Checks what serde cannot: thresholds present, finite and ordered,
    /// scope keys that fit the metric.
    pub fn validate(&self) -> Result<(), RuleError> {
        let invalid = |key: &'static str, reason: String| RuleError::Invalid {
            rule: self.name.clone(),
            key,
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if self.warning.is_none() && self.critical.is_none() {
            return Err(invalid("warning", "or `critical` must be set".into()));
        }
        let thresholds = [
            ("warning", self.warning),
            ("critical", self.critical),
            ("clear", self.clear),
        ];
        for (key, threshold) in thresholds {
            match threshold {
                Some(Threshold::Value(v)) if !v.is_finite() => {
                    return Err(invalid(key, "must be a finite number".into()));
                }
                Some(Threshold::MinAlive) if self.metric != Metric::WorkerPoolAlive => {
                    return Err(invalid(
                        key,
                        "can be \"min_alive\" only for metric worker_pool_alive".into(),
                    ));
                }
                Some(Threshold::Intervals(_)) if self.metric != Metric::HostSilence => {
                    return Err(invalid(
                        key,
                        "can count intervals only for metric host_silence".into(),
                    ));
                }
                _ => {}
            }
        }
        let up = self.comparison.is_upward();
        let value = |t: Option<Threshold>| match t {
            Some(Threshold::Value(v)) => Some(v),
            _ => None,
        };
        if let (Some(w), Some(c)) = (value(self.warning), value(self.critical))
            && (if up { c < w } else { c > w })
        {
            let side = if up { "below" } else { "above" };
            return Err(invalid(
                "critical",
                format!(
                    "({c}) must not be {side} `warning` ({w}) with comparison {}",
                    self.comparison
                ),
            ));
        }
        if let (Some(clear), Some(least)) =
            (value(self.clear), value(self.warning.or(self.critical)))
            && (if up { clear > least } else { clear < least })
        {
            let side = if up { "above" } else { "below" };
            return Err(invalid(
                "clear",
                format!("({clear}) must not be {side} the firing threshold ({least})"),
            ));
        }
        if let Some(mount) = &self.mount {
            if !self.metric.is_filesystem() {
                return Err(invalid(
                    "mount",
                    "applies only to filesystem_used_percent".into(),
                ));
            }
            if mount.is_empty() {
                return Err(invalid("mount", "must not be empty".into()));
            }
        }
        if let Some(pool) = &self.pool {
            if !self.metric.is_pool() {
                return Err(invalid("pool", "applies only to worker_* metrics".into()));
            }
            if pool.is_empty() {
                return Err(invalid("pool", "must not be empty".into()));
            }
        }
        if let Some(window) = self.window {
            if self.metric != Metric::WorkerRestarts {
                return Err(invalid("window", "applies only to worker_restarts".into()));
            }
            if window.is_zero() {
                return Err(invalid("window", "must be longer than 0s".into()));
            }
        }
        if self.metric == Metric::HostSilence && !self.for_duration.is_zero() {
            return Err(invalid(
                "for",
                "does not apply to host_silence; raise the threshold instead".into(),
            ));
        }
        if self.hosts.iter().any(String::is_empty) {
            return Err(invalid("hosts", "must not contain an empty pattern".into()));
        }
        Ok(())
    }

    /// Whether the rule covers a host, matched by id or hostname.
    pub fn covers_host(&self, host_id: &str, hostname: &str) -> bool {
        self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|p| glob_match(p, host_id) || glob_match(p, hostname))
    }

    /// Whether the rule covers a mount point or pool (its scope key).
    pub fn covers_scope(&self, scope: &str) -> bool {
        let pattern = if self.metric.is_filesystem() {
            &self.mount
        } else {
            &self.pool
        };
        pattern.as_deref().is_none_or(|p| glob_match(p, scope))
    }

    /// The `worker_restarts` window.
    pub fn restart_window(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_RESTART_WINDOW)
    }
}

/// Shell-style glob: `*` matches any run of characters, `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and which text position it is trying to cover.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `for = "30s"`: durations as humantime strings.
pub(crate) mod duration_str {
    use super::{Deserialize, Deserializer, Duration, Serializer, de};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            de::Error::custom(format!("`{text}` is not a duration like 30s or 5m: {e}"))
        })
    }
}

/// Optional humantime durations.
pub(crate) mod opt_duration_str {
    use super::{Deserializer, Duration, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_str::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration_str::deserialize(d).map(Some)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rule, String> {
        toml::from_str::<Rule>(text).map_err(|e| e.to_string())
    }

    pub(crate) fn rule(text: &str) -> Rule {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_a_full_rule() {
        let r = rule(
            r#"
            name = "web-load"
            metric = "load_per_core"
            comparison = ">="
            warning = 2
            critical = 4.5
            clear = 1.5
            for = "5m"
            hosts = ["web-*"]
            "#,
        );
        assert_eq!(r.metric, Metric::LoadPerCore);
        assert_eq!(r.comparison, Comparison::Ge);
        assert_eq!(r.warning, Some(Threshold::Value(2.0)));
        assert_eq!(r.critical, Some(Threshold::Value(4.5)));
        assert_eq!(r.clear, Some(Threshold::Value(1.5)));
        assert_eq!(r.for_duration, Duration::from_secs(300));
        assert!(r.enabled);
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(Comparison::Ge.holds(90.0, 90.0));
        assert!(!Comparison::Gt.holds(90.0, 90.0));
        assert!(Comparison::Gt.holds(90.1, 90.0));
        assert!(Comparison::Le.holds(2.0, 2.0));
        assert!(!Comparison::Lt.holds(2.0, 2.0));
        assert!(Comparison::Lt.holds(1.0, 2.0));
        assert!(!Comparison::Ge.holds(89.9, 90.0));
        for (text, cmp) in [
            (">=", Comparison::Ge),
            (">", Comparison::Gt),
            ("<=", Comparison::Le),
            ("<", Comparison::Lt),
        ] {
            let r = rule(&format!(
                "name = \"x\"\nmetric = \"cpu_percent\"\ncomparison = \"{text}\"\ncritical = 1"
            ));
            assert_eq!(r.comparison, cmp);
            assert_eq!(cmp.as_str(), text);
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let base = "name = \"x\"\nmetric = \"cpu_percent\"\ncomparison = \">=\"\ncritical = 90\n";
        let err = parse(&format!("{base}critcal = 95")).unwrap_err();
        assert!(err.contains("critcal"), "{err}");
        let err = parse(&format!("{base}for = \"5 parsecs\"")).unwrap_err();
        assert!(err.contains("for") && err.contains("5 parsecs"), "{err}");
        let err =
            parse("name = \"x\"\nmetric = \"cpu\"\ncomparison = \">=\"\ncritical = 1").unwrap_err();
        assert!(
            err.contains("metric") && err.contains("cpu_percent"),
            "{err}"
        );
        let err =
            parse("name = \"x\"\nmetric = \"cpu_percent\"\ncomparison = \"=>\"\ncritical = 1")
                .unwrap_err();
        assert!(err.contains("comparison"), "{err}");
        let err = parse(
            "name = \"x\"\nmetric = \"cpu_percent\"\ncomparison = \">\"\ncritical = \"high\"",
        )
        .unwrap_err();
        assert!(err.contains("critical") && err.contains("high"), "{err}");
    }

    fn invalid_key(text: &str) -> (&'static str, String) {
        match rule(text).validate() {
            Err(RuleError::Invalid { key, reason, rule }) => {
                assert_eq!(rule, "x");
                (key, reason)
            }
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_rule_and_key() {
        let head = "name = \"x\"\ncomparison = \">=\"\n";
        let cases = [
            ("metric = \"cpu_percent\"", "warning"),
            (
                "metric = \"cpu_percent\"\nwarning = 95\ncritical = 90",
                "critical",
            ),
            (
                "metric = \"cpu_percent\"\ncritical = 90\nclear = 95",
                "clear",
            ),
            ("metric = \"cpu_percent\"\ncritical = nan", "critical"),
            (
                "metric = \"cpu_percent\"\ncritical = \"min_alive\"",
                "critical",
            ),
            (
                "metric = \"cpu_percent\"\ncritical = \"2 intervals\"",
                "critical",
            ),
            (
                "metric = \"cpu_percent\"\ncritical = 1\nmount = \"/\"",
                "mount",
            ),
            (
                "metric = \"filesystem_used_percent\"\ncritical = 1\npool = \"api\"",
                "pool",
            ),
            (
                "metric = \"cpu_percent\"\ncritical = 1\nwindow = \"5m\"",
                "window",
            ),
            (
                "metric = \"worker_restarts\"\ncritical = 1\nwindow = \"0s\"",
                "window",
            ),
            (
                "metric = \"host_silence\"\ncritical = 60\nfor = \"1m\"",
                "for",
            ),
            (
                "metric = \"cpu_percent\"\ncritical = 1\nhosts = [\"\"]",
                "hosts",
            ),
        ];
        for (body, key) in cases {
            let (got, reason) = invalid_key(&format!("{head}{body}"));
            assert_eq!(got, key, "{body}: {reason}");
        }
        let err = rule(&format!(
            "{head}metric = \"cpu_percent\"\ncritical = 90\nclear = 95"
        ))
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("alert rule `x`: `clear`"), "{err}");
    }

    #[test]
    fn downward_rules_order_thresholds_the_other_way() {
        let ok = "name = \"x\"\nmetric = \"worker_pool_alive\"\ncomparison = \"<\"\nwarning = 3\ncritical = 1\nclear = 4";
        assert_eq!(rule(ok).validate(), Ok(()));
        let bad = "name = \"x\"\nmetric = \"worker_pool_alive\"\ncomparison = \"<\"\nwarning = 1\ncritical = 3";
        assert_eq!(invalid_key(bad).0, "critical");
        let bad = "name = \"x\"\nmetric = \"worker_pool_alive\"\ncomparison = \"<\"\ncritical = 3\nclear = 2";
        assert_eq!(invalid_key(bad).0, "clear");
    }

    #[test]
    fn globs_match_hosts_and_scopes() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("web-*", "web-"));
        assert!(!glob_match("web-*", "db-1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("w?b-*-eu", "web-12-eu"));
        assert!(!glob_match("w?b-*-eu", "web-12-us"));
        assert!(glob_match("/var/*", "/var/lib"));
        assert!(!glob_match("/var", "/var/lib"));
        assert!(glob_match("*a*b", "xxaxxab"));
        let mut r = rule(
            "name = \"x\"\nmetric = \"filesystem_used_percent\"\ncomparison = \">=\"\ncritical = 1\nhosts = [\"web-*\", \"db-1\"]\nmount = \"/data*\"",
        );
        assert!(r.covers_host("abc123", "web-7"));
        assert!(r.covers_host("db-1", "whatever"));
        assert!(!r.covers_host("db-2", "db-2"));
        assert!(r.covers_scope("/data2"));
        assert!(!r.covers_scope("/"));
        r.hosts.clear();
        assert!(r.covers_host("anything", ""));
    }

    #[test]
    fn rules_serialize_back_to_the_config_shape() {
        let r = rule(
            "name = \"x\"\nmetric = \"worker_restarts\"\ncomparison = \">=\"\nwarning = 3\nwindow = \"5m\"\nfor = \"30s\"",
        );
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["metric"], "worker_restarts");
        assert_eq!(json["comparison"], ">=");
        assert_eq!(json["for"], "30s");
        assert_eq!(json["window"], "5m");
        assert_eq!(json["warning"], 3.0);
        assert!(json.get("critical").is_none());
    }
}
