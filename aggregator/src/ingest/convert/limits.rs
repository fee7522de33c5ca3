//! The bounds on what an agent may send, and the field checks the
//! conversions share: each error names the field and says what is wrong.

use std::fmt;

use crate::ids::{Invalid, invalid};

/// Largest gRPC message the aggregator decodes.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;
pub const MAX_SAMPLES_PER_BATCH: usize = 1000;
pub const MAX_WORKERS_PER_SAMPLE: usize = 1024;
pub const MAX_GROUPS: usize = 256;
pub const MAX_FILESYSTEMS: usize = 256;
pub const MAX_CORES: usize = 4096;
pub const MAX_INTERFACES: usize = 256;
pub const MAX_CMDLINE: usize = 4096;
/// Longest ordinary string (names, versions, devices).
pub const MAX_TEXT: usize = 256;
pub const MAX_PATH: usize = 1024;
/// How far ahead of the aggregator's clock a sample may be: clock skew
/// between NTP-synchronised hosts is far below this. A sample further ahead
/// would pin the host's "current" values until the clock caught up.
pub const MAX_FUTURE_MS: i64 = 30 * 1000;
/// How old a sample may be (an agent that buffered through a long outage).
pub const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Where a field is in a message (`samples[0].workers[3].cmdline`),
/// written out only when a check of it fails: the thousands of fields of a
/// batch cost nothing to name while they pass.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    parent: Option<&'a At<'a>>,
    name: &'a str,
    index: Option<usize>,
}

impl<'a> At<'a> {
    /// A top-level field of the message.
    pub const fn root(name: &'a str) -> Self {
        Self {
            parent: None,
            name,
            index: None,
        }
    }

    /// A field of this one.
    pub fn field(&'a self, name: &'a str) -> At<'a> {
        At {
            parent: Some(self),
            name,
            index: None,
        }
    }

    /// An entry of this list.
    pub fn item(&'a self, index: usize) -> At<'a> {
        At {
            parent: Some(self),
            name: "",
            index: Some(index),
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
            if !self.name.is_empty() {
                f.write_str(".")?;
            }
        }
        f.write_str(self.name)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

/// `used` of `total` for memory and swap: more used than there is means a
/// broken or hostile agent (and percentages in the zillions).
pub fn within(field: impl fmt::Display, value: u64, total: u64) -> Result<u64, Invalid> {
    if value > total {
        return Err(invalid(
            field.to_string(),
            format!("is {value}, more than the total {total}"),
        ));
    }
    Ok(value)
}

pub fn text(field: impl fmt::Display, value: String, max: usize) -> Result<String, Invalid> {
    if value.len() > max {
        return Err(invalid(
            field.to_string(),
            format!("is {} bytes, more than {max}", value.len()),
        ));
    }
    Ok(value)
}

pub fn number(field: impl fmt::Display, value: f64, max: f64) -> Result<f64, Invalid> {
    if !value.is_finite() {
        return Err(invalid(
            field.to_string(),
            format!("is not a finite number ({value})"),
        ));
    }
    if value < 0.0 {
        return Err(invalid(field.to_string(), format!("is negative ({value})")));
    }
    if value > max {
        return Err(invalid(
            field.to_string(),
            format!("is {value}, more than {max}"),
        ));
    }
    Ok(value)
}

/// A percentage; a hair over 100 (rounding in the kernel's counters) is clamped.
pub fn percent(field: impl fmt::Display, value: f64) -> Result<f64, Invalid> {
    Ok(number(field, value, 101.0)?.min(100.0))
}

pub fn bounded<T>(field: impl fmt::Display, list: &[T], max: usize) -> Result<(), Invalid> {
    if list.len() > max {
        Err(invalid(
            field.to_string(),
            format!("has {} entries, more than {max}", list.len()),
        ))
    } else {
        Ok(())
    }
}
