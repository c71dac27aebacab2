//! `heimdall-perf`: render saved reports, summarise them, compare two runs.

fn main() -> std::process::ExitCode {
    heimdall_perf_cli::main_with_args(std::env::args_os())
}
