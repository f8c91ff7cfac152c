//! The `RuntimePersistence` contract of Strata: the trait and its `AttachmentManifest`
//! supertrait, the data types, the typed [`StoreError`], durability tiers, the session-store
//! factory, the injectable clock, content addressing, and the composition machinery
//! ([`Layer`], [`StoreBuilder`], [`Around`]).
//!
//! The normative text is the contract, `docs/contract.md` at the repository's root (§1–§9 the
//! rules, §10 the deliberate divergences from the original trait, `lash_core`'s
//! `RuntimePersistence`); every backend implements it and every decorator preserves it.
//! Dependencies: `async-trait` (object-safe async methods), `thiserror` (the error enum),
//! `serde` (every data type serializes, so backends and tools share one encoding), `bytes`
//! (cheaply clonable opaque payloads), `blake3` (content-addressed refs).

pub mod call;
pub mod clock;
pub mod error;
pub mod factory;
pub mod hash;
pub mod layer;
pub mod state;
pub mod store;
pub mod types;

pub use async_trait::async_trait;
pub use bytes::Bytes;

pub use call::{MethodClass, Operation, Request, Response};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use error::{ErrorClass, StoreError};
pub use factory::{SessionStoreFactory, SessionStoreRequest};
pub use hash::{blob_ref, checkpoint_ref, commit_semantic_hash};
pub use layer::{
    Around, Decorated, Identity, Layer, LayeredFactory, PassThrough, Stack, StoreBuilder,
};
pub use state::{Mutation, Planned, SessionState};
pub use store::{AttachmentManifest, NoopAttachmentManifest, RuntimePersistence, Serve};
pub use types::*;
