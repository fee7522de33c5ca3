//! Include/exclude lists of glob patterns, as the `[filesystems]` and
//! `[network]` config sections use them: a name is kept when it matches an
//! include pattern (or there are none) and matches no exclude pattern.
//!
//! Patterns are simple globs: `*` matches any run of characters, `/`
//! included, and `?` any one character; everything else matches itself.

/// One include/exclude pair of pattern lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl NameFilter {
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Self {
        Self { include, exclude }
    }

    /// Whether `name` passes the filter.
    pub fn keeps(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob_match(p, name)))
            && !self.exclude.iter().any(|p| glob_match(p, name))
    }
}

/// Matches `text` against a glob `pattern` (`*` and `?`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in
    // practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_documented() {
        assert!(glob_match("veth*", "veth1a2b"));
        assert!(glob_match(
            "/var/lib/docker/*",
            "/var/lib/docker/overlay2/x/merged"
        ));
        assert!(!glob_match("/var/lib/docker/*", "/var/lib/docker"));
        assert!(glob_match("eth?", "eth0"));
        assert!(!glob_match("eth?", "eth10"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("lo", "lo"));
        assert!(!glob_match("lo", "lo0"));
    }

    #[test]
    fn include_then_exclude() {
        let all = NameFilter::default();
        assert!(all.keeps("anything"));
        let f = NameFilter::new(vec!["/data*".into()], vec!["/data/tmp".into()]);
        assert!(f.keeps("/data"));
        assert!(f.keeps("/data/db"));
        assert!(!f.keeps("/data/tmp"));
        assert!(!f.keeps("/"));
    }
}
