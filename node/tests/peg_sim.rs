//! The adversarial peg simulation as CI runs it: 1,000 seeds hold every property (lagging bitcoinds, deep
//! reorgs with the halt and the resume, federation changes with sweeps and refreshes, peg-out liveness at
//! the end), a seed replays to the same trace, and the simulation catches finding 1 (a required mint
//! execution refuses) and the frozen anchor of a BTC block with more outputs than a block holds when their
//! fixes are off.

use node::peg_sim::{run, Episode, SimConfig, SimFailure, SimOutcome};

/// Seeds per test; four tests (so the runner spreads them over the cores) make 1,000.
const SEEDS: u64 = 250;

fn seeds_hold_every_peg_property(first: u64) {
    let mut sum = SimOutcome::default();
    for seed in first..first + SEEDS {
        let cfg = SimConfig::for_seed(seed);
        let o = run(cfg).unwrap_or_else(|e| panic!("{e}\n  replay: scripts/peg-sim --seed {seed}"));
        assert!(o.height >= cfg.heights);
        if cfg.episode == Episode::DeepReorg {
            assert_eq!((o.halts, o.resumes), (1, 1), "seed {seed}: the deep reorg halts the peg once and it resumes");
        }
        sum.mints += o.mints;
        sum.burns += o.burns;
        sum.burns_paid += o.burns_paid;
        sum.burns_waiting_on_limit += o.burns_waiting_on_limit;
        for (total, n) in sum.junk_refused.iter_mut().zip(o.junk_refused) {
            *total += n;
        }
        sum.lag_refusals += o.lag_refusals;
        sum.halts += o.halts;
        sum.resumes += o.resumes;
        sum.epochs += o.epochs;
        sum.sweeps_settled += o.sweeps_settled;
        sum.refreshes_settled += o.refreshes_settled;
        sum.tail_heights += o.tail_heights;
    }
    // The runs did what they are for: deposits minted, burns paid on Bitcoin (every one not waiting on the
    // rolling limit, or `run` fails), junk refused, lagging views voting nil, halts, federation changes
    // taking effect (three per 4 -> 7 -> 4 seed, one per 4 -> 5 seed), sweeps and refreshes settled.
    assert!(sum.mints > SEEDS, "{sum:?}");
    assert_eq!(sum.burns, sum.burns_paid + sum.burns_waiting_on_limit, "{sum:?}");
    assert!(sum.burns_paid > SEEDS, "{sum:?}");
    assert!(sum.junk_refused.iter().sum::<u64>() > SEEDS / 10, "{sum:?}");
    // Every kind of junk reached the honest validators and was refused (junk that does not even build is
    // not counted).
    assert!(sum.junk_refused.iter().all(|n| *n > 0), "{sum:?}");
    assert!(sum.lag_refusals > SEEDS, "{sum:?}");
    assert!(sum.halts >= SEEDS / 4, "{sum:?}");
    assert!(sum.epochs >= SEEDS / 4 * 3 * 9 / 10, "{sum:?}");
    assert!(sum.sweeps_settled > SEEDS / 10, "{sum:?}");
    assert!(sum.refreshes_settled > SEEDS / 20, "{sum:?}");
    println!("seeds {first}..{}: {sum:?}", first + SEEDS);
}

#[test]
fn seeds_0_to_250_hold_every_peg_property() {
    seeds_hold_every_peg_property(0);
}

#[test]
fn seeds_250_to_500_hold_every_peg_property() {
    seeds_hold_every_peg_property(250);
}

#[test]
fn seeds_500_to_750_hold_every_peg_property() {
    seeds_hold_every_peg_property(500);
}

#[test]
fn seeds_750_to_1000_hold_every_peg_property() {
    seeds_hold_every_peg_property(750);
}

/// Seeds a long run found failing, replayed with the CI settings: each must hold every property now.
/// 16299: a deep-reorg seed whose BTC block right above the resumed anchor carries three floods (144
/// outputs to federation scripts). Its items went in early, 16 a block, in every honest round-0 block, and
/// the anchor moved once they were in (BTC 14 -> 15 at height 45), but the old liveness check counted only
/// anchor moves and called the peg stuck at height 44 (13 heights > `LIVENESS_BOUND`).
const REGRESSION_SEEDS: &[u64] = &[16299];

#[test]
fn regression_seeds_hold_every_peg_property() {
    for &seed in REGRESSION_SEEDS {
        let cfg = SimConfig::for_seed(seed);
        let o = run(cfg).unwrap_or_else(|e| panic!("{e}\n  replay: scripts/peg-sim --seed {seed}"));
        assert!(o.height >= cfg.heights, "seed {seed}: {o:?}");
    }
}

#[test]
fn a_seed_replays_to_the_same_trace() {
    for seed in [7, 2, 6] {
        let a = run(SimConfig::for_seed(seed)).expect("passes");
        let b = run(SimConfig::for_seed(seed)).expect("passes");
        assert_eq!(a, b, "seed {seed}");
    }
    let c = run(SimConfig::for_seed(8)).expect("seed 8");
    assert_ne!(run(SimConfig::for_seed(7)).expect("seed 7").trace_hash, c.trace_hash);
}

#[test]
fn with_the_old_required_rule_the_simulation_finds_the_frozen_anchor() {
    let stuck = (0..300).map(|seed| run(SimConfig { naive_required: true, ..SimConfig::for_seed(seed) })).find_map(
        |r| match r {
            Err(e @ SimFailure::AnchorStuck { .. }) => Some(e),
            _ => None,
        },
    );
    let e = stuck.expect("some seed freezes the anchor under the old rule");
    println!("found: {e}");
}

#[test]
fn without_early_peg_items_the_simulation_finds_the_anchor_frozen_by_a_big_btc_block() {
    let no_early = |seed| SimConfig { no_early_items: true, ..SimConfig::for_seed(seed) };
    let stuck = (0..300).find_map(|seed| match run(no_early(seed)) {
        Err(e @ SimFailure::AnchorStuck { .. }) => Some((seed, e)),
        _ => None,
    });
    let (seed, e) = stuck.expect("some seed floods a BTC block and freezes the anchor without early items");
    println!("found: {e}");
    // The same seed with early items on holds every property.
    run(SimConfig::for_seed(seed)).unwrap_or_else(|e| panic!("with early items, seed {seed}: {e}"));
}

/// Taproot custody (issue 23): the same adversarial runs on the `tr()` wallet, the honest validators signing
/// by key path through FROST messages in blocks (the Byzantine one of odd seeds silent), every federation
/// spend checked by Bitcoin's interpreter against the taproot outputs (deposits tweaked per recipient, the
/// emergency leaf in the tree). Its federation cannot change members yet, so plain runs and deep reorgs.
#[test]
fn taproot_custody_seeds_hold_every_peg_property() {
    let (mut mints, mut paid, mut refreshes, mut halts, mut key_path) = (0, 0, 0, 0, 0);
    for seed in 0..100 {
        let cfg = SimConfig::taproot_for_seed(seed);
        let o = run(cfg).unwrap_or_else(|e| panic!("{e}\n  replay: scripts/peg-sim --taproot --seed {seed}"));
        assert!(o.height >= cfg.heights);
        assert_eq!(o.burns, o.burns_paid + o.burns_waiting_on_limit, "seed {seed}: {o:?}");
        (mints, paid, refreshes, halts) =
            (mints + o.mints, paid + o.burns_paid, refreshes + o.refreshes_settled, halts + o.halts);
        key_path += o.key_path_versions;
    }
    assert!(mints > 100 && paid > 100, "deposits minted and burns paid from tr() coins: {mints} {paid}");
    assert!(refreshes > 0, "refreshes (the emergency leaf's clock) settled");
    assert!(halts >= 25, "the deep-reorg runs halted and resumed: {halts}");
    assert!(key_path > 100, "batches signed by key path with the Byzantine validator silent: {key_path}");
}
