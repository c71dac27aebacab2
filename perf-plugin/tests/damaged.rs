//! Damaged plugin files — truncated, half-copied, corrupt headers, overwritten or renamed over
//! while loaded — must each be a clear error naming the original path, or keep working; never
//! a `SIGBUS` or `SIGSEGV` of the host. Every load here runs in the test process itself: a
//! crash fails the whole test binary.

use std::path::Path;
use std::sync::Arc;

use heimdall_perf_core::{PerfError, Registry, ReportSink};
use heimdall_perf_plugin::{load_sink, loader, PluginError, PluginSink};
use heimdall_perf_testkit::sample_report;
use object::read::elf::{FileHeader, ProgramHeader};

use heimdall_perf_testkit::plugins::{libm, plugin};

const OPENMETRICS: &str = "heimdall-perf-plugin-openmetrics";
const HELLO: &str = "heimdall-perf-fixture-hello";
const BAD_OUTPUT: &str = "heimdall-perf-fixture-bad-output";

type Elf = object::elf::FileHeader64<object::Endianness>;

/// `(p_offset, p_filesz)` of every loadable segment, and the section header offset.
fn layout(bytes: &[u8]) -> (Vec<(u64, u64)>, u64) {
    let header = Elf::parse(bytes).unwrap();
    let endian = header.endian().unwrap();
    let loads = header
        .program_headers(endian, bytes)
        .unwrap()
        .iter()
        .filter(|ph| ph.p_type(endian) == object::elf::PT_LOAD)
        .map(|ph| (ph.p_offset(endian), ph.p_filesz(endian)))
        .collect();
    (loads, header.e_shoff(endian))
}

/// Cut points: the headers, inside (start, middle, end of) every loadable segment, the
/// section headers, one byte short.
fn cut_points(bytes: &[u8]) -> Vec<usize> {
    let (loads, shoff) = layout(bytes);
    let mut cuts = vec![0, 1, 3, 4, 15, 16, 40, 63, 64, 100];
    for (offset, filesz) in loads {
        let (offset, filesz) = (offset as usize, filesz as usize);
        cuts.extend([offset + 1, offset + filesz / 2, offset + filesz - 1]);
    }
    cuts.extend([shoff as usize, shoff as usize + 10, bytes.len() - 1]);
    cuts.retain(|&c| c < bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn render(sink: &dyn ReportSink) -> String {
    let mut out = Vec::new();
    sink.render(&sample_report(), &mut out)
        .unwrap_or_else(|e| panic!("render failed: {e}"));
    String::from_utf8(out).unwrap()
}

#[test]
fn truncated_plugins_and_libraries_are_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let originals = [("openmetrics", plugin(OPENMETRICS)), ("libm", libm())];
    let mut checked = 0;
    for (name, original) in originals {
        let bytes = std::fs::read(&original).unwrap();
        for cut in cut_points(&bytes) {
            let path = dir.path().join(format!("{name}-cut-{cut}.so"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = match load_sink(&path) {
                Ok(_) => panic!("{name} cut at byte {cut} of {} loaded", bytes.len()),
                Err(e) => e,
            };
            let text = e.to_string();
            assert!(matches!(e, PluginError::InvalidElf { .. }), "{text}");
            assert_eq!(e.path(), path);
            assert!(
                text.starts_with(&format!(
                    "plugin `{}`: cannot load it as a shared library: ",
                    path.display()
                )),
                "{text}"
            );
            let expected = if cut == 0 {
                "the file is empty (0 bytes): truncated, or still being copied?".to_string()
            } else if cut < 16 {
                format!("the file is {cut} bytes, too short for an ELF header: truncated?")
            } else if cut < 64 {
                format!("the file is {cut} bytes, shorter than the 64-byte ELF header: truncated?")
            } else {
                format!("lies beyond the end of the file ({cut} bytes): the file is truncated or corrupt")
            };
            assert!(text.contains(&expected), "cut at {cut}: {text}");
            checked += 1;
        }
        // The whole file still loads (libm as a library without the entry symbol).
        match load_sink(&original) {
            Ok(sink) => assert_eq!(sink.format_id(), "openmetrics"),
            Err(e) => assert!(matches!(e, PluginError::MissingEntry { .. }), "{e}"),
        }
    }
    assert!(checked >= 20, "only {checked} cut points");
}

/// Overwrites the 8-byte little-endian field at `at`.
fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[test]
#[cfg(all(target_arch = "x86_64", target_endian = "little"))]
fn corrupt_headers_are_refused_with_the_reason() {
    let original = std::fs::read(plugin(OPENMETRICS)).unwrap();
    let len = original.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let phoff = u64::from_le_bytes(original[32..40].try_into().unwrap()) as usize;
    let first_load = (0..)
        .map(|i| phoff + 56 * i)
        .find(|&at| u32::from_le_bytes(original[at..at + 4].try_into().unwrap()) == 1)
        .unwrap();
    type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Corrupt, String)> = vec![
        (
            "32-bit class",
            Box::new(|b| b[4] = 1),
            "a 32-bit ELF file, but this host is 64-bit".into(),
        ),
        (
            "big-endian",
            Box::new(|b| b[5] = 2),
            "a big-endian ELF file, but this host is little-endian".into(),
        ),
        (
            "executable",
            Box::new(|b| b[16] = 2),
            "not a shared library: it is an executable (ELF type 2)".into(),
        ),
        (
            "another machine",
            Box::new(|b| b[18..20].copy_from_slice(&183u16.to_le_bytes())),
            "built for another machine (ELF machine 183), this host is x86-64 (62)".into(),
        ),
        (
            "program headers past the end",
            Box::new(move |b| put_u64(b, 32, len - 8)),
            "the program header table (".to_string()
                + &format!("{} entries at byte {}) lies beyond the end of the file ({len} bytes)", u16::from_le_bytes(original[56..58].try_into().unwrap()), len - 8),
        ),
        (
            "section headers past the end",
            Box::new(move |b| put_u64(b, 40, len + 4096)),
            format!(
                "the section header table (at byte {}) lies beyond the end of the file ({len} bytes)",
                len + 4096
            ),
        ),
        (
            "a loadable segment past the end",
            Box::new(move |b| put_u64(b, first_load + 32, len + 1)),
            format!("loadable segment 0 (program header {}, file bytes 0..{}) lies beyond the end of the file ({len} bytes)", (first_load - phoff) / 56, len + 1),
        ),
        (
            "a loadable segment offset past the end",
            Box::new(move |b| put_u64(b, first_load + 8, u64::MAX - 3)),
            "lies beyond the end of the file".into(),
        ),
    ];
    for (what, corrupt, expected) in cases {
        let mut bytes = original.clone();
        corrupt(&mut bytes);
        let path = dir.path().join("corrupt.so");
        std::fs::write(&path, &bytes).unwrap();
        let e = err_of(load_sink(&path));
        assert!(matches!(e, PluginError::InvalidElf { .. }), "{what}: {e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("plugin `{}`: ", path.display())),
            "{what}: {text}"
        );
        assert!(
            text.contains(&expected),
            "{what}: {text}\nexpected: {expected}"
        );
    }
}

#[test]
#[cfg(all(target_arch = "x86_64", target_endian = "little"))]
fn a_fault_the_elf_reader_finds_keeps_its_error_as_the_source() {
    // A section header table claiming far more entries than the file holds: `object` is what
    // refuses to read it.
    let mut bytes = std::fs::read(plugin(OPENMETRICS)).unwrap();
    bytes[60..62].copy_from_slice(&0xff00u16.to_le_bytes()); // e_shnum
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("too-many-sections.so");
    std::fs::write(&path, &bytes).unwrap();
    let e = err_of(load_sink(&path));
    assert!(matches!(e, PluginError::InvalidElf { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("plugin `{}`: ", path.display()))
            && text.contains("the section header table"),
        "{text}"
    );
    let source = std::error::Error::source(&e).expect("the ELF reader's error");
    assert!(
        source.downcast_ref::<object::read::Error>().is_some(),
        "{source:?}"
    );
}

#[test]
fn a_library_the_dynamic_loader_refuses_names_the_plugin_and_keeps_the_loader_error() {
    // Intact headers, but a dependency that does not exist: only `dlopen` finds out.
    let mut bytes = std::fs::read(plugin(OPENMETRICS)).unwrap();
    let needed = b"libc.so.6\0";
    let mut renamed = 0;
    for at in 0..bytes.len() - needed.len() {
        if &bytes[at..at + needed.len()] == needed {
            bytes[at..at + 4].copy_from_slice(b"libq");
            renamed += 1;
        }
    }
    assert!(renamed > 0, "the plugin names no libc.so.6");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libmissing-dependency.so");
    std::fs::write(&path, &bytes).unwrap();
    let e = err_of(load_sink(&path));
    assert!(matches!(e, PluginError::Load { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "plugin `{}`: cannot load it as a shared library: ",
            path.display()
        )) && text.contains("libq.so.6"),
        "{text}"
    );
    // The private copy's path is not what the user sees…
    assert!(!text.contains("heimdall-perf-plugin-"), "{text}");
    // …but the loader's own error is kept, as it was.
    let source = std::error::Error::source(&e).expect("the dynamic loader's error");
    assert!(
        source.downcast_ref::<libloading::Error>().is_some(),
        "{source:?}"
    );
}

fn err_of<T>(r: Result<T, PluginError>) -> PluginError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn a_loaded_plugin_survives_its_file_being_truncated_or_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libopenmetrics.so");
    let bytes = std::fs::read(plugin(OPENMETRICS)).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let sink = PluginSink::load(&path).unwrap();
    let expected = render(&sink);
    assert!(expected.ends_with("# EOF\n"), "{expected}");

    // Truncated in place (a deployment that starts copying over the same file)…
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_eq!(render(&sink), expected);
    // …then overwritten in place with garbage of the full length.
    let garbage: Vec<u8> = (0..bytes.len()).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    assert_eq!(render(&sink), expected);
    // …then zeros (a preallocated, not yet written file).
    std::fs::write(&path, vec![0u8; bytes.len()]).unwrap();
    assert_eq!(render(&sink), expected);
    // Loading it now is a clear error, and the loaded sink still works.
    let e = err_of(load_sink(&path));
    assert_eq!(
        e.to_string(),
        format!(
            "plugin `{}`: cannot load it as a shared library: not an ELF file (it starts with \"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\", not \"\\x7fELF\")",
            path.display()
        )
    );
    assert_eq!(render(&sink), expected);
}

#[test]
fn a_half_copied_plugin_with_a_zero_filled_tail_is_refused() {
    // Some copies create the file at its final size and fill it in order: the section headers
    // (last in the file) are still zeros.
    let bytes = std::fs::read(plugin(OPENMETRICS)).unwrap();
    let (_, shoff) = layout(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.so");
    let mut half = bytes.clone();
    for b in &mut half[shoff as usize..] {
        *b = 0;
    }
    std::fs::write(&path, &half).unwrap();
    let e = err_of(load_sink(&path));
    assert!(
        e.to_string()
            .contains("is not a string table: the file is truncated, zero-filled or corrupt"),
        "{e}"
    );
}

/// Writes `bytes` next to `path` and renames it over `path` (how a deployment replaces a
/// file atomically).
fn rename_over(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_plugin_renamed_over_loads_the_new_library_or_says_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libplugin.so");
    let hello = std::fs::read(plugin(HELLO)).unwrap();
    std::fs::write(&path, &hello).unwrap();
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    let first = registry.load_plugin(&path).unwrap();
    assert_eq!(first.format_id(), "spantable");

    // The same bytes again: the registered sink, not a duplicate.
    let again = registry.load_plugin(&path).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    rename_over(&path, &hello);
    let again = registry.load_plugin(&path).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(registry.format_ids(), vec!["spantable".to_string()]);

    // Another plugin renamed over the path: that one is loaded, not the old library.
    rename_over(&path, &std::fs::read(plugin(BAD_OUTPUT)).unwrap());
    let second = registry.load_plugin(&path).unwrap();
    assert_eq!(second.format_id(), "badoutput");
    assert_eq!(
        registry.format_ids(),
        vec!["spantable".to_string(), "badoutput".to_string()]
    );

    // A new build of the first plugin (other bytes, same format id): a clear error.
    let mut rebuilt = hello.clone();
    rebuilt.extend_from_slice(b"a new build");
    rename_over(&path, &rebuilt);
    match registry.load_plugin(&path) {
        Err(PerfError::Plugin {
            path: p, message, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(
                message,
                "the file has changed since format `spantable` was loaded from it; the version loaded first stays in use (a loaded plugin cannot be unloaded): restart the program to use the new one"
            );
        }
        Err(e) => panic!("expected a plugin error, got {e}"),
        Ok(_) => panic!("a changed plugin replaced the loaded one silently"),
    }
    // Outside a registry, the new bytes load as a new library.
    let sink = load_sink(&path).unwrap();
    assert!(!Arc::ptr_eq(&sink, &first));
    assert_eq!(sink.format_id(), "spantable");
    assert_eq!(render(&*sink), render(&*first));
}

#[test]
fn only_regular_files_of_sane_size_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_of(load_sink(dir.path()));
    assert_eq!(
        e.to_string(),
        format!("plugin `{}`: not a file", dir.path().display())
    );

    // A FIFO is refused without waiting for a writer.
    let fifo = dir.path().join("plugin.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let e = err_of(load_sink(&fifo));
        assert!(matches!(e, PluginError::NotAFile { .. }), "{e}");
    }

    // A huge (sparse) file is refused from its size, without being read.
    let huge = dir.path().join("huge.so");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let e = err_of(load_sink(&huge));
    assert_eq!(
        e.to_string(),
        format!(
            "plugin `{}`: the file is 314572800 bytes, more than the 268435456-byte limit for a plugin",
            huge.display()
        )
    );
}

/// Run by `private_copies_do_not_pile_up` in a child process with its own `TMPDIR`.
#[test]
#[ignore = "helper: run by private_copies_do_not_pile_up"]
fn private_copy_helper() {
    let Some(plugins) = std::env::var_os("HEIMDALL_TEST_PLUGINS") else {
        return;
    };
    for path in std::env::split_paths(&plugins) {
        let _ = load_sink(&path);
    }
}

#[test]
fn private_copies_do_not_pile_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.so");
    std::fs::write(&garbage, b"\x7fELF garbage").unwrap();
    // Loaded, refused by the host after loading (no entry symbol), refused by the checks.
    let mut plugins = vec![plugin(HELLO), plugin(OPENMETRICS), garbage];
    plugins.push(libm());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "private_copy_helper", "--ignored", "--nocapture"])
        .env("TMPDIR", tmp.path())
        .env(
            "HEIMDALL_TEST_PLUGINS",
            std::env::join_paths(&plugins).unwrap(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
