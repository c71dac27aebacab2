//! Loading real `.so` files: the good plugin of the README, every kind of bad one, and
//! libraries that are not plugins at all. The host must refuse each with a clear error and
//! keep running.

use std::sync::Arc;

use heimdall_perf_core::{PerfError, Registry, Report, ReportSink};
use heimdall_perf_plugin::{load_sink, loader, PluginError, PluginSink};
use heimdall_perf_testkit::sample_report;

use heimdall_perf_testkit::plugins::{self as common, libm, plugin};

const HELLO: &str = "heimdall-perf-fixture-hello";
const PANICKING: &str = "heimdall-perf-fixture-panicking";
const WRONG_ABI: &str = "heimdall-perf-fixture-wrong-abi";
const BAD_OUTPUT: &str = "heimdall-perf-fixture-bad-output";

/// What the README plugin renders, computed here without it.
fn span_table(report: &Report) -> String {
    let mut out = String::from("path\tcount\ttotal_ns\n");
    for span in &report.span_totals {
        let path = span.path_string().replace(['\t', '\n'], " ");
        out.push_str(&format!("{path}\t{}\t{}\n", span.count, span.total_ns));
    }
    out
}

/// The error of `r`, which must have failed.
fn err<T, E>(r: Result<T, E>) -> E {
    match r {
        Ok(_) => panic!("expected an error, got a success"),
        Err(e) => e,
    }
}

fn render_string(sink: &dyn ReportSink, report: &Report) -> Result<String, String> {
    let mut out = Vec::new();
    sink.render(report, &mut out).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[test]
fn the_readme_plugin_loads_and_renders_like_a_built_in_sink() {
    let path = plugin(HELLO);
    let sink = PluginSink::load(&path).unwrap();
    assert_eq!(sink.name(), "span table");
    assert_eq!(sink.format_id(), "spantable");
    assert_eq!(sink.file_extension(), "tsv");
    assert_eq!(sink.origin(), format!("plugin {}", path.display()));

    let report = sample_report();
    let text = render_string(&sink, &report).unwrap();
    assert_eq!(text, span_table(&report));
    assert!(text.contains("frame;detect;nms\t600\t"), "{text}");

    // Its own error comes back as an error naming plugin, format and session.
    let e = sink.render_bytes(&Report::empty("idle line")).unwrap_err();
    assert!(matches!(e, PluginError::Render { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "plugin `{}` (format `spantable`) failed to render session `idle line`: session `idle line` has no spans",
            path.display()
        )
    );
}

#[test]
fn a_loaded_plugin_writes_files_through_the_registry() {
    let path = plugin(HELLO);
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    let sink = registry.load_plugin(&path).unwrap();
    assert_eq!(registry.format_ids(), vec!["spantable".to_string()]);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("report.{}", sink.file_extension()));
    let report = sample_report();
    registry.render_to_file(&report, &out, "spantable").unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), span_table(&report));

    // A failing render keeps the previous file.
    let e = registry
        .render_to_file(&Report::empty("idle"), &out, "spantable")
        .unwrap_err();
    assert!(e.to_string().contains("has no spans"), "{e}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), span_table(&report));
}

#[test]
fn renders_from_many_threads_at_once() {
    let sink: Arc<dyn ReportSink> = load_sink(&plugin(HELLO)).unwrap();
    let report = Arc::new(sample_report());
    let expected = span_table(&report);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (sink, report) = (Arc::clone(&sink), Arc::clone(&report));
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| render_string(&*sink, &report))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for text in h.join().unwrap() {
            assert_eq!(text.unwrap(), expected);
        }
    }
}

#[test]
fn a_missing_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.so");
    let e = err(load_sink(&path));
    assert!(matches!(e, PluginError::NotFound { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("plugin `{}`: no such file", path.display())
    );
}

#[test]
fn a_file_that_is_not_a_shared_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.so");
    std::fs::write(&path, "# just some text\n").unwrap();
    let e = err(load_sink(&path));
    assert!(matches!(e, PluginError::InvalidElf { .. }), "{e:?}");
    // Found by the host's own checks: no underlying error to keep.
    assert!(std::error::Error::source(&e).is_none(), "{e:?}");
    // Refused from its first bytes, before the dynamic loader sees it.
    assert_eq!(
        e.to_string(),
        format!(
            "plugin `{}`: cannot load it as a shared library: not an ELF file (it starts with \"# just s\", not \"\\x7fELF\")",
            path.display()
        )
    );
}

#[test]
fn a_library_without_the_entry_symbol_is_refused() {
    let path = libm();
    let e = err(load_sink(&path));
    assert!(matches!(e, PluginError::MissingEntry { .. }), "{e}");
    // The dynamic loader's error is kept as the source.
    let source = std::error::Error::source(&e).expect("a source");
    assert!(
        source.downcast_ref::<libloading::Error>().is_some(),
        "{source:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "plugin `{}`: not a heimdall-perf report plugin: it does not export the symbol `heimdall_perf_report_sink`",
            path.display()
        )),
        "{text}"
    );
}

#[test]
fn a_plugin_for_another_abi_version_is_refused() {
    let path = plugin(WRONG_ABI);
    let e = err(load_sink(&path));
    match &e {
        PluginError::AbiVersion {
            found, expected, ..
        } => assert_eq!(
            (*found, *expected),
            (999, heimdall_perf_plugin::abi::ABI_VERSION)
        ),
        other => panic!("expected an ABI version error, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains("built for plugin ABI version 999, but this host speaks version 1"),
        "{e}"
    );
}

#[test]
fn a_panicking_plugin_is_an_error_and_the_host_keeps_running() {
    let path = plugin(PANICKING);
    let sink = load_sink(&path).unwrap();
    assert_eq!(sink.format_id(), "panicky");
    for _ in 0..3 {
        let e = render_string(&*sink, &sample_report()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "plugin `{}` (format `panicky`) panicked while rendering session `line-3 inspection`: fixture panic while rendering `line-3 inspection`",
                path.display()
            )
        );
    }
    // Through the registry: a render error naming the format and the session, no file left.
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    registry.load_plugin(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.txt");
    let e = registry
        .render_to_file(&sample_report(), &out, "panicky")
        .unwrap_err();
    assert!(
        matches!(e, PerfError::Render { ref format, .. } if format == "panicky"),
        "{e}"
    );
    assert!(e.to_string().contains("fixture panic"), "{e}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Renders a report named `session` with the bad-output fixture.
fn bad_output(sink: &PluginSink, session: &str) -> Result<String, PluginError> {
    sink.render_bytes(&Report::empty(session))
        .map(|b| String::from_utf8(b).unwrap_or_else(|e| panic!("not UTF-8 but accepted: {e}")))
}

#[test]
fn invalid_or_missing_output_is_refused_and_everything_is_freed() {
    let path = plugin(BAD_OUTPUT);
    let sink = PluginSink::load(&path).unwrap();
    let detail = |session: &str| match bad_output(&sink, session) {
        Err(PluginError::BadOutput { detail, .. }) => detail,
        other => panic!("{session}: expected bad output, got {other:?}"),
    };
    assert_eq!(
        detail("invalid-utf8"),
        "the output is not valid UTF-8 (at byte 2 of 4)"
    );
    assert_eq!(detail("null"), "status ok with a null pointer (0 bytes)");
    assert_eq!(
        detail("null-with-length"),
        "status ok with a null pointer (5 bytes)"
    );
    assert_eq!(detail("empty"), "status ok but no output (0 bytes)");
    assert_eq!(detail("unknown-status"), "unknown status code 42");

    let message = |session: &str| match bad_output(&sink, session) {
        Err(PluginError::Render { message, .. }) => message,
        other => panic!("{session}: expected a render error, got {other:?}"),
    };
    assert_eq!(message("error"), "disk quota exceeded");
    assert_eq!(message("error-not-utf8"), "bad\u{FFFD}");
    assert_eq!(message("error-silent"), "(no message)");

    assert_eq!(bad_output(&sink, "steady").unwrap(), "fine: steady");
    let e = bad_output(&sink, "empty").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "plugin `{}` (format `badoutput`) returned unusable output for session `empty`: status ok but no output (0 bytes)",
            path.display()
        )
    );

    // Every allocation the plugin handed over went back to the plugin's own `free`.
    // Asked of the library the sink uses (the host's private copy): opening the original
    // path again would give another instance, with its own counter.
    let address = sink
        .symbol_address("heimdall_fixture_outstanding")
        .expect("the fixture exports its counter");
    // SAFETY: the fixture exports this function with this signature; the library is never
    // unloaded by the host.
    let outstanding = unsafe {
        let f = std::mem::transmute::<*const std::ffi::c_void, unsafe extern "C" fn() -> isize>(
            address,
        );
        f()
    };
    assert_eq!(outstanding, 0);
}

#[test]
fn a_duplicate_format_is_refused_naming_both() {
    let path = plugin(HELLO);

    // A built-in sink has the id already.
    struct BuiltIn;
    impl ReportSink for BuiltIn {
        fn format_id(&self) -> &str {
            "spantable"
        }
        fn file_extension(&self) -> &str {
            "tsv"
        }
        fn render(
            &self,
            _: &Report,
            _: &mut dyn std::io::Write,
        ) -> Result<(), heimdall_perf_core::RenderError> {
            Ok(())
        }
    }
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    registry.register_sink(Arc::new(BuiltIn)).unwrap();
    let e = err(registry.load_plugin(&path));
    assert_eq!(
        e.to_string(),
        format!(
            "report format `spantable` is registered twice: by built-in and by plugin {}",
            path.display()
        )
    );
    assert_eq!(registry.sinks().len(), 1);
    assert_eq!(registry.sinks()[0].origin(), "built-in");

    // Two plugins with the same id (a copy of the same file in another place).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy-of-hello.so");
    std::fs::copy(&path, &copy).unwrap();
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    registry.load_plugin(&path).unwrap();
    let e = err(registry.load_plugin(&copy));
    let PerfError::DuplicateFormat { first, second, .. } = &e else {
        panic!("expected a duplicate, got {e:?}");
    };
    assert_eq!(first, &format!("plugin {}", path.display()));
    assert_eq!(second, &format!("plugin {}", copy.display()));
    assert_eq!(registry.format_ids(), vec!["spantable".to_string()]);
}

#[test]
fn the_loader_reports_plugin_errors_with_the_path_once() {
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    let path = plugin(WRONG_ABI);
    match err(registry.load_plugin(&path)) {
        PerfError::Plugin {
            path: p, message, ..
        } => {
            assert_eq!(p, path);
            assert!(
                message.starts_with("built for plugin ABI version 999"),
                "{message}"
            );
        }
        other => panic!("expected PerfError::Plugin, got {other:?}"),
    }
    assert!(registry.format_ids().is_empty());
}

#[test]
fn the_documented_plugin_is_the_one_tested() {
    // The crate docs and the README section show the `hello` fixture line for line.
    let root = common::workspace_root();
    let fixture =
        std::fs::read_to_string(root.join("plugins/test-fixtures/hello/src/lib.rs")).unwrap();
    let code = &fixture[fixture.find("use heimdall_perf_plugin").unwrap()..];
    let docs = std::fs::read_to_string(root.join("perf-plugin/src/lib.rs")).unwrap();
    let docs: String = docs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        docs.contains(code),
        "the crate docs no longer show:\n{code}"
    );
    let readme = std::fs::read_to_string(root.join("perf-plugin/README.md")).unwrap();
    assert!(
        readme.contains(code),
        "perf-plugin/README.md no longer shows:\n{code}"
    );
}
