//! The bridge between Strata and the original runtime's trait,
//! `lash_core::RuntimePersistence`, both ways:
//!
//! - [`ForLash`]: any Strata store or stack as an `Arc<dyn lash_core::RuntimePersistence>`,
//!   so the lash runtime runs on Strata's file backend with Strata's layers;
//!   [`ForLashFactory`] does the same for a factory (`LashCoreBuilder::store_factory`).
//! - [`FromLash`]: any lash store (`lash-sqlite-store`, lash's in-memory store, your own) as a
//!   Strata store, so Strata's tracing, metrics and policy layers wrap it, a layered factory
//!   holds it ([`FromLashFactory`]) and Strata's conformance suite judges it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_core::StoreError> {
//! use std::sync::Arc;
//! use strata_core::StoreBuilder;
//! use strata_file::{FileStore, FileStoreOptions};
//! use strata_lash::{ForLash, FromLash};
//! use strata_layers::{MetricsLayer, TracingLayer};
//!
//! // The lash runtime on Strata's durable file store, observed by Strata's layers.
//! let stack = StoreBuilder::new().layer(TracingLayer::default()).layer(MetricsLayer::default());
//! let store = stack.build_shared(FileStore::open("./session", FileStoreOptions::default())?);
//! let for_lash: Arc<dyn lash_core::RuntimePersistence> = Arc::new(ForLash::from_arc(store));
//!
//! // An existing lash-sqlite-store database under the same layers, as a Strata store.
//! let sqlite = lash_sqlite_store::Store::open(std::path::Path::new("./session.db")).await.unwrap();
//! let observed = stack.build(FromLash::new(Arc::new(sqlite)));
//! # let _ = (for_lash, observed); Ok(()) }
//! ```
//!
//! # The mapping
//!
//! [`mapping`] is the one place types cross: one function per type and direction, lossless
//! both ways (a lash value survives a Strata store unchanged; a Strata value survives a lash
//! store byte for byte), proven by proptest round trips (`tests/mapping.rs`). lash's typed
//! payloads (nodes, config, frames, tool state, plugin snapshots, turn state, queue payloads)
//! become Strata bytes in the payload encoding; Strata's bytes reach lash stores in reserved
//! "envelope" slots of lash's types. Errors map variant to variant (a Strata-only variant
//! crosses lash's `Backend(String)` with a tag and comes back as itself), and so do tiers,
//! read scopes, stamps, policies and reports.
//!
//! **Stamps stay idempotent in both directions.** lash computes its turn-commit hash over its
//! own commit (`RuntimeCommit::turn_commit_hash`); the bridge passes it through untouched and
//! each store compares it as an opaque string. A retried stamped commit reaches the store
//! with the same stamp and gets the stored result back, which the bridge maps the same way
//! again. Strata's own hash helper (`strata_core::commit_semantic_hash`) is for Strata callers;
//! the bridge never recomputes a hash.
//!
//! **The manifest.** lash's `AttachmentManifest` is synchronous, Strata's async; [`wait`]
//! says how each direction crosses without blocking an executor thread or deadlocking a
//! current-thread runtime.
//!
//! # Which side wins
//!
//! The store behind the bridge. The bridge maps representations and never re-implements
//! semantics: the lash runtime on a Strata store gets Strata's contract (head leaf after every
//! commit, atomic and session-checked multi-completions, duplicate ids refused, blake3
//! content-addressed refs, injectable clock, errors never swallowed); Strata callers on a lash
//! store get that store's behaviour. The contract (`docs/contract.md`, §10) lists every
//! divergence with the winner. Two representation choices are the bridge's own and are
//! documented where they are made: a Strata commit without a checkpoint writes lash's empty
//! checkpoint (lash has no "keep the current one"), and counters one side cannot hold
//! (negative lash counts, Strata counts above `i64::MAX`) are refused as
//! `StoreError::InvalidInput` instead of being truncated.
//!
//! The suites that hold both sides to this (`tests/`):
//!
//! - `lash_conformance.rs`: lash's own suite (`lash_core::testing::conformance`, feature
//!   `testing`): `runtime_persistence` over the memory store, `runtime_persistence_reopenable`
//!   over the file store (current-thread and multi-thread runtimes), both under the
//!   recommended layer stack (tracing → metrics → cache → retry → timeout → limit → breaker), and lash-sqlite-store under Strata's
//!   layers through both bridges. Every case passes.
//! - `strata_conformance.rs`: Strata's suite over lash-sqlite-store and lash's in-memory store
//!   through [`FromLash`], asserting the exact list of failing checks, each with the contract
//!   rule that explains it.
//! - `mapping.rs` (proptest round trips), `manifest_bridge.rs` (the manifest on every kind of
//!   runtime).
//!
//! # The payload encoding
//!
//! Strata stores lash values as MessagePack with field names (`rmp-serde`), through mirror
//! types that drop lash's `#[serde(flatten)]` and internal tagging on the node itself (serde
//! buffers a flattened, internally tagged value into a generic tree before decoding it: that
//! buffering costs more than the JSON parser does). Measured with
//! `cargo bench --bench lash -- encoding` on 20k realistic nodes (~740 bytes of lash JSON
//! each): decoding them back into lash nodes took 43.9 ms from lash's JSON (what
//! lash-sqlite-store does), 36.9 ms from MessagePack of lash's own type and 20.9 ms from the
//! bridge's encoding (626 bytes a node against JSON's 736); encoding took 20.2 ms as JSON and
//! 12.9 ms in the bridge's encoding. Binary formats
//! that are not self-describing (postcard, bincode) cannot carry lash's types at all: lash
//! skips absent optional fields (`skip_serializing_if`), flattens and tags enums internally,
//! and holds `serde_json::Value`s, all of which need a self-describing format. MessagePack is
//! also what lash-sqlite-store itself uses for its blobs.
//!
//! # Performance
//!
//! `cargo bench --bench lash` (workspace root), on a 20k-node session written by 5,000
//! ordinary stamped commits, as the lash runtime calls each store; quiet 2-core development
//! VM:
//!
//! | measurement | file store via `ForLash` | lash-sqlite-store | ratio | goal |
//! |---|---|---|---|---|
//! | durable commit (4 nodes, usage, stamp, CAS) | 254 µs (p50 149 µs, max 3.75 ms) | 8.57 ms (p50 5.65 ms, max 12.1 ms) | 33.8× | ≥ 5× |
//! | `FullGraph`, 20k nodes | 41.6–51.3 ms | 58.3–68.6 ms | 1.14–1.52× (three runs) | ≥ 3× (missed: decode-bound) |
//! | `ActivePath`, 1k of 20k nodes | 1.34 ms | 5.59 ms | 4.18× | ≥ 3× |
//! | `load_node` | 3.94 µs | 61.2 µs | 15.5× | ≥ 3× |
//! | reopen + `ActivePath` | 3.71 ms | 7.15 ms | 1.93× | (reported) |
//!
//! The bridge's own cost per call is the mapping (about 0.65 µs to encode and 1 µs to decode
//! a node) and one boxed future: `load_node` through `ForLash` costs 1.81 µs against the bare
//! file store's 0.46 µs. Reads of [`mapping::LARGE_READ_NODES`] nodes or more are decoded on
//! the blocking pool, off the executor. The README's section "Against lash's SQLite store"
//! has every figure, the commands and what limits `FullGraph`.
//!
//! # Pinned version
//!
//! `lash-core = "=0.1.0-alpha.42"` (and `lash-sqlite-store = "=0.1.0-alpha.42"` for the tests
//! and benchmarks): an alpha whose persistence types change between releases, so the pin is
//! exact. To move it: change both pins (this crate's `Cargo.toml`, the workspace's root
//! package for the benchmark), run `cargo test -p strata-lash` (the mapping fails to compile
//! where a type changed; the proptests and lash's own suite show a behavioural change; the
//! expected-failure lists in `tests/strata_conformance.rs` show a change in lash's stores),
//! update [`mapping`] and the lists, and re-run `cargo bench --bench lash`. lash-core needs
//! Rust 1.90, so this crate declares `rust-version = "1.90"`.
//!
//! # Dependencies
//!
//! `lash-core` (the trait and types), `rmp-serde` (the payload encoding), `serde`/`serde_json`
//! (lash's types and the JSON carried in envelopes and error tags), `base64` (bytes inside
//! lash's JSON values), `chrono` (the RFC 3339 timestamp lash nodes carry, mirrored as
//! Strata's `timestamp_ms`), `tokio` (the blocking pool and the manifest thread),
//! `async-trait` (lash's trait is an `async_trait`). Tests: `lash-core` with `testing`,
//! `lash-sqlite-store`, `strata-testkit`, `strata-memory`, `strata-file`, `strata-layers`,
//! `proptest`, `tempfile`.

mod factory;
mod for_lash;
mod from_lash;
pub mod mapping;
pub mod wait;

pub use factory::{ForLashFactory, FromLashFactory};
pub use for_lash::ForLash;
pub use from_lash::FromLash;
