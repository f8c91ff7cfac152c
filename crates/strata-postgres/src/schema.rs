//! Creating and migrating Strata's tables: a version table, numbered migrations applied in
//! one transaction under an advisory lock (so hosts starting together migrate once), and a
//! refusal to touch a schema written by a newer build.

use deadpool_postgres::Object;
use strata_core::StoreError;

use crate::error::{Phase, classify};
use crate::sql::{self, Step};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("schema_v1.sql")];

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS strata_schema_version (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     integer NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
)";

fn newer(actual: i32) -> StoreError {
    StoreError::UnsupportedRecordSchemaVersion {
        record_kind: "strata postgres schema".into(),
        actual: u32::try_from(actual).unwrap_or(0),
        expected: SCHEMA_VERSION,
    }
}

/// The installed version, `None` when the schema or its version table does not exist yet.
async fn installed(client: &Object) -> Result<Option<i32>, StoreError> {
    match client.query_opt("SELECT version FROM strata_schema_version", &[]).await {
        Ok(row) => Ok(Some(row.map_or(0, |row| row.get(0)))),
        Err(error)
            if error.code().is_some_and(|code| {
                matches!(code.code(), "42P01" | "3F000") // undefined table / schema
            }) =>
        {
            Ok(None)
        }
        Err(error) => Err(classify(&error, Phase::Read)),
    }
}

/// Brings `schema` to [`SCHEMA_VERSION`]: nothing to do when it is there already; an unknown
/// newer version is [`StoreError::UnsupportedRecordSchemaVersion`] and changes nothing.
pub(crate) async fn migrate(client: &mut Object, schema: &str) -> Result<(), StoreError> {
    let expected = i32::try_from(SCHEMA_VERSION).expect("small");
    match installed(client).await? {
        Some(version) if version == expected => return Ok(()),
        Some(version) if version > expected => return Err(newer(version)),
        _ => {}
    }
    let transaction = sql::begin(client).await?;
    let lock_key = format!("strata.migrate.{schema}");
    sql::query(
        &transaction,
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        vec![&lock_key],
        Phase::BeforeCommit,
    )
    .await?;
    // The schema name was validated as a plain identifier.
    let create = format!("CREATE SCHEMA IF NOT EXISTS {schema}; {VERSION_TABLE}");
    transaction
        .batch_execute(&create)
        .await
        .map_err(|error| classify(&error, Phase::BeforeCommit))?;
    let current: i32 = transaction
        .query_opt("SELECT version FROM strata_schema_version", &[])
        .await
        .map_err(|error| classify(&error, Phase::BeforeCommit))?
        .map_or(0, |row| row.get(0));
    if current > expected {
        return Err(newer(current));
    }
    for migration in &MIGRATIONS[usize::try_from(current).unwrap_or(0)..] {
        transaction
            .batch_execute(migration)
            .await
            .map_err(|error| classify(&error, Phase::BeforeCommit))?;
    }
    let record = Step::new(
        "INSERT INTO strata_schema_version (version) VALUES ($1)
         ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, migrated_at = now()",
        vec![&expected],
    );
    sql::pipeline(&transaction, &[record], Phase::BeforeCommit).await?;
    sql::commit(transaction).await
}
