//! Folded stacks: a report's span tree as `frame;frame;frame weight` lines.
//!
//! One line per span path, weighted by the path's **self** time in nanoseconds, so that a
//! frame's width (its own line plus every line below it) is exactly its measured total time
//! and no span is too short to show (a 300 ns span weighs 300).
//! Lines come in tree order: depth first, a parent before its children, siblings sorted by
//! name (byte order), threads as root frames sorted by name. The order is the same for the
//! same report, every time.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use heimdall_perf_core::Report;
use heimdall_perf_core::{SpanStats, PATH_SEPARATOR};

use crate::FlameOptions;

/// The frame name used for a span or thread whose name is empty (or only blanks).
pub const EMPTY_NAME: &str = "(unnamed)";

/// What a `;` inside a name becomes (`;` separates frames in the folded format).
pub const SEMICOLON_REPLACEMENT: char = ':';

/// A name as it can stand as one frame of a folded line and of inferno's SVG.
///
/// The folded format gives `;`, line breaks and a trailing number a meaning, so:
/// `;` becomes `:`; line breaks, tabs, other whitespace and control characters become one
/// space (runs collapse, ends are trimmed); a name whose last word is a number (`retry 2`)
/// gets `_` before it (`retry_2`), since a trailing number would be read as a sample
/// count; a leading `# ` (a comment in folded files) becomes `#_`; characters XML cannot
/// carry (U+FFFE, U+FFFF) become U+FFFD; an empty name becomes [`EMPTY_NAME`]. Names that
/// need none of this are borrowed as they are. Paths whose names clean to the same frames
/// are one stack (their times add up).
///
/// ```
/// use heimdall_perf_flame::frame_name;
/// assert_eq!(frame_name("detect"), "detect");
/// assert_eq!(frame_name("a;b\nc  d"), "a:b c d");
/// assert_eq!(frame_name("retry 2"), "retry_2");
/// assert_eq!(frame_name(" "), "(unnamed)");
/// ```
pub fn frame_name(name: &str) -> Cow<'_, str> {
    if is_clean(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.chars() {
        let c = match c {
            ';' => SEMICOLON_REPLACEMENT,
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c if c.is_whitespace() || c.is_control() => {
                pending_space = !out.is_empty();
                continue;
            }
            c => c,
        };
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    if let Some(i) = out.rfind(' ') {
        if is_number_like(&out[i + 1..]) {
            out.replace_range(i..=i, "_");
        }
    }
    if out.starts_with("# ") {
        out.replace_range(1..2, "_");
    }
    if out.is_empty() {
        out.push_str(EMPTY_NAME);
    }
    Cow::Owned(out)
}

/// Whether `name` can be used as a frame unchanged (the fast path of [`frame_name`]).
fn is_clean(name: &str) -> bool {
    if name.is_empty()
        || name.starts_with(' ')
        || name.ends_with(' ')
        || name.starts_with("# ")
        || name.contains("  ")
    {
        return false;
    }
    let bad = name.chars().any(|c| {
        c == ';'
            || c == '\u{FFFE}'
            || c == '\u{FFFF}'
            || (c != ' ' && (c.is_whitespace() || c.is_control()))
    });
    if bad {
        return false;
    }
    match name.rfind(' ') {
        Some(i) => !is_number_like(&name[i + 1..]),
        None => true,
    }
}

/// A word inferno would read as a sample count (`12`, `1.5`, `.`).
fn is_number_like(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// One folded line: a stack of frames and its weight (self time, ns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedLine {
    text: String,
    stack_len: usize,
    weight: u64,
}

impl FoldedLine {
    fn new(frames: &[Cow<'_, str>], weight: u64) -> Self {
        let mut text = join_frames(frames);
        let stack_len = text.len();
        // Writing into a String cannot fail.
        let _ = write!(text, " {weight}");
        FoldedLine {
            text,
            stack_len,
            weight,
        }
    }

    /// The frames joined by `;`, e.g. `processing;frame;detect`.
    pub fn stack(&self) -> &str {
        &self.text[..self.stack_len]
    }

    /// The frames, root first.
    pub fn frames(&self) -> impl Iterator<Item = &str> {
        self.stack().split(PATH_SEPARATOR)
    }

    /// Self time of the path, in nanoseconds.
    pub fn weight_ns(&self) -> u64 {
        self.weight
    }

    /// The whole line, `stack weight`, without a line break.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for FoldedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One line of a differential: a stack and its weight before and after (self time, ns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    text: String,
    stack_len: usize,
    before: u64,
    after: u64,
}

impl DiffLine {
    fn new(frames: &[Cow<'_, str>], before: u64, after: u64) -> Self {
        let mut text = join_frames(frames);
        let stack_len = text.len();
        // Writing into a String cannot fail.
        let _ = write!(text, " {before} {after}");
        DiffLine {
            text,
            stack_len,
            before,
            after,
        }
    }

    /// The frames joined by `;`.
    pub fn stack(&self) -> &str {
        &self.text[..self.stack_len]
    }

    /// Self time in the "before" report, ns (scaled when normalising).
    pub fn before_ns(&self) -> u64 {
        self.before
    }

    /// Self time in the "after" report, ns.
    pub fn after_ns(&self) -> u64 {
        self.after
    }

    /// The whole line, `stack before after` (the format of `inferno-diff-folded`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DiffLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn join_frames(frames: &[Cow<'_, str>]) -> String {
    let len = frames.iter().map(|f| f.len() + 1).sum::<usize>() + 21;
    let mut s = String::with_capacity(len);
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push(PATH_SEPARATOR);
        }
        s.push_str(f);
    }
    s
}

/// A span path as folded frames (thread root included when asked) and its self time.
struct Entry<'a> {
    frames: Vec<Cow<'a, str>>,
    self_ns: u128,
}

/// The thread label of a span: its name, the name listed in `report.threads`, or
/// `thread-<id>`; `None` for merged statistics.
fn thread_label<'a>(report: &'a Report, span: &'a SpanStats) -> Option<Cow<'a, str>> {
    if let Some(name) = span.thread.as_deref() {
        return Some(Cow::Borrowed(name));
    }
    let id = span.thread_id?;
    Some(match report.threads.iter().find(|t| t.id == id) {
        Some(t) => Cow::Borrowed(t.name.as_str()),
        None => Cow::Owned(format!("thread-{id}")),
    })
}

/// The span paths of `report` as sorted, de-duplicated entries (tree order).
fn entries<'a>(report: &'a Report, merge_threads: bool) -> Vec<Entry<'a>> {
    // `spans` is the tree thread by thread; a hand-built report may carry only totals.
    let source = if report.spans.is_empty() {
        &report.span_totals
    } else {
        &report.spans
    };
    let mut out: Vec<Entry<'a>> = Vec::with_capacity(source.len());
    for span in source {
        let mut frames = Vec::with_capacity(span.path.len() + 1);
        if !merge_threads {
            if let Some(label) = thread_label(report, span) {
                frames.push(match label {
                    Cow::Borrowed(s) => frame_name(s),
                    Cow::Owned(s) => Cow::Owned(frame_name(&s).into_owned()),
                });
            }
        }
        frames.extend(span.path.iter().map(|n| frame_name(n)));
        if span.path.is_empty() {
            frames.push(Cow::Borrowed(EMPTY_NAME));
        }
        out.push(Entry {
            frames,
            self_ns: u128::from(span.self_ns),
        });
    }
    // Lexicographic order of frame lists is tree order: a path before its extensions,
    // siblings by name. Equal lists (threads merged, or names equal once cleaned) add up.
    out.sort_unstable_by(|a, b| a.frames.cmp(&b.frames));
    out.dedup_by(|later, kept| {
        if later.frames == kept.frames {
            kept.self_ns = kept.self_ns.saturating_add(later.self_ns);
            true
        } else {
            false
        }
    });
    out
}

/// Whether `path` has a descendant right after it in tree order.
fn has_children(path: &[Cow<'_, str>], next: Option<&[Cow<'_, str>]>) -> bool {
    next.is_some_and(|n| n.len() > path.len() && n[..path.len()] == *path)
}

/// Turns nanosecond weights into weights of `unit` nanoseconds (1: exact) by rounding the
/// running sum, so that any run of consecutive lines (a subtree, in tree order) adds up to
/// within one unit of its exact time, however many small spans it holds.
struct Rounder {
    unit: u128,
    sum_ns: u128,
    emitted: u128,
}

impl Rounder {
    fn new(unit_ns: u64) -> Self {
        Rounder {
            unit: u128::from(unit_ns.max(1)),
            sum_ns: 0,
            emitted: 0,
        }
    }

    fn push(&mut self, ns: u128) -> u128 {
        self.sum_ns = self.sum_ns.saturating_add(ns);
        let rounded = self.sum_ns.saturating_add(self.unit / 2) / self.unit;
        let w = rounded - self.emitted;
        self.emitted = rounded;
        w
    }
}

fn to_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The folded stacks of `report`, in tree order.
///
/// Per thread (the thread name is the root frame) unless `options.merge_threads`. Each line
/// weighs the path's self time in ns; a path with no time of its own and children is left
/// to its children's lines, while a leaf is always written, even at weight 0, so that every
/// recorded span path is named.
///
/// ```
/// use heimdall_perf_flame::{fold, FlameOptions};
/// let report = heimdall_perf_testkit::sample_report();
/// let lines = fold(&report, &FlameOptions::default());
/// assert!(lines.iter().any(|l| l.stack() == "processing;frame;detect;nms"));
/// assert!(lines.iter().all(|l| l.as_str().ends_with(&format!(" {}", l.weight_ns()))));
/// ```
pub fn fold(report: &Report, options: &FlameOptions) -> Vec<FoldedLine> {
    fold_in(report, options, 1)
}

/// [`fold`] with weights in units of `unit_ns` nanoseconds (for graphs whose total in ns
/// would be too large to draw).
pub(crate) fn fold_in(report: &Report, options: &FlameOptions, unit_ns: u64) -> Vec<FoldedLine> {
    let entries = entries(report, options.merge_threads);
    let mut rounder = Rounder::new(unit_ns);
    let mut lines = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let w = rounder.push(e.self_ns);
        let next = entries.get(i + 1).map(|n| n.frames.as_slice());
        if w > 0 || !has_children(&e.frames, next) {
            lines.push(FoldedLine::new(&e.frames, to_u64(w)));
        }
    }
    lines
}

/// The folded stacks of `report` as text, one line each: what [`FoldedSink`](crate::FoldedSink)
/// writes.
pub(crate) fn write_folded(
    report: &Report,
    options: &FlameOptions,
    out: &mut dyn std::io::Write,
) -> Result<(), crate::FlameError> {
    let wrap = |source| crate::FlameError::Write {
        what: "folded stacks",
        session: report.session.name.clone(),
        source,
    };
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
    for line in fold(report, options) {
        std::io::Write::write_all(&mut w, line.as_str().as_bytes()).map_err(wrap)?;
        std::io::Write::write_all(&mut w, b"\n").map_err(wrap)?;
    }
    std::io::Write::flush(&mut w).map_err(wrap)
}

/// The differential of two reports: every stack of either, with its self time before and
/// after, in tree order — the input of a differential flamegraph (and the output format of
/// `inferno-diff-folded`, so other tools can draw it too).
///
/// With `options.normalize_differential`, the "before" weights are scaled so that both
/// reports have the same total (compare shapes, not load).
///
/// ```
/// use heimdall_perf_flame::{diff_fold, FlameOptions};
/// let r = heimdall_perf_testkit::sample_report();
/// let lines = diff_fold(&r, &r, &FlameOptions::default());
/// assert!(lines.iter().all(|l| l.before_ns() == l.after_ns()));
/// ```
pub fn diff_fold(before: &Report, after: &Report, options: &FlameOptions) -> Vec<DiffLine> {
    diff_fold_in(before, after, options, 1)
}

/// [`diff_fold`] with weights in units of `unit_ns` nanoseconds.
pub(crate) fn diff_fold_in(
    before: &Report,
    after: &Report,
    options: &FlameOptions,
    unit_ns: u64,
) -> Vec<DiffLine> {
    let b = entries(before, options.merge_threads);
    let a = entries(after, options.merge_threads);
    // Merge the two sorted lists into their union, still in tree order.
    let mut union: Vec<(&[Cow<'_, str>], u128, u128)> = Vec::with_capacity(b.len().max(a.len()));
    let (mut i, mut j) = (0, 0);
    while i < b.len() || j < a.len() {
        let order = match (b.get(i), a.get(j)) {
            (Some(x), Some(y)) => x.frames.cmp(&y.frames),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                union.push((&b[i].frames, b[i].self_ns, 0));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                union.push((&a[j].frames, 0, a[j].self_ns));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                union.push((&b[i].frames, b[i].self_ns, a[j].self_ns));
                i += 1;
                j += 1;
            }
        }
    }
    let scale = if options.normalize_differential {
        let tb: u128 = union.iter().map(|u| u.1).sum();
        let ta: u128 = union.iter().map(|u| u.2).sum();
        (tb > 0 && ta != tb).then(|| ta as f64 / tb as f64)
    } else {
        None
    };
    let mut rb = Rounder::new(unit_ns);
    let mut ra = Rounder::new(unit_ns);
    // Scaling the running sum (not each line) keeps the scaled total equal to the "after"
    // total, however many lines there are.
    let (mut raw_before, mut scaled_before) = (0u128, 0u128);
    let mut lines = Vec::with_capacity(union.len());
    for (k, &(frames, before_ns, after_ns)) in union.iter().enumerate() {
        let before_ns = match scale {
            Some(f) => {
                raw_before = raw_before.saturating_add(before_ns);
                // Saturating float-to-int conversion; the factor is finite and positive,
                // so the scaled running sum never decreases.
                let scaled = (raw_before as f64 * f).round() as u128;
                let w = scaled.saturating_sub(scaled_before);
                scaled_before = scaled_before.max(scaled);
                w
            }
            None => before_ns,
        };
        let wb = rb.push(before_ns);
        let wa = ra.push(after_ns);
        let next = union.get(k + 1).map(|n| n.0);
        if wb > 0 || wa > 0 || !has_children(frames, next) {
            lines.push(DiffLine::new(frames, to_u64(wb), to_u64(wa)));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names_are_borrowed() {
        for n in ["detect", "a b", "op_10", "x::y<T>", "µ-frame", "v1.2 final"] {
            assert!(matches!(frame_name(n), Cow::Borrowed(_)), "{n}");
        }
    }

    #[test]
    fn cleaning_is_idempotent_and_matches_the_fast_path() {
        let odd = [
            "a;b",
            "a\nb",
            "  lead",
            "trail \t",
            "x  y",
            "retry 2",
            "retry 2.5",
            "# comment",
            "",
            "\u{0}",
            "\u{FFFF}",
            "a ; 1",
            heimdall_perf_testkit::HOSTILE_NAME,
        ];
        for n in odd {
            let once = frame_name(n).into_owned();
            assert!(is_clean(&once), "{n:?} -> {once:?}");
            assert_eq!(frame_name(&once), once);
            assert!(!once.contains(';') && !once.contains('\n') && !once.is_empty());
        }
        assert_eq!(frame_name("a ; 1"), "a :_1");
        assert_eq!(frame_name("# comment"), "#_comment");
        assert_eq!(frame_name("\u{0}"), EMPTY_NAME);
    }

    #[test]
    fn nanosecond_weights_are_the_times_themselves() {
        let mut r = Rounder::new(1);
        let ns = [300u128, 1, 0, 999, 1_000_000_007];
        assert_eq!(ns.map(|n| r.push(n)), ns);
    }

    #[test]
    fn rounding_keeps_subtree_sums_within_a_microsecond() {
        let mut r = Rounder::new(1000);
        let ws: Vec<u128> = (0..1000).map(|_| r.push(400)).collect();
        assert_eq!(ws.iter().sum::<u128>(), 400);
        // Any window of consecutive weights is within 1 µs of its exact time.
        for (start, len) in [(0usize, 3usize), (5, 10), (17, 333)] {
            let got: u128 = ws[start..start + len].iter().sum();
            let exact = 400 * len as u128;
            assert!((got * 1000).abs_diff(exact) < 1000, "{got} vs {exact} ns");
        }
    }
}
