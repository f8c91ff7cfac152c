//! The tool's one error type: every failure is one line that names what to fix, and maps to
//! a documented exit status (see [`EXIT_CODES`](crate::cli::EXIT_CODES)).

use std::path::{Path, PathBuf};

use strata::StoreError;
use strata::attachments::AttachmentError;

/// Why a command stopped (or finished with failures).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Arguments that parse but cannot be used as given.
    #[error("{0}")]
    Usage(String),
    /// A directory the command needs does not exist.
    #[error("{what} {} does not exist; {fix}", path.display())]
    MissingDir {
        /// What the directory is for.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// How to fix it.
        fix: &'static str,
    },
    /// A path that must be a directory is something else.
    #[error("{} is not a directory; {fix}", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// How to fix it.
        fix: &'static str,
    },
    /// A file-system step failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What the tool was doing (`create directory`, `write the JSON report to`…).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A store could not be opened or set up.
    #[error("{context}: {source}")]
    Store {
        /// What the tool was doing, naming the store.
        context: String,
        /// The store's error.
        source: StoreError,
    },
    /// An attachment store could not be opened or used.
    #[error("{context}: {source}")]
    Attachments {
        /// What the tool was doing, naming the store.
        context: String,
        /// The store's error.
        source: AttachmentError,
    },
    /// The command ran, but found failures (exit status 3): what it found, in one line.
    #[error("{0}")]
    Failures(String),
    /// A bug in the tool (a task panicked).
    #[error("internal error (a bug in strata, please report it): {0}")]
    Internal(String),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failures(_) => 3,
            Self::Internal(_) => 101,
            Self::MissingDir { .. }
            | Self::NotADirectory { .. }
            | Self::Io { .. }
            | Self::Store { .. }
            | Self::Attachments { .. } => 1,
        }
    }

    /// An I/O failure while doing `action` on `path`.
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { action, path, source }
    }
}

/// Checks that `path` is an existing directory.
pub fn require_dir(what: &'static str, path: &Path, fix: &'static str) -> Result<(), CliError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(CliError::NotADirectory { path: path.to_path_buf(), fix }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(CliError::MissingDir { what, path: path.to_path_buf(), fix })
        }
        Err(error) => Err(CliError::Io { action: "read", path: path.to_path_buf(), source: error }),
    }
}

/// Checks, before any work, that a file can be created at `path`: its directory exists and
/// `path` is not a directory.
pub fn require_writable_file(what: &'static str, path: &Path) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(CliError::Usage(format!(
            "{what} path {} is a directory; give a file name",
            path.display()
        )));
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    require_dir(what, parent, "create it first or write the file elsewhere")
}

/// One line: a message with any line breaks (from a nested error's text) folded into spaces.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_path() {
        let missing = require_dir("directory", Path::new("/no/such/dir"), "create it").unwrap_err();
        assert_eq!(missing.to_string(), "directory /no/such/dir does not exist; create it");
        assert_eq!(missing.exit_code(), 1);
        let file = require_writable_file("JSON report", Path::new("/no/such/dir/out.json"));
        let message = file.unwrap_err().to_string();
        assert!(message.starts_with("JSON report /no/such/dir does not exist"), "{message}");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Failures("x".into()).exit_code(), 3);
        assert_eq!(CliError::Internal("x".into()).exit_code(), 101);
    }
}
