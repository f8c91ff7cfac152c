//! Fault injection for tests: [`FaultInjection`], an around-decorator that makes chosen calls
//! of a store fail before or after the store applied them, stall, or never complete, scripted
//! or at seeded random rates, and counts every call per operation.
//!
//! This is `strata_layers::faults`, re-exported: the same layer serves tests and staging
//! drills (its docs describe every behaviour).

pub use strata_layers::faults::{Fault, FaultInjection};
