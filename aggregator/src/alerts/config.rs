//! The `[alerts]` config section: built-in rules that work with no config,
//! per-name overrides of them, the operator's own rules, and how long
//! history is kept. Its `[[alerts.webhooks]]` and `[alerts.notify]` are
//! checked by `notify::config`, beside the code they configure.
//!
//! ```toml
//! [alerts.defaults.cpu]          # built-ins: cpu, steal, memory, disk,
//! critical = 95                  #   worker_pool, offline, crash_loop
//! for = "1m"
//!
//! [alerts.defaults.memory]
//! enabled = false
//!
//! [[alerts.rules]]               # any number of own rules, see `Rule`
//! name = "root-fs"
//! metric = "filesystem_used_percent"
//! comparison = ">="
//! critical = 80
//! mount = "/"
//! ```
//!
//! An override sets any of `enabled`, `comparison`, `warning`, `critical`,
//! `clear`, `for`, `hosts`, `mount`, `pool` and `window` of the built-in
//! rule; name and metric stay. To drop a level of a built-in (say disk
//! without its warning), disable it and write an own rule.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::notify::{NotifySettings, WebhookConfig};
use super::rules::{Comparison, Metric, Rule, RuleError, Severity};
use super::threshold::Threshold;

/// The whole `[alerts]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub defaults: Defaults,
    pub rules: Vec<Rule>,
    /// `[[alerts.webhooks]]`: where notifications go.
    pub webhooks: Vec<WebhookConfig>,
    /// `[alerts.notify]`: repeat interval and delivery settings.
    pub notify: NotifySettings,
    /// How long resolved alerts are kept in the history (default 30 days).
    #[serde(with = "super::rules::opt_duration_str")]
    pub history_retention: Option<Duration>,
    /// After the aggregator starts, how long a stored host gets to
    /// reconnect before it can be offline (at least three of its
    /// intervals; default 30 s, the agent's longest reconnect wait).
    #[serde(with = "super::rules::opt_duration_str")]
    pub restart_grace: Option<Duration>,
}

/// Resolved alerts are kept this long unless configured.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The agent waits at most 30 s between reconnection attempts.
pub const DEFAULT_RESTART_GRACE: Duration = Duration::from_secs(30);

impl AlertsConfig {
    pub fn history_retention(&self) -> Duration {
        self.history_retention.unwrap_or(DEFAULT_HISTORY_RETENTION)
    }

    pub fn restart_grace(&self) -> Duration {
        self.restart_grace.unwrap_or(DEFAULT_RESTART_GRACE)
    }

    /// The rules in force (see [`AlertsConfig::build`]), once the whole
    /// section is checked: rules, then webhooks, then notification
    /// settings. The error says which entry and key.
    pub fn rules_in_force(&self) -> Result<Vec<Rule>, String> {
        let rules = self.build().map_err(|e| e.to_string())?;
        super::notify::validate_webhooks(&self.webhooks).map_err(|e| e.to_string())?;
        self.notify.validate().map_err(|e| e.to_string())?;
        Ok(rules)
    }
}

/// `[alerts.defaults.<name>]`: one optional override per built-in rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub cpu: Option<RuleOverride>,
    pub steal: Option<RuleOverride>,
    pub memory: Option<RuleOverride>,
    pub disk: Option<RuleOverride>,
    pub worker_pool: Option<RuleOverride>,
    pub offline: Option<RuleOverride>,
    pub crash_loop: Option<RuleOverride>,
}

/// Changes to one built-in rule; unset keys keep the built-in value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub comparison: Option<Comparison>,
    pub warning: Option<Threshold>,
    pub critical: Option<Threshold>,
    pub clear: Option<Threshold>,
    #[serde(rename = "for", with = "super::rules::opt_duration_str")]
    pub for_duration: Option<Duration>,
    pub hosts: Option<Vec<String>>,
    pub mount: Option<String>,
    pub pool: Option<String>,
    #[serde(with = "super::rules::opt_duration_str")]
    pub window: Option<Duration>,
}

impl RuleOverride {
    fn apply(&self, rule: &mut Rule) {
        let o = self.clone();
        rule.enabled = o.enabled.unwrap_or(rule.enabled);
        rule.comparison = o.comparison.unwrap_or(rule.comparison);
        rule.warning = o.warning.or(rule.warning);
        rule.critical = o.critical.or(rule.critical);
        rule.clear = o.clear.or(rule.clear);
        rule.for_duration = o.for_duration.unwrap_or(rule.for_duration);
        rule.hosts = o.hosts.unwrap_or(std::mem::take(&mut rule.hosts));
        rule.mount = o.mount.or(rule.mount.take());
        rule.pool = o.pool.or(rule.pool.take());
        rule.window = o.window.or(rule.window);
    }
}

fn builtin(
    name: &str,
    metric: Metric,
    comparison: Comparison,
    level: (Severity, Threshold),
) -> Rule {
    let (severity, threshold) = level;
    Rule {
        name: name.to_owned(),
        metric,
        comparison,
        warning: (severity == Severity::Warning).then_some(threshold),
        critical: (severity == Severity::Critical).then_some(threshold),
        clear: None,
        for_duration: Duration::ZERO,
        hosts: Vec::new(),
        mount: None,
        pool: None,
        window: None,
        enabled: true,
    }
}

/// The built-in rules, as they apply with no config at all.
pub fn builtin_rules() -> Vec<Rule> {
    use Comparison::{Ge, Lt};
    use Severity::{Critical, Warning};
    let thirty = Duration::from_secs(30);
    let v = Threshold::Value;
    let mut cpu = builtin("cpu", Metric::CpuPercent, Ge, (Critical, v(90.0)));
    cpu.for_duration = thirty;
    // Steal is counted apart from busy CPU: a VM whose hypervisor takes a
    // tenth of its CPU for minutes is short of CPU it pays for.
    let mut steal = builtin("steal", Metric::CpuStealPercent, Ge, (Warning, v(10.0)));
    steal.for_duration = Duration::from_secs(300);
    let mut memory = builtin("memory", Metric::MemoryPercent, Ge, (Warning, v(85.0)));
    memory.for_duration = thirty;
    let mut disk = builtin(
        "disk",
        Metric::FilesystemUsedPercent,
        Ge,
        (Warning, v(90.0)),
    );
    disk.critical = Some(v(95.0));
    // No delay: a pool that starts with nobody alive alerts on its first sample.
    let worker_pool = builtin(
        "worker_pool",
        Metric::WorkerPoolAlive,
        Lt,
        (Critical, Threshold::MinAlive),
    );
    let offline = builtin(
        "offline",
        Metric::HostSilence,
        Ge,
        (Critical, Threshold::Intervals(3.0)),
    );
    let mut crash_loop = builtin("crash_loop", Metric::WorkerRestarts, Ge, (Warning, v(3.0)));
    crash_loop.window = Some(super::rules::DEFAULT_RESTART_WINDOW);
    vec![cpu, steal, memory, disk, worker_pool, offline, crash_loop]
}

impl AlertsConfig {
    /// Built-in rules with their overrides applied, then the own rules; every
    /// rule validated (disabled ones too, so typos surface), names unique,
    /// disabled rules left out.
    pub fn build(&self) -> Result<Vec<Rule>, RuleError> {
        let d = &self.defaults;
        let overrides = [
            &d.cpu,
            &d.steal,
            &d.memory,
            &d.disk,
            &d.worker_pool,
            &d.offline,
            &d.crash_loop,
        ];
        let mut rules = builtin_rules();
        for (rule, o) in rules.iter_mut().zip(overrides) {
            if let Some(o) = o {
                o.apply(rule);
            }
        }
        rules.extend(self.rules.iter().cloned());
        let mut names = std::collections::HashSet::new();
        for rule in &rules {
            rule.validate()?;
            if !names.insert(rule.name.as_str()) {
                return Err(RuleError::Duplicate {
                    name: rule.name.clone(),
                });
            }
        }
        rules.retain(|r| r.enabled);
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<AlertsConfig, String> {
        toml::from_str::<AlertsConfig>(text).map_err(|e| e.to_string())
    }

    fn build(text: &str) -> Result<Vec<Rule>, String> {
        config(text)?.build().map_err(|e| e.to_string())
    }

    fn find<'a>(rules: &'a [Rule], name: &str) -> &'a Rule {
        rules
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no rule {name}"))
    }

    #[test]
    fn no_config_gives_the_builtin_rules() {
        let rules = build("").unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "steal",
                "memory",
                "disk",
                "worker_pool",
                "offline",
                "crash_loop"
            ]
        );
        let cpu = find(&rules, "cpu");
        assert_eq!(
            (cpu.metric, cpu.comparison),
            (Metric::CpuPercent, Comparison::Ge)
        );
        assert_eq!(cpu.critical, Some(Threshold::Value(90.0)));
        assert_eq!(cpu.warning, None);
        assert_eq!(cpu.for_duration, Duration::from_secs(30));
        let steal = find(&rules, "steal");
        assert_eq!(
            (steal.metric, steal.warning, steal.critical),
            (Metric::CpuStealPercent, Some(Threshold::Value(10.0)), None)
        );
        assert_eq!(steal.for_duration, Duration::from_secs(300));
        let memory = find(&rules, "memory");
        assert_eq!(memory.warning, Some(Threshold::Value(85.0)));
        let disk = find(&rules, "disk");
        assert_eq!(
            (disk.warning, disk.critical),
            (Some(Threshold::Value(90.0)), Some(Threshold::Value(95.0)))
        );
        let pool = find(&rules, "worker_pool");
        assert_eq!(
            (pool.comparison, pool.critical),
            (Comparison::Lt, Some(Threshold::MinAlive))
        );
        assert_eq!(pool.for_duration, Duration::ZERO);
        assert_eq!(
            find(&rules, "offline").critical,
            Some(Threshold::Intervals(3.0))
        );
        let crash = find(&rules, "crash_loop");
        assert_eq!(
            (crash.warning, crash.window),
            (Some(Threshold::Value(3.0)), Some(Duration::from_secs(300)))
        );
        for rule in &rules {
            assert_eq!(rule.validate(), Ok(()), "{}", rule.name);
        }
    }

    #[test]
    fn overrides_change_or_disable_builtins_by_name() {
        let rules = build(
            r#"
            [defaults.cpu]
            critical = 95
            warning = 80
            for = "1m"
            hosts = ["web-*"]
            [defaults.memory]
            enabled = false
            [defaults.crash_loop]
            window = "10m"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cpu = find(&rules, "cpu");
        assert_eq!(cpu.critical, Some(Threshold::Value(95.0)));
        assert_eq!(cpu.warning, Some(Threshold::Value(80.0)));
        assert_eq!(cpu.for_duration, Duration::from_secs(60));
        assert_eq!(cpu.hosts, ["web-*"]);
        assert!(rules.iter().all(|r| r.name != "memory"));
        assert_eq!(
            find(&rules, "crash_loop").window,
            Some(Duration::from_secs(600))
        );
        // Untouched built-ins keep their values.
        assert_eq!(find(&rules, "disk").critical, Some(Threshold::Value(95.0)));
    }

    #[test]
    fn own_rules_come_after_builtins() {
        let rules = build(
            r#"
            [[rules]]
            name = "root-fs"
            metric = "filesystem_used_percent"
            comparison = ">="
            critical = 80
            mount = "/"
            [[rules]]
            name = "quiet"
            metric = "cpu_percent"
            comparison = ">"
            warning = 1
            enabled = false
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.len(), 8);
        assert_eq!(find(&rules, "root-fs").mount.as_deref(), Some("/"));
    }

    #[test]
    fn invalid_config_names_the_key() {
        let err = config("[defaults.cpux]\nenabled = false").unwrap_err();
        assert!(err.contains("cpux"), "{err}");
        let err = config("[defaults.cpu]\ncritcal = 95").unwrap_err();
        assert!(err.contains("critcal"), "{err}");
        let err = config("[defaults.cpu]\nfor = \"soon\"").unwrap_err();
        assert!(err.contains("soon"), "{err}");
        let err = config("[defaults.cpu]\nname = \"mine\"").unwrap_err();
        assert!(err.contains("name"), "{err}");
        let err = config("rule = []").unwrap_err();
        assert!(err.contains("rule"), "{err}");
    }

    #[test]
    fn invalid_overrides_fail_validation_with_rule_and_key() {
        let err = build("[defaults.cpu]\nwarning = 99").unwrap_err();
        assert_eq!(
            err,
            "alert rule `cpu`: `critical` (90) must not be below `warning` (99) with comparison >="
        );
        let err = build("[defaults.disk]\nclear = 97").unwrap_err();
        assert!(err.starts_with("alert rule `disk`: `clear`"), "{err}");
        // A disabled rule is still checked, so a typo does not hide.
        let err = build("[defaults.memory]\nenabled = false\nmount = \"/\"").unwrap_err();
        assert!(err.starts_with("alert rule `memory`: `mount`"), "{err}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let err = build(
            "[[rules]]\nname = \"cpu\"\nmetric = \"cpu_percent\"\ncomparison = \">\"\nwarning = 50",
        )
        .unwrap_err();
        assert!(err.contains("`cpu` is defined twice"), "{err}");
    }
}
