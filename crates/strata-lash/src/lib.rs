//! The bridge between Strata and lash-core's `RuntimePersistence` (docs in progress).

mod factory;
mod for_lash;
mod from_lash;
pub mod mapping;
pub mod wait;

pub use factory::{ForLashFactory, FromLashFactory};
pub use for_lash::ForLash;
pub use from_lash::FromLash;
