//! Identifiers (host ids, worker-group names): what a valid one looks
//! like, checked alike by ingest, the API and the command line; and
//! [`Invalid`], the error that names the field at fault, which ingest's
//! checks of every other field share.

/// Longest host id.
pub const MAX_HOST_ID: usize = 128;
/// Longest worker-group name.
pub const MAX_GROUP_NAME: usize = 64;

/// What is wrong with a value, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Identifiers (host ids, worker group names) go into URLs, SQL parameters
/// and the page: a small alphabet, bounded length.
pub fn check_id(field: impl std::fmt::Display, value: &str, max: usize) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > max {
        return Err(invalid(
            field.to_string(),
            format!("must be 1 to {max} characters"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(invalid(
            field.to_string(),
            "may contain only letters, digits, `.`, `-` and `_`",
        ));
    }
    // Ids become path segments (URLs, links): `.` and `..` are not names.
    if value.chars().all(|c| c == '.') {
        return Err(invalid(field.to_string(), "must not be only dots"));
    }
    Ok(())
}

/// A host id, as ingest, the API and the command line take it.
pub fn check_host_id(field: &str, value: &str) -> Result<(), Invalid> {
    check_id(field, value, MAX_HOST_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_small_alphabet_and_never_only_dots() {
        assert!(check_host_id("host", "web-1.example_2").is_ok());
        for bad in [
            "",
            "a/b",
            "<script>",
            ".",
            "..",
            &"h".repeat(MAX_HOST_ID + 1),
        ] {
            assert_eq!(check_host_id("host", bad).expect_err(bad).field, "host");
        }
        assert!(check_id("group", &"g".repeat(MAX_GROUP_NAME), MAX_GROUP_NAME).is_ok());
    }
}
