//! Runs the tests of `examples/performance_analysis.rs` (its arguments, its error messages,
//! its built-in faults and a one-second run of its line) with `cargo test --workspace`: the
//! tests of an example run only with `--examples`, so the example is compiled in here as a
//! module, tests and all.

// Outside its own binary, the example's `main` and what only `main` uses are unused.
#[allow(dead_code)]
#[path = "../examples/performance_analysis.rs"]
mod example;
