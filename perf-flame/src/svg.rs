//! Flamegraph SVGs through `inferno::flamegraph`, plain and differential.

use std::io::{self, Write};

use heimdall_perf_core::Report;
use inferno::flamegraph::{self, Direction};

use crate::fold::{diff_fold, fold};
use crate::{FlameError, FlameOptions};

/// The largest total (µs) drawn: about 285 years. Beyond it inferno's differential colour
/// arithmetic could overflow, so a larger (necessarily corrupt) report is refused.
pub const MAX_TOTAL_US: u64 = 1 << 53;

/// Default width in pixels when none is set (the SVG then stretches to its container).
const DEFAULT_IMAGE_WIDTH: usize = 1200;
/// Smallest fixed width accepted.
const MIN_IMAGE_WIDTH: usize = 100;

/// A writer that remembers whether the destination itself failed, so that an I/O error
/// from inferno can be told apart from inferno refusing its input.
struct Tracked<'a> {
    inner: &'a mut dyn Write,
    failed: bool,
}

impl Write for Tracked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// A duration as people read it: `850 ns`, `12.5 µs`, `3.20 ms`, `10.000 s`, `1 h 02 min 03 s`.
pub fn format_duration(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match ns {
        n if n < US => format!("{n} ns"),
        n if n < MS => format!("{:.1} µs", n as f64 / US as f64),
        n if n < S => format!("{:.2} ms", n as f64 / MS as f64),
        n if n < 60 * S => format!("{:.3} s", n as f64 / S as f64),
        n if n < 3600 * S => format!("{} min {:02} s", n / (60 * S), n / S % 60),
        n => format!(
            "{} h {:02} min {:02} s",
            n / (3600 * S),
            n / (60 * S) % 60,
            n / S % 60
        ),
    }
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
        format_duration(report.session.duration_ns)
    )
}

fn subtitle(report: &Report, options: &FlameOptions) -> String {
    let mut s = format!("started {}", report.session.started_at);
    if !report.session.host.is_empty() {
        s.push_str(" on ");
        s.push_str(&report.session.host);
    }
    s.push_str(&format!(
        " · {} spans · width: total time, µs{}",
        report.span_count(),
        if options.merge_threads {
            " · threads merged"
        } else {
            ""
        }
    ));
    s
}

impl FlameOptions {
    /// Checks the options, naming the first bad one.
    pub fn validate(&self) -> Result<(), FlameError> {
        if !(self.min_width_percent.is_finite() && (0.0..=100.0).contains(&self.min_width_percent))
        {
            return Err(FlameError::InvalidOption {
                option: "min_width_percent",
                value: self.min_width_percent.to_string(),
                reason: "must be a percentage from 0 to 100",
            });
        }
        if let Some(w) = self.image_width {
            if w < MIN_IMAGE_WIDTH {
                return Err(FlameError::InvalidOption {
                    option: "image_width",
                    value: w.to_string(),
                    reason: "must be at least 100 pixels (or None for a fluid width)",
                });
            }
        }
        Ok(())
    }
}

/// inferno's options for `options`, with `title` and `subtitle` already decided.
fn inferno_options(
    options: &FlameOptions,
    title: String,
    subtitle: String,
) -> flamegraph::Options<'static> {
    let mut o = flamegraph::Options::default();
    o.title = xml_chars(&title);
    o.subtitle = Some(xml_chars(&subtitle));
    o.count_name = "µs".to_string();
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
    /// Sum of the drawn weights (the last column), µs.
    drawn_us: u128,
    /// Largest sum of any column, µs (checked against [`MAX_TOTAL_US`]).
    largest_us: u128,
    /// What the SVG says when `drawn_us` is 0.
    empty_message: String,
    title: String,
    subtitle: String,
}

/// Draws with inferno, or writes the "nothing to draw" SVG when the lines weigh nothing.
fn draw(d: Drawing<'_>, options: &FlameOptions, out: &mut dyn Write) -> Result<(), FlameError> {
    if d.largest_us > u128::from(MAX_TOTAL_US) {
        return Err(FlameError::TooLarge {
            session: d.session,
            total_us: d.largest_us,
            max_us: MAX_TOTAL_US,
        });
    }
    let session = &d.session;
    let write_error = |source| FlameError::Write {
        what: "flamegraph SVG",
        session: session.clone(),
        source,
    };
    let mut tracked = Tracked {
        inner: out,
        failed: false,
    };
    let mut buffered = io::BufWriter::with_capacity(64 * 1024, &mut tracked);
    if d.drawn_us == 0 {
        write_nothing_svg(
            &mut buffered,
            options,
            &d.title,
            &d.subtitle,
            &d.empty_message,
        )
        .map_err(write_error)?;
    } else {
        let mut o = inferno_options(options, d.title.clone(), d.subtitle.clone());
        // Reversed: flame-chart mode reverses them back (see `inferno_options`).
        let result = flamegraph::from_lines(&mut o, d.lines.iter().rev().copied(), &mut buffered);
        if let Err(source) = result {
            drop(buffered);
            return Err(if tracked.failed {
                write_error(source)
            } else {
                FlameError::Inferno {
                    session: session.clone(),
                    source,
                }
            });
        }
    }
    buffered.flush().map_err(write_error)
}

/// Renders the flamegraph of `report` as SVG into `out`.
///
/// Title: session name and duration; frames: spans (per thread unless
/// `options.merge_threads`), as wide as their total time, counted in µs; search (Ctrl-F or
/// the "Search" button) and click-to-zoom come from inferno's embedded script. A report with
/// no span time gives a small SVG that says there is nothing to draw.
pub fn render_svg(
    report: &Report,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), FlameError> {
    options.validate()?;
    let folded = fold(report, options);
    let total_us: u128 = folded.iter().map(|l| u128::from(l.weight_us())).sum();
    let lines: Vec<&str> = folded.iter().map(|l| l.as_str()).collect();
    let message = if folded.is_empty() {
        "Nothing to draw: no span was recorded in this session.".to_string()
    } else {
        format!(
            "Nothing to draw: the {} recorded spans add up to less than 1 µs.",
            report.span_count()
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
            drawn_us: total_us,
            largest_us: total_us,
            empty_message: message,
            title,
            subtitle: subtitle(report, options),
        },
        options,
        out,
    )
}

/// [`render_svg`] into a `String` (for embedding in the HTML report).
///
/// ```
/// use heimdall_perf_flame::{render_svg_string, FlameOptions};
/// let svg = render_svg_string(&heimdall_perf_core::Report::empty("idle"), &FlameOptions::default())?;
/// assert!(svg.contains("Nothing to draw"));
/// # Ok::<(), heimdall_perf_flame::FlameError>(())
/// ```
pub fn render_svg_string(report: &Report, options: &FlameOptions) -> Result<String, FlameError> {
    let mut buf = Vec::new();
    render_svg(report, options, &mut buf)?;
    String::from_utf8(buf).map_err(|source| FlameError::NotUtf8 {
        session: report.session.name.clone(),
        source,
    })
}

/// Renders the differential flamegraph from `before` to `after` as SVG into `out`.
///
/// Frames have the shape of `after` (widths are its times); a frame is red where `after`
/// spends more self time than `before`, blue where it spends less, the deeper the colour
/// the larger the change (relative to the largest change). Spans that only `before` has
/// have no width and do not show (draw the diff the other way round to see them).
/// Threads are matched by name; set `options.merge_threads` to compare runs whose thread
/// names differ.
pub fn diff_flamegraph(
    before: &Report,
    after: &Report,
    options: &FlameOptions,
    out: &mut dyn Write,
) -> Result<(), FlameError> {
    options.validate()?;
    let folded = diff_fold(before, after, options);
    let total_before: u128 = folded.iter().map(|l| u128::from(l.before_us())).sum();
    let total_after: u128 = folded.iter().map(|l| u128::from(l.after_us())).sum();
    let lines: Vec<&str> = folded.iter().map(|l| l.as_str()).collect();
    let title = options.title.clone().unwrap_or_else(|| {
        format!(
            "Differential: {} ({}) → {} ({})",
            before.session.name,
            format_duration(before.session.duration_ns),
            after.session.name,
            format_duration(after.session.duration_ns)
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
            drawn_us: total_after,
            largest_us: total_before.max(total_after),
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
    fn durations_read_naturally() {
        assert_eq!(format_duration(850), "850 ns");
        assert_eq!(format_duration(12_500), "12.5 µs");
        assert_eq!(format_duration(3_200_000), "3.20 ms");
        assert_eq!(format_duration(10_000_000_000), "10.000 s");
        assert_eq!(format_duration(125_000_000_000), "2 min 05 s");
        assert_eq!(format_duration(3_723_000_000_000), "1 h 02 min 03 s");
        assert_eq!(format_duration(u64::MAX), "5124095 h 34 min 33 s");
    }

    #[test]
    fn xml_text_is_escaped_and_legal() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\u{FFFF}"),
            "a&lt;b&gt;&amp;&quot;c&apos; \u{FFFD}"
        );
    }
}
