//! Worker groups: the `[[worker]]` tables of the config file and the
//! `--worker GROUP=REGEX[:MIN]` flags, checked and compiled into the
//! matchers the worker collector runs.

use regex::Regex;

use super::file::WorkerGroupFile;
pub use crate::collect::matcher::{Matcher, WorkerGroupConfig};

fn validate_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a worker group name must be 1 to 64 characters".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "worker group name `{name}` may contain only letters, digits, `.`, `-` and `_`"
        ));
    }
    Ok(())
}

fn compile(regex: &str) -> Result<Regex, String> {
    Regex::new(regex).map_err(|e| {
        // A syntax error is several lines pointing at the spot; its last
        // line says what is wrong, which is what one line of error needs.
        let text = e.to_string();
        let why = text.lines().last().unwrap_or_default().trim();
        let why = why.strip_prefix("error: ").unwrap_or(why);
        format!("bad regular expression `{regex}`: {why}")
    })
}

/// A `[[worker]]` table, checked: a valid name and exactly one matcher.
pub(super) fn group_from_file(group: WorkerGroupFile) -> Result<WorkerGroupConfig, String> {
    validate_group_name(&group.name)?;
    let matcher = match (group.cmdline, group.process_name, group.exe) {
        (Some(re), None, None) => Matcher::Cmdline(compile(&re)?),
        (None, Some(name), None) => Matcher::ProcessName(name),
        (None, None, Some(path)) => Matcher::Exe(path),
        _ => {
            return Err(format!(
                "worker group `{}` needs exactly one of `cmdline`, `process_name`, `exe`",
                group.name
            ));
        }
    };
    Ok(WorkerGroupConfig {
        name: group.name,
        matcher,
        min_alive: group.min_alive.unwrap_or(1),
    })
}

/// Parses `GROUP=REGEX[:MIN]`. The regex may itself contain `:`; only a
/// trailing `:` followed by digits is read as the minimum.
pub(super) fn parse_worker_flag(spec: &str) -> Result<WorkerGroupConfig, String> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| "expected GROUP=REGEX[:MIN]".to_owned())?;
    validate_group_name(name)?;
    let (regex, min_alive) = match rest.rsplit_once(':') {
        Some((re, min)) if !min.is_empty() && min.bytes().all(|b| b.is_ascii_digit()) => (
            re,
            min.parse::<u32>()
                .map_err(|e| format!("bad minimum `{min}`: {e}"))?,
        ),
        _ => (rest, 1),
    };
    if regex.is_empty() {
        return Err("the regular expression is empty".to_owned());
    }
    Ok(WorkerGroupConfig {
        name: name.to_owned(),
        matcher: Matcher::Cmdline(compile(regex)?),
        min_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_flag_keeps_colons_in_regex() {
        let g = parse_worker_flag("dummies=^sleep 3600$:200").expect("valid");
        assert_eq!(g.min_alive, 200);
        let g = parse_worker_flag("api=http://x:y").expect("valid");
        assert_eq!(g.min_alive, 1);
        assert!(matches!(&g.matcher, Matcher::Cmdline(re) if re.as_str() == "http://x:y"));
        assert!(parse_worker_flag("noequals").is_err());
        assert!(parse_worker_flag("bad name=x").is_err());
        assert!(parse_worker_flag("g=(unclosed").is_err());
    }
}
