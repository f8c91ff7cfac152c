//! Examples and benchmarks of Strata live in `examples/` and `benches/`; this library is empty.
