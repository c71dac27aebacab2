//! Stable-Rust fuzz harness for the plugin loader (`heimdall_perf_plugin::load_sink`).
//!
//! Takes the real OpenMetrics plugin `.so` as the seed, applies `arbitrary`-driven mutations
//! from a seeded PRNG (deterministic for a given `--seed`), writes each mutant over the same
//! file and loads it in this process. Any mutant that loads must also render a small report.
//!
//! ```text
//! cargo build -p heimdall-perf-plugin-openmetrics
//! cargo run -p heimdall-perf-fuzz --bin plugin_loader -- --seconds 60 [--seed N] [--plugin PATH]
//! ```
//!
//! The mutations are the damage the loader's checks are meant to catch before `dlopen`:
//! truncation (with or without a garbage or zero-filled tail), flipped identification bytes,
//! and ELF/program header fields (`e_phoff`, `e_phnum`, `e_shoff`, `e_shnum`, …, and
//! `p_offset`/`p_filesz` of loadable and dynamic segments) set to random or out-of-file
//! values. Flipping bytes *inside* code or data, or moving a segment to another place inside
//! the file, is deliberately not done: such a library passes every header check and then
//! crashes when its code runs, which is inherent to native plugins (no loader can prevent
//! it) and would only kill this process.
//!
//! Exits with status 1 if a load or render panicked, if the unmodified seed does not load,
//! or if a mutant that loaded failed to render.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use heimdall_perf_core::ReportSink;
use heimdall_perf_plugin::{load_sink, PluginError};
use heimdall_perf_testkit::sample_report;

const PLUGIN_FILE: &str = "libheimdall_perf_plugin_openmetrics.so";

/// A value written into a header field.
#[derive(Arbitrary, Debug)]
enum Value {
    /// Any value.
    Random(u64),
    /// Just past the end of the file (`len + k`).
    PastEnd(u16),
    /// Near the top of the range, where offset + size overflows.
    NearMax(u8),
}

/// An ELF header field (64-bit layout).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum HeaderField {
    Type,
    Machine,
    Version,
    Phoff,
    Shoff,
    Ehsize,
    Phentsize,
    Phnum,
    Shentsize,
    Shnum,
    Shstrndx,
}

/// A program header field that decides where a segment's bytes are in the file.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum SegmentField {
    Offset,
    Filesz,
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// Cut the file at `at` (modulo its length): a half-copied file.
    Truncate { at: u32 },
    /// Cut, then append up to 4 KiB of garbage (the result stays shorter than the seed).
    TruncateWithGarbage { at: u32, garbage: Vec<u8> },
    /// Zero everything from `from` on: a preallocated file being filled in order.
    ZeroTail { from: u32 },
    /// Flip bits of one of the 16 identification bytes.
    FlipIdent { byte: u8, mask: u8 },
    /// Overwrite an ELF header field.
    Header { field: HeaderField, value: Value },
    /// Move the file bytes of a loadable or the dynamic segment out of the file.
    Segment {
        index: u8,
        field: SegmentField,
        value: Value,
    },
    /// Two of the above.
    Both(Box<Mutation>, Box<Mutation>),
}

/// SplitMix64: small, deterministic, good enough to feed `arbitrary`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The `N` bytes at `at`, if the file has them (offsets come from mutated headers).
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    bytes_at(b, at).map_or(0, u16::from_le_bytes)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    bytes_at(b, at).map_or(0, u32::from_le_bytes)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    bytes_at(b, at).map_or(0, u64::from_le_bytes)
}

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    let Some(end) = at.checked_add(bytes.len()) else {
        return;
    };
    if let Some(target) = b.get_mut(at..end) {
        target.copy_from_slice(bytes);
    }
}

/// The value to write, for a file of `len` bytes.
fn value(v: &Value, len: u64) -> u64 {
    match v {
        Value::Random(x) => *x,
        Value::PastEnd(k) => len + 1 + u64::from(*k),
        Value::NearMax(k) => u64::MAX - u64::from(*k),
    }
}

/// Applies `m` to `bytes` (a 64-bit little-endian ELF file).
fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len() as u64;
    let cut = |at: u32, len: usize| (at as usize) % len.max(1);
    match m {
        Mutation::Truncate { at } => {
            let at = cut(*at, bytes.len());
            bytes.truncate(at);
        }
        Mutation::TruncateWithGarbage { at, garbage } => {
            let at = cut(*at, bytes.len());
            let removed = bytes.len() - at;
            bytes.truncate(at);
            let keep = garbage.len().min(4096).min(removed.saturating_sub(1));
            bytes.extend_from_slice(&garbage[..keep]);
        }
        Mutation::ZeroTail { from } => {
            let from = cut(*from, bytes.len());
            bytes[from..].fill(0);
        }
        Mutation::FlipIdent { byte, mask } => {
            let i = usize::from(*byte % 16);
            if let Some(b) = bytes.get_mut(i) {
                *b ^= (*mask).max(1);
            }
        }
        Mutation::Header { field, value: v } => {
            let x = value(v, len);
            match field {
                HeaderField::Type => put(bytes, 16, &(x as u16).to_le_bytes()),
                HeaderField::Machine => put(bytes, 18, &(x as u16).to_le_bytes()),
                HeaderField::Version => put(bytes, 20, &(x as u32).to_le_bytes()),
                HeaderField::Phoff => {
                    // Only values that cannot land on other bytes of the file that happen to
                    // look like program headers: out of the file, or misaligned.
                    let phoff = le_u64(bytes, 32);
                    let x = if x < len {
                        phoff.wrapping_add(1 + x % 7)
                    } else {
                        x
                    };
                    put(bytes, 32, &x.to_le_bytes())
                }
                HeaderField::Shoff => put(bytes, 40, &x.to_le_bytes()),
                HeaderField::Ehsize => put(bytes, 52, &(x as u16).to_le_bytes()),
                HeaderField::Phentsize => put(bytes, 54, &(x as u16).to_le_bytes()),
                HeaderField::Phnum => put(bytes, 56, &(x as u16).to_le_bytes()),
                HeaderField::Shentsize => put(bytes, 58, &(x as u16).to_le_bytes()),
                HeaderField::Shnum => put(bytes, 60, &(x as u16).to_le_bytes()),
                HeaderField::Shstrndx => put(bytes, 62, &(x as u16).to_le_bytes()),
            }
        }
        Mutation::Segment {
            index,
            field,
            value: v,
        } => {
            let phoff = le_u64(bytes, 32) as usize;
            let phnum = usize::from(le_u16(bytes, 56));
            // The loadable and dynamic segments, in order.
            let targets: Vec<usize> = (0..phnum)
                .map(|i| phoff.saturating_add(56 * i))
                .filter(|&at| matches!(le_u32(bytes, at), 1 | 2))
                .collect();
            if targets.is_empty() {
                return;
            }
            let at = targets[usize::from(*index) % targets.len()];
            let offset = le_u64(bytes, at + 8);
            let filesz = le_u64(bytes, at + 32);
            let mut x = value(v, len);
            // Keep only values that put the segment's end past the end of the file: a
            // segment moved to other bytes inside the file passes every header check and
            // crashes when its code runs (see the module docs).
            match field {
                SegmentField::Offset => {
                    if x.checked_add(filesz).is_some_and(|end| end <= len) {
                        x = len - filesz.min(len) + 1 + x % 4096;
                    }
                    put(bytes, at + 8, &x.to_le_bytes());
                }
                SegmentField::Filesz => {
                    if offset.checked_add(x).is_some_and(|end| end <= len) {
                        x = len - offset.min(len) + 1 + x % 4096;
                    }
                    put(bytes, at + 32, &x.to_le_bytes());
                    // Memory size at least as large, so that the check that fires is the
                    // one about the file.
                    put(bytes, at + 40, &x.to_le_bytes());
                }
            }
        }
        Mutation::Both(a, b) => {
            apply(bytes, a);
            apply(bytes, b);
        }
    }
}

/// The kind of an error, for the counts.
fn kind(e: &PluginError) -> String {
    let name = match e {
        PluginError::NotFound { .. } => "NotFound",
        PluginError::NotAFile { .. } => "NotAFile",
        PluginError::Io { .. } => "Io",
        PluginError::TooLarge { .. } => "TooLarge",
        PluginError::InvalidElf { detail, .. } => {
            // The reason, without the numbers.
            let reason: String = detail
                .split(['(', ':'])
                .next()
                .unwrap_or("")
                .split_whitespace()
                .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(" ");
            return format!("InvalidElf: {reason}");
        }
        PluginError::PrivateCopy { .. } => "PrivateCopy",
        PluginError::Load { .. } => "Load (refused by the dynamic loader)",
        PluginError::MissingEntry { .. } => "MissingEntry",
        PluginError::AbiVersion { .. } => "AbiVersion",
        PluginError::InvalidDescriptor { .. } => "InvalidDescriptor",
        _ => "other",
    };
    name.to_string()
}

struct Args {
    seconds: u64,
    seed: u64,
    plugin: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 30,
        seed: 0x5EED,
        plugin: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--plugin" => args.plugin = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err("usage: plugin_loader [--seconds N] [--seed N] [--plugin PATH]".into())
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// The OpenMetrics plugin built by `cargo build -p heimdall-perf-plugin-openmetrics`.
fn find_plugin() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut targets = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(root.join(dir));
    }
    targets.push(root.join("target"));
    let candidates: Vec<PathBuf> = targets
        .iter()
        .flat_map(|t| {
            [
                t.join("debug").join(PLUGIN_FILE),
                t.join("release").join(PLUGIN_FILE),
                t.join("plugin-fixtures/debug").join(PLUGIN_FILE),
            ]
        })
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "no {PLUGIN_FILE} found (looked at {candidates:?}); run `cargo build -p heimdall-perf-plugin-openmetrics` or pass --plugin PATH"
        )
    })
}

fn render(sink: &dyn ReportSink) -> Result<usize, String> {
    let mut out = Vec::new();
    sink.render(&sample_report(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out.len())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let plugin = match args.plugin.clone().map_or_else(find_plugin, Ok) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let seed = match std::fs::read(&plugin) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read the seed `{}`: {e}", plugin.display());
            return ExitCode::from(2);
        }
    };
    if !(seed.starts_with(b"\x7fELF\x02\x01") && le_u16(&seed, 18) == 62) {
        eprintln!("the seed must be an x86-64 ELF file (the harness writes 64-bit little-endian header fields)");
        return ExitCode::from(2);
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    let path = dir.path().join("mutant.so");

    // The unmodified seed must load and render, or the run means nothing.
    match load_sink(&plugin).map(|s| render(&*s)) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            eprintln!("the seed loads but does not render: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("the seed does not load: {e}");
            return ExitCode::FAILURE;
        }
    }
    // Panics are counted, not printed one by one.
    std::panic::set_hook(Box::new(|_| {}));

    println!(
        "plugin_loader: seed {} ({} bytes), PRNG seed {}, {} s",
        plugin.display(),
        seed.len(),
        args.seed,
        args.seconds
    );
    let mut rng = Rng(args.seed);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut iterations, mut panics, mut render_failures) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut raw = vec![0u8; 512];
    while Instant::now() < deadline {
        rng.fill(&mut raw);
        let Ok(mutation) = Mutation::arbitrary(&mut Unstructured::new(&raw)) else {
            continue;
        };
        let mut mutant = seed.clone();
        apply(&mut mutant, &mutation);
        // Written over the same path each time: the previous mutant, maybe loaded, is
        // overwritten in place while it stays mapped.
        if let Err(e) = std::fs::write(&path, &mutant) {
            eprintln!("cannot write the mutant: {e}");
            return ExitCode::from(2);
        }
        iterations += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            load_sink(&path).map(|sink| render(&*sink))
        }));
        let key = match outcome {
            Err(_) => {
                panics += 1;
                eprintln!("PANIC on mutation {mutation:?}");
                "PANIC".to_string()
            }
            Ok(Err(e)) => {
                if !e.to_string().contains(&path.display().to_string()) {
                    eprintln!("error without the path: {e}");
                    panics += 1;
                }
                kind(&e)
            }
            Ok(Ok(Ok(_))) => "ok (loaded and rendered)".to_string(),
            Ok(Ok(Err(e))) => {
                render_failures += 1;
                eprintln!("loaded but failed to render ({mutation:?}): {e}");
                "ok but render failed".to_string()
            }
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let elapsed = start.elapsed();
    println!(
        "{iterations} iterations in {:.1} s ({:.1}/s)",
        elapsed.as_secs_f64(),
        iterations as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    for (k, n) in &outcomes {
        println!("{n:>8}  {k}");
    }
    println!("panics: {panics}, render failures after a successful load: {render_failures}");
    if panics > 0 || render_failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
