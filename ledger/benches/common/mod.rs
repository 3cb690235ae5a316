//! What the ledger's benches share: a plain median timer for figures measured outside criterion.

use std::time::{Duration, Instant};

/// The median wall time of `runs` calls of `f`.
pub fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}
