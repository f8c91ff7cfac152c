//! [`AttachmentError`]: the one typed error of attachment stores, the scoped wrapper, the layer
//! and the sweeper.

use strata_core::StoreError;

use crate::id::AttachmentId;

/// Every failure an attachment store, the session-scoped wrapper or the sweeper reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// No attachment with this id is stored (nor in the trash).
    #[error("attachment {id} not found")]
    NotFound {
        /// The id asked for.
        id: AttachmentId,
    },
    /// An id that is not a valid attachment id (never reaches a file or object name).
    #[error("invalid attachment id {id:?}: {reason}")]
    InvalidId {
        /// The rejected text (shortened).
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The payload is over the store's configured limit; nothing was recorded or written.
    #[error("attachment of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes offered.
        len: u64,
        /// The store's limit.
        limit: u64,
    },
    /// Metadata the store cannot accept (empty media type, oversize label…); nothing written.
    #[error("invalid attachment metadata: {0}")]
    InvalidMetadata(String),
    /// A stored attachment's metadata header is missing, damaged, or of an unknown version.
    #[error("corrupt attachment metadata in {location}: {detail}")]
    CorruptMetadata {
        /// File or object of the damage.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// A stored attachment's bytes do not match its id (truncated or altered).
    #[error("corrupt attachment content in {location}: {detail}")]
    CorruptContent {
        /// File or object of the damage.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// An I/O or object-storage failure (possibly transient).
    #[error("attachment storage unavailable: {0}")]
    Io(String),
    /// The session's manifest refused or failed (`record_intent`, `commit_refs`, `forget`,
    /// `list_uncommitted`, or the factory the sweeper lists sessions from). For a put, no
    /// bytes were written.
    #[error("attachment manifest failed: {0}")]
    Manifest(#[source] StoreError),
    /// [`AttachmentLayer::scoped`](crate::AttachmentLayer::scoped) found no open handle of the
    /// session (open one through a layered factory or `StoreBuilder::build_for_session`).
    #[error(
        "no open store handle of session {session_id:?} was layered with this attachment layer"
    )]
    SessionNotOpen {
        /// The session asked for.
        session_id: String,
    },
}

impl AttachmentError {
    /// An invalid id, its text shortened for the message.
    pub(crate) fn invalid_id(text: &str, reason: &'static str) -> Self {
        Self::InvalidId { id: text.chars().take(80).collect(), reason }
    }

    /// An I/O error with context (path, step).
    pub(crate) fn io(context: impl std::fmt::Display, error: impl std::fmt::Display) -> Self {
        Self::Io(format!("{context}: {error}"))
    }

    /// True when trying again may succeed: I/O failures, and manifest failures the manifest
    /// itself classifies as retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io(_) => true,
            Self::Manifest(error) => error.is_retryable(),
            _ => false,
        }
    }
}

impl From<StoreError> for AttachmentError {
    fn from(error: StoreError) -> Self {
        Self::Manifest(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_io_and_transient_manifest_failures_are_retryable() {
        assert!(AttachmentError::Io("disk".into()).is_retryable());
        assert!(AttachmentError::Manifest(StoreError::Unavailable("x".into())).is_retryable());
        assert!(!AttachmentError::Manifest(StoreError::InvalidInput("x".into())).is_retryable());
        assert!(!AttachmentError::TooLarge { len: 2, limit: 1 }.is_retryable());
        assert!(!AttachmentError::invalid_id("..", "nope").is_retryable());
    }
}
