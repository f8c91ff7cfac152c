//! Test support for Strata stores: fault injection ([`faults`]) for decorator and runtime
//! tests, and (added next) the public conformance suite.

pub mod faults;
