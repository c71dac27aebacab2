//! Process CPU usage rises while a thread spins. Alone in its test binary (its own
//! process), so no other test burns CPU meanwhile.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{points, session};
use heimdall_perf_core::series_names as sn;
use heimdall_perf_core::SeriesPoint;

fn mean(p: &[SeriesPoint]) -> f64 {
    p.iter().map(|p| p.mean).sum::<f64>() / p.len() as f64
}

#[test]
fn process_cpu_rises_while_a_thread_spins() {
    let mut s = session("cpu", Duration::from_millis(50));
    s.start_system_metrics().unwrap();
    std::thread::sleep(Duration::from_millis(120));

    // Idle: only the sampler runs.
    let i0 = points(&s, sn::PROCESS_CPU).len();
    std::thread::sleep(Duration::from_millis(1000));
    let i1 = points(&s, sn::PROCESS_CPU).len();

    // Spinning: one thread burns CPU and measures its own share of one core.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let spinner = std::thread::spawn(move || {
        let t0 = Instant::now();
        let c0 = heimdall_perf_system::thread_cpu_time().unwrap();
        let mut x = 0u64;
        while !flag.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let c1 = heimdall_perf_system::thread_cpu_time().unwrap();
        (c1 - c0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0
    });
    std::thread::sleep(Duration::from_millis(120));
    let s0 = points(&s, sn::PROCESS_CPU).len();
    std::thread::sleep(Duration::from_millis(1000));
    let s1 = points(&s, sn::PROCESS_CPU).len();
    std::thread::sleep(Duration::from_millis(120));
    stop.store(true, Ordering::Relaxed);
    let spinner_share = spinner.join().unwrap();
    s.stop();

    let series = s.report().series(sn::PROCESS_CPU).cloned().unwrap();
    assert_eq!(series.unit, "%");
    let p = &series.points;
    // Leave out the round that straddles each window's start.
    let idle = &p[i0 + 1..i1];
    let spin = &p[s0 + 1..s1];
    assert!(
        idle.len() >= 10 && spin.len() >= 10,
        "{} / {}",
        idle.len(),
        spin.len()
    );
    let (idle, spin) = (mean(idle), mean(spin));
    assert!(idle < 10.0, "idle process at {idle:.1} % of a core");
    // It rises by about what the spinner got of a core: all of one on a quiet machine,
    // less on a loaded one (other processes take their share).
    assert!(
        spin > idle + spinner_share / 2.0,
        "spinning {spin:.1} % vs idle {idle:.1} % (spinner got {spinner_share:.1} %)"
    );
    // The series agrees with what the spinning thread measured of itself.
    assert!(
        (spin - spinner_share).abs() < 20.0,
        "series {spin:.1} % vs spinner's own {spinner_share:.1} %"
    );
}
