//! Config merging shared by both binaries.

/// A setting from its flag (or environment variable) if given, else from
/// the config file, with where it came from, for error messages.
pub fn pick<T: Clone>(
    flag: &Option<T>,
    from_file: &Option<T>,
    flag_name: &str,
    file_origin: &str,
) -> Option<(T, String)> {
    match (flag, from_file) {
        (Some(v), _) => Some((v.clone(), flag_name.to_owned())),
        (None, Some(v)) => Some((v.clone(), file_origin.to_owned())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_says_so() {
        let flag = Some(1);
        let file = Some(2);
        assert_eq!(pick(&flag, &file, "--n", "a.toml"), Some((1, "--n".into())));
        assert_eq!(
            pick(&None, &file, "--n", "a.toml"),
            Some((2, "a.toml".into()))
        );
        assert_eq!(pick::<i32>(&None, &None, "--n", "a.toml"), None);
    }
}
