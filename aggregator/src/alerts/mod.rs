//! Alerting: rules, the evaluation engine, notifications.
