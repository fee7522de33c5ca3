//! Thresholds as written in rules: a plain number, or a value that depends
//! on the instance (a pool's declared minimum, a host's sampling interval).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A threshold as written in the config: a number, `"min_alive"` (the pool's
/// declared minimum, for `worker_pool_alive`), or `"3 intervals"` (that many
/// of the host's sampling intervals in seconds, for `host_silence`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Value(f64),
    MinAlive,
    Intervals(f64),
}

impl Threshold {
    /// The number to compare with, given the pool's minimum and the host's
    /// interval; `None` when the threshold needs one that is unknown.
    pub fn resolve(self, min_alive: Option<u32>, interval_ms: Option<u32>) -> Option<f64> {
        match self {
            Self::Value(v) => Some(v),
            Self::MinAlive => min_alive.map(f64::from),
            Self::Intervals(n) => interval_ms.map(|ms| n * f64::from(ms) / 1000.0),
        }
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "min_alive" {
            return Ok(Self::MinAlive);
        }
        let count = s
            .strip_suffix("intervals")
            .or_else(|| s.strip_suffix("interval"))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n > 0.0);
        count
            .map(Self::Intervals)
            .ok_or_else(|| format!("`{s}` is not a number, \"min_alive\" or \"<n> intervals\""))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::MinAlive => f.write_str("min_alive"),
            Self::Intervals(n) => write!(f, "{n} intervals"),
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => s.serialize_f64(*v),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, \"min_alive\" or \"<n> intervals\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                Ok(Threshold::Value(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold::Value(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold::Value(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_thresholds_parse_and_resolve() {
        let r = crate::alerts::rules::tests::rule(
            "name = \"p\"\nmetric = \"worker_pool_alive\"\ncomparison = \"<\"\ncritical = \"min_alive\"",
        );
        assert_eq!(r.critical, Some(Threshold::MinAlive));
        assert_eq!(Threshold::MinAlive.resolve(Some(3), None), Some(3.0));
        assert_eq!(Threshold::MinAlive.resolve(None, None), None);
        assert_eq!("3 intervals".parse(), Ok(Threshold::Intervals(3.0)));
        assert_eq!("1 interval".parse(), Ok(Threshold::Intervals(1.0)));
        assert_eq!(
            Threshold::Intervals(3.0).resolve(None, Some(5000)),
            Some(15.0)
        );
        assert!("lots".parse::<Threshold>().is_err());
        assert!("0 intervals".parse::<Threshold>().is_err());
    }
}
