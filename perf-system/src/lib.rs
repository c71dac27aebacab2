//! System and process metrics sampler for heimdall-perf (sysinfo).
