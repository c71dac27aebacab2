//! Builds plugin crates of the workspace (test fixtures, shipped plugins) so that tests can
//! load the real `.so`.
//!
//! The outer `cargo test` holds the lock on the main target directory, so the plugins are
//! built by a nested `cargo build` into a separate one: `$CARGO_TARGET_DIR/plugin-fixtures`
//! when that variable is set, `<workspace>/target/plugin-fixtures` otherwise. Each test binary
//! builds once (see `plugin`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root: the nearest ancestor of this crate whose `Cargo.toml` has `[workspace]`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|t| t.lines().any(|l| l.trim() == "[workspace]"))
                .unwrap_or(false)
        })
        .unwrap_or(&manifest_dir)
        .to_path_buf()
}

/// Where the nested build puts its output.
pub fn fixture_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            let dir = if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            };
            dir.join("plugin-fixtures")
        }
        _ => workspace_root().join("target").join("plugin-fixtures"),
    }
}

/// Builds the given packages (cdylib crates of the workspace) and returns the shared library
/// of each, by package name.
pub fn build_cdylibs(packages: &[&str]) -> Result<HashMap<String, PathBuf>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--target-dir")
        .arg(fixture_target_dir());
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo build` of {packages:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut found = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let Some(target) = msg["target"]["name"].as_str() else {
            continue;
        };
        let library = msg["filenames"].as_array().and_then(|files| {
            files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(std::env::consts::DLL_SUFFIX))
        });
        if let Some(library) = library {
            found.insert(target.replace('-', "_"), PathBuf::from(library));
        }
    }
    packages
        .iter()
        .map(|p| {
            found
                .get(&p.replace('-', "_"))
                .map(|path| (p.to_string(), path.clone()))
                .ok_or_else(|| format!("`cargo build -p {p}` produced no shared library"))
        })
        .collect()
}

/// The test fixtures and the shipped plugins this file knows.
pub const PLUGINS: &[&str] = &[
    "heimdall-perf-fixture-hello",
    "heimdall-perf-fixture-panicking",
    "heimdall-perf-fixture-wrong-abi",
    "heimdall-perf-fixture-bad-output",
    "heimdall-perf-plugin-openmetrics",
];

/// The shared library of `package` (one of [`PLUGINS`]), built once per test binary.
pub fn plugin(package: &str) -> PathBuf {
    static BUILT: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
    match BUILT.get_or_init(|| build_cdylibs(PLUGINS)) {
        Ok(map) => match map.get(package) {
            Some(path) => path.clone(),
            None => panic!("`{package}` is not one of the fixtures built by tests/common"),
        },
        Err(e) => panic!("building the plugin fixtures failed: {e}"),
    }
}

/// libm: a real shared library that is not a plugin (panics if the system has none: the
/// tests that use it must not pass silently without it).
pub fn libm() -> PathBuf {
    let candidates = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/usr/lib/aarch64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib64/libm.so.6",
    ];
    if let Some(p) = candidates.iter().map(Path::new).find(|p| p.is_file()) {
        return p.to_path_buf();
    }
    let out = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .or_else(|_| {
            std::process::Command::new("/sbin/ldconfig")
                .arg("-p")
                .output()
        });
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("libm.so.6 ") {
                if let Some((_, p)) = line.rsplit_once(" => ") {
                    return PathBuf::from(p);
                }
            }
        }
    }
    panic!("cannot find libm.so.6 (looked in {candidates:?} and `ldconfig -p`)");
}
