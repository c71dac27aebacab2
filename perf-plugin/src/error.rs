//! The error type of heimdall-perf-plugin.

use std::path::{Path, PathBuf};

/// The underlying error of a loading step (the dynamic loader's, the ELF reader's), kept as
/// the [`source`](std::error::Error::source) of a [`PluginError`]. Boxed so that the public
/// type does not depend on which crates (and versions) do the loading; downcast it to reach
/// the concrete error (`libloading::Error`, `object::read::Error`).
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a plugin could not be loaded or could not render. Every message names the plugin's
/// path, and for a render the format and the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The path does not exist.
    #[error("plugin `{path}`: no such file")]
    NotFound {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path exists but is not a regular file (a directory, say).
    #[error("plugin `{path}`: not a file")]
    NotAFile {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path could not be inspected.
    #[error("plugin `{path}`: cannot read it: {source}")]
    Io {
        /// The path asked for.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any plugin should be (256 MiB); it is not read.
    #[error(
        "plugin `{path}`: the file is {size} bytes, more than the {limit}-byte limit for a plugin"
    )]
    TooLarge {
        /// The path asked for.
        path: PathBuf,
        /// The file's size in bytes (or how much was read before it passed the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not a whole ELF shared library for this host: empty, truncated (a
    /// half-copied file), corrupt headers, or built for another machine. Found by reading the
    /// headers, before the dynamic loader sees the file.
    #[error("plugin `{path}`: cannot load it as a shared library: {detail}")]
    InvalidElf {
        /// The path asked for.
        path: PathBuf,
        /// What is wrong with the file.
        detail: String,
        /// The ELF reader's error (an `object::read::Error`), when it is what found the fault;
        /// `None` for the faults the host's own checks find.
        #[source]
        source: Option<Cause>,
    },
    /// The private copy that is loaded instead of the file itself could not be written.
    #[error("plugin `{path}`: cannot write the private copy to load (in `{dir}`): {source}")]
    PrivateCopy {
        /// The path asked for.
        path: PathBuf,
        /// Where the copy was to go.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The dynamic loader refused the file (not a shared library, wrong architecture, missing
    /// dependency…).
    #[error("plugin `{path}`: cannot load it as a shared library: {message}")]
    Load {
        /// The path asked for.
        path: PathBuf,
        /// What the dynamic loader said, about the plugin's path (the host loads a private
        /// copy, whose path the loader's own message names), with a hint where there is one.
        message: String,
        /// The dynamic loader's error (a `libloading::Error`), as it was.
        #[source]
        source: Cause,
    },
    /// A shared library that does not export the plugin entry symbol.
    #[error(
        "plugin `{path}`: not a heimdall-perf report plugin: it does not export the symbol `{symbol}` ({message})"
    )]
    MissingEntry {
        /// The path asked for.
        path: PathBuf,
        /// The symbol looked for, [`ENTRY_SYMBOL`](crate::abi::ENTRY_SYMBOL).
        symbol: &'static str,
        /// What the dynamic loader said.
        message: String,
        /// The dynamic loader's error (a `libloading::Error`).
        #[source]
        source: Cause,
    },
    /// A plugin built for another version of the plugin ABI.
    #[error(
        "plugin `{path}`: built for plugin ABI version {found}, but this host speaks version {expected}; rebuild the plugin against heimdall-perf-plugin {host_crate_version}"
    )]
    AbiVersion {
        /// The path asked for.
        path: PathBuf,
        /// The plugin's ABI version.
        found: u32,
        /// The host's, [`ABI_VERSION`](crate::abi::ABI_VERSION).
        expected: u32,
        /// Version of the host's heimdall-perf-plugin crate.
        host_crate_version: &'static str,
    },
    /// The descriptor is malformed: a field is null, not UTF-8, empty, or too short.
    #[error("plugin `{path}`: invalid descriptor: {detail}")]
    InvalidDescriptor {
        /// The path asked for.
        path: PathBuf,
        /// Which field is wrong, and how.
        detail: String,
    },
    /// The report could not be turned into JSON for the plugin.
    #[error("plugin `{path}`: cannot serialise session `{session}` to JSON: {source}")]
    Serialize {
        /// The plugin's path.
        path: PathBuf,
        /// The session.
        session: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// The plugin's render reported an error.
    #[error("plugin `{path}` (format `{format}`) failed to render session `{session}`: {message}")]
    Render {
        /// The plugin's path.
        path: PathBuf,
        /// The plugin's format id.
        format: String,
        /// The session.
        session: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin's render panicked (and the plugin caught it).
    #[error(
        "plugin `{path}` (format `{format}`) panicked while rendering session `{session}`: {message}"
    )]
    Panicked {
        /// The plugin's path.
        path: PathBuf,
        /// The plugin's format id.
        format: String,
        /// The session.
        session: String,
        /// The panic message.
        message: String,
    },
    /// The plugin said it rendered, but its output is unusable (null, empty, not UTF-8, or an
    /// unknown status).
    #[error(
        "plugin `{path}` (format `{format}`) returned unusable output for session `{session}`: {detail}"
    )]
    BadOutput {
        /// The plugin's path.
        path: PathBuf,
        /// The plugin's format id.
        format: String,
        /// The session.
        session: String,
        /// What is wrong with the output.
        detail: String,
    },
}

impl PluginError {
    /// The plugin path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PluginError::NotFound { path }
            | PluginError::NotAFile { path }
            | PluginError::Io { path, .. }
            | PluginError::TooLarge { path, .. }
            | PluginError::InvalidElf { path, .. }
            | PluginError::PrivateCopy { path, .. }
            | PluginError::Load { path, .. }
            | PluginError::MissingEntry { path, .. }
            | PluginError::AbiVersion { path, .. }
            | PluginError::InvalidDescriptor { path, .. }
            | PluginError::Serialize { path, .. }
            | PluginError::Render { path, .. }
            | PluginError::Panicked { path, .. }
            | PluginError::BadOutput { path, .. } => path,
        }
    }

    /// The message without its leading "plugin `<path>`: ", for errors that carry the path
    /// separately (such as `PerfError::Plugin`).
    pub fn detail(&self) -> String {
        let text = self.to_string();
        let prefix = format!("plugin `{}`: ", self.path().display());
        match text.strip_prefix(&prefix) {
            Some(rest) => rest.to_string(),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_drops_only_the_path_prefix() {
        let e = PluginError::NotFound {
            path: "/x/p.so".into(),
        };
        assert_eq!(e.to_string(), "plugin `/x/p.so`: no such file");
        assert_eq!(e.detail(), "no such file");
        let e = PluginError::Panicked {
            path: "/x/p.so".into(),
            format: "f".into(),
            session: "s".into(),
            message: "boom".into(),
        };
        assert_eq!(e.detail(), e.to_string());
        assert_eq!(e.path(), Path::new("/x/p.so"));
    }
}
