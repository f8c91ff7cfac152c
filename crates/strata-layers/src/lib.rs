//! Observability decorators for any Strata store (WIP docs).

#[cfg(any(feature = "tracing", feature = "metrics"))]
mod call_info;
#[cfg(feature = "tracing")]
pub mod tracing;

#[cfg(feature = "tracing")]
pub use self::tracing::TracingLayer;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "metrics")]
pub use self::metrics::MetricsLayer;
