//! The one typed error every store and decorator returns, and its classification
//! (`docs/contract.md` §2).
//!
//! Decorators preserve variants: a retry layer wraps the last error in
//! [`StoreError::RetriesExhausted`] without flattening it; nothing turns a typed error into
//! [`StoreError::Backend`].

use std::time::Duration;

use crate::types::SessionReadScope;

/// Every failure a store or decorator reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A commit for another session than the one this handle is bound to.
    #[error(
        "store is bound to session {bound_session_id:?}; commit for {attempted_session_id:?} refused"
    )]
    SessionBindingMismatch {
        /// The session the handle is bound to.
        bound_session_id: String,
        /// The session the commit named.
        attempted_session_id: String,
    },
    /// The store cannot serve this read scope.
    #[error("read scope {0:?} is not supported by this store")]
    UnsupportedReadScope(SessionReadScope),
    /// Optimistic concurrency lost: the head moved.
    #[error("head revision conflict: expected {expected:?}, actual {actual}")]
    HeadRevisionConflict {
        /// The revision the commit expected.
        expected: Option<u64>,
        /// The stored head revision (0 when there is no head).
        actual: u64,
    },
    /// Stamp session differs from the commit's, or the turn was committed with another hash.
    #[error("turn commit conflict for session {session_id:?}, turn {turn_id:?}")]
    RuntimeTurnCommitConflict {
        /// Session of the stamp.
        session_id: String,
        /// Turn of the stamp.
        turn_id: String,
    },
    /// The claim no longer owns (all of) its batches.
    #[error(
        "queued-work claim {claim_id:?} of session {session_id:?} has expired or lost its batches"
    )]
    QueuedWorkClaimExpired {
        /// Session of the claim.
        session_id: String,
        /// The claim.
        claim_id: String,
    },
    /// A persisted record of a format version this build cannot read.
    #[error(
        "unsupported {record_kind} schema version {actual} (this build reads version {expected})"
    )]
    UnsupportedRecordSchemaVersion {
        /// What kind of record.
        record_kind: String,
        /// Version found.
        actual: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// Invalid input: bad id, duplicate node id, oversize payload, dangling ref. Never retried;
    /// nothing was applied.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Stored data failed a checksum or could not be decoded. Never retried, never skipped.
    #[error("corrupt data in {location}: {detail}")]
    CorruptData {
        /// File and offset (or key) of the damage.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// Transient unavailability (I/O error, connection refused…). Retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A transient failure that provably applied nothing: the call never reached the store (no
    /// connection could be had: refused, pool exhausted) or the store rolled it back whole
    /// (serialization failure, deadlock). Retryable, even for writes that are not idempotent.
    #[error("transient failure, nothing was applied: {0}")]
    NotApplied(String),
    /// The call did not finish within its deadline.
    #[error("operation {operation} timed out after {elapsed:?}")]
    Timeout {
        /// The trait method.
        operation: &'static str,
        /// How long it ran.
        elapsed: Duration,
    },
    /// Rejected by a concurrency limit or load shedder.
    #[error("store overloaded: {0}")]
    Overloaded(String),
    /// A circuit breaker is open and short-circuited the call.
    #[error("circuit open for {operation}; retry after {retry_after:?}")]
    CircuitOpen {
        /// The trait method.
        operation: &'static str,
        /// When the breaker will let a probe through.
        retry_after: Duration,
    },
    /// A retry layer gave up.
    #[error("{operation} failed after {attempts} attempts: {last_error}")]
    RetriesExhausted {
        /// The trait method.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last_error: Box<StoreError>,
    },
    /// Another process holds the store's lock.
    #[error("store at {path} is locked by another process")]
    Locked {
        /// The locked store.
        path: String,
    },
    /// The store does not support this operation.
    #[error("operation {0} is not supported by this store")]
    Unsupported(&'static str),
    /// Anything the backend cannot classify.
    #[error("backend error: {0}")]
    Backend(String),
}

/// What a caller or decorator can do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A semantic answer of the contract (conflict, mismatch, expired claim): never retried.
    Outcome,
    /// The caller's input is wrong: never retried.
    InvalidInput,
    /// Persisted data is damaged or unreadable by this build: never retried.
    Corrupt,
    /// May succeed if tried again (subject to the method's idempotency class).
    Transient,
    /// The store refuses or cannot do this: never retried.
    Permanent,
}

impl StoreError {
    /// The classification used by retry, metrics and tracing.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::SessionBindingMismatch { .. }
            | Self::HeadRevisionConflict { .. }
            | Self::RuntimeTurnCommitConflict { .. }
            | Self::QueuedWorkClaimExpired { .. } => ErrorClass::Outcome,
            Self::InvalidInput(_) | Self::UnsupportedReadScope(_) => ErrorClass::InvalidInput,
            Self::CorruptData { .. } | Self::UnsupportedRecordSchemaVersion { .. } => {
                ErrorClass::Corrupt
            }
            Self::Unavailable(_)
            | Self::NotApplied(_)
            | Self::Timeout { .. }
            | Self::Overloaded(_) => ErrorClass::Transient,
            Self::CircuitOpen { .. }
            | Self::RetriesExhausted { .. }
            | Self::Locked { .. }
            | Self::Unsupported(_)
            | Self::Backend(_) => ErrorClass::Permanent,
        }
    }

    /// True when trying again may succeed (the method's idempotency class still decides).
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// True when a transient error proves the store applied nothing:
    /// [`NotApplied`](Self::NotApplied), [`Overloaded`](Self::Overloaded) (a limiter or load
    /// shedder turned the call away) and [`CircuitOpen`](Self::CircuitOpen). Only then may a retry repeat an unkeyed write.
    /// [`Unavailable`](Self::Unavailable) and [`Timeout`](Self::Timeout) prove nothing: the
    /// store may have applied the call before the failure (an ambiguous outcome).
    pub fn proves_nothing_applied(&self) -> bool {
        matches!(self, Self::NotApplied(_) | Self::Overloaded(_) | Self::CircuitOpen { .. })
    }

    /// True for the four semantic answers (conflicts, mismatch, expired claim).
    pub fn is_outcome(&self) -> bool {
        self.class() == ErrorClass::Outcome
    }

    /// A short, bounded, stable name of the variant, for metric labels and `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionBindingMismatch { .. } => "session_binding_mismatch",
            Self::UnsupportedReadScope(_) => "unsupported_read_scope",
            Self::HeadRevisionConflict { .. } => "head_revision_conflict",
            Self::RuntimeTurnCommitConflict { .. } => "turn_commit_conflict",
            Self::QueuedWorkClaimExpired { .. } => "claim_expired",
            Self::UnsupportedRecordSchemaVersion { .. } => "unsupported_schema_version",
            Self::InvalidInput(_) => "invalid_input",
            Self::CorruptData { .. } => "corrupt_data",
            Self::Unavailable(_) => "unavailable",
            Self::NotApplied(_) => "not_applied",
            Self::Timeout { .. } => "timeout",
            Self::Overloaded(_) => "overloaded",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::RetriesExhausted { .. } => "retries_exhausted",
            Self::Locked { .. } => "locked",
            Self::Unsupported(_) => "unsupported",
            Self::Backend(_) => "backend",
        }
    }

    /// An I/O error as `Unavailable`, with context (path, step).
    pub fn io(context: impl std::fmt::Display, error: std::io::Error) -> Self {
        Self::Unavailable(format!("{context}: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_outcomes_are_never_retryable() {
        let outcomes = [
            StoreError::SessionBindingMismatch {
                bound_session_id: "a".into(),
                attempted_session_id: "b".into(),
            },
            StoreError::HeadRevisionConflict { expected: Some(1), actual: 2 },
            StoreError::RuntimeTurnCommitConflict { session_id: "a".into(), turn_id: "t".into() },
            StoreError::QueuedWorkClaimExpired { session_id: "a".into(), claim_id: "c".into() },
        ];
        for error in outcomes {
            assert!(error.is_outcome(), "{error} should be an outcome");
            assert!(!error.is_retryable(), "{error} must not be retryable");
        }
    }

    #[test]
    fn only_transient_faults_are_retryable() {
        assert!(StoreError::Unavailable("disk".into()).is_retryable());
        assert!(StoreError::Overloaded("limit".into()).is_retryable());
        assert!(StoreError::NotApplied("refused".into()).is_retryable());
        assert!(!StoreError::InvalidInput("bad id".into()).is_retryable());
        assert!(
            !StoreError::CorruptData { location: "f:0".into(), detail: "crc".into() }
                .is_retryable()
        );
        assert!(!StoreError::Locked { path: "/x".into() }.is_retryable());
    }

    #[test]
    fn only_calls_turned_away_or_rolled_back_prove_nothing_was_applied() {
        assert!(StoreError::NotApplied("refused".into()).proves_nothing_applied());
        assert!(StoreError::Overloaded("limit".into()).proves_nothing_applied());
        let open = StoreError::CircuitOpen { operation: "vacuum", retry_after: Duration::ZERO };
        assert!(open.proves_nothing_applied());
        assert!(!StoreError::Unavailable("lost reply".into()).proves_nothing_applied());
        let timeout = StoreError::Timeout { operation: "vacuum", elapsed: Duration::ZERO };
        assert!(!timeout.proves_nothing_applied());
    }

    #[test]
    fn retries_exhausted_keeps_the_last_error() {
        let error = StoreError::RetriesExhausted {
            operation: "load_node",
            attempts: 3,
            last_error: Box::new(StoreError::Unavailable("disk".into())),
        };
        assert_eq!(error.to_string(), "load_node failed after 3 attempts: store unavailable: disk");
        assert_eq!(error.kind(), "retries_exhausted");
    }
}
