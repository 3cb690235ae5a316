//! The harness every decoder fuzz target runs on: seeded mutation of real encodings, a per-input allocation
//! cap measured by a counting global allocator, and a replay line for any failure.
//!
//! Why one crate: the decoders live in six crates (wire frames in `node` and `net`, consensus messages in
//! `consensus`, transactions, blocks and proofs in `ledger`, RPC parameters in `rpc`, bitcoind answers in
//! `node`), each fuzzed by its own `tests/fuzz.rs` next to the code; the mutator, the allocator and the
//! runner are here once, as a dev-dependency with no dependency on any of them.
//!
//! A target is a name, seeds (real encodings built with the crates' own test kits) and a check that must
//! not panic for any bytes. Each crate's `tests/fuzz.rs` does:
//!
//! ```text
//! #[global_allocator]
//! static ALLOC: fuzzkit::CountingAlloc = fuzzkit::CountingAlloc;
//! fuzzkit::fuzz_tests!(targets());   // `short_run` in cargo test, the ignored `long_run` for scripts/fuzz
//! ```
//!
//! Input `i` of a run with seed `s` is a pure function of `(s, i)` and the seeds, so a failure replays
//! alone: `scripts/fuzz --target NAME --seed S --iteration I`, or `--hex` with the printed input.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod alloc;
mod mutate;

pub use alloc::{installed, measure, CountingAlloc};
pub use mutate::{mutate, DEFAULT_DICTIONARY};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// The two tests of every `tests/fuzz.rs`: `short_run` (the fixed-seed pass inside `cargo test`) and the
/// ignored `long_run` that `scripts/fuzz` starts by name. `$targets` is evaluated in each.
#[macro_export]
macro_rules! fuzz_tests {
    ($targets:expr) => {
        #[test]
        fn short_run() {
            $crate::short_run(&$targets);
        }

        #[test]
        #[ignore = "long run: scripts/fuzz"]
        fn long_run() {
            $crate::long_run_from_env(&$targets);
        }
    };
}

/// The seed of the short run inside `cargo test`: fixed, so that run is the same every time.
pub const SHORT_RUN_SEED: u64 = 0x5eed;

/// Default allocation cap: 2 MiB plus 64 bytes per input byte. Decoded values may be larger than their
/// encoding (boxes, vectors of structs) and borsh reads a byte vector in chunks of up to 1 MiB, but nothing
/// may scale with what a length prefix claims.
pub const DEFAULT_CAP_BASE: usize = 2 << 20;
/// See [`DEFAULT_CAP_BASE`].
pub const DEFAULT_CAP_PER_BYTE: usize = 64;

/// One decoder under test.
pub struct Target {
    /// Unique across the workspace (`scripts/fuzz --target NAME`).
    pub name: &'static str,
    /// Valid encodings the mutator starts from.
    pub seeds: Vec<Vec<u8>>,
    /// Extra mutation tokens (e.g. JSON keys the decoder looks for).
    pub dictionary: Vec<&'static [u8]>,
    /// Inputs of the short run in `cargo test` (keep the target under about a second there).
    pub short_iterations: u64,
    /// Peak bytes allowed for an input of `len` bytes: `cap_base + cap_per_byte * len`.
    pub cap_base: usize,
    /// See `cap_base`.
    pub cap_per_byte: usize,
    check: Check,
}

/// What a target runs on each input.
type Check = Box<dyn Fn(&[u8])>;

impl Target {
    /// A target with the default cap and 20,000 short-run inputs; `check` must not panic for any input.
    pub fn new(name: &'static str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8]) + 'static) -> Self {
        Target {
            name,
            seeds,
            dictionary: Vec::new(),
            short_iterations: 20_000,
            cap_base: DEFAULT_CAP_BASE,
            cap_per_byte: DEFAULT_CAP_PER_BYTE,
            check: Box::new(check),
        }
    }

    /// Adds mutation tokens.
    pub fn dictionary(mut self, tokens: &[&'static [u8]]) -> Self {
        self.dictionary.extend_from_slice(tokens);
        self
    }

    /// Sets the allocation cap (peak bytes for an input of `len` bytes: `base + per_byte * len`). Raise it
    /// only with a comment saying what bounds the extra allocation.
    pub fn cap(mut self, base: usize, per_byte: usize) -> Self {
        self.cap_base = base;
        self.cap_per_byte = per_byte;
        self
    }

    /// Sets the short-run input count.
    pub fn short_iterations(mut self, n: u64) -> Self {
        self.short_iterations = n;
        self
    }

    /// Input `iteration` of a run with `seed`.
    pub fn input(&self, seed: u64, iteration: u64) -> Vec<u8> {
        // splitmix64-style mixing so neighbouring iterations get unrelated generators.
        let mut z = seed ^ iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let mut rng = ChaCha8Rng::seed_from_u64(z ^ (z >> 31));
        mutate(&mut rng, &self.seeds, &self.dictionary)
    }

    /// Runs the check on `input` alone; `Err` says what went wrong (panic or allocation over the cap).
    pub fn check_one(&self, input: &[u8]) -> Result<(), String> {
        let (outcome, peak) = measure(|| catch_unwind(AssertUnwindSafe(|| (self.check)(input))));
        if let Err(panic) = outcome {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".into());
            return Err(format!("panicked: {msg}"));
        }
        let cap = self.cap_base.saturating_add(self.cap_per_byte.saturating_mul(input.len()));
        if peak > cap {
            return Err(format!("allocated {peak} bytes at peak for an input of {} bytes (cap {cap})", input.len()));
        }
        Ok(())
    }

    /// Runs `iterations` inputs from `start` with `seed`; every seed is also checked as it is.
    pub fn run(&self, seed: u64, start: u64, iterations: u64) -> Result<Stats, Failure> {
        assert!(installed(), "install fuzzkit::CountingAlloc as the #[global_allocator] of the fuzz test binary");
        let began = Instant::now();
        for (i, s) in self.seeds.iter().enumerate() {
            self.check_one(s).map_err(|reason| Failure::new(self, seed, None, s, format!("seed #{i}: {reason}")))?;
        }
        let mut max_len = 0;
        for iteration in start..start.saturating_add(iterations) {
            let input = self.input(seed, iteration);
            max_len = max_len.max(input.len());
            self.check_one(&input).map_err(|reason| Failure::new(self, seed, Some(iteration), &input, reason))?;
        }
        Ok(Stats { inputs: iterations, max_len, secs: began.elapsed().as_secs_f64() })
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Inputs run.
    pub inputs: u64,
    /// Longest input.
    pub max_len: usize,
    /// Wall time.
    pub secs: f64,
}

/// A failing input with how to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The whole report, replay commands included.
    pub report: String,
}

impl Failure {
    fn new(t: &Target, seed: u64, iteration: Option<u64>, input: &[u8], reason: String) -> Self {
        let replay = match iteration {
            Some(i) => format!("scripts/fuzz --target {} --seed {seed} --iteration {i}", t.name),
            None => format!("scripts/fuzz --target {} --iterations 0", t.name),
        };
        let report = format!(
            "fuzz target {} failed: {reason}\n  input ({} bytes): {}\n  replay: {replay}\n  or:     scripts/fuzz --target {} --hex {}",
            t.name,
            input.len(),
            hex::encode(input),
            t.name,
            hex::encode(input)
        );
        Failure { report }
    }
}

/// The short run of `cargo test`: every target, [`SHORT_RUN_SEED`], its `short_iterations`. Panics with
/// the replay report of the first failure.
pub fn short_run(targets: &[Target]) {
    for t in targets {
        match t.run(SHORT_RUN_SEED, 0, t.short_iterations) {
            Ok(stats) => eprintln!("fuzz {}: {} inputs in {:.2} s", t.name, stats.inputs, stats.secs),
            Err(f) => panic!("{}", f.report),
        }
    }
}

/// Settings of a long run, from the environment `scripts/fuzz` sets.
#[derive(Debug, Clone, Default)]
pub struct LongRun {
    /// `FUZZ_TARGET`: only this target (the others in the binary are skipped).
    pub target: Option<String>,
    /// `FUZZ_ITERATIONS` (default 1,000,000).
    pub iterations: u64,
    /// `FUZZ_SEED` (default: from the clock, printed).
    pub seed: u64,
    /// `FUZZ_ITERATION`: replay this one input of `seed`.
    pub iteration: Option<u64>,
    /// `FUZZ_HEX`: replay exactly these bytes.
    pub hex: Option<Vec<u8>>,
    /// `FUZZ_LIST=1`: print the target names only.
    pub list: bool,
}

impl LongRun {
    /// Reads the `FUZZ_*` variables; panics on a malformed one (it is the operator's typo).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str| var(k).map(|v| v.parse::<u64>().unwrap_or_else(|_| panic!("{k}={v} is not a number")));
        let seed = num("FUZZ_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        LongRun {
            target: var("FUZZ_TARGET"),
            iterations: num("FUZZ_ITERATIONS").unwrap_or(1_000_000),
            seed,
            iteration: num("FUZZ_ITERATION"),
            hex: var("FUZZ_HEX").map(|h| hex::decode(h.trim()).unwrap_or_else(|e| panic!("FUZZ_HEX is not hex: {e}"))),
            list: var("FUZZ_LIST").is_some(),
        }
    }
}

/// The long run (`scripts/fuzz`): the targets [`LongRun::from_env`] selects, each printing a summary line
/// `fuzz target NAME: ok, N inputs ...` that the script looks for. Panics with the replay report of a failure.
pub fn long_run_from_env(targets: &[Target]) {
    let cfg = LongRun::from_env();
    for t in targets.iter().filter(|t| cfg.target.as_deref().is_none_or(|n| n == t.name)) {
        if cfg.list {
            println!("fuzz target {}", t.name);
            continue;
        }
        if let Some(bytes) = &cfg.hex {
            match t.check_one(bytes) {
                Ok(()) => println!("fuzz target {}: ok, the given input passes", t.name),
                Err(reason) => panic!("fuzz target {} fails on the given input: {reason}", t.name),
            }
            continue;
        }
        let (start, n) = match cfg.iteration {
            Some(i) => (i, 1),
            None => (0, cfg.iterations),
        };
        match t.run(cfg.seed, start, n) {
            Ok(s) => println!(
                "fuzz target {}: ok, {} inputs (seed {}) in {:.1} s, {:.0}/s, longest {} bytes",
                t.name,
                s.inputs,
                cfg.seed,
                s.secs,
                s.inputs as f64 / s.secs.max(1e-9),
                s.max_len
            ),
            Err(f) => panic!("{}", f.report),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOC: CountingAlloc = CountingAlloc;

    #[test]
    fn a_panic_and_an_allocation_over_the_cap_are_failures_with_a_replay_line() {
        let seeds = vec![vec![1, 2, 3, 4, 5, 6, 7, 8]];
        let panics = Target::new("t_panic", seeds.clone(), |b| assert!(b.len() < 9, "too long"));
        let f = panics.run(7, 0, 1000).expect_err("some mutation makes it longer");
        assert!(f.report.contains("panicked: too long"), "{}", f.report);
        assert!(f.report.contains("replay: scripts/fuzz --target t_panic --seed 7 --iteration"), "{}", f.report);
        // The printed iteration replays the same input.
        let i: u64 =
            f.report.split("--iteration ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
        assert!(panics.check_one(&panics.input(7, i)).is_err());

        // "The length prefix says 4 GiB": allocating what the input claims is over the cap.
        let greedy = Target::new("t_greedy", seeds, |b| {
            let claimed = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            std::hint::black_box(Vec::<u8>::with_capacity(claimed.min(64 << 20)));
        });
        let f = greedy.check_one(&[0xff, 0xff, 0xff, 0xff]).expect_err("64 MiB is over the cap");
        assert!(f.contains("allocated 67108864 bytes at peak"), "{f}");
        assert!(greedy.check_one(&[0x10, 0, 0, 0]).is_ok());
    }

    #[test]
    fn the_counting_allocator_is_seen_and_measures_the_peak() {
        assert!(installed());
        let ((), peak) = measure(|| {
            let a = vec![0u8; 1000];
            drop(std::hint::black_box(a));
            let b = vec![0u8; 300];
            drop(std::hint::black_box(b));
        });
        assert_eq!(peak, 1000);
    }
}
