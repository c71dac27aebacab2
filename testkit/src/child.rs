//! Runs one test of the running test binary again, alone, in a child process: for tests of
//! process-wide state (a thread started once per process, the process's own name, its
//! file descriptors), which the other tests of the binary, running beside it, would disturb.

use std::process::Command;

/// Runs this test binary's test `name` again, alone (`--exact`, one test thread), in a
/// child process whose environment has `key` set to `value` (the test looks for it to
/// know it is the child, and what to do); returns the child's output, stdout then stderr.
///
/// Panics, with that output, if the child failed or did not run the test (a `name` that
/// matches none).
pub fn run_test_alone(name: &str, key: &str, value: &str) -> String {
    run_test_alone_under(&[], name, key, value)
}

/// [`run_test_alone`], the child started through `wrapper`: a program and its arguments,
/// to which the test binary and its arguments are added (`["unshare", "--net", "--"]`
/// runs the child in a network namespace of its own). An empty `wrapper` runs the test
/// binary itself.
pub fn run_test_alone_under(wrapper: &[&str], name: &str, key: &str, value: &str) -> String {
    let exe = std::env::current_exe().expect("the path of the running test binary");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(key, value)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the child for `{name}` ({wrapper:?}): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child `{name}` ({key}={value}, {wrapper:?}) failed:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "child did not run `{name}`:\n{text}"
    );
    text
}
