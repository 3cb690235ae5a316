//! A deterministic, seeded, in-process network of validators running the real core, used to check the
//! protocol's properties under delays, drops, duplication, reordering, partitions that heal at GST,
//! Byzantine validators, disagreeing or late validity views, and crash-restarts from the WAL.
//!
//! Invariant owned here: a run is a pure function of `(seed, scenario, n, options)`. All randomness comes
//! from one seeded [`Rng`]; all iteration is over ordered maps; so a failing seed replays exactly
//! (the trace hash of two runs of one seed is equal, which a test checks).
//!
//! Only built with the non-default `sim` feature; the library proper never links it.

mod byzantine;
mod world;

pub use byzantine::Behaviour;
pub use world::run;

/// SplitMix64: small, fast, and good enough to drive a simulation (not for keys).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5eed_5eed_5eed_5eed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u64) -> bool {
        self.next_u64() % 1000 < permille
    }

    /// A uniformly chosen index below `n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.index(i + 1);
            v.swap(i, j);
        }
    }
}

/// Which faults a run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Only the network misbehaves (delays, drops, duplicates, reordering, partition until GST).
    Clean,
    /// Plus f Byzantine validators, each with a random behaviour.
    Byzantine,
    /// Plus f honest validators whose validity view is late, missing or dissenting.
    Validity,
    /// Plus crash-restarts of honest validators before GST, restoring only their WAL.
    Crash,
    /// One Byzantine validator, the rest of f as validity dissenters, and crash-restarts.
    Mixed,
}

impl Scenario {
    /// Every scenario, in the order CI cycles through them.
    pub const ALL: [Scenario; 5] =
        [Scenario::Clean, Scenario::Byzantine, Scenario::Validity, Scenario::Crash, Scenario::Mixed];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Clean => "clean",
            Scenario::Byzantine => "byzantine",
            Scenario::Validity => "validity",
            Scenario::Crash => "crash",
            Scenario::Mixed => "mixed",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// Knobs of a run beyond seed, scenario and size.
#[derive(Clone, Debug)]
pub struct Options {
    /// Heights every honest validator must decide.
    pub heights: u64,
    /// Run the cores with the deliberately broken locking rule (fault-injection feature).
    pub ignore_locks: bool,
    /// Extra simulated milliseconds allowed per height after GST before liveness fails.
    pub per_height_bound_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { heights: 4, ignore_locks: false, per_height_bound_ms: 10_000 }
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// Number of validators.
    pub n: usize,
    /// Hash of every event processed, in order: equal for equal runs.
    pub trace_hash: u64,
    /// Properties that failed (empty: the run passed).
    pub violations: Vec<String>,
    /// Simulated time at the end.
    pub end_ms: u64,
    /// Events processed.
    pub events: u64,
    /// Equivocations reported by honest validators.
    pub evidence: usize,
    /// Roles, GST and partition of the run, for humans.
    pub setup: String,
}

impl Outcome {
    /// True if every property held.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!("scripts/sim --scenario {} --n {} --seed {}", self.scenario.name(), self.n, self.seed)
    }
}
