//! Strata: composable store decorators for durable AI-agent runtimes.
//!
//! Depend on this crate; it re-exports the contract ([`strata_core`]) at its root and each
//! backend and layer crate behind a cargo feature.

pub use strata_core::*;

#[cfg(feature = "attachments")]
pub use strata_attachments as attachments;
#[cfg(feature = "file")]
pub use strata_file as file;
#[cfg(feature = "lash")]
pub use strata_lash as lash;
#[cfg(feature = "layers")]
pub use strata_layers as layers;
#[cfg(feature = "memory")]
pub use strata_memory as memory;
#[cfg(feature = "postgres")]
pub use strata_postgres as postgres;
