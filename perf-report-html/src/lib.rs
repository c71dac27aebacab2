//! Self-contained HTML report sink of heimdall-perf (askama templates).
