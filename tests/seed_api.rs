//! The spec's snippets (`heimdall-perf-seed.fr.md`, "Utilisation"), compiled verbatim
//! against the facade and run.
//!
//! The snippets write relative paths (`./performance_reports`, `./report.html`,
//! `./flamegraph.svg`), so the test runs them from a temporary working directory; it is the
//! only test in this binary, so changing the directory affects nothing else.
//!
//! With every default feature on, the whole sequence succeeds and the files are checked. With
//! a feature off, the sequence stops at the first snippet that needs it, with the clear error
//! that names the feature (never a panic).

// The spec imports names it does not use in every snippet, and ignores `start_timing`'s
// result.
#![allow(unused_imports, unused_variables, clippy::unit_arg)]

use std::path::PathBuf;

fn my_function() {
    std::thread::sleep(std::time::Duration::from_millis(3));
}

/// Every snippet of the spec, in order, verbatim (indentation aside).
fn spec_sequence() -> Result<(), Box<dyn std::error::Error>> {
    // ### Initialisation
    use heimdall_perf::{init, Measurement, MetricType};

    // Initialiser le profilage
    let profiling_manager = init("./performance_reports")?;

    // Créer une session de profilage
    let session = {
        let mut manager = profiling_manager.lock().unwrap();
        manager.start_session("my_session")?
    };

    // Démarrer la collecte de métriques système
    {
        let mut session_guard = session.lock().unwrap();
        session_guard.start_system_metrics()?;
    }

    // ### Mesure du temps d'exécution
    // Mesurer le temps d'exécution d'une fonction
    {
        let mut session_guard = session.lock().unwrap();
        session_guard.start_timing("my_function");
    }

    // Exécuter la fonction
    my_function();

    // Arrêter la mesure
    {
        let mut session_guard = session.lock().unwrap();
        let duration = session_guard.stop_timing("my_function")?;
        println!("Temps d'exécution: {:?}", duration);
    }

    // ### Utilisation des compteurs
    use heimdall_perf::metrics::{MetricCounter, ThroughputMeter, Timer};

    // Créer un compteur de FPS
    let mut fps_counter = MetricCounter::new("fps", MetricType::Throughput, "fps", 100);

    // Mettre à jour le compteur
    fps_counter.set(30.0);

    // Ajouter la mesure à la session
    {
        let mut session_guard = session.lock().unwrap();
        session_guard.add_measurement(fps_counter.to_measurement());
    }

    // ### Génération de rapports
    use heimdall_perf::reports::ReportFormat;
    use std::path::Path;

    // Générer un rapport HTML
    {
        let session_guard = session.lock().unwrap();
        session_guard.save_report(Path::new("./report.html"), ReportFormat::Html)?;
    }

    // Générer un flamegraph
    {
        let session_guard = session.lock().unwrap();
        session_guard.generate_flamegraph(Path::new("./flamegraph.svg"))?;
    }

    // ### Arrêt de la session
    // Arrêter la session
    {
        let mut manager = profiling_manager.lock().unwrap();
        manager.stop_session()?;
    }
    Ok(())
}

fn run_in_temp_dir() -> (tempfile::TempDir, Result<(), String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = std::env::current_dir().expect("current dir");
    std::env::set_current_dir(dir.path()).expect("enter temp dir");
    let result = spec_sequence().map_err(|e| e.to_string());
    std::env::set_current_dir(old).expect("leave temp dir");
    (dir, result)
}

#[allow(dead_code)]
fn run_folders(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("performance_reports"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[test]
fn spec_snippets_run_as_written() {
    let (dir, result) = run_in_temp_dir();
    // `init` always creates the report directory.
    assert!(dir.path().join("performance_reports").is_dir());

    #[cfg(not(feature = "system"))]
    {
        let e = result.expect_err("start_system_metrics needs the `system` feature");
        assert!(e.contains("feature `system`"), "{e}");
    }
    #[cfg(all(feature = "system", not(feature = "html")))]
    {
        let e = result.expect_err("an HTML report needs the `html` feature");
        assert!(e.contains("feature `html`"), "{e}");
    }
    #[cfg(all(feature = "system", feature = "html", not(feature = "flame")))]
    {
        let e = result.expect_err("a flamegraph needs the `flame` feature");
        assert!(e.contains("feature `flame`"), "{e}");
    }
    #[cfg(all(feature = "system", feature = "html", feature = "flame"))]
    {
        result.expect("the spec's sequence runs with the default features");
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(
            html.contains("my_function"),
            "the HTML report names the timing"
        );
        assert!(html.contains("fps"), "the HTML report names the counter");
        let svg = std::fs::read_to_string(dir.path().join("flamegraph.svg")).unwrap();
        assert!(
            svg.contains("my_function"),
            "the flamegraph names the timing"
        );
        let runs = run_folders(dir.path());
        assert_eq!(
            runs.len(),
            1,
            "stop_session writes one fresh folder: {runs:?}"
        );
        let files: Vec<_> = std::fs::read_dir(&runs[0]).unwrap().collect();
        assert!(
            !files.is_empty(),
            "stop_session wrote the session's reports"
        );
    }
}
