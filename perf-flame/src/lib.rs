//! Flamegraphs and folded stacks from heimdall-perf span trees (inferno).
