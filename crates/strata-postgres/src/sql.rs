//! Running statements: cached prepared statements, pipelined batches, transactions, and the
//! error phase each step runs in.

use deadpool_postgres::{GenericClient, Object, Transaction};
use futures::future::join_all;
use strata_core::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

use crate::error::{Phase, classify};

/// One statement and its parameters.
pub(crate) struct Step<'a> {
    pub(crate) sql: &'static str,
    pub(crate) params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Step<'a> {
    pub(crate) fn new(sql: &'static str, params: Vec<&'a (dyn ToSql + Sync)>) -> Self {
        Self { sql, params }
    }
}

impl Phase {
    /// The phase of a failure before the statement was sent (preparing it).
    fn unsent(self) -> Phase {
        match self {
            Phase::Commit => Phase::BeforeCommit,
            other => other,
        }
    }
}

/// Runs `steps` pipelined: every statement is sent before the first reply is awaited, and the
/// server executes them in order (tokio-postgres sends requests in the order their futures are
/// first polled, and `join_all` polls in order). Returns each step's rows, or the error of the
/// first step that failed. Inside a transaction, a failed step makes the later ones fail too.
pub(crate) async fn pipeline<C: GenericClient>(
    client: &C,
    steps: &[Step<'_>],
    phase: Phase,
) -> Result<Vec<Vec<Row>>, StoreError> {
    let prepared = join_all(steps.iter().map(|step| client.prepare_cached(step.sql))).await;
    let statements = prepared
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| classify(&error, phase.unsent()))?;
    let results = join_all(
        steps
            .iter()
            .zip(&statements)
            .map(|(step, statement)| client.query(statement, &step.params)),
    )
    .await;
    results.into_iter().map(|result| result.map_err(|error| classify(&error, phase))).collect()
}

/// Runs one statement.
pub(crate) async fn query<C: GenericClient>(
    client: &C,
    sql: &'static str,
    params: Vec<&(dyn ToSql + Sync)>,
    phase: Phase,
) -> Result<Vec<Row>, StoreError> {
    let mut rows = pipeline(client, &[Step::new(sql, params)], phase).await?;
    Ok(rows.pop().unwrap_or_default())
}

/// Starts a read-write transaction (READ COMMITTED: every statement sees the latest committed
/// rows, and row locks order concurrent writers).
pub(crate) async fn begin(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    client.transaction().await.map_err(|error| classify(&error, Phase::BeforeCommit))
}

/// Starts a read-only snapshot (REPEATABLE READ): every statement of the read sees the same
/// committed state, so a read never mixes two revisions.
pub(crate) async fn begin_snapshot(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|error| classify(&error, Phase::Read))
}

/// Commits a write transaction: a lost connection now leaves the outcome unknown.
pub(crate) async fn commit(transaction: Transaction<'_>) -> Result<(), StoreError> {
    transaction.commit().await.map_err(|error| classify(&error, Phase::Commit))
}

/// Ends a read snapshot.
pub(crate) async fn end_snapshot(transaction: Transaction<'_>) -> Result<(), StoreError> {
    transaction.commit().await.map_err(|error| classify(&error, Phase::Read))
}
