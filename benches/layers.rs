//! Placeholder until this benchmark lands (owned by another change in progress).
fn main() {}
