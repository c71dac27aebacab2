//! Runs `promtool check metrics` (from Debian's `prometheus` package) on OpenMetrics text.

use std::io::Write;
use std::process::{Command, Stdio};

/// Checks `text` with `promtool check metrics`: `Ok` only when promtool exits 0 and prints
/// nothing (no lint warning, no error). A missing promtool is an error saying how to install it.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run `promtool` ({e}): install it (Debian/Ubuntu: `apt-get install -y prometheus`; \
                 it is also in the Prometheus release tarballs) — this test does not skip"
            )
        })?;
    let mut stdin = child.stdin.take().ok_or("promtool has no stdin")?;
    stdin
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot feed promtool: {e}"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool failed to run: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics: {} and said:\n{said}",
            out.status
        ))
    }
}
