//! Alerting: rules, the evaluation engine, notifications.
//!
//! - [`rules`] — one alert rule as configured: metric, comparison,
//!   thresholds, `for`, scope; validation and globs.
//! - [`config`] — the `[alerts]` config section: built-in rules, their
//!   overrides by name, own rules; `AlertsConfig::build` yields the rule set.
//! - [`engine`] — the pure state machine over rule × host × scope instances,
//!   fed samples (`observe`) and time (`tick`), returning transitions.
//! - [`instance`] — one instance's life (pending, firing, escalation,
//!   hysteresis) and the `Transition` records.
//! - [`threshold`] — threshold values: numbers, `min_alive`, `N intervals`.
//! - [`silence`] — silences that mark transitions as not to be notified.
//! - [`alert_history`] — which transitions are alert history; the rows and the
//!   silences are kept by the store (`store::AlertStore`).
//! - [`intake`] — the hand-off from ingest: never waits, bounded, keeps
//!   the newest sample per host when the engine falls behind.
//! - [`service`] — the task that owns the engine: feeds it samples and
//!   ticks, records, publishes and notifies its transitions.
//! - [`notify`] — webhook receivers, retries, repeats; `[[alerts.webhooks]]`
//!   and `[alerts.notify]` are checked in `notify::config`.
//! - `measure` — what a rule reads from a sample and how values are worded.
//!
//! The engine is synchronous and reads no clock: the caller passes `now_ms`,
//! stores every transition, notifies those with `notify` set, and feeds the
//! engine the still-firing alerts (`restore`) after a restart.

pub mod alert_history;
pub mod config;
pub mod engine;
#[cfg(test)]
mod fixtures;
pub mod instance;
pub mod intake;
mod measure;
pub mod notify;
pub mod rules;
pub mod service;
pub mod silence;
pub mod threshold;

pub use crate::model::AlertEvent;
pub use crate::store::alerts::{AlertFilter, AlertRecord};
pub use alert_history::AlertHistory;
pub use config::{AlertsConfig, RuleOverride, builtin_rules};
pub use engine::Engine;
pub use instance::{AlertInstance, AlertState, Transition};
pub use rules::{Comparison, Metric, Rule, RuleError, Severity};
pub use service::{Alerts, AlertsError};
pub use silence::{Silence, SilenceError};
pub use threshold::Threshold;
