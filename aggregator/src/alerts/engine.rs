//! The alert engine: a synchronous state machine over every rule × host ×
//! scope instance. Time is injected (`now_ms` on every call), so the caller
//! owns the clock and tests own time; nothing here blocks or reads a clock.
//!
//! The caller feeds it samples (`observe`), calls `tick` every few seconds
//! so silent hosts are noticed, records every returned `Transition`, and
//! notifies those with `notify` set.

use std::collections::BTreeMap;

use super::instance::{
    AlertInstance, AlertState, Cause, Change, Context, Instance, Transition, step,
};
use super::measure::{self, RestartTracker};
use super::rules::{DEFAULT_RESTART_WINDOW, Metric, Rule};
use super::silence::{AlertRef, Silence, SilenceError};
use crate::model::{HostInfo, Sample, TimestampMs};

/// (rule index, host id, scope).
type Key = (usize, String, String);

#[derive(Debug, Clone)]
struct HostState {
    hostname: String,
    interval_ms: u32,
    last_seen_ms: TimestampMs,
    /// Not judged silent before this: after the aggregator starts, the
    /// time a host's agent gets to reconnect. 0 once the host is heard.
    grace_until_ms: TimestampMs,
}

/// See the module docs.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    instances: BTreeMap<Key, Instance>,
    hosts: BTreeMap<String, HostState>,
    restarts: RestartTracker,
    silences: Vec<Silence>,
    next_silence_id: u64,
}

impl Engine {
    /// An engine over validated rules (see `AlertsConfig::build`); disabled
    /// rules are ignored.
    pub fn new(rules: Vec<Rule>) -> Self {
        let rules: Vec<Rule> = rules.into_iter().filter(|r| r.enabled).collect();
        let keep = rules
            .iter()
            .filter(|r| r.metric == Metric::WorkerRestarts)
            .map(Rule::restart_window)
            .max()
            .unwrap_or(DEFAULT_RESTART_WINDOW);
        Self {
            rules,
            instances: BTreeMap::new(),
            hosts: BTreeMap::new(),
            restarts: RestartTracker::new(keep),
            silences: Vec::new(),
            next_silence_id: 1,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Notes that a host is alive (on hello, or on a sample).
    pub fn host_seen(&mut self, host: &HostInfo, now_ms: TimestampMs) {
        let last_seen_ms = self
            .hosts
            .get(&host.host_id)
            .map_or(now_ms, |h| h.last_seen_ms.max(now_ms));
        self.hosts.insert(
            host.host_id.clone(),
            HostState {
                hostname: host.hostname.clone(),
                interval_ms: host.interval_ms,
                last_seen_ms,
                grace_until_ms: 0,
            },
        );
    }

    /// Notes a stored host at startup, last seen at `last_seen_ms`, so one
    /// that never returns still goes offline; but not before
    /// `started_ms + grace` nor three of its intervals after the start, so
    /// that an aggregator restart pages nobody for hosts whose agents
    /// reconnect in that time. An alert that was firing before the restart
    /// stays firing (see [`Self::restore`]).
    pub fn host_restored(
        &mut self,
        host: &HostInfo,
        last_seen_ms: TimestampMs,
        started_ms: TimestampMs,
        grace: std::time::Duration,
    ) {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let intervals = 3 * i64::from(measure::interval(host.interval_ms));
        self.hosts.insert(
            host.host_id.clone(),
            HostState {
                hostname: host.hostname.clone(),
                interval_ms: host.interval_ms,
                last_seen_ms,
                grace_until_ms: started_ms.saturating_add(grace_ms.max(intervals)),
            },
        );
    }

    /// Notes that the aggregator received something from a known host at
    /// `at_ms`, such as a batch still waiting to be stored or evaluated.
    /// Silence is judged from the latest of these and the samples
    /// evaluated, so a host whose samples wait in the aggregator is never
    /// offline. An unknown host is ignored; its hello introduces it.
    pub fn heard(&mut self, host_id: &str, at_ms: TimestampMs) {
        if let Some(host) = self.hosts.get_mut(host_id) {
            host.last_seen_ms = host.last_seen_ms.max(at_ms);
            host.grace_until_ms = 0;
        }
    }

    /// Evaluates every rule against a newly stored sample of `host`.
    /// Mount points and pools that vanished from the sample end their alerts.
    pub fn observe(
        &mut self,
        host: &HostInfo,
        sample: &Sample,
        now_ms: TimestampMs,
    ) -> Vec<Transition> {
        self.host_seen(host, now_ms);
        self.restarts.record(&host.host_id, sample, now_ms);
        let mut out = Vec::new();
        for idx in 0..self.rules.len() {
            let rule = &self.rules[idx];
            if !rule.covers_host(&host.host_id, &host.hostname) {
                continue;
            }
            let readings = measure::readings(rule, host, sample, &self.restarts, now_ms);
            for reading in readings.iter().filter(|r| r.value.is_finite()) {
                let key = (idx, host.host_id.clone(), reading.scope.clone());
                let mut slot = self.instances.remove(&key);
                let change = step(&mut slot, rule, reading, now_ms);
                if let Some(change) = change {
                    out.push(self.transition(&key, &change, Cause::Reading, now_ms));
                }
                if let Some(inst) = slot {
                    self.instances.insert(key, inst);
                }
            }
            if rule.metric.is_pool() || rule.metric.is_filesystem() {
                let gone: Vec<Key> = self
                    .instances
                    .keys()
                    .filter(|(i, h, scope)| {
                        *i == idx
                            && *h == host.host_id
                            && !readings.iter().any(|r| r.scope == *scope)
                    })
                    .cloned()
                    .collect();
                out.extend(self.end_all(gone, Cause::Vanished, now_ms));
            }
        }
        out
    }

    /// Time-driven evaluation: `host_silence` rules for every known host,
    /// and expiry of silences. Call every second or few.
    pub fn tick(&mut self, now_ms: TimestampMs) -> Vec<Transition> {
        self.silences.retain(|s| s.is_active(now_ms));
        let mut out = Vec::new();
        for (idx, rule) in self.rules.iter().enumerate() {
            if rule.metric != Metric::HostSilence {
                continue;
            }
            for (host_id, host) in &self.hosts {
                if !rule.covers_host(host_id, &host.hostname) || now_ms < host.grace_until_ms {
                    continue;
                }
                let silent_ms = now_ms.saturating_sub(host.last_seen_ms);
                let Some(reading) = measure::silence_reading(rule, host.interval_ms, silent_ms)
                else {
                    continue;
                };
                let key = (idx, host_id.clone(), String::new());
                let mut slot = self.instances.remove(&key);
                if let Some(change) = step(&mut slot, rule, &reading, now_ms) {
                    out.push(self.transition(&key, &change, Cause::Reading, now_ms));
                }
                if let Some(inst) = slot {
                    self.instances.insert(key, inst);
                }
            }
        }
        out
    }

    /// Takes back the alerts that were firing before a restart, so they are
    /// not raised again. Pending ones are skipped (they start over); those
    /// whose rule is gone come back as resolutions for the caller to record.
    pub fn restore(&mut self, firing: Vec<AlertInstance>, now_ms: TimestampMs) -> Vec<Transition> {
        let mut out = Vec::new();
        for alert in firing.iter().filter(|a| a.state == AlertState::Firing) {
            let inst = Instance::restored(alert);
            match self.rules.iter().position(|r| r.name == alert.rule) {
                Some(idx) => {
                    self.instances
                        .insert((idx, alert.host_id.clone(), alert.scope.clone()), inst);
                }
                None => {
                    let ctx = Context {
                        rule: None,
                        rule_name: &alert.rule,
                        host_id: &alert.host_id,
                        host_label: &alert.host_id,
                        scope: &alert.scope,
                        silenced: false,
                        now_ms,
                    };
                    out.push(Transition::new(
                        &ctx,
                        &super::instance::end(inst),
                        Cause::Gone,
                    ));
                }
            }
        }
        out
    }

    /// Ends every alert of a host and stops watching it (the host was removed).
    pub fn forget_host(&mut self, host_id: &str, now_ms: TimestampMs) -> Vec<Transition> {
        let keys: Vec<Key> = self
            .instances
            .keys()
            .filter(|k| k.1 == host_id)
            .cloned()
            .collect();
        let out = self.end_all(keys, Cause::Gone, now_ms);
        self.hosts.remove(host_id);
        self.restarts.forget(host_id);
        out
    }

    /// Pending and firing alerts, with whether a silence covers them now.
    pub fn active(&self, now_ms: TimestampMs) -> Vec<AlertInstance> {
        self.instances
            .iter()
            .filter_map(|((idx, host, scope), inst)| {
                let rule = self.rules.get(*idx)?;
                let silenced = self.is_silenced(rule, host, scope, now_ms);
                Some(inst.snapshot(&rule.name, host, scope, silenced))
            })
            .collect()
    }

    /// Adds a silence and returns its id. A non-zero `id` is kept, so
    /// silences reloaded from the store keep theirs.
    pub fn silence(
        &mut self,
        mut silence: Silence,
        now_ms: TimestampMs,
    ) -> Result<u64, SilenceError> {
        silence.validate(now_ms)?;
        if silence.id == 0 {
            silence.id = self.next_silence_id;
        }
        self.next_silence_id = self.next_silence_id.max(silence.id.saturating_add(1));
        self.silences.retain(|s| s.id != silence.id);
        let id = silence.id;
        self.silences.push(silence);
        Ok(id)
    }

    /// Removes a silence; false if there was none with that id.
    pub fn unsilence(&mut self, id: u64) -> bool {
        let before = self.silences.len();
        self.silences.retain(|s| s.id != id);
        self.silences.len() != before
    }

    /// The silences still in force.
    pub fn silences(&self, now_ms: TimestampMs) -> Vec<Silence> {
        self.silences
            .iter()
            .filter(|s| s.is_active(now_ms))
            .cloned()
            .collect()
    }

    fn is_silenced(&self, rule: &Rule, host_id: &str, scope: &str, now_ms: TimestampMs) -> bool {
        let alert = AlertRef {
            rule: &rule.name,
            host_id,
            hostname: self.hosts.get(host_id).map_or("", |h| h.hostname.as_str()),
            pool: rule.metric.is_pool().then_some(scope),
        };
        self.silences.iter().any(|s| s.matches(alert, now_ms))
    }

    fn transition(
        &self,
        key: &Key,
        change: &Change,
        cause: Cause,
        now_ms: TimestampMs,
    ) -> Transition {
        let (idx, host_id, scope) = key;
        let rule = &self.rules[*idx];
        let host_label = self
            .hosts
            .get(host_id)
            .map(|h| h.hostname.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(host_id);
        let ctx = Context {
            rule: Some(rule),
            rule_name: &rule.name,
            host_id,
            host_label,
            scope,
            silenced: self.is_silenced(rule, host_id, scope, now_ms),
            now_ms,
        };
        Transition::new(&ctx, change, cause)
    }

    fn end_all(&mut self, keys: Vec<Key>, cause: Cause, now_ms: TimestampMs) -> Vec<Transition> {
        keys.into_iter()
            .filter_map(|key| {
                let inst = self.instances.remove(&key)?;
                Some(self.transition(&key, &super::instance::end(inst), cause, now_ms))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::config::builtin_rules;
    use crate::alerts::fixtures::*;
    use crate::alerts::rules::{Comparison, Severity};
    use crate::alerts::threshold::Threshold;
    use crate::model::Worker;
    use AlertState::{Firing, Inactive, Pending, Resolved};
    use Severity::{Critical, Warning};

    #[test]
    fn default_cpu_goes_pending_then_fires_after_30s() {
        let mut e = defaults();
        let web = host("web-1");
        let t = e.observe(&web, &cpu(95.2), 0);
        assert_eq!(brief(&t), [("cpu", "", Inactive, Pending, Critical)]);
        assert!(!t[0].notify);
        assert!(e.observe(&web, &cpu(96.0), 15_000).is_empty());
        let t = e.observe(&web, &cpu(95.2), 30_000);
        assert_eq!(brief(&t), [("cpu", "", Pending, Firing, Critical)]);
        assert_eq!(t[0].message, "CPU 95.2% >= 90% on web-1");
        assert_eq!(
            (
                t[0].host_id.as_str(),
                t[0].started_at_ms,
                t[0].peak,
                t[0].notify
            ),
            ("id-web-1", 0, 96.0, true)
        );
        let t = e.observe(&web, &cpu(50.0), 35_000);
        assert_eq!(brief(&t), [("cpu", "", Firing, Resolved, Critical)]);
        assert!(t[0].notify);
        assert!(e.active(35_000).is_empty());
    }

    #[test]
    fn disk_alerts_per_mount_escalate_and_de_escalate() {
        let mut e = defaults();
        let web = host("web-1");
        let t = e.observe(&web, &disks(&[("/", 91), ("/data", 50)]), 0);
        assert_eq!(brief(&t), [("disk", "/", Inactive, Firing, Warning)]);
        assert_eq!(t[0].message, "disk / 91% >= 90% on web-1");
        let t = e.observe(&web, &disks(&[("/", 96), ("/data", 50)]), 5000);
        assert_eq!(brief(&t), [("disk", "/", Firing, Firing, Critical)]);
        assert_eq!(
            (t[0].previous_severity, t[0].threshold, t[0].notify),
            (Some(Warning), 95.0, true)
        );
        let t = e.observe(&web, &disks(&[("/", 92), ("/data", 97)]), 10_000);
        assert_eq!(
            brief(&t),
            [
                ("disk", "/", Firing, Firing, Warning),
                ("disk", "/data", Inactive, Firing, Critical)
            ]
        );
        // A mount point that disappears ends its alert rather than firing forever.
        let t = e.observe(&web, &disks(&[("/", 50)]), 15_000);
        assert_eq!(
            brief(&t),
            [
                ("disk", "/", Firing, Resolved, Warning),
                ("disk", "/data", Firing, Resolved, Critical)
            ]
        );
        assert_eq!(t[1].message, "disk /data no longer reported on web-1");
    }

    #[test]
    fn pool_below_minimum_alerts_from_the_very_first_sample() {
        let mut e = defaults();
        let web = host("web-1");
        let t = e.observe(
            &web,
            &pools(vec![group("api", 2, 0, 0), group("idle", 0, 0, 0)]),
            0,
        );
        assert_eq!(
            brief(&t),
            [("worker_pool", "api", Inactive, Firing, Critical)]
        );
        assert_eq!((t[0].value, t[0].threshold, t[0].notify), (0.0, 2.0, true));
        assert_eq!(t[0].message, "workers alive in pool api 0 < 2 on web-1");
        assert!(
            e.observe(&web, &pools(vec![group("api", 2, 1, 0)]), 5000)
                .is_empty()
        );
        let t = e.observe(&web, &pools(vec![group("api", 2, 2, 0)]), 10_000);
        assert_eq!(
            brief(&t),
            [("worker_pool", "api", Firing, Resolved, Critical)]
        );
        assert_eq!(t[0].peak, 0.0);
    }

    #[test]
    fn crash_loop_fires_on_three_restarts_within_five_minutes() {
        let mut e = defaults();
        let web = host("web-1");
        let mut fired = Vec::new();
        // The fourth minute still has all three restarts in its window; by the
        // sixth only two (minutes 2 and 3) are left, so the loop is over.
        for (minute, restarts) in [(0, 0), (1, 1), (2, 2), (3, 3), (4, 3), (6, 3), (9, 3)] {
            let t = e.observe(
                &web,
                &pools(vec![group("api", 1, 1, restarts)]),
                minute * 60_000,
            );
            fired.extend(
                t.into_iter()
                    .map(|t| (minute, t.from, t.to, t.severity, t.value)),
            );
        }
        assert_eq!(
            fired,
            [
                (3, Inactive, Firing, Warning, 3.0),
                (6, Firing, Resolved, Warning, 2.0)
            ]
        );
    }

    #[test]
    fn restarts_spread_wider_than_the_window_do_not_fire() {
        let mut e = defaults();
        let web = host("web-1");
        for step in 0..10_u64 {
            let t = e.observe(
                &web,
                &pools(vec![group("api", 1, 1, step)]),
                (step * 180_000) as i64,
            );
            assert!(t.is_empty(), "restart {step}: {t:?}");
        }
    }

    #[test]
    fn silent_host_goes_offline_after_three_intervals_and_back_on_a_sample() {
        let mut e = defaults();
        let web = host("web-1");
        e.observe(&web, &cpu(10.0), 0);
        assert!(e.tick(10_000).is_empty());
        assert!(e.tick(14_999).is_empty());
        let t = e.tick(15_000);
        assert_eq!(brief(&t), [("offline", "", Inactive, Firing, Critical)]);
        assert_eq!(t[0].message, "no samples for 15s >= 15s on web-1");
        assert!(t[0].notify);
        assert!(e.tick(60_000).is_empty());
        let t = e.observe(&web, &cpu(10.0), 61_000);
        assert_eq!(brief(&t), [("offline", "", Firing, Resolved, Critical)]);
        assert_eq!(t[0].peak, 60.0);
        // A host that said hello but never sent a sample goes offline too.
        e.host_seen(&host("db-1"), 100_000);
        let t = e.tick(115_000);
        let hosts: Vec<_> = t.iter().map(|t| (t.host_id.as_str(), t.to)).collect();
        assert_eq!(hosts, [("id-db-1", Firing), ("id-web-1", Firing)]);
    }

    #[test]
    fn a_host_heard_by_the_aggregator_is_not_offline_while_its_samples_wait() {
        let mut e = defaults();
        let web = host("web-1");
        e.observe(&web, &cpu(10.0), 0);
        // The aggregator keeps receiving the host's batches while the engine,
        // behind, evaluates none of them: still not silent.
        for at in (5_000..=60_000).step_by(5_000) {
            e.heard("id-web-1", at);
            assert!(e.tick(at + 14_999).is_empty(), "offline at {at}");
        }
        // Then it really goes quiet: offline three intervals after the last
        // batch received, not after the last sample evaluated.
        assert!(e.tick(74_999).is_empty());
        let t = e.tick(75_000);
        assert_eq!(brief(&t), [("offline", "", Inactive, Firing, Critical)]);
        assert_eq!(t[0].message, "no samples for 15s >= 15s on web-1");
        // A host the engine has not met yet is not invented by hearing it.
        e.heard("id-nobody", 80_000);
        assert!(e.tick(200_000).iter().all(|t| t.host_id != "id-nobody"));
    }

    #[test]
    fn a_restart_gives_stored_hosts_their_grace_to_reconnect() {
        let mut e = defaults();
        let grace = std::time::Duration::from_secs(30);
        // Last heard long before the restart at 1_000_000.
        e.host_restored(&host("back"), 100_000, 1_000_000, grace);
        e.host_restored(&host("gone"), 100_000, 1_000_000, grace);
        assert!(e.tick(1_000_000).is_empty());
        e.host_seen(&host("back"), 1_010_000);
        assert!(e.tick(1_020_000).is_empty());
        e.heard("id-back", 1_025_000);
        assert!(e.tick(1_029_999).is_empty());
        // The grace ends: the host that never came back is offline at once
        // (it has been silent all along), the other is not.
        let t = e.tick(1_030_000);
        let hosts: Vec<_> = t.iter().map(|t| (t.host_id.as_str(), t.to)).collect();
        assert_eq!(hosts, [("id-gone", Firing)]);
        // A host with a long interval gets three of its intervals.
        let mut slow = host("slow");
        slow.interval_ms = 60_000;
        e.host_restored(&slow, 100_000, 1_000_000, grace);
        assert!(e.tick(1_179_999).iter().all(|t| t.host_id != "id-slow"));
        assert!(e.tick(1_180_000).iter().any(|t| t.host_id == "id-slow"));
    }

    #[test]
    fn restore_does_not_fire_again() {
        let web = host("web-1");
        let mut before = defaults();
        before.observe(&web, &cpu(95.0), 0);
        let both = sample(|s| {
            s.system.cpu_percent = 95.0;
            s.groups = vec![group("api", 2, 0, 0)];
        });
        before.observe(&web, &both, 30_000);
        let mut saved = before.active(30_000);
        assert_eq!(
            saved
                .iter()
                .map(|a| (a.rule.as_str(), a.state))
                .collect::<Vec<_>>(),
            [("cpu", Firing), ("worker_pool", Firing)]
        );
        let mut gone = saved[0].clone();
        gone.rule = "old-rule".into();
        let mut pending = saved[0].clone();
        pending.state = Pending;
        saved.extend([gone, pending]);

        let mut after = defaults();
        let t = after.restore(saved, 40_000);
        assert_eq!(brief(&t), [("old-rule", "", Firing, Resolved, Critical)]);
        assert_eq!(
            t[0].message,
            "alert old-rule on id-web-1 ended: rule or host removed"
        );
        let still = sample(|s| {
            s.system.cpu_percent = 97.0;
            s.groups = vec![group("api", 2, 0, 0)];
        });
        // No `for` wait, no second firing: the restored alerts carry on.
        assert!(after.observe(&web, &still, 45_000).is_empty());
        let t = after.observe(&web, &cpu(20.0), 50_000);
        assert_eq!(
            brief(&t),
            [
                ("cpu", "", Firing, Resolved, Critical),
                ("worker_pool", "api", Firing, Resolved, Critical)
            ]
        );
        assert_eq!(t[0].started_at_ms, 0);
        assert_eq!(t[0].peak, 97.0);
    }

    fn custom(metric: Metric, threshold: f64, edit: impl FnOnce(&mut Rule)) -> Engine {
        let mut rule = builtin_rules().remove(0);
        rule.name = "custom".into();
        rule.metric = metric;
        rule.comparison = Comparison::Ge;
        rule.critical = Some(Threshold::Value(threshold));
        rule.for_duration = std::time::Duration::ZERO;
        edit(&mut rule);
        Engine::new(vec![rule])
    }

    #[test]
    fn host_and_pool_globs_narrow_the_scope() {
        let mut e = custom(Metric::CpuPercent, 50.0, |r| r.hosts = vec!["web-*".into()]);
        assert_eq!(e.observe(&host("web-1"), &cpu(60.0), 0).len(), 1);
        assert!(e.observe(&host("db-1"), &cpu(60.0), 0).is_empty());

        let mut e = custom(Metric::WorkerCpuPercent, 100.0, |r| {
            r.pool = Some("api-*".into())
        });
        let worker = |group: &str, cpu_percent: f64| Worker {
            group: group.into(),
            pid: 1,
            name: "w".into(),
            cmdline: String::new(),
            state: "running".into(),
            cpu_percent,
            rss_bytes: 0,
            threads: 1,
            start_time_secs: 0,
        };
        let s = sample(|s| {
            s.groups = vec![group("api-a", 1, 2, 0), group("batch", 1, 1, 0)];
            s.workers = vec![
                worker("api-a", 20.0),
                worker("api-a", 150.0),
                worker("batch", 300.0),
            ];
        });
        let t = e.observe(&host("web-1"), &s, 0);
        assert_eq!(brief(&t), [("custom", "api-a", Inactive, Firing, Critical)]);
        assert_eq!(t[0].value, 150.0);

        let mut e = custom(Metric::FilesystemUsedPercent, 50.0, |r| {
            r.mount = Some("/data*".into())
        });
        let t = e.observe(&host("web-1"), &disks(&[("/", 99), ("/data2", 60)]), 0);
        assert_eq!(
            brief(&t),
            [("custom", "/data2", Inactive, Firing, Critical)]
        );
    }

    #[test]
    fn load_is_divided_by_the_cpu_count() {
        let mut e = custom(Metric::LoadPerCore, 1.5, |_| {});
        assert!(
            e.observe(&host("web-1"), &sample(|s| s.system.load1 = 5.9), 0)
                .is_empty()
        );
        let t = e.observe(&host("web-1"), &sample(|s| s.system.load1 = 6.0), 1000);
        assert_eq!((t.len(), t.first().map(|t| t.value)), (1, Some(1.5)));
    }

    #[test]
    fn non_finite_values_are_ignored_and_hosts_can_be_forgotten() {
        let mut e = custom(Metric::CpuPercent, 50.0, |_| {});
        let web = host("web-1");
        assert!(e.observe(&web, &cpu(f64::NAN), 0).is_empty());
        assert_eq!(e.observe(&web, &cpu(60.0), 1000).len(), 1);
        assert!(e.observe(&web, &cpu(f64::NAN), 2000).is_empty());
        let t = e.forget_host("id-web-1", 3000);
        assert_eq!(brief(&t), [("custom", "", Firing, Resolved, Critical)]);
        assert!(e.active(3000).is_empty());
    }

    #[test]
    fn disabled_rules_are_ignored() {
        let mut e = custom(Metric::CpuPercent, 50.0, |r| r.enabled = false);
        assert!(e.rules().is_empty());
        assert!(e.observe(&host("web-1"), &cpu(99.0), 0).is_empty());
    }
}
