//! The [`Registry`]: the report sinks, the system-sampler factory and the plugin-loader hook
//! a manager and its sessions share, and the hints the facade gives for what is missing.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::{write_atomic, AtomicWriteError, ReportSink, TraceStreamFactory};
use crate::error::{PerfError, Result};
use crate::live::Exposition;
use crate::periodic::SourceFactory;
use crate::report::Report;

/// What a manager and its sessions can use: report sinks and the system sampler.
///
/// Shared (`Arc`) between a [`ProfilingManager`](crate::ProfilingManager) and every session
/// it starts, so a sink registered later (a plugin) is seen by all of them.
#[derive(Default)]
pub struct Registry {
    sinks: RwLock<Vec<Arc<dyn ReportSink>>>,
    system_source: RwLock<Option<SourceFactory>>,
    plugin_loader: RwLock<Option<PluginLoader>>,
    hints: RwLock<Option<Hints>>,
    trace_stream: RwLock<Option<TraceStreamFactory>>,
    exposition: RwLock<Option<Exposition>>,
}

/// Something a call needed that the registry does not have: see [`Registry::set_hints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing<'a> {
    /// No sink is registered for this format id.
    Format(&'a str),
    /// No plugin loader is set ([`Registry::set_plugin_loader`]).
    PluginLoader,
    /// No system sampler is set ([`Registry::set_system_source`]).
    SystemSampler,
    /// No trace stream writer is set ([`Registry::set_trace_stream`]).
    TraceStream,
    /// No exposition is set for live scrapes ([`Registry::set_exposition`]).
    Exposition,
}

/// Says what to do about something [`Missing`] (e.g. "enable the Cargo feature `html` of
/// heimdall-perf"), or `None` to let the registry give its own advice.
pub type Hints = Arc<dyn Fn(Missing<'_>) -> Option<String> + Send + Sync>;

/// Loads a report plugin from a shared library (how the plugin crate registers itself, so
/// that perf-core needs no dynamic loading of its own).
pub type PluginLoader = Arc<dyn Fn(&Path) -> Result<Arc<dyn ReportSink>> + Send + Sync>;

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("formats", &self.format_ids())
            .field("system_source", &self.system_source().is_some())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sink. A second sink with the same format id is refused with an error naming
    /// both origins.
    pub fn register_sink(&self, sink: Arc<dyn ReportSink>) -> Result<()> {
        let mut sinks = self
            .sinks
            .write()
            .map_err(|_| PerfError::Poisoned("the sink registry".into()))?;
        let id = sink.format_id().to_string();
        if id.is_empty() {
            return Err(PerfError::InvalidArgument {
                what: "report sink".into(),
                detail: format!("the sink from {} has an empty format id", sink.origin()),
            });
        }
        if let Some(existing) = sinks.iter().find(|s| s.format_id() == id) {
            return Err(PerfError::DuplicateFormat {
                format: id,
                first: existing.origin(),
                second: sink.origin(),
            });
        }
        sinks.push(sink);
        Ok(())
    }

    /// The sink registered for the format id `format` (ids are matched exactly), or an
    /// error that names the format, the formats available and what to do (from
    /// [`set_hints`](Registry::set_hints)).
    pub fn sink(&self, format: &str) -> Result<Arc<dyn ReportSink>> {
        let sinks = self
            .sinks
            .read()
            .map_err(|_| PerfError::Poisoned("the sink registry".into()))?;
        if let Some(s) = sinks.iter().find(|s| s.format_id() == format) {
            return Ok(Arc::clone(s));
        }
        let available: Vec<&str> = sinks.iter().map(|s| s.format_id()).collect();
        let available = if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        };
        let advice = self.hint(Missing::Format(format)).unwrap_or_else(|| {
            "no sink registered here provides it; load a plugin that does".to_string()
        });
        Err(PerfError::UnknownFormat {
            format: format.to_string(),
            hint: format!("{advice} (available now: {available})"),
        })
    }

    /// Sets what the registry says about something missing: the facade, which knows its
    /// Cargo features, names the feature that compiles a format or sampler in.
    pub fn set_hints(&self, hints: Hints) {
        if let Ok(mut h) = self.hints.write() {
            *h = Some(hints);
        }
    }

    /// The advice [`set_hints`](Registry::set_hints) gives for `missing`, if any.
    pub fn hint(&self, missing: Missing<'_>) -> Option<String> {
        let hints = self.hints.read().ok().and_then(|h| h.clone())?;
        hints(missing)
    }

    /// Every registered sink, in registration order.
    pub fn sinks(&self) -> Vec<Arc<dyn ReportSink>> {
        self.sinks.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Ids of every registered format.
    pub fn format_ids(&self) -> Vec<String> {
        self.sinks()
            .iter()
            .map(|s| s.format_id().to_string())
            .collect()
    }

    /// Sets the factory of the system sampler used by `start_system_metrics`.
    pub fn set_system_source(&self, factory: SourceFactory) {
        if let Ok(mut s) = self.system_source.write() {
            *s = Some(factory);
        }
    }

    /// The system sampler factory, if one is registered.
    pub fn system_source(&self) -> Option<SourceFactory> {
        self.system_source.read().ok().and_then(|s| s.clone())
    }

    /// Sets the writer of streamed trace captures (`ProfilingSession::stream_trace`; the
    /// facade's `trace` feature).
    pub fn set_trace_stream(&self, factory: TraceStreamFactory) {
        if let Ok(mut s) = self.trace_stream.write() {
            *s = Some(factory);
        }
    }

    /// The writer of streamed trace captures, if one is set.
    pub fn trace_stream(&self) -> Option<TraceStreamFactory> {
        self.trace_stream.read().ok().and_then(|s| s.clone())
    }

    /// Sets how live snapshots are rendered for scrapers (the `/metrics` of a live endpoint,
    /// the textfile exporter): the facade's `openmetrics` feature sets the OpenMetrics one.
    pub fn set_exposition(&self, exposition: Exposition) {
        if let Ok(mut e) = self.exposition.write() {
            *e = Some(exposition);
        }
    }

    /// The exposition set by [`set_exposition`](Registry::set_exposition), or an error
    /// saying what to do (from [`set_hints`](Registry::set_hints)).
    pub fn exposition(&self) -> Result<Exposition> {
        self.exposition
            .read()
            .ok()
            .and_then(|e| e.clone())
            .ok_or_else(|| PerfError::Unavailable {
                what: "the live metrics exposition".into(),
                hint: self.hint(Missing::Exposition).unwrap_or_else(|| {
                    "no exposition is set (`Registry::set_exposition`)".to_string()
                }),
            })
    }

    /// Sets the loader `load_plugin` uses (the facade's `plugins` feature).
    pub fn set_plugin_loader(&self, loader: PluginLoader) {
        if let Ok(mut l) = self.plugin_loader.write() {
            *l = Some(loader);
        }
    }

    /// Loads the report plugin at `path` and registers its sink. A plugin whose format id is
    /// taken already is refused with an error naming both; a bad plugin is refused and
    /// nothing else changes.
    ///
    /// Loading a path again is not a duplicate when the loader returns the very sink that is
    /// registered (the plugin loader does so for the same path with the same bytes): that
    /// sink is returned. When the file at the path has changed since (a new build copied or
    /// renamed over it) and declares the same format id, the error says so: a loaded plugin
    /// cannot be unloaded, so the version loaded first stays in use until the program
    /// restarts.
    pub fn load_plugin(&self, path: &Path) -> Result<Arc<dyn ReportSink>> {
        let loader = self
            .plugin_loader
            .read()
            .ok()
            .and_then(|l| l.clone())
            .ok_or_else(|| PerfError::Unavailable {
                what: format!("loading the plugin `{}`", path.display()),
                hint: self.hint(Missing::PluginLoader).unwrap_or_else(|| {
                    "no plugin loader is set (`Registry::set_plugin_loader`)".to_string()
                }),
            })?;
        let sink = loader(path)?;
        match self.register_sink(Arc::clone(&sink)) {
            Ok(()) => Ok(sink),
            Err(e @ PerfError::DuplicateFormat { .. }) => {
                let existing = self
                    .sinks()
                    .into_iter()
                    .find(|s| s.format_id() == sink.format_id() && s.origin() == sink.origin());
                match existing {
                    Some(existing) if Arc::ptr_eq(&existing, &sink) => Ok(existing),
                    Some(_) => Err(PerfError::Plugin {
                        path: path.to_path_buf(),
                        message: format!(
                            "the file has changed since format `{}` was loaded from it; the version loaded first stays in use (a loaded plugin cannot be unloaded): restart the program to use the new one",
                            sink.format_id()
                        ),
                        source: None,
                    }),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Renders `report` with the sink for the format id `format` into `path`, atomically: on
    /// any error the previous file at `path` is left whole.
    pub fn render_to_file(&self, report: &Report, path: &Path, format: &str) -> Result<()> {
        let sink = self.sink(format)?;
        write_atomic(path, |w| sink.render(report, w)).map_err(|e| match e {
            AtomicWriteError::Io(e) => e,
            AtomicWriteError::Render(source) => PerfError::Render {
                format: sink.format_id().to_string(),
                session: report.session.name.clone(),
                path: Some(path.to_path_buf()),
                source,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::RenderError;
    use std::io::Write;

    struct Fixed(&'static str, &'static str);
    impl ReportSink for Fixed {
        fn format_id(&self) -> &str {
            self.0
        }
        fn file_extension(&self) -> &str {
            "txt"
        }
        fn render(&self, _: &Report, out: &mut dyn Write) -> std::result::Result<(), RenderError> {
            if self.1 == "fail" {
                out.write_all(b"partial")?;
                return Err("boom".into());
            }
            out.write_all(self.1.as_bytes())?;
            Ok(())
        }
        fn origin(&self) -> String {
            format!("test sink {}", self.1)
        }
    }

    #[test]
    fn unknown_format_names_it_and_takes_the_hint() {
        let r = Registry::new();
        r.register_sink(Arc::new(Fixed("x", "a"))).unwrap();
        let e = r.sink("weird").err().unwrap().to_string();
        assert!(e.contains("`weird`") && e.contains("plugin"), "{e}");
        assert!(e.contains("available now: x"), "{e}");
        r.set_hints(Arc::new(|m| match m {
            Missing::Format("html") => Some("enable the feature `html`".into()),
            Missing::PluginLoader => Some("enable the feature `plugins`".into()),
            _ => None,
        }));
        let e = r.sink("html").err().unwrap().to_string();
        assert!(e.contains("enable the feature `html`"), "{e}");
        let e = r.sink("weird").err().unwrap().to_string();
        assert!(e.contains("plugin"), "{e}");
        let e = r.load_plugin(Path::new("x.so")).err().unwrap().to_string();
        assert!(e.contains("x.so") && e.contains("feature `plugins`"), "{e}");
    }

    #[test]
    fn duplicate_format_names_both() {
        let r = Registry::new();
        r.register_sink(Arc::new(Fixed("x", "a"))).unwrap();
        let e = r
            .register_sink(Arc::new(Fixed("x", "b")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test sink a") && e.contains("test sink b"),
            "{e}"
        );
    }

    #[test]
    fn failed_render_keeps_previous_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let r = Registry::new();
        r.register_sink(Arc::new(Fixed("good", "hello"))).unwrap();
        r.register_sink(Arc::new(Fixed("bad", "fail"))).unwrap();
        let rep = Report::empty("s");
        r.render_to_file(&rep, &path, "good").unwrap();
        let e = r.render_to_file(&rep, &path, "bad").unwrap_err();
        assert!(e.to_string().contains("out.txt"), "{e}");
        let source = std::error::Error::source(&e).expect("the sink's error is kept");
        assert_eq!(source.to_string(), "boom");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
