//! Strata's durable file backend (work in progress).

pub mod engine;
pub mod format;
pub mod ids;
pub mod options;

pub use options::{FileStoreOptions, SyncPolicy};
