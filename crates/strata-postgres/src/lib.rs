//! The PostgreSQL backend of Strata: one store for a fleet of runtime hosts.
//!
//! (Crate documentation is completed below the module list.)

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
