//! Running statements: cached prepared statements, pipelined batches, transactions, and the
//! error phase each step runs in.

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::{GenericClient, Object, Transaction};
use futures::future::join_all;
use strata_core::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

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
    let statements = prepare(client, steps, phase.unsent()).await?;
    let results = join_all(
        steps
            .iter()
            .zip(&statements)
            .map(|(step, statement)| client.query(statement, &step.params)),
    )
    .await;
    results.into_iter().map(|result| result.map_err(|error| classify(&error, phase))).collect()
}

/// The prepared statements of `steps` (from the connection's cache; the first use of a
/// statement on a connection prepares it, pipelined with the others).
async fn prepare<C: GenericClient>(
    client: &C,
    steps: &[Step<'_>],
    phase: Phase,
) -> Result<Vec<Statement>, StoreError> {
    join_all(steps.iter().map(|step| client.prepare_cached(step.sql)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| classify(&error, phase))
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

/// A transaction on one pooled connection that costs no round trip of its own: `BEGIN` goes
/// out with its first statements and `COMMIT` with its last ones, pipelined.
///
/// End it with [`Tx::commit`] (the last statements and `COMMIT`) or [`Tx::finish`] (rolls
/// back what is still open). Dropped while open (the call was cancelled mid-way), it closes
/// its connection instead of returning it to the pool: the server rolls the transaction back,
/// and no later call can run inside it.
pub(crate) struct Tx {
    client: Option<Object>,
    begin: Option<&'static str>,
    open: bool,
    /// The phase of a failure before `COMMIT` was sent (`Read` for a snapshot).
    before_commit: Phase,
    /// The phase of a failure of the pipeline carrying `COMMIT`.
    at_commit: Phase,
}

impl Tx {
    /// A read-write transaction (READ COMMITTED: each statement sees the latest committed
    /// rows; row locks order concurrent writers).
    pub(crate) fn write(client: Object) -> Self {
        Self {
            client: Some(client),
            begin: Some("BEGIN"),
            open: false,
            before_commit: Phase::BeforeCommit,
            at_commit: Phase::Commit,
        }
    }

    /// A read-only snapshot (REPEATABLE READ): every statement sees the same committed state,
    /// so a read never mixes two revisions.
    pub(crate) fn snapshot(client: Object) -> Self {
        Self {
            client: Some(client),
            begin: Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
            open: false,
            before_commit: Phase::Read,
            at_commit: Phase::Read,
        }
    }

    /// Runs `steps` inside the transaction (sending `BEGIN` ahead of them the first time).
    pub(crate) async fn run(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<Row>>, StoreError> {
        self.send(steps, false).await
    }

    /// Runs `steps` and `COMMIT` in one pipeline. A failed step makes `COMMIT` roll back; a
    /// connection lost meanwhile leaves a write's outcome unknown.
    pub(crate) async fn commit(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<Row>>, StoreError> {
        self.send(steps, true).await
    }

    /// Rolls back whatever is still open (a refused write, a write that had nothing to do),
    /// keeping the connection when the rollback goes through.
    pub(crate) async fn finish(mut self) {
        if self.open
            && let Some(client) = &self.client
            && client.batch_execute("ROLLBACK").await.is_ok()
        {
            self.open = false;
        }
    }

    async fn send(
        &mut self,
        steps: &[Step<'_>],
        commit: bool,
    ) -> Result<Vec<Vec<Row>>, StoreError> {
        let client =
            self.client.as_ref().expect("a transaction keeps its connection until dropped");
        let statements = prepare(client, steps, self.before_commit).await?;
        type Call<'c> = Pin<
            Box<dyn Future<Output = Result<Option<Vec<Row>>, tokio_postgres::Error>> + Send + 'c>,
        >;
        let mut calls: Vec<Call<'_>> = Vec::with_capacity(steps.len() + 2);
        if let Some(begin) = self.begin.take() {
            calls.push(Box::pin(async move { client.batch_execute(begin).await.map(|()| None) }));
            self.open = true;
        }
        for (step, statement) in steps.iter().zip(&statements) {
            calls.push(Box::pin(
                async move { client.query(statement, &step.params).await.map(Some) },
            ));
        }
        if commit {
            calls
                .push(Box::pin(async move { client.batch_execute("COMMIT").await.map(|()| None) }));
        }
        // `join_all` polls in order: the requests go out in this order, back to back.
        let results = join_all(calls).await;
        if commit {
            self.open = false;
        }
        let phase = if commit { self.at_commit } else { self.before_commit };
        let mut rows = Vec::with_capacity(steps.len());
        for result in results {
            if let Some(step_rows) = result.map_err(|error| classify(&error, phase))? {
                rows.push(step_rows);
            }
        }
        Ok(rows)
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open
            && let Some(client) = self.client.take()
        {
            // Detached from the pool and dropped: the connection closes.
            drop(Object::take(client));
        }
    }
}

/// Starts a read-write transaction with its own `BEGIN` round trip (the schema migration,
/// which runs multi-statement DDL batches).
pub(crate) async fn begin(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    client.transaction().await.map_err(|error| classify(&error, Phase::BeforeCommit))
}

/// Commits a transaction started with [`begin`].
pub(crate) async fn commit(transaction: Transaction<'_>) -> Result<(), StoreError> {
    transaction.commit().await.map_err(|error| classify(&error, Phase::Commit))
}
