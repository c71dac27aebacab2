//! Fuzzes the JSON report reader on stable Rust.
//!
//! `cargo run --release -p heimdall-perf-fuzz --bin report_reader -- --seconds N [--seed S]
//! [--corpus DIR]`: runs every file of the corpus (default `fuzz/corpus/report_reader/`),
//! then mutants for N seconds (default 60), prints the iterations and outcome counts, and
//! exits with status 1 if any input panicked (saved under `target/fuzz-crashes/report_reader/`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use heimdall_perf_fuzz::report_reader::{corpus_dir, load_corpus, run};

fn main() -> ExitCode {
    let mut seconds = 60u64;
    let mut seed = 0x5eed_u64;
    let mut corpus = corpus_dir();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--seconds" => {
                seconds = value("--seconds")
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("--seconds: {e}")))
            }
            "--seed" => {
                seed = value("--seed")
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("--seed: {e}")))
            }
            "--corpus" => corpus = PathBuf::from(value("--corpus")),
            "--replay" => {
                // One saved input, with the panic's full report (RUST_BACKTRACE=1 for its
                // stack): what a crash file is for.
                let path = value("--replay");
                let input = std::fs::read(&path)
                    .unwrap_or_else(|e| usage(&format!("cannot read {path}: {e}")));
                let outcome = heimdall_perf_fuzz::report_reader::check_caught(&input);
                println!("{path}: {outcome:?}");
                return ExitCode::from(u8::from(
                    outcome == heimdall_perf_fuzz::report_reader::Outcome::Panicked,
                ));
            }
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    let files = match load_corpus(&corpus) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => usage(&format!("the corpus {} is empty", corpus.display())),
        Err(e) => usage(&e),
    };
    // Panics are caught and counted; their messages would flood the output.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info}");
    }));
    let crash_dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-crashes/report_reader");
    let inputs: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
    let started = Instant::now();
    let stats = run(
        &inputs,
        seed,
        Duration::from_secs(seconds),
        u64::MAX,
        &crash_dir,
    );
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "report_reader: seed {seed}, corpus {} files, {:.1} s, {} iterations ({:.0}/s): {} parsed, {} rejected, {} panicked",
        inputs.len(),
        elapsed,
        stats.iterations,
        stats.iterations as f64 / elapsed.max(1e-9),
        stats.parsed,
        stats.rejected,
        stats.panicked
    );
    for path in &stats.crashes {
        println!("crashing input saved: {}", path.display());
    }
    if stats.panicked > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage(why: &str) -> ! {
    eprintln!("report_reader: {why}\nusage: report_reader [--seconds N] [--seed S] [--corpus DIR] | --replay FILE");
    std::process::exit(2)
}
