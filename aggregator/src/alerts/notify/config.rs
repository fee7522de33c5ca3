//! The notification settings as written: `[[alerts.webhooks]]` entries
//! and `[alerts.notify]`, their validation (with errors naming the entry
//! and key), and the validated [`Receiver`] each webhook becomes.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize, Serializer};

use crate::alerts::rules::{Severity, duration_str};

/// No retry waits longer than this, whatever the backoff says.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One `[[alerts.webhooks]]` entry.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Shown in logs and test results; `webhooks[<index>]` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An http or https URL.
    pub url: String,
    /// One extra request header, `Name: value`, e.g. for a token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted_header"
    )]
    pub header: Option<String>,
    /// The least severity this receiver hears about.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

/// Header values usually carry a token: never print or serialize them.
fn redacted_header<S: Serializer>(header: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match header {
        Some(h) => s.serialize_str(&redact(h)),
        None => s.serialize_none(),
    }
}

fn redact(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) => format!("{}: <redacted>", name.trim()),
        None => "<redacted>".to_owned(),
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("header", &self.header.as_deref().map(redact))
            .field("min_severity", &self.min_severity)
            .finish()
    }
}

impl WebhookConfig {
    /// How logs and errors name the entry at `index`.
    fn label(&self, index: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("webhooks[{index}]"),
        }
    }

    /// Checks the entry at `index` of `[[alerts.webhooks]]`.
    pub fn validate(&self, index: usize) -> Result<(), NotifyConfigError> {
        self.receiver(index).map(drop)
    }

    /// The validated receiver of the entry at `index`.
    pub(super) fn receiver(&self, index: usize) -> Result<Receiver, NotifyConfigError> {
        let fail = |key, reason| NotifyConfigError::Webhook {
            webhook: match &self.name {
                Some(name) => format!("[{index}] ({name:?})"),
                None => format!("[{index}]"),
            },
            key,
            reason,
        };
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(fail("name", "must not be empty".to_owned()));
        }
        let url = parse_url(&self.url).map_err(|r| fail("url", r))?;
        let header = match &self.header {
            Some(h) => Some(parse_header(h).map_err(|r| fail("header", r))?),
            None => None,
        };
        Ok(Receiver {
            label: self.label(index),
            url,
            header,
            min_severity: self.min_severity,
        })
    }
}

/// Checks every webhook entry, and that names are unique.
pub fn validate_webhooks(webhooks: &[WebhookConfig]) -> Result<(), NotifyConfigError> {
    for (i, w) in webhooks.iter().enumerate() {
        w.validate(i)?;
        if let Some(name) = &w.name
            && webhooks[..i].iter().any(|o| o.name.as_ref() == Some(name))
        {
            return Err(NotifyConfigError::Webhook {
                webhook: format!("[{i}] ({name:?})"),
                key: "name",
                reason: "is used by an earlier webhook".to_owned(),
            });
        }
    }
    Ok(())
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("must be an http or https URL, not {other}")),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(
            "must look like `Name: value`, e.g. `Authorization: Bearer <token>`".to_owned(),
        );
    };
    let (name, value) = (name.trim(), value.trim());
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    if [CONTENT_TYPE, CONTENT_LENGTH, HOST].contains(&name) {
        return Err(format!(
            "`{name}` is set by fleetwatch and cannot be replaced"
        ));
    }
    if value.is_empty() {
        return Err(format!("`{name}` has an empty value"));
    }
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| format!("`{name}` has a value with characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// `[alerts.notify]`: settings shared by all webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Re-send alerts still firing this often; zero turns repeats off.
    #[serde(with = "duration_str")]
    pub repeat_interval: Duration,
    /// Limit on one HTTP attempt, connecting included.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each later one.
    #[serde(with = "duration_str")]
    pub retry_backoff: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            repeat_interval: Duration::from_secs(4 * 3600),
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

impl NotifySettings {
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let fail = |key, reason: &str| {
            Err(NotifyConfigError::Settings {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.timeout.is_zero() {
            return fail("timeout", "must be more than 0s");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return fail("max_attempts", "must be between 1 and 10");
        }
        if self.retry_backoff > MAX_BACKOFF {
            return fail("retry_backoff", "must be at most 1m");
        }
        Ok(())
    }
}

/// A notification config error, naming the entry and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("alerts.webhooks{webhook}: `{key}` {reason}")]
    Webhook {
        /// `[index]`, plus the name when there is one.
        webhook: String,
        key: &'static str,
        reason: String,
    },
    #[error("alerts.notify: `{key}` {reason}")]
    Settings { key: &'static str, reason: String },
}

/// A validated webhook.
pub(super) struct Receiver {
    pub(super) label: String,
    pub(super) url: Url,
    pub(super) header: Option<(HeaderName, HeaderValue)>,
    pub(super) min_severity: Severity,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> WebhookConfig {
        WebhookConfig {
            name: None,
            url: url.to_owned(),
            header: None,
            min_severity: Severity::Warning,
        }
    }

    /// The `[alerts]` keys this module owns, as the config nests them.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[serde(default)]
        webhooks: Vec<WebhookConfig>,
        #[serde(default)]
        notify: NotifySettings,
    }

    fn check(text: &str) -> Result<Section, String> {
        let s: Section = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_webhooks(&s.webhooks).map_err(|e| e.to_string())?;
        s.notify.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn a_full_config_parses_with_defaults() {
        let s = check(
            r#"
            [[webhooks]]
            url = "http://localhost:9000/hook"

            [[webhooks]]
            name = "pager"
            url = "https://hooks.example.com/x"
            header = "Authorization: Bearer xyz"
            min_severity = "critical"

            [notify]
            repeat_interval = "1h"
            "#,
        )
        .unwrap();
        assert_eq!(s.webhooks[0].min_severity, Severity::Warning);
        assert_eq!(s.webhooks[1].min_severity, Severity::Critical);
        assert_eq!(s.notify.repeat_interval, Duration::from_secs(3600));
        assert_eq!(s.notify.timeout, Duration::from_secs(5));
        assert_eq!(s.notify.max_attempts, 5);
        let empty = check("").unwrap();
        assert!(empty.webhooks.is_empty());
        assert_eq!(empty.notify, NotifySettings::default());
        assert_eq!(empty.notify.repeat_interval, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn invalid_configs_name_the_webhook_and_key() {
        let two = |second: &str| {
            check(&format!(
                "[[webhooks]]\nurl = \"http://a/\"\n[[webhooks]]\n{second}\n"
            ))
            .unwrap_err()
        };
        let cases = [
            (
                two("name = \"pager\"\nurl = \"ftp://a/\""),
                "alerts.webhooks[1] (\"pager\"): `url` must be an http or https URL, not ftp",
            ),
            (
                two("url = \"not a url\""),
                "alerts.webhooks[1]: `url` is not a URL",
            ),
            (
                two("url = \"http://a/\"\nheader = \"Bearer xyz\""),
                "alerts.webhooks[1]: `header` must look like `Name: value`",
            ),
            (
                two("url = \"http://a/\"\nheader = \"Bad Name: x\""),
                "alerts.webhooks[1]: `header` `Bad Name` is not a valid header name",
            ),
            (
                two("url = \"http://a/\"\nheader = \"X-Token:\""),
                "`header` `x-token` has an empty value",
            ),
            (
                two("url = \"http://a/\"\nheader = \"Content-Type: text/plain\""),
                "`header` `content-type` is set by fleetwatch",
            ),
            (
                two("url = \"http://a/\"\nname = \"\""),
                "alerts.webhooks[1] (\"\"): `name` must not be empty",
            ),
            (
                check("[notify]\nmax_attempts = 0").unwrap_err(),
                "alerts.notify: `max_attempts` must be between 1 and 10",
            ),
            (
                check("[notify]\ntimeout = \"0s\"").unwrap_err(),
                "alerts.notify: `timeout` must be more than 0s",
            ),
        ];
        for (err, want) in cases {
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
        let dup = "[[webhooks]]\nname = \"a\"\nurl = \"http://a/\"\n\
                   [[webhooks]]\nname = \"a\"\nurl = \"http://b/\"";
        assert_eq!(
            check(dup).unwrap_err(),
            "alerts.webhooks[1] (\"a\"): `name` is used by an earlier webhook"
        );
        // Serde's own errors point at the key.
        for (text, key) in [
            (
                "[[webhooks]]\nurl = \"http://a/\"\nmin_severity = \"info\"",
                "min_severity",
            ),
            ("[[webhooks]]\nurl = \"http://a/\"\nsecret = 1", "secret"),
            ("[[webhooks]]\nname = \"a\"", "url"),
            ("[notify]\nrepeat_interval = \"soon\"", "repeat_interval"),
            ("[notify]\nrepeat = \"1h\"", "repeat"),
        ] {
            let err = check(text).unwrap_err();
            assert!(err.contains(key), "{err:?} lacks {key:?}");
        }
    }

    #[test]
    fn header_values_are_not_shown() {
        let mut w = webhook("http://a/");
        w.header = Some("Authorization: Bearer xyz".to_owned());
        let shown = format!("{w:?} {}", serde_json::to_string(&w).unwrap());
        assert!(!shown.contains("xyz"), "{shown}");
        assert!(shown.contains("Authorization: <redacted>"), "{shown}");
    }
}
