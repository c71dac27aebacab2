//! The live exposition: bounded labels, every histogram on the full fixed ladder, several
//! sessions in one text, both flavors; the classic one checked by `promtool check metrics`.

use std::collections::{BTreeMap, BTreeSet};

use heimdall_perf_core::{exposition_ladder, Report, ScrapeRequest};
use heimdall_perf_report_openmetrics::{scrape, Flavor};
use heimdall_perf_testkit::promtool::promtool_check;
use heimdall_perf_testkit::{large_report, sample_report};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn live(reports: &[Report], accept: &str) -> String {
    let s = scrape(reports, &ScrapeRequest::accepting(accept));
    assert_eq!(s.status, 200, "{}", s.body);
    s.body
}

/// The `le` values of every histogram series, by series (name and labels without `le`).
fn buckets(text: &str) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains("_bucket{")) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (head, le) = series.rsplit_once(",le=\"").unwrap();
        out.entry(head.to_string()).or_default().push((
            le.trim_end_matches("\"}").to_string(),
            value.parse().unwrap(),
        ));
    }
    out
}

#[test]
fn every_histogram_is_on_the_full_ladder_and_cumulative() {
    let r = sample_report();
    let text = live(std::slice::from_ref(&r), "text/plain");
    let ladder: Vec<String> = exposition_ladder()
        .iter()
        .map(|&ns| format!("{}", ns as f64 / 1e9))
        .chain(["+Inf".to_string()])
        .collect();
    let all = buckets(&text);
    assert!(all.len() > 10, "{text}");
    for (series, b) in &all {
        let les: Vec<String> = b
            .iter()
            .map(|(le, _)| {
                // format_value writes small bounds in exponent form: compare as numbers.
                if le == "+Inf" {
                    le.clone()
                } else {
                    format!("{}", le.parse::<f64>().unwrap())
                }
            })
            .collect();
        assert_eq!(les, ladder, "{series}");
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{series}: {b:?}");
    }
    // The merged span `frame;detect`: its +Inf and _count are the count of the span totals.
    let total = r
        .span_totals
        .iter()
        .find(|s| s.path == ["frame", "detect"])
        .unwrap();
    let key = all
        .keys()
        .find(|k| {
            k.starts_with("heimdall_span_duration_seconds_bucket{")
                && k.ends_with("path=\"frame;detect\"")
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(all[key].last().unwrap().1, total.count);
}

#[test]
fn no_label_takes_unbounded_values() {
    let text = live(&[sample_report(), large_report(50, 1, 5)], OPENMETRICS);
    for forbidden in ["thread_id=", "pid=", "started_at=", "frame_id=", "thread="] {
        assert!(!text.contains(forbidden), "{forbidden} in\n{text}");
    }
    // Per thread on request: thread names, never ids, one series per name and path.
    let per_thread = scrape(
        &[large_report(50, 1, 5)],
        &ScrapeRequest::accepting("text/plain").with_per_thread(true),
    )
    .body;
    assert!(per_thread.contains("thread=\"worker-0\""), "{per_thread}");
    assert!(!per_thread.contains("thread_id="));
    promtool_check(&per_thread).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn threads_of_one_name_are_one_series() {
    let mut r = sample_report();
    let template = r.spans[0].clone();
    r.spans = (0..5)
        .map(|i| {
            let mut s = template.clone();
            s.thread = Some("pool".into());
            s.thread_id = Some(100 + i);
            s
        })
        .collect();
    let text = scrape(
        std::slice::from_ref(&r),
        &ScrapeRequest::accepting("text/plain").with_per_thread(true),
    )
    .body;
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("heimdall_span_duration_seconds_count{"))
        .collect();
    assert_eq!(counts.len(), 1, "{text}");
    assert!(
        counts[0].ends_with(&format!(" {}", template.count * 5)),
        "{}",
        counts[0]
    );
}

#[test]
fn several_sessions_share_each_family() {
    let a = sample_report();
    let mut b = sample_report();
    b.session.name = "line-4".into();
    let text = live(&[a, b], "text/plain");
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let unique: BTreeSet<&&str> = types.iter().collect();
    assert_eq!(types.len(), unique.len(), "a family declared twice");
    assert!(text.contains("heimdall_session_active{session=\"line-3 inspection\""));
    assert!(text.contains("heimdall_session_active{session=\"line-4\""));
    promtool_check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn the_flavors_differ_only_in_declarations() {
    let r = [sample_report()];
    let classic = scrape(&r, &ScrapeRequest::accepting("text/plain;version=0.0.4"));
    let om = scrape(&r, &ScrapeRequest::accepting(OPENMETRICS));
    assert_eq!(classic.content_type, Flavor::Prometheus.content_type());
    assert_eq!(
        om.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(classic
        .body
        .contains("# TYPE heimdall_span_self_seconds_total counter\n"));
    assert!(om
        .body
        .contains("# TYPE heimdall_span_self_seconds counter\n"));
    assert!(om
        .body
        .contains("# UNIT heimdall_span_self_seconds seconds\n"));
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    assert_eq!(samples(&classic.body), samples(&om.body));
    assert!(om.body.ends_with("# EOF\n"));
    // Every counter family of the OpenMetrics text is declared without `_total`, and its
    // samples carry it.
    let mut family = String::new();
    let mut kind = String::new();
    for line in om.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, k) = rest.split_once(' ').unwrap();
            family = n.into();
            kind = k.into();
            if kind == "counter" {
                assert!(!family.ends_with("_total"), "{line}");
            }
        } else if !line.starts_with('#') && kind == "counter" {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, format!("{family}_total"), "{line}");
        }
    }
    promtool_check(&classic.body).unwrap_or_else(|e| panic!("{e}"));
    // An explicit format wins over the Accept header.
    let forced = scrape(
        &r,
        &ScrapeRequest::accepting(OPENMETRICS).with_format("prometheus"),
    );
    assert_eq!(forced.body, classic.body);
}
