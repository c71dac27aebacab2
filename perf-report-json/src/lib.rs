//! JSON report sink of heimdall-perf (lossless), and reading saved reports back.
