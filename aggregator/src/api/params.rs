//! Times and durations in query strings.
//!
//! A time is Unix seconds (`1732550400`), RFC 3339 (`2026-11-25T12:00:00Z`),
//! `now`, or a duration before now (`-1h`, `-15m`). A step is a duration
//! (`30s`, `5m`) or a number of seconds.
//!
//! Every time is kept between 1970 and [`MAX_TIME_MS`] and every step below
//! [`MAX_STEP_MS`], so the handlers' arithmetic on them (`to - from`,
//! bucket counts) cannot overflow, whatever a client sends.

use std::time::Duration;

use super::error::ApiError;
use crate::model::TimestampMs;

/// The latest time a query may name: 1e11 s after 1970 (year 5138).
pub const MAX_TIME_MS: TimestampMs = 100_000_000_000_000;
/// The longest step: as long as the longest window.
pub const MAX_STEP_MS: i64 = MAX_TIME_MS;

pub fn parse_time(name: &str, value: &str, now_ms: TimestampMs) -> Result<TimestampMs, ApiError> {
    let at = parse_unbounded(name, value, now_ms)?;
    if !(0..=MAX_TIME_MS).contains(&at) {
        return Err(ApiError::bad_param(
            name,
            format!("`{}` is outside 1970 to year 5138", value.trim()),
        ));
    }
    Ok(at)
}

/// A query's `from`/`to` window: `to` defaults to now, `from` to
/// `default_span_ms` before `to` (not before 1970). Whether an empty or
/// inverted window is allowed is the caller's to say.
pub fn parse_window(
    from: Option<&str>,
    to: Option<&str>,
    now_ms: TimestampMs,
    default_span_ms: i64,
) -> Result<(TimestampMs, TimestampMs), ApiError> {
    let to = match to {
        Some(v) => parse_time("to", v, now_ms)?,
        None => now_ms,
    };
    let from = match from {
        Some(v) => parse_time("from", v, now_ms)?,
        None => to.saturating_sub(default_span_ms).max(0),
    };
    Ok((from, to))
}

fn parse_unbounded(name: &str, value: &str, now_ms: TimestampMs) -> Result<TimestampMs, ApiError> {
    let value = value.trim();
    if value == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = value.strip_prefix('-') {
        let ago = humantime::parse_duration(ago)
            .map_err(|e| ApiError::bad_param(name, format!("`{value}`: {e}")))?;
        return Ok(now_ms.saturating_sub(duration_ms(ago)));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || !(0.0..=1e11).contains(&secs) {
            return Err(ApiError::bad_param(
                name,
                format!("`{value}` is not a Unix time in seconds"),
            ));
        }
        return Ok((secs * 1000.0) as TimestampMs);
    }
    let at = humantime::parse_rfc3339_weak(value).map_err(|_| {
        ApiError::bad_param(
            name,
            format!("`{value}` is not a time: use Unix seconds, RFC 3339, `now` or `-1h`"),
        )
    })?;
    let since = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| ApiError::bad_param(name, format!("`{value}` is before 1970")))?;
    Ok(duration_ms(since))
}

pub fn parse_step(name: &str, value: &str) -> Result<i64, ApiError> {
    let value = value.trim();
    let step = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(value)
            .map_err(|e| ApiError::bad_param(name, format!("`{value}` is not a duration: {e}")))?,
    };
    let ms = duration_ms(step);
    if ms < 1000 {
        return Err(ApiError::bad_param(name, "must be at least 1s"));
    }
    if ms > MAX_STEP_MS {
        return Err(ApiError::bad_param(name, "is longer than any window"));
    }
    Ok(ms)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_window_defaults_to_a_span_before_now() {
        assert_eq!(
            parse_window(None, None, NOW, 3_600_000).ok(),
            Some((NOW - 3_600_000, NOW))
        );
        assert_eq!(
            parse_window(Some("-2h"), Some("-1h"), NOW, 60_000).ok(),
            Some((NOW - 7_200_000, NOW - 3_600_000))
        );
        assert_eq!(
            parse_window(None, Some("0"), NOW, 60_000).ok(),
            Some((0, 0)),
            "not before 1970"
        );
        let err = parse_window(None, Some("soon"), NOW, 60_000)
            .expect_err("bad to")
            .to_string();
        assert!(err.contains("`to`"), "{err}");
    }

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("from", "now", NOW).ok(), Some(NOW));
        assert_eq!(parse_time("from", "-1h", NOW).ok(), Some(NOW - 3_600_000));
        assert_eq!(
            parse_time("from", "1732550400", NOW).ok(),
            Some(1_732_550_400_000)
        );
        assert_eq!(
            parse_time("from", "2024-11-25T16:00:00Z", NOW).ok(),
            Some(1_732_550_400_000)
        );
        for bad in [
            "yesterday",
            "-fast",
            "1e300",
            "NaN",
            "-5",
            "-3000000000000h",
            "-60y",
            "9999-12-31T00:00:00Z",
        ] {
            let err = parse_time("from", bad, NOW).expect_err(bad).to_string();
            assert!(err.contains("`from`"), "{err}");
        }
    }

    #[test]
    fn parses_steps() {
        assert_eq!(parse_step("step", "60").ok(), Some(60_000));
        assert_eq!(parse_step("step", "5m").ok(), Some(300_000));
        assert!(parse_step("step", "500ms").is_err());
        assert!(parse_step("step", "0").is_err());
        assert!(parse_step("step", "often").is_err());
        assert!(parse_step("step", "18446744073709551615").is_err());
        assert!(parse_step("step", "100000000y").is_err());
    }
}
