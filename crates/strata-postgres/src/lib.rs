//! The PostgreSQL backend of Strata: one store for a fleet of runtime hosts.
//!
//! [`PostgresStoreFactory`] connects a pool to a server, creates or migrates Strata's schema,
//! and opens a [`PostgresStore`] per session. Every host that opens a session gets a handle on
//! the same rows: commits are fenced by a compare-and-swap on the head, queued work is claimed
//! with row locks that never wait for another claimer, leases run on the database's clock, and
//! idle claimers can sleep until an enqueue wakes them ([`QueueListener`]).
//!
//! ```no_run
//! use strata_core::{RuntimeCommit, RuntimePersistence, SessionStoreFactory, SessionStoreRequest};
//! use strata_postgres::{PostgresConfig, PostgresStoreFactory};
//!
//! # async fn demo() -> Result<(), strata_core::StoreError> {
//! let factory = PostgresStoreFactory::connect(
//!     PostgresConfig::new("postgres://strata@db.internal/agents?target_session_attrs=read-write"),
//! )
//! .await?;
//! let store = factory.create_store(SessionStoreRequest::new("session-1")).await?;
//! store.commit_runtime_state(RuntimeCommit { session_id: "session-1".into(), ..Default::default() }).await?;
//! # Ok(()) }
//! ```
//!
//! # Why `tokio-postgres` + `deadpool-postgres`
//!
//! `tokio-postgres` is the reference asynchronous driver: it pipelines requests on one
//! connection (a commit sends its statements back to back and waits once), exposes
//! `LISTEN`/`NOTIFY` messages on the connection, and needs no database at build time (sqlx's
//! checked queries need one, or a query cache checked in). `deadpool-postgres` is the
//! maintained pool built for it, with per-connection prepared-statement caches and
//! connection hooks (used to check every new connection's durability). TLS (feature `tls`)
//! is `tokio-postgres-rustls` with rustls and the ring provider: no system OpenSSL.
//!
//! # Layout
//!
//! One schema (default `strata`, [`PostgresConfig::with_schema`]) holds every store of a
//! fleet in shared tables keyed by `store_id` (a factory names each session's store by its
//! session id): `strata_heads` (one row per store: revision, binding, config, frames, leaf,
//! checkpoint manifest), `strata_nodes` (primary key `(store_id, node_id)`, insertion order
//! `(added_revision, ordinal)`), `strata_blobs` (content-addressed), `strata_usage` (merged by
//! source and model), `strata_turn_stamps` (the unique `(store, turn)` row holding the result
//! a retry gets back), `strata_session_meta`, `strata_batches` (queued work with its hold and
//! fencing counter), `strata_attachments` (the manifest, keyed by session and attachment id)
//! and `strata_stores` (the registry and enqueue counter). `strata_schema_version` records
//! the version ([`SCHEMA_VERSION`]); [`PostgresStoreFactory::connect`] applies missing
//! migrations in one transaction under an advisory lock, and refuses a newer version with
//! `UnsupportedRecordSchemaVersion`.
//!
//! # Transactions
//!
//! - A **commit** is one transaction (see the contract, `docs/contract.md` §5): lock the head
//!   row, read the turn stamp, check binding, stamp, CAS, queue ownership (completed batches
//!   locked, matched on claim id *and* lease token) and input, then write blobs, usage, nodes,
//!   head, deletions of completed batches, attachment stamps and the stamp row — pipelined —
//!   and `COMMIT`. A failed check rolls everything back: a refused commit has no effect.
//!   Commits, tombstones, vacuums and collections of one store queue up on the head row's
//!   lock (on every host), so they cannot deadlock each other.
//! - Round trips: `BEGIN` is sent with a transaction's first statements and `COMMIT` with its
//!   last ones, so a commit costs two round trips (three when it completes claims or names
//!   stored blobs) plus the WAL flush, a claim two, a read one. A call dropped in the middle of
//!   a transaction (a timeout, a cancelled task) closes its connection rather than returning
//!   it to the pool: the server rolls the transaction back and no later call runs inside it.
//! - A **read** (`load_session`) is one `REPEATABLE READ` snapshot: head, ledger, checkpoint
//!   blobs and graph are read pipelined and never mix two revisions. The active path is one
//!   recursive query over the primary key; `load_node` one primary-key lookup.
//! - **Claims** lock their rows `FOR UPDATE SKIP LOCKED`: a claimer passes over rows another
//!   transaction holds instead of waiting. A claim is one contiguous group, claimed whole or
//!   not at all; each claimed batch's fencing counter is incremented; claim ids and lease
//!   tokens are random UUIDs minted by the server. Renew, abandon and cancel are conditional
//!   updates on `(claim_id, lease_token)`: ownership is by identity; time only decides
//!   whether a hold is live.
//!
//! # Time
//!
//! Leases, availability, `enqueued_at` and attachment stamps use the **database clock** by
//! default: `transaction_timestamp()` of the transaction, one "now" per transaction, the same
//! for every host (host clocks disagree; a lease judged on the clock of whichever host looks
//! at it would expire early on one host and late on another). A store given a clock
//! ([`PostgresConfig::with_clock`], e.g. the conformance suite's `ManualClock`) passes that
//! clock's time as a query parameter instead; use it in tests, not in a fleet.
//!
//! # Durability
//!
//! `Durable` when the server waits for the WAL flush before acknowledging a commit
//! (`synchronous_commit` not `off`) and fsyncs (`fsync = on`); `Inline` otherwise. Read from the
//! first connection at connect; every later connection of the pool must report the same, or
//! it is refused (so the declared tier holds for the factory's lifetime).
//!
//! # Errors
//!
//! | failure | [`StoreError`](strata_core::StoreError) |
//! |---|---|
//! | no connection (refused, pool wait timed out, too many connections) | `NotApplied` |
//! | serialization failure, deadlock, cancelled statement, read-only server | `NotApplied` (rolled back) |
//! | connection lost inside a transaction before `COMMIT` | `NotApplied` |
//! | connection lost while `COMMIT` or a single-statement write was in flight | `Unavailable` (ambiguous: retry only a keyed or idempotent write) |
//! | id over [`Limits::max_id_bytes`], NUL in text, value over [`Limits`], value the server refuses (class 22/54) | `InvalidInput`, nothing applied |
//! | undecodable row (unknown enum, manifest not matching its ref, missing blob) | `CorruptData` naming table and key |
//! | schema written by a newer build | `UnsupportedRecordSchemaVersion` |
//!
//! A pooled connection that died a moment ago can be handed out once before the pool notices
//! (the pool checks connections without a round trip): that call fails with a retryable error.
//!
//! # Limits
//!
//! Ids are at most [`Limits::max_id_bytes`] (default 1024) and contain no NUL; opaque values
//! at most [`Limits::max_value_bytes`] (64 MiB), a call's values together at most
//! [`Limits::max_call_bytes`] (256 MiB). Times, sequence numbers and revisions must be at most
//! 2^63−1 (a draft's `available_at_ms` or an intent's time above it is `InvalidInput`; a
//! lease's expiry saturates there); usage counters saturate at 2^63−1. Opaque numbers (node
//! timestamps, plugin snapshot revisions, metadata times) round-trip bit for bit.
//!
//! # Performance
//!
//! See the README's "PostgreSQL backend" section for the figures of `cargo bench --bench
//! postgres` (commit rates for 1 and 16 sessions, claims by 8 workers on one queue, reads of a
//! 20k-node session) and the "Running a fleet" guide.

mod codec;
mod commit;
mod config;
mod error;
mod factory;
mod listen;
mod queue;
mod schema;
mod sql;
mod store;
#[cfg(feature = "tls")]
mod tls;

pub use config::{DEFAULT_SCHEMA, Limits, PostgresConfig};
pub use factory::PostgresStoreFactory;
pub use listen::{QueueListener, QueueWakeup};
pub use schema::SCHEMA_VERSION;
pub use store::PostgresStore;
#[cfg(feature = "tls")]
pub use tls::TlsOptions;
