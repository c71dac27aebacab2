//! Drawing flamegraph SVGs through `inferno::flamegraph`, plain and differential: the
//! titles, inferno's options, the "nothing to draw" page and the tooltips rewritten as
//! durations. The sinks in `sink.rs` call [`render_svg`] and [`render_diff`].

use std::borrow::Cow;
use std::io::{self, Write};

use heimdall_perf_core::units::Style;
use heimdall_perf_core::Report;
use inferno::flamegraph::{self, Direction};

use crate::fold::{diff_fold_in, fold_in};
use crate::{FlameError, FlameOptions};

/// Figures in an SVG are typographic (true minus sign, `∞`).
const FIGURES: Style = Style::Typographic;

/// The largest total (µs) drawn: about 285 years. Beyond it inferno's differential colour
/// arithmetic could overflow, so a larger (necessarily corrupt) report is refused.
///
/// Graphs count nanoseconds, so that no span is too short to show. inferno's arithmetic
/// has the same bound whatever the unit, so a graph whose total would pass it in ns (about
/// 104 days of span time, all threads together: a long session on a many-threaded line)
/// counts microseconds instead; its tooltips read the same either way.
pub const MAX_TOTAL_US: u64 = 1 << 53;

/// The unit a graph counts in, in ns, and its name: ns when the largest total (ns) allows,
/// else µs.
fn unit_for(largest_ns: u128) -> (u64, &'static str) {
    if largest_ns <= u128::from(MAX_TOTAL_US) {
        (1, "ns")
    } else {
        (1000, "µs")
    }
}

/// Default width in pixels when none is set (the SVG then stretches to its container).
const DEFAULT_IMAGE_WIDTH: usize = 1200;

/// A duration in ns as the report writes it (`850 ns`, `6.00 ms`, `1 min 00 s`).
fn duration(ns: u64) -> String {
    FIGURES.duration(ns as f64)
}

/// Text that XML 1.0 can carry: control characters other than tab and line breaks become
/// spaces, U+FFFE/U+FFFF become U+FFFD.
fn xml_chars(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => ' ',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Escapes text for XML content and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml_chars(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The default title: session name and duration.
fn default_title(report: &Report) -> String {
    let running = if report.session.active {
        " (running)"
    } else {
        ""
    };
    format!(
        "{} — {}{running}",
        report.session.name,
        duration(report.session.duration_ns)
    )
}

/// Longest label key or value shown in a subtitle, in characters; a longer one is cut and
/// ends with `…` (the JSON report keeps it whole).
const MAX_LABEL_CHARS: usize = 64;

/// `text`, cut to [`MAX_LABEL_CHARS`] characters with `…` at the end if longer.
fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_LABEL_CHARS) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let (cut, _) = text
                .char_indices()
                .nth(MAX_LABEL_CHARS - 1)
                .unwrap_or_default();
            Cow::Owned(format!("{}…", &text[..cut]))
        }
    }
}

/// The session's labels as `key=value` joined by ` · ` (`line=3 · station=cell-7`), in key
/// order; empty when it has none.
fn labels_text(report: &Report) -> String {
    report
        .session
        .labels
        .iter()
        .map(|(k, v)| format!("{}={}", shorten(k), shorten(v)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The subtitle: the session's labels, its start and host, the span count and what the
/// width means (`line=3 · station=cell-7 · started … on … · 1,234 spans · width: total
/// time`). Escaped for XML when written.
fn subtitle(report: &Report, options: &FlameOptions) -> String {
    let mut s = labels_text(report);
    if !s.is_empty() {
        s.push_str(" · ");
    }
    s.push_str(&format!("started {}", report.session.started_at));
    if !report.session.host.is_empty() {
        s.push_str(" on ");
        s.push_str(&report.session.host);
    }
    s.push_str(&format!(
        " · {} spans · width: total time{}",
        FIGURES.count(report.span_count()),
        if options.merge_threads {
            " · threads merged"
        } else {
            ""
        }
    ));
    s
}

/// inferno's options for `options`, with `title` and `subtitle` already decided.
fn inferno_options(
    options: &FlameOptions,
    title: String,
    subtitle: String,
    unit: &str,
) -> flamegraph::Options<'static> {
    let mut o = flamegraph::Options::default();
    o.title = xml_chars(&title);
    o.subtitle = Some(xml_chars(&subtitle));
    o.count_name = unit.to_string();
    o.name_type = "Span:".to_string();
    // Colour from an FNV hash of the frame name alone: the same span gets the same colour
    // in every graph, on every machine.
    o.deterministic = true;
    o.direction = if options.inverted {
        Direction::Inverted
    } else {
        Direction::Straight
    };
    o.min_width = options.min_width_percent;
    o.image_width = options.image_width;
    // Our lines are in tree order, which is not byte order as soon as a name holds a
    // character below `;` (`op_1` and `op_10`, `a::b`): sorting them would split a frame
    // in two. Flame-chart mode is inferno's way to take lines in the order given (it
    // reverses them, hence the reversed input) and still merges contiguous frames.
    o.flame_chart = true;
    o
}

/// A valid SVG that says there is nothing to draw (inferno refuses an empty input).
fn write_nothing_svg(
    out: &mut dyn Write,
    options: &FlameOptions,
    title: &str,
    subtitle: &str,
    message: &str,
) -> io::Result<()> {
    let width = options.image_width.unwrap_or(DEFAULT_IMAGE_WIDTH);
    let height = 120;
    write!(
        out,
        concat!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n",
            "<svg version=\"1.1\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" ",
            "xmlns=\"http://www.w3.org/2000/svg\">\n",
            "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"{h}\" fill=\"#eeeeee\"/>\n",
            "<text id=\"title\" x=\"50%\" y=\"24\" text-anchor=\"middle\" ",
            "font-family=\"monospace\" font-size=\"17\">{title}</text>\n",
            "<text id=\"subtitle\" x=\"50%\" y=\"48\" text-anchor=\"middle\" ",
            "font-family=\"monospace\" font-size=\"12\">{subtitle}</text>\n",
            "<text id=\"nothing\" x=\"50%\" y=\"84\" text-anchor=\"middle\" ",
            "font-family=\"monospace\" font-size=\"14\">{message}</text>\n",
            "</svg>\n"
        ),
        w = width,
        h = height,
        title = xml_escape(title),
        subtitle = xml_escape(subtitle),
        message = xml_escape(message),
    )
}

/// What [`draw`] needs: folded lines in tree order and the texts around them.
struct Drawing<'a> {
    /// Session name(s), for error messages.
    session: String,
    /// `stack weight` (or `stack before after`) lines, in tree order.
    lines: Vec<&'a str>,
    /// Sum of the drawn weights (the last column), in units of `unit_ns`.
    drawn: u128,
    /// Largest sum of any column, ns (checked against [`MAX_TOTAL_US`]).
    largest_ns: u128,
    /// The unit of the weights in ns (1 or 1000) and its name (`ns` or `µs`).
    unit_ns: u64,
    unit: &'static str,
    /// What the SVG says when `drawn` is 0.
    empty_message: String,
    title: String,
    subtitle: String,
}

/// Draws with inferno, or writes the "nothing to draw" SVG when the lines weigh nothing.
fn draw(d: Drawing<'_>, options: &FlameOptions, out: &mut dyn Write) -> Result<(), FlameError> {
    if d.largest_ns / 1000 > u128::from(MAX_TOTAL_US) {
        return Err(FlameError::TooLarge {
            session: d.session,
            total_us: d.largest_ns / 1000,
            max_us: MAX_TOTAL_US,
        });
    }
    let session = &d.session;
    let write_error = |source| FlameError::Write {
        what: "flamegraph SVG",
        session: session.clone(),
        source,
    };
    if d.drawn == 0 {
        let mut buffered = io::BufWriter::new(out);
        write_nothing_svg(
            &mut buffered,
            options,
            &d.title,
            &d.subtitle,
            &d.empty_message,
        )
        .map_err(write_error)?;
        return buffered.flush().map_err(write_error);
    }
    // Drawn into memory first: the tooltips are rewritten afterwards (and an error here is
    // inferno's, never the destination's).
    let mut o = inferno_options(options, d.title.clone(), d.subtitle.clone(), d.unit);
    let mut svg = Vec::with_capacity(64 * 1024);
    // Reversed: flame-chart mode reverses them back (see `inferno_options`).
    flamegraph::from_lines(&mut o, d.lines.iter().rev().copied(), &mut svg).map_err(|source| {
        FlameError::Inferno {
            session: session.clone(),
            source,
        }
    })?;
    let svg = String::from_utf8(svg).map_err(|source| FlameError::NotUtf8 {
        session: session.clone(),
        source,
    })?;
    let svg = readable_tooltips(&svg, d.unit_ns, d.unit);
    out.write_all(svg.as_bytes()).map_err(write_error)?;
    out.flush().map_err(write_error)
}

/// inferno's tooltips count samples (`detect (6,000,000 ns, 63.16%)`); they are rewritten
/// to read as durations, like the rest of the report (`detect (6.00 ms, 63.16%)`,
/// differential ones `detect (4.00 ms, 72.07%; +36.04%)`).
fn readable_tooltips(svg: &str, unit_ns: u64, unit: &str) -> String {
    const OPEN: &str = "<title>";
    const CLOSE: &str = "</title>";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find(OPEN) {
        let start = i + OPEN.len();
        let Some(len) = rest[start..].find(CLOSE) else {
            break;
        };
        out.push_str(&rest[..start]);
        let title = &rest[start..start + len];
        out.push_str(&readable_tooltip(title, unit_ns, unit));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// One tooltip: `name (1,234 ns, …)` → `name (1.23 µs, …)`; anything else as it is.
fn readable_tooltip<'a>(title: &'a str, unit_ns: u64, unit: &str) -> Cow<'a, str> {
    let rewrite = || {
        // The count is inferno's last parenthesis: a frame name may hold ` (` too.
        let open = title.rfind(" (")?;
        let (count, tail) = title[open + 2..].split_once(' ')?;
        let tail = tail.strip_prefix(unit)?;
        if !tail.starts_with(',') {
            return None;
        }
        let digits: String = count.chars().filter(|&c| c != ',').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ns = digits.parse::<u64>().ok()?.checked_mul(unit_ns)?;
        Some(format!("{} ({}{tail}", &title[..open], duration(ns)))
    };
    match rewrite() {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(title),
    }
}

/// Draws the flamegraph of `report` as SVG into `out` (see
/// [`FlamegraphSink`](crate::FlamegraphSink)).
pub(crate) fn render_svg(
    report: &Report,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), FlameError> {
    options.validate()?;
    let mut folded = fold_in(report, options, 1);
    let total_ns: u128 = folded.iter().map(|l| u128::from(l.weight_ns())).sum();
    let (unit_ns, unit) = unit_for(total_ns);
    if unit_ns != 1 {
        folded = fold_in(report, options, unit_ns);
    }
    let drawn: u128 = folded.iter().map(|l| u128::from(l.weight_ns())).sum();
    let lines: Vec<&str> = folded.iter().map(|l| l.as_str()).collect();
    let message = if folded.is_empty() {
        "Nothing to draw: no span was recorded in this session.".to_string()
    } else {
        format!(
            "Nothing to draw: the {} recorded spans took no measurable time ({}).",
            FIGURES.count(report.span_count()),
            FIGURES.duration(0.0)
        )
    };
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| default_title(report));
    draw(
        Drawing {
            session: report.session.name.clone(),
            lines,
            drawn,
            largest_ns: total_ns,
            unit_ns,
            unit,
            empty_message: message,
            title,
            subtitle: subtitle(report, options),
        },
        options,
        out,
    )
}

/// Draws the differential flamegraph from `before` to `after` as SVG into `out` (see
/// [`FlamegraphSink::render_diff`](crate::FlamegraphSink::render_diff)).
pub(crate) fn render_diff(
    before: &Report,
    after: &Report,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), FlameError> {
    options.validate()?;
    let mut folded = diff_fold_in(before, after, options, 1);
    let sums = |folded: &[crate::DiffLine]| {
        let b: u128 = folded.iter().map(|l| u128::from(l.before_ns())).sum();
        let a: u128 = folded.iter().map(|l| u128::from(l.after_ns())).sum();
        (b, a)
    };
    let (before_ns, after_ns) = sums(&folded);
    let largest_ns = before_ns.max(after_ns);
    let (unit_ns, unit) = unit_for(largest_ns);
    if unit_ns != 1 {
        folded = diff_fold_in(before, after, options, unit_ns);
    }
    let (_, total_after) = sums(&folded);
    let lines: Vec<&str> = folded.iter().map(|l| l.as_str()).collect();
    let title = options.title.clone().unwrap_or_else(|| {
        format!(
            "Differential: {} ({}) → {} ({})",
            before.session.name,
            duration(before.session.duration_ns),
            after.session.name,
            duration(after.session.duration_ns)
        )
    });
    let subtitle = format!(
        "width: time in `{}` · red: more self time than in `{}`, blue: less{}",
        after.session.name,
        before.session.name,
        if options.normalize_differential {
            " (before normalised to the same total)"
        } else {
            ""
        }
    );
    let message = format!(
        "Nothing to draw: `{}` has no span time to compare.",
        after.session.name
    );
    draw(
        Drawing {
            session: format!("{} → {}", before.session.name, after.session.name),
            lines,
            drawn: total_after,
            largest_ns,
            unit_ns,
            unit,
            empty_message: message,
            title,
            subtitle,
        },
        options,
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_label_texts_are_cut_with_an_ellipsis() {
        assert_eq!(shorten("cell-7"), "cell-7");
        let exact = "é".repeat(MAX_LABEL_CHARS);
        assert_eq!(shorten(&exact), exact);
        let long = format!("{exact}x");
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), MAX_LABEL_CHARS);
        assert_eq!(cut, format!("{}…", "é".repeat(MAX_LABEL_CHARS - 1)));
        let mut r = Report::empty("s");
        assert_eq!(labels_text(&r), "");
        r.session.labels.insert("station".into(), "cell-7".into());
        r.session.labels.insert("line".into(), "3".into());
        assert_eq!(labels_text(&r), "line=3 · station=cell-7");
    }

    #[test]
    fn tooltips_read_as_durations() {
        let t = |title, unit_ns, unit| readable_tooltip(title, unit_ns, unit).into_owned();
        assert_eq!(
            t("detect (6,000,000 ns, 63.16%)", 1, "ns"),
            "detect (6.00 ms, 63.16%)"
        );
        assert_eq!(t("all (300 ns, 100%)", 1, "ns"), "all (300 ns, 100%)");
        assert_eq!(
            t("detect (4,000,000 ns, 72.07%; +28.37%)", 1, "ns"),
            "detect (4.00 ms, 72.07%; +28.37%)"
        );
        assert_eq!(
            t("a (0 ns, 0.00%; 0.00%)", 1, "ns"),
            "a (0 ns, 0.00%; 0.00%)"
        );
        // The µs fallback reads the same.
        assert_eq!(
            t("grab (3,723,000,000 µs, 50.00%)", 1000, "µs"),
            "grab (1 h 02 min, 50.00%)"
        );
        // A name holding ` (` keeps it; only inferno's count is rewritten.
        assert_eq!(
            t("f (x) &amp; (2) (1,500 ns, 1.00%)", 1, "ns"),
            "f (x) &amp; (2) (1.50 µs, 1.00%)"
        );
        // Anything else is left as it is.
        for odd in [
            "plain",
            "a (b c)",
            "a (1,2x ns, 1%)",
            "a (5 µs, 1%)",
            "a ( ns, 1%)",
        ] {
            assert_eq!(t(odd, 1, "ns"), odd);
        }
        let svg = "<g><title>a (1,000 ns, 10.00%)</title><rect/></g><g><title>b (9,000 ns, 90.00%)</title></g>";
        assert_eq!(
            readable_tooltips(svg, 1, "ns"),
            "<g><title>a (1.00 µs, 10.00%)</title><rect/></g><g><title>b (9.00 µs, 90.00%)</title></g>"
        );
    }

    #[test]
    fn xml_text_is_escaped_and_legal() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\u{FFFF}"),
            "a&lt;b&gt;&amp;&quot;c&apos; \u{FFFD}"
        );
    }
}
