//! Session-scoped attachments for Strata: content-addressed attachment stores, the write-ahead
//! wrapper that records every put in the session's manifest before writing its bytes, the
//! layer that carries a session's pending attachments into its next commit, and the sweeper
//! that removes the bytes of turns that never committed.
//!
//! Tools and models produce attachments (images, files) during a turn; their bytes are written
//! before the turn commits. Strata never loses a committed attachment and never keeps the bytes
//! of a turn that did not commit (the contract, `docs/contract.md`, §4 "Manifest" and §7).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use strata_attachments::*;
//! use strata_core::{
//!     RuntimeCommit, RuntimePersistence, SessionStoreFactory, SessionStoreRequest, StoreBuilder,
//! };
//! use strata_file::{FileStoreFactory, FileStoreOptions};
//!
//! let attachments = Arc::new(FileAttachmentStore::open("./attachments", FileAttachmentOptions::default())?);
//! let layer = AttachmentLayer::new(attachments.clone());
//! let factory = Arc::new(
//!     StoreBuilder::new()
//!         .layer(layer.clone()) // outermost
//!         .build_factory(FileStoreFactory::open("./sessions", FileStoreOptions::default())?),
//! );
//! let store = factory.create_store(SessionStoreRequest::new("s1")).await?;
//!
//! // During the turn: the intent is recorded before the bytes are written.
//! let scoped = layer.scoped("s1")?;
//! let info = scoped.put(Content::new(&b"\x89PNG..."[..]), AttachmentMeta::new("image/png")).await?;
//!
//! // The turn's commit carries the pending attachment ids (the layer adds them).
//! store.commit_runtime_state(RuntimeCommit { session_id: "s1".into(), ..Default::default() }).await?;
//! assert_eq!(attachments.get(&info.id).await?.info, info);
//!
//! // Periodically: remove the bytes and rows of puts whose turn never committed.
//! let report = Sweeper::new(factory, attachments).sweep().await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! # Pieces
//!
//! - [`AttachmentStore`]: `put` (content-addressed: the id is the BLAKE3 hash of the bytes,
//!   [`AttachmentId`], the same `blake3:<hex>` form as `strata_core::blob_ref`), `get`,
//!   `contains`, durability, a trash (`delete`, `restore`, `purge`) and references. Typed
//!   errors: [`AttachmentError`].
//! - Stores: [`MemoryAttachmentStore`]; [`FileAttachmentStore`] (one local directory: atomic,
//!   fsynced, sharded; see [`mod@file`]); [`ObjectAttachmentStore`] over the `object_store` crate
//!   (S3, GCS, Azure, local, memory: a fleet of hosts shares attachments; see [`object`]).
//! - [`SessionScopedAttachmentStore`]: the wrapper for one session (intent, reference, bytes,
//!   pending id).
//! - [`AttachmentLayer`]: the decorator over `RuntimePersistence` (see [`layer`] for its shape).
//! - [`Sweeper`]: the orphan sweeper, with a dry run and a [`SweepReport`] (see [`sweep`] for the
//!   rule and the proof that a put racing a sweep keeps its bytes).
//!
//! The conformance suite every attachment store passes is public in
//! `strata_testkit::attachments`, so third-party stores can run it.
//!
//! # Design choices
//!
//! - **One manifest row per put** ([`IntentId`]: content id + random nonce), not per content:
//!   the contract's `forget` deletes a row whatever its state, so a sweep forgetting a stale
//!   row keyed by content could erase the fresh intent of the same session writing the same
//!   bytes again.
//! - **References.** The contract's manifest lists only uncommitted rows; a sweep must also know
//!   whether some session *committed* a content. Each put therefore records a reference (its
//!   row id and session) in the attachment store, after its intent and before its bytes; a
//!   reference whose row is not among the stale rows holds its content. (A manifest read of
//!   committed rows in `strata-core` would make this index unnecessary.)
//! - **A trash** makes deletion two-step, so the sweeper can re-check the references after the
//!   bytes left the live namespace and undo the delete when a put raced it.
//! - **Metadata and bytes in one file or object** (see `encoding`): atomic by construction.
//!
//! # Performance
//!
//! `cargo bench --bench attachments` (workspace root), one run on the quiet 2-core VM with
//! ext4; put ratios are raw time / store time from the interleaved medians the bench prints
//! (the three puts in turn, 100 rounds, so drifting disk load hits all alike):
//!
//! | | file store | raw temp + fdatasync + rename | … + directory fsync |
//! |---|---|---|---|
//! | put 4 KiB | 0.53 ms | 0.35 ms (0.65×) | 0.49 ms (0.92×) |
//! | put 1 MiB | 1.51 ms | 1.04 ms (0.69×) | 1.19 ms (0.79×) |
//!
//! The goal of 0.8× the raw rename is not met: that peer skips the directory fsync, so its
//! rename can be lost on power failure; the store makes the new name durable before it
//! acknowledges (as the contract requires) and is at 0.8–0.9× of the durable peer. Gets check
//! the content hash: 4 KiB 26.6 µs vs a raw read's 20.8 µs (0.78×); 1 MiB 287 µs vs 110 µs
//! (0.38×), the difference being BLAKE3 over the bytes. Sweeping 100 file-backend sessions
//! holding 100k manifest rows (1 000 puts each in 10 stamped turns, 100 orphans): 155 ms as a
//! dry run, 220 ms for the real sweep, which moves 100 contents to the trash, removes their
//! references and forgets their rows (goal < 1 s: met; `STRATA_BENCH_LOG=info cargo bench
//! --bench attachments -- sweep_100k` logs the time of each step). Directory fsyncs of a batch
//! run from several threads, since concurrent fsyncs share journal commits.
//!
//! # Dependencies
//!
//! `object_store` (the object-storage backends behind one API; only its local-filesystem
//! feature is enabled here, cloud ones are the user's choice), `fastrand` (the 128-bit nonces of
//! intent ids and temporary file names: uniqueness, not secrecy), `crc32fast` (the metadata
//! header checksum, as in the file backend), `serde_json` (the metadata header), `futures`
//! (bounded concurrency in the sweeper), `tracing` (sweep progress), `tokio` (the blocking pool
//! for file I/O), `strata-file` (its directory-fsync helpers and sync policy, shared rather than
//! copied).

pub mod encoding;
pub mod error;
pub mod file;
pub mod id;
pub mod layer;
pub mod memory;
pub mod object;
pub mod scoped;
pub mod store;
pub mod sweep;
pub mod types;

pub use error::AttachmentError;
pub use file::{FileAttachmentOptions, FileAttachmentStore};
pub use id::{AttachmentId, IntentId};
pub use layer::{AddPendingAttachments, AttachmentLayer};
pub use memory::MemoryAttachmentStore;
pub use object::ObjectAttachmentStore;
pub use scoped::{PendingIds, SessionScopedAttachmentStore};
pub use store::AttachmentStore;
pub use sweep::{DEFAULT_GRACE_PERIOD, SweepReport, Sweeper};
pub use types::*;
