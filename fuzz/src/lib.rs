//! Stable-Rust fuzz harnesses for heimdall-perf (see the binaries in `src/bin`).
//!
//! [`report_reader`] drives the JSON report reader (`heimdall_perf_report_json::read_report`
//! and friends) with mutants of a committed seed corpus.

#![warn(missing_docs)]

pub mod report_reader {
    //! The report reader's harness: mutants of the seed corpus in
    //! `fuzz/corpus/report_reader/`, made with a seeded PRNG and [`arbitrary`], fed to
    //! [`from_slice`]; a report that reads is written back as JSON (compact and pretty) and
    //! read again, and must come back unchanged. Every input runs under `catch_unwind`: a
    //! panic is a finding.
    //!
    //! Mutations: byte flips, insertions and deletions, truncation, splicing two inputs,
    //! and, on inputs that are JSON, structure-aware changes of a random value (another
    //! type, a deleted key, a huge or odd number, a long or odd string, deep nesting).

    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use arbitrary::Unstructured;
    use heimdall_perf_core::{Report, ReportSink};
    use heimdall_perf_report_json::{from_slice, JsonSink};
    use heimdall_perf_testkit::SplitMix;
    use serde_json::Value;

    /// What one input did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        /// Read as a report, and its JSON read back unchanged.
        Parsed,
        /// Refused with an error (the expected fate of most mutants).
        Rejected,
        /// Panicked (in the reader, the writer or the round trip check): a finding.
        Panicked,
    }

    /// Counts of a run.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Stats {
        /// Inputs tried.
        pub iterations: u64,
        /// Inputs read as reports (and round-tripped).
        pub parsed: u64,
        /// Inputs refused with an error.
        pub rejected: u64,
        /// Inputs that panicked.
        pub panicked: u64,
        /// Where the panicking inputs were saved.
        pub crashes: Vec<PathBuf>,
    }

    /// The committed seed corpus: `fuzz/corpus/report_reader/`.
    pub fn corpus_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/report_reader")
    }

    /// Every file of `dir`, sorted by name (an error names the directory or file).
    pub fn load_corpus(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path();
            if path.is_file() {
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into();
                files.push((name, bytes));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Reads `input`; when it is a report, writes it back (compact and pretty) and reads it
    /// again. Panics when the round trip changes the report (a finding, like any panic).
    pub fn check(input: &[u8]) -> Outcome {
        let Ok(report) = from_slice(input) else {
            return Outcome::Rejected;
        };
        for sink in [JsonSink::new().with_pretty(false), JsonSink::new()] {
            let mut out = Vec::new();
            sink.render(&report, &mut out)
                .unwrap_or_else(|e| panic!("a report that was read cannot be written: {e}"));
            let back: Report = from_slice(&out).unwrap_or_else(|e| {
                panic!("the JSON written for a report that was read cannot be read: {e}")
            });
            // Debug text: NaN-aware, and every field of the report.
            assert_eq!(
                format!("{back:?}"),
                format!("{report:?}"),
                "the round trip changed the report"
            );
        }
        // Every other format renders what was read (the CLI's `render`): a sink may refuse a
        // report with an error, never panic on it.
        let sinks: [Box<dyn ReportSink>; 6] = [
            Box::new(heimdall_perf_report_md::MarkdownSink::new()),
            Box::new(heimdall_perf_report_html::HtmlSink::new()),
            Box::new(heimdall_perf_flame::FlamegraphSink::new()),
            Box::new(heimdall_perf_flame::FoldedSink::new()),
            Box::new(heimdall_perf_report_openmetrics::OpenMetricsSink::new()),
            Box::new(heimdall_perf_report_trace::TraceSink::new()),
        ];
        for sink in sinks {
            let _ = sink.render(&report, &mut Vec::new());
        }
        Outcome::Parsed
    }

    /// [`check`] under `catch_unwind`.
    pub fn check_caught(input: &[u8]) -> Outcome {
        catch_unwind(AssertUnwindSafe(|| check(input))).unwrap_or(Outcome::Panicked)
    }

    /// A mutant of one or two inputs of `corpus` (not empty), drawn with `rng`.
    pub fn mutant(corpus: &[Vec<u8>], rng: &mut SplitMix) -> Vec<u8> {
        let entropy: Vec<u8> = (0..64).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        let mut u = Unstructured::new(&entropy);
        let pick = |u: &mut Unstructured<'_>| -> &Vec<u8> {
            let i = u.choose_index(corpus.len()).unwrap_or(0);
            &corpus[i]
        };
        let mut data = pick(&mut u).clone();
        // One to four mutations stacked.
        let rounds = u.int_in_range(1..=4u8).unwrap_or(1);
        for _ in 0..rounds {
            let kind = u.int_in_range(0..=9u8).unwrap_or(0);
            data = match kind {
                0..=4 => structural(&data, &mut u).unwrap_or_else(|| bytes(data, &mut u)),
                5 => {
                    // Splice: the start of one input, the end of another.
                    let other = pick(&mut u);
                    let a = u.choose_index(data.len() + 1).unwrap_or(0);
                    let b = u.choose_index(other.len() + 1).unwrap_or(0);
                    let mut out = data[..a].to_vec();
                    out.extend_from_slice(&other[b..]);
                    out
                }
                6 => {
                    // Deep nesting at a random place: the reader must refuse it, not
                    // overflow its stack.
                    let depth = u.int_in_range(100..=100_000usize).unwrap_or(1000);
                    let at = u.choose_index(data.len() + 1).unwrap_or(0);
                    let open = if u.arbitrary().unwrap_or(false) {
                        b"["
                    } else {
                        b"{\"a\":" as &[u8]
                    };
                    let mut out = data[..at].to_vec();
                    for _ in 0..depth {
                        out.extend_from_slice(open);
                    }
                    out.extend_from_slice(&data[at..]);
                    out
                }
                _ => bytes(data, &mut u),
            };
        }
        data
    }

    /// A byte-level mutation: flip, set, insert, delete or truncate.
    fn bytes(mut data: Vec<u8>, u: &mut Unstructured<'_>) -> Vec<u8> {
        const INTERESTING: &[u8] = b"\0\x7f\x80\xff\xef\xbb\xbf{}[]\":,-+.eE0129\\ntfu";
        let at = u.choose_index(data.len() + 1).unwrap_or(0);
        match u.int_in_range(0..=4u8).unwrap_or(0) {
            0 if at < data.len() => data[at] ^= 1 << u.int_in_range(0..=7u8).unwrap_or(0),
            1 if at < data.len() => data[at] = *u.choose(INTERESTING).unwrap_or(&b'0'),
            2 => {
                let b = *u.choose(INTERESTING).unwrap_or(&b'0');
                data.insert(at, b);
            }
            3 if at < data.len() => {
                let n = u
                    .int_in_range(1..=16usize)
                    .unwrap_or(1)
                    .min(data.len() - at);
                data.drain(at..at + n);
            }
            _ => data.truncate(at),
        }
        data
    }

    /// A structure-aware mutation of `data` read as JSON, or `None` if it is not JSON.
    fn structural(data: &[u8], u: &mut Unstructured<'_>) -> Option<Vec<u8>> {
        let text = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        let mut value: Value = serde_json::from_slice(text).ok()?;
        let count = count_nodes(&value);
        let target = u.choose_index(count).unwrap_or(0);
        let replacement = odd_value(u);
        let delete = u.int_in_range(0..=3u8).unwrap_or(0) == 0;
        let mut seen = 0;
        edit(&mut value, target, &mut seen, &mut |v, parent_key| {
            if delete {
                if let Value::Object(map) = v {
                    if let Some(k) = map.keys().next().cloned() {
                        map.remove(&k);
                        return;
                    }
                }
                if let Value::Array(items) = v {
                    items.pop();
                    return;
                }
            }
            let _ = parent_key;
            *v = replacement.clone();
        });
        serde_json::to_vec(&value).ok()
    }

    fn count_nodes(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count_nodes).sum(),
            Value::Object(o) => o.values().map(count_nodes).sum(),
            _ => 0,
        }
    }

    /// Calls `f` on the `target`-th node in depth-first order.
    fn edit(
        v: &mut Value,
        target: usize,
        seen: &mut usize,
        f: &mut dyn FnMut(&mut Value, Option<&str>),
    ) -> bool {
        if *seen == target {
            f(v, None);
            return true;
        }
        *seen += 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|c| edit(c, target, seen, f)),
            Value::Object(o) => o.values_mut().any(|c| edit(c, target, seen, f)),
            _ => false,
        }
    }

    /// A value of a random type, favouring the edge cases of a report's fields.
    fn odd_value(u: &mut Unstructured<'_>) -> Value {
        let n = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        match u.int_in_range(0..=17u8).unwrap_or(0) {
            0 => Value::Null,
            1 => Value::Bool(u.arbitrary().unwrap_or(true)),
            2 => Value::from(u64::MAX),
            3 => Value::from(i64::MIN),
            4 => Value::from(-1),
            5 => n(1.5),
            6 => n(f64::MAX),
            7 => n(5e-324),
            8 => Value::from(u32::MAX as u64 + 1),
            9 => Value::from("NaN"),
            10 => Value::from("-inf"),
            11 => Value::from(String::arbitrary_take(u)),
            12 => Value::from("\0\u{1}\u{FFFF}\u{10FFFF}<script>é".repeat(3)),
            13 => Value::from("x".repeat(u.int_in_range(0..=100_000usize).unwrap_or(0))),
            14 => Value::Array(vec![]),
            15 => Value::Object(Default::default()),
            16 => Value::from(u.arbitrary::<u64>().unwrap_or(0)),
            _ => n(u.arbitrary::<f64>().unwrap_or(0.0)),
        }
    }

    /// `String::arbitrary`, or an empty string when the entropy has run out.
    trait ArbitraryTake {
        fn arbitrary_take(u: &mut Unstructured<'_>) -> String;
    }
    impl ArbitraryTake for String {
        fn arbitrary_take(u: &mut Unstructured<'_>) -> String {
            u.arbitrary().unwrap_or_default()
        }
    }

    /// Runs the corpus, then mutants until `budget` is spent (or `max_iterations` inputs
    /// were tried), from the PRNG seed `seed`. Panicking inputs are saved in `crash_dir`.
    pub fn run(
        corpus: &[Vec<u8>],
        seed: u64,
        budget: Duration,
        max_iterations: u64,
        crash_dir: &Path,
    ) -> Stats {
        let mut stats = Stats::default();
        let mut rng = SplitMix::new(seed);
        let started = Instant::now();
        let record = |input: &[u8], stats: &mut Stats| {
            stats.iterations += 1;
            match check_caught(input) {
                Outcome::Parsed => stats.parsed += 1,
                Outcome::Rejected => stats.rejected += 1,
                Outcome::Panicked => {
                    stats.panicked += 1;
                    let _ = std::fs::create_dir_all(crash_dir);
                    let path = crash_dir.join(format!("crash-{seed}-{}.json", stats.iterations));
                    if std::fs::write(&path, input).is_ok() {
                        stats.crashes.push(path);
                    }
                }
            }
        };
        for input in corpus {
            record(input, &mut stats);
        }
        if corpus.is_empty() {
            return stats;
        }
        while stats.iterations < max_iterations && started.elapsed() < budget {
            let input = mutant(corpus, &mut rng);
            record(&input, &mut stats);
        }
        stats
    }
}
