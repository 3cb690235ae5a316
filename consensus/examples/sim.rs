//! Runs the deterministic simulation for many seeds (or replays one).
//!
//! `cargo run --release -p sidechain-consensus --example sim -- --seeds 10000 [--scenario crash] [--n 7]
//! [--seed 123] [--heights 4] [--ignore-locks] [--start 0] [--jobs 2]`. One seed is one run; without
//! `--scenario`/`--n`, seed `s` runs scenario `s % 5` with `4` or `7` validators (`s / 5 % 2`), so any
//! range of seeds covers every scenario and size. Exits non-zero if a seed fails, printing the command
//! that replays it.

use sidechain_consensus::sim::{run, Options, Scenario};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: u64| {
        get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} wants a number")))
    };
    let scenario = get("--scenario").map(|s| Scenario::parse(&s).unwrap_or_else(|| panic!("unknown scenario {s}")));
    let size = get("--n").map(|n| n.parse::<usize>().expect("--n wants a number"));
    let opts = Options {
        heights: num("--heights", 4),
        ignore_locks: args.iter().any(|a| a == "--ignore-locks"),
        ..Options::default()
    };
    let (start, count) = match get("--seed") {
        Some(s) => (s.parse().expect("--seed wants a number"), 1),
        None => (num("--start", 0), num("--seeds", 1000)),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let jobs = num("--jobs", cores).clamp(1, count.max(1));
    let pick = |seed: u64| {
        let s = scenario.unwrap_or(Scenario::ALL[(seed % 5) as usize]);
        let n = size.unwrap_or(if (seed / 5).is_multiple_of(2) { 4 } else { 7 });
        (s, n)
    };
    let t0 = Instant::now();
    let events = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for job in 0..jobs {
            let (events, failed, opts, done) = (&events, &failed, &opts, &done);
            scope.spawn(move || {
                let mut seed = start + job;
                while seed < start + count && !failed.load(Ordering::Relaxed) {
                    let (scenario, n) = pick(seed);
                    let o = run(seed, scenario, n, opts);
                    events.fetch_add(o.events, Ordering::Relaxed);
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if d % 10_000 == 0 {
                        let secs = t0.elapsed().as_secs_f64();
                        eprintln!("{d} seeds passed so far, {secs:.0} s, {:.0} seeds/s", d as f64 / secs);
                    }
                    if count == 1 {
                        println!(
                            "seed {seed} {} n={n}: trace {:016x}, {} events, {} ms simulated, {} evidence\n  {}",
                            scenario.name(),
                            o.trace_hash,
                            o.events,
                            o.end_ms,
                            o.evidence,
                            o.setup
                        );
                    }
                    if !o.ok() {
                        failed.store(true, Ordering::Relaxed);
                        eprintln!("FAILED seed {seed} ({} n={n}): {}", scenario.name(), o.setup);
                        for v in &o.violations {
                            eprintln!("  {v}");
                        }
                        eprintln!("replay: {}", o.replay_command());
                    }
                    seed += jobs;
                }
            });
        }
    });
    if failed.load(Ordering::Relaxed) {
        std::process::exit(1);
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{count} seeds passed in {secs:.1} s on {jobs} threads: {:.0} seeds/s, {} events",
        count as f64 / secs,
        events.load(Ordering::Relaxed)
    );
}
