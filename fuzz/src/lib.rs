//! Stable-Rust fuzz harnesses for heimdall-perf (see the binaries in `src/bin`).
