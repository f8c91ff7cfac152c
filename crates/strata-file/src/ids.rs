//! Validation of caller-supplied ids that could reach the file system or escape the root.

use strata_core::StoreError;

/// The longest id accepted, in bytes (file systems commonly cap a name at 255 bytes).
pub const MAX_ID_BYTES: usize = 255;

/// Rejects an id that is empty, over [`MAX_ID_BYTES`], `.` or `..`, or holds a path
/// separator (`/`, `\`) or NUL: such an id could name or escape a directory.
///
/// `what` names the id in the error (`"session id"`, `"node id"`…).
pub fn validate_id(what: &str, id: &str) -> Result<(), StoreError> {
    let problem = if id.is_empty() {
        "is empty"
    } else if id.len() > MAX_ID_BYTES {
        "is over MAX_ID_BYTES (255 bytes)"
    } else if id == "." || id == ".." {
        "is a relative path component"
    } else if id.contains(['/', '\\']) {
        "contains a path separator"
    } else if id.contains('\0') {
        "contains NUL"
    } else {
        return Ok(());
    };
    let shown: String = id.chars().take(64).collect();
    Err(StoreError::InvalidInput(format!("{what} {shown:?} {problem}")))
}

/// Validates every id of `ids`.
pub fn validate_ids<'a>(
    what: &str,
    ids: impl IntoIterator<Item = &'a String>,
) -> Result<(), StoreError> {
    ids.into_iter().try_for_each(|id| validate_id(what, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_ids_are_invalid_input() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        for bad in ["", ".", "..", "../etc", "a/b", "a\\b", "nul\0", long.as_str()] {
            let error = validate_id("session id", bad).unwrap_err();
            assert!(matches!(error, StoreError::InvalidInput(_)), "{bad:?}: {error}");
        }
    }

    #[test]
    fn ordinary_ids_pass() {
        for good in ["s-1", "turn.2", "a..b", "émoji-🙂", &"y".repeat(MAX_ID_BYTES)] {
            validate_id("node id", good).unwrap();
        }
    }
}
