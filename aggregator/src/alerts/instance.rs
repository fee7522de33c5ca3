//! The life of one alert instance (rule × host × scope): inactive → pending
//! → firing (warning ⇄ critical) → resolved, with `for` delays and
//! hysteresis, and the `Transition` records it emits on every change.

use serde::{Deserialize, Serialize};

use super::measure::{Reading, format_value, subject};
use super::rules::{Rule, Severity};
use crate::model::TimestampMs;

pub use crate::model::AlertState;

/// A pending or firing alert, as the API lists it and as `Engine::restore`
/// takes it back after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInstance {
    pub rule: String,
    pub host_id: String,
    /// Mount point or pool name; empty for host-wide rules.
    pub scope: String,
    pub state: AlertState,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub started_at_ms: TimestampMs,
    /// Whether a silence covers it now (output only).
    #[serde(default)]
    pub silenced: bool,
}

/// One state change of one alert instance. Every change is reported so it
/// can be recorded; `notify` says whether it is worth telling someone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub rule: String,
    pub host_id: String,
    pub scope: String,
    pub from: AlertState,
    pub to: AlertState,
    /// Severity after the change (for resolutions: the last one it had).
    pub severity: Severity,
    /// Set on escalation and de-escalation (firing → firing).
    pub previous_severity: Option<Severity>,
    pub value: f64,
    /// The threshold of `severity`.
    pub threshold: f64,
    /// The most extreme value seen since the instance started.
    pub peak: f64,
    /// When the condition first held (the start of pending, if any).
    pub started_at_ms: TimestampMs,
    /// When this change happened.
    pub at_ms: TimestampMs,
    pub silenced: bool,
    /// True when it starts firing, changes severity or resolves from firing,
    /// and no silence covers it; pending comings and goings are not notified.
    pub notify: bool,
    /// For people: "CPU 95.2% >= 90% on web-1".
    pub message: String,
}

/// The engine's memory of one pending or firing instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Instance {
    pub state: AlertState,
    pub severity: Severity,
    /// Since when each level's condition has held without a break.
    pub warning_since: Option<TimestampMs>,
    pub critical_since: Option<TimestampMs>,
    pub started_at_ms: TimestampMs,
    pub value: f64,
    pub peak: f64,
    pub threshold: f64,
}

impl Instance {
    /// A firing instance brought back by `Engine::restore`.
    pub fn restored(a: &AlertInstance) -> Self {
        let since = Some(a.started_at_ms);
        Self {
            state: AlertState::Firing,
            severity: a.severity,
            warning_since: since,
            critical_since: since.filter(|_| a.severity == Severity::Critical),
            started_at_ms: a.started_at_ms,
            value: a.value,
            peak: a.peak,
            threshold: a.threshold,
        }
    }

    pub fn snapshot(
        &self,
        rule: &str,
        host_id: &str,
        scope: &str,
        silenced: bool,
    ) -> AlertInstance {
        AlertInstance {
            rule: rule.to_owned(),
            host_id: host_id.to_owned(),
            scope: scope.to_owned(),
            state: self.state,
            severity: self.severity,
            value: self.value,
            threshold: self.threshold,
            peak: self.peak,
            started_at_ms: self.started_at_ms,
            silenced,
        }
    }
}

/// What `step` changed, before it is dressed up as a `Transition`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Change {
    pub from: AlertState,
    pub to: AlertState,
    pub previous_severity: Option<Severity>,
    pub instance: Instance,
}

/// Feeds one reading to an instance slot (empty = inactive) and returns the
/// change, if any.
///
/// A level is reached when its threshold holds for the rule's `for`; once
/// reached it is kept while the threshold moved by the clear offset holds,
/// so a value flapping inside the band changes nothing. Escalation waits for
/// `for` like firing does; de-escalation and resolution are immediate.
pub(super) fn step(
    slot: &mut Option<Instance>,
    rule: &Rule,
    reading: &Reading,
    now_ms: TimestampMs,
) -> Option<Change> {
    let levels = reading.levels;
    let value = reading.value;
    let firing = slot
        .filter(|i| i.state == AlertState::Firing)
        .map(|i| i.severity);
    let track = |severity: Severity, since: Option<TimestampMs>| {
        let threshold = levels.get(severity)?;
        let reached = firing.is_some_and(|f| f >= severity);
        let bound = if reached {
            threshold + levels.hold_offset
        } else {
            threshold
        };
        rule.comparison
            .holds(value, bound)
            .then(|| since.unwrap_or(now_ms))
    };
    let warning_since = track(Severity::Warning, slot.and_then(|i| i.warning_since));
    let critical_since = track(Severity::Critical, slot.and_then(|i| i.critical_since));
    let for_ms = i64::try_from(rule.for_duration.as_millis()).unwrap_or(i64::MAX);
    let ready =
        |since: Option<TimestampMs>| since.is_some_and(|s| now_ms.saturating_sub(s) >= for_ms);
    let highest = |w: bool, c: bool| {
        if c {
            Some(Severity::Critical)
        } else if w {
            Some(Severity::Warning)
        } else {
            None
        }
    };
    let held = highest(warning_since.is_some(), critical_since.is_some());
    let ready = highest(ready(warning_since), ready(critical_since));

    let Some(mut inst) = *slot else {
        let held = held?;
        let (state, severity) =
            ready.map_or((AlertState::Pending, held), |r| (AlertState::Firing, r));
        let inst = Instance {
            state,
            severity,
            warning_since,
            critical_since,
            started_at_ms: now_ms,
            value,
            peak: value,
            threshold: levels.get(severity).unwrap_or(value),
        };
        *slot = Some(inst);
        return Some(Change {
            from: AlertState::Inactive,
            to: state,
            previous_severity: None,
            instance: inst,
        });
    };
    inst.warning_since = warning_since;
    inst.critical_since = critical_since;
    inst.value = value;
    inst.peak = if rule.comparison.is_upward() {
        inst.peak.max(value)
    } else {
        inst.peak.min(value)
    };
    let from = inst.state;
    let (to, severity) = match (from, held, ready) {
        (_, None, _) => {
            *slot = None;
            return Some(end(inst));
        }
        (AlertState::Firing, Some(held), ready) => {
            let current = inst.severity;
            let target = match ready {
                Some(r) if r > current => r,
                _ if held < current => held,
                _ => current,
            };
            (AlertState::Firing, target)
        }
        (_, Some(_), Some(ready)) => (AlertState::Firing, ready),
        (_, Some(held), None) => (from, held),
    };
    let previous = inst.severity;
    inst.state = to;
    inst.severity = severity;
    inst.threshold = levels.get(severity).unwrap_or(inst.threshold);
    *slot = Some(inst);
    if to == from && (to == AlertState::Pending || severity == previous) {
        return None;
    }
    Some(Change {
        from,
        to,
        previous_severity: (from == AlertState::Firing).then_some(previous),
        instance: inst,
    })
}

/// The change that ends an instance: pending is dropped, firing resolves.
pub(super) fn end(inst: Instance) -> Change {
    let to = match inst.state {
        AlertState::Firing => AlertState::Resolved,
        _ => AlertState::Inactive,
    };
    Change {
        from: inst.state,
        to,
        previous_severity: None,
        instance: inst,
    }
}

/// Why an instance changed, for its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    Reading,
    /// Its mount point or pool is no longer in the host's samples.
    Vanished,
    /// Its rule is no longer configured, or the host was forgotten.
    Gone,
}

/// Everything a `Transition` needs besides the change itself.
pub(super) struct Context<'a> {
    /// `None` when the rule is no longer configured.
    pub rule: Option<&'a Rule>,
    pub rule_name: &'a str,
    pub host_id: &'a str,
    pub host_label: &'a str,
    pub scope: &'a str,
    pub silenced: bool,
    pub now_ms: TimestampMs,
}

impl Transition {
    pub(super) fn new(ctx: &Context<'_>, change: &Change, cause: Cause) -> Self {
        let i = &change.instance;
        let notify = !ctx.silenced
            && (change.to == AlertState::Firing
                || (change.from == AlertState::Firing && change.to == AlertState::Resolved));
        Self {
            rule: ctx.rule_name.to_owned(),
            host_id: ctx.host_id.to_owned(),
            scope: ctx.scope.to_owned(),
            from: change.from,
            to: change.to,
            severity: i.severity,
            previous_severity: change.previous_severity,
            value: i.value,
            threshold: i.threshold,
            peak: i.peak,
            started_at_ms: i.started_at_ms,
            at_ms: ctx.now_ms,
            silenced: ctx.silenced,
            notify,
            message: message(ctx, change, cause),
        }
    }
}

fn message(ctx: &Context<'_>, change: &Change, cause: Cause) -> String {
    let (host, i) = (ctx.host_label, &change.instance);
    let Some(rule) = ctx.rule.filter(|_| cause != Cause::Gone) else {
        return format!(
            "alert {} on {host} ended: rule or host removed",
            ctx.rule_name
        );
    };
    let subject = subject(rule, ctx.scope);
    let fmt = |v: f64| format_value(rule.metric, v);
    let (value, op, threshold) = (fmt(i.value), rule.comparison, fmt(i.threshold));
    match (cause, change.to) {
        (Cause::Vanished, _) => format!("{subject} no longer reported on {host}"),
        (_, AlertState::Pending | AlertState::Firing) => {
            format!("{subject} {value} {op} {threshold} on {host}")
        }
        (_, AlertState::Inactive) => {
            format!("{subject} {value} on {host}, no longer {op} {threshold}")
        }
        (_, AlertState::Resolved) => format!(
            "{subject} {value} on {host}, resolved (peak {})",
            fmt(i.peak)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alerts::measure::levels;
    use crate::alerts::rules::{Comparison, Metric};
    use crate::alerts::threshold::Threshold;
    use AlertState::{Firing, Inactive, Pending, Resolved};
    use Severity::{Critical, Warning};

    fn rule(
        cmp: Comparison,
        warning: Option<f64>,
        critical: Option<f64>,
        clear: Option<f64>,
        for_secs: u64,
    ) -> Rule {
        let mut r = crate::alerts::config::builtin_rules().remove(0);
        r.metric = Metric::CpuPercent;
        r.comparison = cmp;
        r.warning = warning.map(Threshold::Value);
        r.critical = critical.map(Threshold::Value);
        r.clear = clear.map(Threshold::Value);
        r.for_duration = Duration::from_secs(for_secs);
        r
    }

    /// Feeds (seconds, value) pairs; returns (at seconds, from, to, severity).
    fn run(rule: &Rule, input: &[(i64, f64)]) -> Vec<(i64, AlertState, AlertState, Severity)> {
        let mut slot = None;
        let lv = levels(rule, None, None).unwrap_or_else(|| panic!("levels"));
        input
            .iter()
            .filter_map(|&(t, value)| {
                let reading = Reading {
                    scope: String::new(),
                    value,
                    levels: lv,
                };
                step(&mut slot, rule, &reading, t * 1000)
                    .map(|c| (t, c.from, c.to, c.instance.severity))
            })
            .collect()
    }

    #[test]
    fn each_comparison_fires_on_its_side_of_the_threshold() {
        let at = |cmp, v| run(&rule(cmp, None, Some(90.0), None, 0), &[(0, v)]).len();
        assert_eq!((at(Comparison::Ge, 90.0), at(Comparison::Ge, 89.9)), (1, 0));
        assert_eq!((at(Comparison::Gt, 90.0), at(Comparison::Gt, 90.1)), (0, 1));
        assert_eq!((at(Comparison::Le, 90.0), at(Comparison::Le, 90.1)), (1, 0));
        assert_eq!((at(Comparison::Lt, 90.0), at(Comparison::Lt, 89.9)), (0, 1));
    }

    #[test]
    fn no_delay_fires_at_once_and_resolves_when_the_condition_ends() {
        let r = rule(Comparison::Ge, None, Some(90.0), None, 0);
        let got = run(
            &r,
            &[(0, 50.0), (5, 95.0), (10, 97.0), (15, 89.0), (20, 50.0)],
        );
        assert_eq!(
            got,
            [
                (5, Inactive, Firing, Critical),
                (15, Firing, Resolved, Critical)
            ]
        );
    }

    #[test]
    fn for_duration_goes_pending_then_firing() {
        let r = rule(Comparison::Ge, None, Some(90.0), None, 30);
        let got = run(
            &r,
            &[(0, 95.0), (10, 95.0), (25, 96.0), (30, 95.0), (35, 95.0)],
        );
        assert_eq!(
            got,
            [
                (0, Inactive, Pending, Critical),
                (30, Pending, Firing, Critical)
            ]
        );
    }

    #[test]
    fn a_break_during_pending_drops_it_and_restarts_the_clock() {
        let r = rule(Comparison::Ge, None, Some(90.0), None, 30);
        let got = run(
            &r,
            &[(0, 95.0), (20, 80.0), (25, 95.0), (50, 95.0), (55, 95.0)],
        );
        assert_eq!(
            got,
            [
                (0, Inactive, Pending, Critical),
                (20, Pending, Inactive, Critical),
                (25, Inactive, Pending, Critical),
                (55, Pending, Firing, Critical)
            ]
        );
    }

    #[test]
    fn escalates_and_de_escalates() {
        let r = rule(Comparison::Ge, Some(80.0), Some(90.0), None, 0);
        let got = run(
            &r,
            &[(0, 85.0), (5, 92.0), (10, 93.0), (15, 85.0), (20, 70.0)],
        );
        assert_eq!(
            got,
            [
                (0, Inactive, Firing, Warning),
                (5, Firing, Firing, Critical),
                (15, Firing, Firing, Warning),
                (20, Firing, Resolved, Warning)
            ]
        );
    }

    #[test]
    fn escalation_waits_for_the_delay_too() {
        let r = rule(Comparison::Ge, Some(80.0), Some(90.0), None, 10);
        let got = run(
            &r,
            &[(0, 85.0), (10, 95.0), (15, 85.0), (20, 95.0), (30, 95.0)],
        );
        assert_eq!(
            got,
            [
                (0, Inactive, Pending, Warning),
                (10, Pending, Firing, Warning),
                (30, Firing, Firing, Critical)
            ]
        );
    }

    #[test]
    fn hysteresis_holds_until_the_clear_threshold() {
        let r = rule(Comparison::Ge, None, Some(90.0), Some(80.0), 0);
        let got = run(
            &r,
            &[(0, 91.0), (5, 85.0), (10, 80.0), (15, 79.9), (20, 85.0)],
        );
        assert_eq!(
            got,
            [
                (0, Inactive, Firing, Critical),
                (15, Firing, Resolved, Critical)
            ]
        );
    }

    #[test]
    fn flapping_inside_the_band_does_not_spam() {
        let r = rule(Comparison::Ge, Some(80.0), Some(90.0), Some(70.0), 0);
        let input: Vec<(i64, f64)> = (0..100)
            .map(|i| (i * 5, if i % 2 == 0 { 91.0 } else { 85.0 }))
            .collect();
        // Straight to critical; 85 stays above critical's hold (80).
        assert_eq!(run(&r, &input), [(0, Inactive, Firing, Critical)]);
        let input: Vec<(i64, f64)> = (0..100)
            .map(|i| (i * 5, if i % 2 == 0 { 82.0 } else { 75.0 }))
            .collect();
        assert_eq!(run(&r, &input), [(0, Inactive, Firing, Warning)]);
        // Without hysteresis the same input flaps, which is what `clear` is for.
        let plain = rule(Comparison::Ge, Some(80.0), None, None, 0);
        assert_eq!(run(&plain, &input).len(), 100);
    }

    #[test]
    fn downward_rules_use_their_own_direction() {
        let r = rule(Comparison::Lt, Some(3.0), Some(1.0), Some(4.0), 0);
        let got = run(
            &r,
            &[
                (0, 5.0),
                (5, 2.0),
                (10, 0.0),
                (15, 1.5),
                (20, 3.5),
                (25, 4.0),
            ],
        );
        assert_eq!(
            got,
            [
                (5, Inactive, Firing, Warning),
                (10, Firing, Firing, Critical),
                (20, Firing, Firing, Warning),
                (25, Firing, Resolved, Warning)
            ]
        );
    }

    #[test]
    fn transitions_carry_value_peak_start_and_message() {
        let r = rule(Comparison::Ge, None, Some(90.0), None, 0);
        let lv = levels(&r, None, None).unwrap_or_else(|| panic!("levels"));
        let mut slot = None;
        let mut feed = |t: i64, value: f64| {
            let reading = Reading {
                scope: String::new(),
                value,
                levels: lv,
            };
            step(&mut slot, &r, &reading, t).map(|c| {
                let ctx = Context {
                    rule: Some(&r),
                    rule_name: "cpu",
                    host_id: "id-1",
                    host_label: "web-1",
                    scope: "",
                    silenced: false,
                    now_ms: t,
                };
                Transition::new(&ctx, &c, Cause::Reading)
            })
        };
        let fired = feed(1000, 95.24).unwrap_or_else(|| panic!("no transition"));
        assert_eq!(fired.message, "CPU 95.2% >= 90% on web-1");
        assert_eq!(
            (
                fired.value,
                fired.threshold,
                fired.started_at_ms,
                fired.notify
            ),
            (95.24, 90.0, 1000, true)
        );
        assert!(feed(2000, 99.0).is_none());
        let resolved = feed(3000, 40.0).unwrap_or_else(|| panic!("no transition"));
        assert_eq!(
            (
                resolved.to,
                resolved.peak,
                resolved.started_at_ms,
                resolved.at_ms
            ),
            (Resolved, 99.0, 1000, 3000)
        );
        assert_eq!(resolved.message, "CPU 40% on web-1, resolved (peak 99%)");
        let json = serde_json::to_value(&resolved).unwrap_or_default();
        assert_eq!(
            (
                json["from"].as_str(),
                json["to"].as_str(),
                json["severity"].as_str()
            ),
            (Some("firing"), Some("resolved"), Some("critical"))
        );
    }
}
