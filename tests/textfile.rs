//! The textfile exporter in a folder it shares: with other sessions of the process (names
//! that sanitise to one file) and with other users (a symbolic link planted at the file).

use std::time::Duration;

use heimdall_perf::init;

/// Sessions whose names give one file name — `line/3` and `line:3`, `..` and `...`, two
/// long names equal up to the length cap — cannot export into the same folder: the second
/// is an error naming both sessions and the file. The file is free again once the first
/// session stops, and another folder is no clash.
#[test]
fn sessions_whose_names_give_one_file_are_refused_until_the_first_stops() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let long = "é".repeat(200);
    let pairs = [
        ("line/3", "line:3".to_string()),
        ("..", "...".to_string()),
        (long.as_str(), format!("{long}-b")),
    ];
    for (first, second) in &pairs {
        let a = manager.lock().unwrap().start_session(first).unwrap();
        let b = manager.lock().unwrap().start_session(second).unwrap();
        a.lock()
            .unwrap()
            .export_textfile(out.path(), Duration::from_secs(60))
            .unwrap();
        // The folder named another way is the same folder.
        let same_folder = out.path().join(".");
        let e = b
            .lock()
            .unwrap()
            .export_textfile(&same_folder, Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("`{first}`")) && e.contains(&format!("`{second}`")),
            "{e}"
        );
        assert!(e.contains(".prom"), "{e}");
        // Another folder is fine.
        b.lock()
            .unwrap()
            .export_textfile(other.path(), Duration::from_secs(60))
            .unwrap();
        manager.lock().unwrap().stop_session_named(first).unwrap();
        manager.lock().unwrap().stop_session_named(second).unwrap();
    }
    // Released when the exporters stopped: a new session writes the first file.
    let c = manager.lock().unwrap().start_session("line/3").unwrap();
    c.lock()
        .unwrap()
        .export_textfile(out.path(), Duration::from_secs(60))
        .unwrap();
}

/// A symbolic link planted at `<session>.prom` (another user of a shared collector folder)
/// is replaced by the file; its target is never written.
#[test]
fn a_symlink_planted_at_the_textfile_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let file = out.path().join("planted.prom");
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    // And one to a file that does not exist yet.
    let dangling_target = elsewhere.path().join("created.txt");
    let dangling = out.path().join("dangling.prom");
    std::os::unix::fs::symlink(&dangling_target, &dangling).unwrap();

    let manager = init(dir.path()).unwrap();
    for name in ["planted", "dangling"] {
        let s = manager.lock().unwrap().start_session(name).unwrap();
        s.lock()
            .unwrap()
            .export_textfile(out.path(), Duration::from_secs(60))
            .unwrap();
        manager.lock().unwrap().stop_session_named(name).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        !dangling_target.exists(),
        "the dangling link's target was created"
    );
    for f in [&file, &dangling] {
        let m = std::fs::symlink_metadata(f).unwrap();
        assert!(m.is_file(), "{} is still a link", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.contains("heimdall_session_active"), "{text:.200}");
    }
}
