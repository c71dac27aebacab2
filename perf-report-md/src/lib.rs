//! GitHub-flavoured Markdown report sink of heimdall-perf.
