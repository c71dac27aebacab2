//! Drop-in report plugins for heimdall-perf: the versioned C ABI, the export macro for plugin authors, and the host-side loader.
