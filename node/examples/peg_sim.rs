//! Runs the adversarial peg simulation for many seeds (or replays one).
//!
//! `cargo run --release -p sidechain-node --example peg_sim -- --seeds 100000 [--start 0] [--heights 40]
//! [--jobs 2] [--naive-required] [--no-early-items] [--resume-above N] [--taproot]`, or `--seed S` to replay one (prints
//! its outcome and trace hash). `--resume-above N` resumes deep-reorg seeds N blocks above the old anchor
//! (finding 6). `--taproot` runs the taproot wallet (plain and deep-reorg episodes).
//! Seed `s` has one Byzantine validator when odd. Exits non-zero on the first failing seed, printing the
//! command that replays it.

use node::peg_sim::{run, SimConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: u64| {
        get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} wants a number")))
    };
    let naive = args.iter().any(|a| a == "--naive-required");
    let heights = num("--heights", SimConfig::for_seed(0).heights);
    let no_early = args.iter().any(|a| a == "--no-early-items");
    let resume_above = num("--resume-above", 0) as u32;
    let taproot = args.iter().any(|a| a == "--taproot");
    let config = |seed| SimConfig {
        heights,
        naive_required: naive,
        no_early_items: no_early,
        resume_above,
        ..if taproot { SimConfig::taproot_for_seed(seed) } else { SimConfig::for_seed(seed) }
    };
    let (start, count) = match get("--seed") {
        Some(s) => (s.parse().expect("--seed wants a number"), 1),
        None => (num("--start", 0), num("--seeds", 1000)),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let jobs = num("--jobs", cores).clamp(1, count.max(1));
    let t0 = Instant::now();
    let failed = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for job in 0..jobs {
            let (failed, done, config) = (&failed, &done, &config);
            scope.spawn(move || {
                let mut seed = start + job;
                while seed < start + count && !failed.load(Ordering::Relaxed) {
                    match run(config(seed)) {
                        Ok(o) if count == 1 => println!("seed {seed}: {o:?}"),
                        Ok(_) => {}
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            let mut flag = if naive { " --naive-required".to_string() } else { String::new() };
                            if no_early {
                                flag += " --no-early-items";
                            }
                            if taproot {
                                flag += " --taproot";
                            }
                            if resume_above > 0 {
                                flag += &format!(" --resume-above {resume_above}");
                            }
                            eprintln!("FAILED: {e}\n  replay: scripts/peg-sim --seed {seed} --heights {heights}{flag}");
                        }
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if d % 10_000 == 0 {
                        let secs = t0.elapsed().as_secs_f64();
                        eprintln!("{d} seeds passed so far, {secs:.0} s, {:.0} seeds/s", d as f64 / secs);
                    }
                    seed += jobs;
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!("{n} seeds in {secs:.1} s: {:.0} seeds/s", n as f64 / secs.max(1e-9));
    if failed.load(Ordering::Relaxed) {
        std::process::exit(1);
    }
}
