//! What a run is: its settings ([`SimConfig`], the [`Episode`] a seed plays), the simulated chain's sizes and
//! the bounds the checks hold it to, and what a run reports ([`SimOutcome`]). Plain data, below everything
//! else in the simulation.

use primitives::Hash32;

/// Validators at genesis (f = 1).
pub(super) const VALIDATORS: u32 = 4;
/// Test keys a federation change may bring in (a 7-member set uses keys 0..7).
pub(super) const IDENTITIES: u32 = 7;
/// Users with a genesis balance (they can pay fees and burn before pegging in).
pub(super) const USERS: u32 = 6;
/// Heights the anchor may lag a Bitcoin that a quorum of bitcoinds is ready for, with no early peg items
/// going in either, before the run fails.
pub const LIVENESS_BOUND: u64 = 12;
/// Heights the anchor may lag a ready Bitcoin while early peg items go in, before the run fails. Early
/// items are progress toward the move (`pegin::early`): a BTC block with `k` outputs to federation scripts
/// needs `ceil(k / room)` honest round-0 blocks of them, and with f of n proposers Byzantine about
/// `n / (n - f)` times that many heights. Three floods in one BTC block (`3 * FLOOD_OUTPUTS` = 144 outputs,
/// 16 a block, 4/3) take about 12 heights with nothing else in the blocks (seed 16299 took 14), so
/// [`LIVENESS_BOUND`] alone would call a working peg stuck; this bound still catches early items that never
/// end in a move.
pub const EARLY_ITEMS_BOUND: u64 = 4 * LIVENESS_BOUND;
/// Heights from a deep reorg to the agreed resume before the run fails.
pub const HALT_BOUND: u64 = 30;
/// Most heights of the quiet tail (it ends as soon as every burn is paid).
pub const TAIL_BOUND: u64 = 60;
/// `Params::block_max_txs` of the simulated chain: small, so one BTC block can pay the federation more
/// outputs than one block holds.
pub const BLOCK_MAX_TXS: u32 = 16;
/// Outputs of a hostile user's flood: one transaction paying three blocks' worth of outputs.
pub(super) const FLOOD_OUTPUTS: u32 = 3 * BLOCK_MAX_TXS;

/// What a seed does besides the hostile users and the Byzantine validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Episode {
    /// Nothing more.
    Plain,
    /// A Bitcoin reorg deeper than the anchor: reports, a halt, and the resume 2f+1 vote for.
    DeepReorg,
    /// A federation change from 4 to 5 validators.
    Grow,
    /// A change from 4 to 7 validators, then back to the first 4 (same keys at the same indices).
    GrowShrink,
}

/// One run's settings.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// The seed: everything random comes from it.
    pub seed: u64,
    /// Sidechain heights with hostile users (the quiet tail comes after).
    pub heights: u64,
    /// Byzantine validators (at most f = 1): junk proposals, nil votes on honest blocks, withheld shares.
    pub byzantine: u32,
    /// The episode this seed plays.
    pub episode: Episode,
    /// Whether validators' bitcoinds may lag the tip (each its own view of Bitcoin).
    pub lagging: bool,
    /// Whether to end with the quiet tail and the peg-out liveness check.
    pub tail: bool,
    /// After a deep reorg, the operators resume this many blocks above the old anchor's height (0: at it).
    /// Batches confirmed between the two anchors are then settled only by late settlements
    /// (`pegin::late_settles`, finding 6); without them the quiet tail names the stuck burn.
    pub resume_above: u32,
    /// Switches the fix for finding 1 off: the old rule that required a mint for every output to a live
    /// deposit script, computed apart from execution, with mints before settlements. For the test that
    /// shows the simulation catches it.
    pub naive_required: bool,
    /// Taproot custody (issue 23): the genesis holds a DKG transcript and the federation's coins are
    /// `tr()` outputs, spent in the `multi_a` leaf. A taproot federation cannot change members yet, so only
    /// the episodes without a change.
    pub taproot: bool,
    /// Switches early peg items off (see `ledger::peg_cursor`): a BTC block with more outputs than a block
    /// holds then freezes the anchor. For the test that shows the simulation catches it.
    pub no_early_items: bool,
}

impl SimConfig {
    /// The settings CI uses for `seed`: 32 heights, one Byzantine validator on odd seeds, the episodes in
    /// turn by `seed / 2`, lagging bitcoinds, the quiet tail.
    pub fn for_seed(seed: u64) -> Self {
        let episode = match (seed / 2) % 4 {
            0 => Episode::Plain,
            1 => Episode::DeepReorg,
            2 => Episode::Grow,
            _ => Episode::GrowShrink,
        };
        SimConfig {
            seed,
            heights: 32,
            byzantine: (seed % 2) as u32,
            episode,
            lagging: true,
            tail: true,
            resume_above: 0,
            naive_required: false,
            no_early_items: false,
            taproot: false,
        }
    }

    /// [`SimConfig::for_seed`] on the taproot wallet, the episodes in turn being the plain run and the deep
    /// reorg (its federation cannot change members yet).
    pub fn taproot_for_seed(seed: u64) -> Self {
        let episode = if (seed / 2).is_multiple_of(2) { Episode::Plain } else { Episode::DeepReorg };
        SimConfig { episode, taproot: true, ..SimConfig::for_seed(seed) }
    }
}

/// What a run did (and its trace hash, equal for equal seeds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimOutcome {
    /// Sidechain height reached (the quiet tail included).
    pub height: u64,
    /// The anchor's BTC height at the end, and Bitcoin's tip.
    pub anchor: u32,
    /// Bitcoin's tip at the end.
    pub btc_tip: u32,
    /// Outputs minted (deposits, plain outputs, re-pegs, claims).
    pub mints: u64,
    /// Burns paid on Bitcoin and settled.
    pub burns_paid: u64,
    /// Burns made.
    pub burns: u64,
    /// Burns still waiting on the rolling limit at the end (not a failure).
    pub burns_waiting_on_limit: u64,
    /// Junk proposals the validators refused, by kind: a mint Bitcoin does not show, a move without its
    /// required mints, an early mint naming a forked BTC block, a settlement of an unconfirmed batch.
    pub junk_refused: [u64; 4],
    /// Honest proposals refused by a validator whose bitcoind lagged the proposer's.
    pub lag_refusals: u64,
    /// Halts (f+1 reports) and resumes (2f+1 votes).
    pub halts: u64,
    /// Resumes.
    pub resumes: u64,
    /// Federation changes that took effect.
    pub epochs: u64,
    /// Sweeps of earlier epochs' coins settled on Bitcoin.
    pub sweeps_settled: u64,
    /// Refreshes (coins nearing the emergency delay) settled on Bitcoin.
    pub refreshes_settled: u64,
    /// Batch versions handed to Bitcoin signed by key path (one FROST signature an input).
    pub key_path_versions: u64,
    /// Heights of the quiet tail.
    pub tail_heights: u64,
    /// Hash of every committed state root in order.
    pub trace_hash: Hash32,
}
