//! Strata's durable file backend (docs in progress).

pub mod engine;
pub mod factory;
pub mod format;
pub mod ids;
pub mod options;
pub mod store;

pub use factory::FileStoreFactory;
pub use options::{FileStoreOptions, SyncPolicy};
pub use store::FileStore;
