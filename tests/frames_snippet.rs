//! The frames usage of issue 12, verbatim (the channel and the image around it are the
//! test's), and what the report then says.

use std::sync::mpsc;

type Image = Vec<u8>;

// Verbatim: rustfmt would rewrite the snippet's layout.
#[rustfmt::skip]
#[test]
fn the_frames_snippet_compiles_and_runs_as_written() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::env::set_current_dir(dir.path())?;
    let (tx, rx) = mpsc::channel::<(heimdall_perf::Frame, Image)>();
    let image: Image = vec![0; 16];

    // ---- the snippet, as written ----
    use heimdall_perf::{init, frame, FrameSource};
    use std::time::Duration;

    let manager = init("./performance_reports")?;
    let session = manager.lock().unwrap().start_session("line-3")?;
    {
        let mut s = session.lock().unwrap();
        s.set_label("line", "3");                                  // session labels
        s.set_label("station", "cell-7");
        s.set_frame_budget("cam-0", Duration::from_micros(16_667)); // per frame, capture → finish
        s.set_stage_budget("detect", Duration::from_millis(8));     // per stage, any source
    }
    // acquisition thread: a frame is born; the token is Copy + Send and travels with the image
    let f = frame!("cam-0");                  // capture time = now; f.id() counts up per source
    tx.send((f, image))?;
    // sources named at run time (cameras from a config file): make the source once, then begin
    let cam = FrameSource::new(&format!("cam-{}", 1));
    let g = cam.begin_with_id(18_442);        // the camera's own frame counter
    g.drop_frame("queue full");

    // processing thread(s)
    let (f, image) = rx.recv()?;
    { let _s = f.stage("preprocess"); /* … */ }
    { let _s = f.stage("detect"); /* … */ }
    f.finish();                                // or f.drop_frame("queue full")
    // ---- end of the snippet ----

    drop(image);
    let report = session.lock().unwrap().report();
    assert_eq!(report.session.labels["line"], "3");
    assert_eq!(report.session.labels["station"], "cell-7");
    let cam0 = report.frame_source("cam-0").expect("cam-0 frames");
    assert_eq!((cam0.count, cam0.finished, cam0.missed), (1, 1, 0));
    assert_eq!(cam0.budget_ns, Some(16_667_000));
    let detect = cam0.stage("detect").expect("the detect stage");
    assert_eq!(detect.budget_ns, Some(8_000_000));
    assert_eq!(detect.service.summary.count, 1);
    assert_eq!(cam0.stage("preprocess").unwrap().service.summary.count, 1);
    // A stage is also a span of the thread that ran it.
    assert_eq!(report.span_total(&["detect"]).unwrap().count, 1);
    let cam1 = report.frame_source("cam-1").expect("cam-1 frames");
    assert_eq!((cam1.count, cam1.finished), (1, 0));
    assert_eq!(cam1.dropped.get("queue full"), Some(&1));
    let saved = manager.lock().unwrap().stop_session()?;
    assert!(saved.files.iter().any(|f| f.ends_with("report.json")));
    Ok(())
}
