//! The "Frames" section: per frame source, a summary table (counts, drops, misses, latency
//! and jitter against the budget), a stages table, the attribution table and the worst
//! incidents, each incident a few small tables.

use heimdall_perf_core::stats::Summary;
use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{FrameReport, Incident, IncidentStage, Report};

use crate::escape::{escape, escape_into};
use crate::table::{header, row};
use crate::{push_fmt, summary_cell, system_label, value, NONE, STYLE};

/// `v` as a percentage of `budget_ns`, or [`NONE`] without a (non-zero) budget or a value.
fn of_budget(v: f64, budget_ns: Option<u64>, present: bool) -> String {
    match budget_ns {
        Some(b) if b > 0 && present => STYLE.value(v / b as f64 * 100.0, &Unit::parse("%")),
        _ => NONE.to_string(),
    }
}

fn percent(v: f64) -> String {
    STYLE.value(v, &Unit::parse("%"))
}

fn duration(ns: f64) -> String {
    STYLE.duration(ns)
}

/// Appends the Frames section (nothing when the report has no frames).
pub(crate) fn frames(out: &mut String, r: &Report, max_incidents: usize) {
    if r.frames.is_empty() {
        return;
    }
    out.push_str("\n## Frames\n\n");
    out.push_str(
        "A frame's *latency* runs from its capture to its finish; it *misses* when the \
         latency exceeds its source's frame budget, which is also the target period that \
         the interval between frame births (the *jitter*) is shown against. *Queue* is the \
         wait before a stage (since the end of the frame's previous stage, or its capture). \
         Missed frames are blamed on one cause each:\n\n> ",
    );
    escape_into(out, heimdall_perf_core::ATTRIBUTION_RULE);
    out.push('\n');
    for f in &r.frames {
        source(out, f, max_incidents);
    }
}

fn source(out: &mut String, f: &FrameReport, max_incidents: usize) {
    out.push_str("\n### Source: ");
    escape_into(out, &f.source);
    out.push_str("\n\n");
    summary(out, f);
    stages(out, f);
    attribution(out, f);
    incidents(out, f, max_incidents);
}

fn summary(out: &mut String, f: &FrameReport) {
    let budget = f.budget_ns;
    header(
        out,
        &[("Measure", false), ("Value", true), ("Of the budget", true)],
    );
    let plain = |out: &mut String, label: &str, v: String| {
        row(out, [label.to_string(), v, NONE.to_string()])
    };
    plain(out, "Frames begun", STYLE.count(f.count));
    plain(out, "Finished", STYLE.count(f.finished));
    if f.dropped.is_empty() {
        plain(out, "Dropped", "0".to_string());
    }
    for (reason, n) in &f.dropped {
        let mut label = "Dropped: ".to_string();
        escape_into(&mut label, reason);
        row(out, [label, STYLE.count(*n), NONE.to_string()]);
    }
    plain(out, "In flight", STYLE.count(f.in_flight));
    match budget {
        Some(b) => row(
            out,
            [
                "Frame budget".to_string(),
                duration(b as f64),
                percent(100.0),
            ],
        ),
        None => plain(out, "Frame budget", "none set".to_string()),
    }
    // Misses mean something only against a budget, and a rate only over finished frames.
    let (missed, rate, streak) = match budget {
        None => (NONE.to_string(), NONE.to_string(), NONE.to_string()),
        Some(_) => (
            STYLE.count(f.missed),
            if f.finished == 0 {
                NONE.to_string()
            } else {
                percent(f.miss_rate * 100.0)
            },
            STYLE.count(f.longest_miss_streak),
        ),
    };
    plain(out, "Missed", missed);
    plain(out, "Miss rate", rate);
    plain(out, "Longest miss streak", streak);
    let dist = |out: &mut String, label: &str, s: &Summary, v: f64| {
        row(
            out,
            [
                label.to_string(),
                summary_cell(s, v, duration),
                of_budget(v, budget, s.count > 0),
            ],
        )
    };
    let l = &f.latency.summary;
    dist(out, "Latency p50", l, l.p50);
    dist(out, "Latency p95", l, l.p95);
    dist(out, "Latency p99", l, l.p99);
    dist(out, "Latency max", l, l.max);
    let j = &f.jitter.summary;
    dist(out, "Frame interval p50", j, j.p50);
    dist(out, "Frame interval p99", j, j.p99);
    dist(out, "Frame interval std dev", j, j.stddev);
}

fn stages(out: &mut String, f: &FrameReport) {
    out.push_str("\n#### Stages\n\n");
    if f.stages.is_empty() {
        out.push_str("No stage was recorded for this source's frames.\n");
        return;
    }
    header(
        out,
        &[
            ("Stage", false),
            ("Budget", true),
            ("Service p50", true),
            ("Service p99", true),
            ("Queue p50", true),
            ("Queue p99", true),
            ("Over budget", true),
        ],
    );
    for s in &f.stages {
        let (sv, q) = (&s.service.summary, &s.queue.summary);
        row(
            out,
            [
                escape(&s.name),
                s.budget_ns
                    .map_or_else(|| NONE.to_string(), |b| duration(b as f64)),
                summary_cell(sv, sv.p50, duration),
                summary_cell(sv, sv.p99, duration),
                summary_cell(q, q.p50, duration),
                summary_cell(q, q.p99, duration),
                s.budget_ns
                    .map_or_else(|| NONE.to_string(), |_| STYLE.count(s.over_budget)),
            ],
        );
    }
}

fn attribution(out: &mut String, f: &FrameReport) {
    out.push_str("\n#### Attribution\n\n");
    if f.budget_ns.is_none() {
        out.push_str("No frame budget is set for this source: no frame can miss.\n");
        return;
    }
    if f.attribution.is_empty() {
        out.push_str("No missed frame to blame.\n");
        return;
    }
    let blamed = f
        .attribution
        .iter()
        .fold(0u64, |n, a| n.saturating_add(a.missed));
    // The share of the source's missed frames (of the blamed ones if the two disagree, as a
    // report edited by hand may).
    let total = f.missed.max(blamed);
    header(out, &[("Cause", false), ("Missed", true), ("Share", true)]);
    for a in &f.attribution {
        row(
            out,
            [
                escape(&a.cause),
                STYLE.count(a.missed),
                if total == 0 {
                    NONE.to_string()
                } else {
                    percent(a.missed as f64 / total as f64 * 100.0)
                },
            ],
        );
    }
}

fn incidents(out: &mut String, f: &FrameReport, max: usize) {
    if f.incidents.is_empty() {
        return;
    }
    // Worst first, as the flight recorder keeps them; a report read back may not be sorted.
    let mut sorted: Vec<&Incident> = f.incidents.iter().collect();
    sorted.sort_by(|a, b| {
        b.overrun_ns
            .cmp(&a.overrun_ns)
            .then_with(|| a.frame_id.cmp(&b.frame_id))
    });
    let shown = max.min(sorted.len());
    out.push_str("\n#### Incidents\n\n");
    push_fmt(
        out,
        format_args!(
            "The worst missed frames, kept whole (largest overrun first): {} of {}.\n",
            STYLE.count(shown as u64),
            STYLE.count(sorted.len() as u64)
        ),
    );
    for (i, inc) in sorted[..shown].iter().enumerate() {
        incident(out, i + 1, inc);
    }
    if shown < sorted.len() {
        let more = sorted.len() - shown;
        push_fmt(
            out,
            format_args!(
                "\n{} more {} not shown (the JSON report has them all).\n",
                STYLE.count(more as u64),
                if more == 1 {
                    "incident is"
                } else {
                    "incidents are"
                }
            ),
        );
    }
}

fn incident(out: &mut String, n: usize, inc: &Incident) {
    push_fmt(
        out,
        format_args!("\n##### Incident {n}: frame {}\n\n", inc.frame_id),
    );
    header(
        out,
        &[
            ("Frame", true),
            ("Captured at", true),
            ("Latency", true),
            ("Budget", true),
            ("Overrun", true),
            ("Cause", false),
        ],
    );
    row(
        out,
        [
            inc.frame_id.to_string(),
            duration(inc.capture_ns as f64),
            duration(inc.latency_ns as f64),
            duration(inc.budget_ns as f64),
            duration(inc.overrun_ns as f64),
            escape(&inc.cause),
        ],
    );
    out.push('\n');
    incident_stages(out, &inc.stages);
    if !inc.previous.is_empty() {
        out.push_str("\n**Frames before it:** ");
        for (i, p) in inc.previous.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_fmt(out, format_args!("frame {}: ", p.frame_id));
            match p.latency_ns {
                Some(l) => push_fmt(out, format_args!("{}", duration(l as f64))),
                None => out.push_str("not finished"),
            }
        }
        out.push('\n');
    }
    // The headline figures; per-core CPU, load and interfaces stay in the JSON report.
    let key: Vec<(&str, &_)> = heimdall_perf_core::series_names::HEADLINE
        .iter()
        .filter_map(|name| inc.system.iter().find(|s| s.name == *name))
        .map(|s| (system_label(&s.name).unwrap_or(&s.name), s))
        .collect();
    if !key.is_empty() {
        out.push_str("\n**System at the time:** ");
        for (i, (label, s)) in key.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(label);
            out.push(' ');
            out.push_str(&value(s.value, &Unit::parse(&s.unit)));
            push_fmt(
                out,
                format_args!(" (sampled at {})", duration(s.t_ns as f64)),
            );
        }
        out.push('\n');
    }
}

fn incident_stages(out: &mut String, stages: &[IncidentStage]) {
    if stages.is_empty() {
        out.push_str("No stage was recorded for this frame.\n");
        return;
    }
    header(
        out,
        &[
            ("Stage", false),
            ("Thread", false),
            ("Start", true),
            ("Queue", true),
            ("Duration", true),
        ],
    );
    for s in stages {
        row(
            out,
            [
                escape(&s.name),
                escape(&s.thread),
                duration(s.start_ns as f64),
                duration(s.queue_ns as f64),
                duration(s.duration_ns as f64),
            ],
        );
    }
}
