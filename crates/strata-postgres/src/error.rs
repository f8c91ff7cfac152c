//! How driver, server and pool failures become [`StoreError`] variants, so that the retry
//! layer can tell "nothing was applied" from "maybe applied" (`docs/contract.md` §2).
//!
//! | failure | variant |
//! |---|---|
//! | no connection could be had (refused, pool wait timed out, too many connections) | [`StoreError::NotApplied`] |
//! | serialization failure, deadlock, cancelled statement, lock not available, out of resources (the server rolled the statement back) | [`StoreError::NotApplied`] |
//! | read-only server (a standby, `default_transaction_read_only`) | [`StoreError::NotApplied`] (rolled back; a failover makes a retry succeed) |
//! | connection lost inside a transaction before `COMMIT` was sent | [`StoreError::NotApplied`] (a transaction never commits without `COMMIT`) |
//! | connection lost while `COMMIT` (or a single-statement write) was in flight | [`StoreError::Unavailable`]: ambiguous; only a keyed write (stamped commit, source-keyed enqueue) or an idempotent one may be retried |
//! | connection lost during a read | [`StoreError::Unavailable`] |
//! | value the server refuses (data exception, program limit: over-long key, NUL in text) | [`StoreError::InvalidInput`] |
//! | anything else (missing table, privilege, driver bug) | [`StoreError::Backend`] |

use deadpool_postgres::PoolError;
use strata_core::StoreError;
use tokio_postgres::error::SqlState;

/// Where in a call an error happened: decides whether a lost connection proves anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A read: nothing to apply.
    Read,
    /// Inside a transaction, before `COMMIT` was sent: the server rolls back on any failure.
    BeforeCommit,
    /// `COMMIT` (or an autocommitted single-statement write) was sent: its fate is unknown if
    /// the connection drops before the reply.
    Commit,
}

/// Classifies a driver or server error met in `phase`.
pub(crate) fn classify(error: &tokio_postgres::Error, phase: Phase) -> StoreError {
    let Some(db) = error.as_db_error() else {
        let described = describe(error);
        return if error.is_closed() || io_failure(error) {
            connection_lost(&described, phase)
        } else {
            // Encoding a parameter or decoding a reply failed: a bug here, not a fault there.
            StoreError::Backend(described)
        };
    };
    let code = db.code();
    let described = format!("{} (SQLSTATE {})", db.message(), code.code());
    if is_connection_loss(code) {
        return connection_lost(&described, phase);
    }
    match code.code() {
        "40001" | "40P01" | "57014" | "55P03" => StoreError::NotApplied(described),
        "25006" => StoreError::NotApplied(format!("the server is read-only: {described}")),
        class if class.starts_with("53") => StoreError::NotApplied(described),
        class if class.starts_with("22") || class.starts_with("54") => {
            StoreError::InvalidInput(format!("rejected by PostgreSQL: {described}"))
        }
        _ => StoreError::Backend(described),
    }
}

/// The error with its sources ("error serializing parameter 5: cannot convert …").
fn describe(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether the error (or a source of it) is an I/O error: the socket failed.
fn io_failure(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The codes with which a server ends a session (terminated, crashed, shutting down) and the
/// connection-exception class.
fn is_connection_loss(code: &SqlState) -> bool {
    matches!(code.code(), "57P01" | "57P02" | "57P03") || code.code().starts_with("08")
}

fn connection_lost(detail: &str, phase: Phase) -> StoreError {
    match phase {
        Phase::BeforeCommit => StoreError::NotApplied(format!(
            "connection lost before COMMIT was sent (the transaction rolled back): {detail}"
        )),
        Phase::Read => StoreError::Unavailable(format!("connection lost: {detail}")),
        Phase::Commit => StoreError::Unavailable(format!(
            "connection lost while the write was in flight (it may or may not have applied): {detail}"
        )),
    }
}

/// A failure to get a pooled connection: nothing was sent.
pub(crate) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Closed => StoreError::Backend("the connection pool was closed".into()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Backend("the connection pool has no runtime".into())
        }
        other => StoreError::NotApplied(format!("no database connection: {other}")),
    }
}

/// A stored row that cannot be decoded: `CorruptData` naming table and key.
pub(crate) fn corrupt(table: &str, key: &str, detail: impl Into<String>) -> StoreError {
    StoreError::CorruptData { location: format!("table {table}, {key}"), detail: detail.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_loss_proves_nothing_only_before_commit() {
        let before = connection_lost("reset", Phase::BeforeCommit);
        assert!(before.proves_nothing_applied(), "{before}");
        let during = connection_lost("reset", Phase::Commit);
        assert!(during.is_retryable() && !during.proves_nothing_applied(), "{during}");
        assert_eq!(connection_lost("reset", Phase::Read).kind(), "unavailable");
    }

    #[test]
    fn loss_codes_are_recognized() {
        assert!(is_connection_loss(&SqlState::ADMIN_SHUTDOWN));
        assert!(is_connection_loss(&SqlState::CONNECTION_FAILURE));
        assert!(!is_connection_loss(&SqlState::T_R_SERIALIZATION_FAILURE));
    }
}
