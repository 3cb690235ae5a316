//! What a failing run reports: the broken property, with the seed and height to replay it.

use super::btc::BtcReject;
use bitcoin::Amount;
use ledger::BtcOutPoint;

/// A broken property, with the seed and height to replay it.
#[derive(Debug, thiserror::Error)]
pub enum SimFailure {
    /// The anchor did not move for too long while Bitcoin was ready.
    #[error("seed {seed}, height {height}: the anchor is stuck at BTC {anchor} while Bitcoin is at {tip} ({heights} heights without a move)")]
    AnchorStuck {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The anchor.
        anchor: u32,
        /// Bitcoin's tip.
        tip: u32,
        /// Heights without a move.
        heights: u64,
    },
    /// A halt (f+1 reorg reports) did not end with the agreed resume within the bound.
    #[error(
        "seed {seed}, height {height}: the peg is still halted (or unreported) {heights} heights after the deep reorg"
    )]
    HaltStuck {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Heights since the deep reorg.
        heights: u64,
    },
    /// An honest proposer's block did not build.
    #[error("seed {seed}, height {height}: an honest proposer could not build its block: {reason}")]
    BuildFailed {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// An honest validator whose bitcoind sees at least as much as the proposer's refused an honest proposal.
    #[error("seed {seed}, height {height}: honest validator {validator} refused an honest proposal: {reason}")]
    HonestRefused {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The refusing validator (test key index).
        validator: u32,
        /// Why.
        reason: String,
    },
    /// A junk proposal was accepted by an honest validator.
    #[error("seed {seed}, height {height}: a junk proposal was accepted ({junk})")]
    JunkAccepted {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// What the junk was.
        junk: &'static str,
    },
    /// A transaction the federation signed is invalid on Bitcoin.
    #[error("seed {seed}, height {height}: batch {batch} signed by the federation is invalid on Bitcoin: {reason}")]
    InvalidOnBitcoin {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The batch.
        batch: u64,
        /// Bitcoin's reason.
        reason: BtcReject,
    },
    /// An honest validator's share-time check (`ledger::breaker`) refused a batch execution built.
    #[error("seed {seed}, height {height}: the share-time breaker refused an honest batch: {reason}")]
    BreakerTripped {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Why.
        reason: ledger::breaker::ShareCheckError,
    },
    /// A coin state holds is not on Bitcoin as recorded.
    #[error("seed {seed}, height {height}: federation coin {outpoint:?} is not on Bitcoin as recorded: {reason}")]
    CoinNotOnBitcoin {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The coin.
        outpoint: BtcOutPoint,
        /// What differs.
        reason: &'static str,
    },
    /// Two versions of one batch confirmed (a burn paid twice).
    #[error("seed {seed}, height {height}: batch {batch} confirmed twice on Bitcoin")]
    PaidTwice {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The batch.
        batch: u64,
    },
    /// A settled burn's payout is not in the batch version Bitcoin confirmed.
    #[error("seed {seed}: burn {burn} is settled but batch {batch}'s confirmed version does not pay it")]
    SettledUnpaid {
        /// Seed.
        seed: u64,
        /// The burn.
        burn: u64,
        /// Its batch.
        batch: u64,
    },
    /// A federation change did not take effect as approved (or a stale approval applied).
    #[error("seed {seed}, height {height}: federation epochs are {got:?}, expected {want:?}")]
    WrongEpochs {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Validators (test key indices) of each epoch in state.
        got: Vec<Vec<u32>>,
        /// What the approved changes should give by now.
        want: Vec<Vec<u32>>,
    },
    /// A burn within the rolling limit was not paid by the end of the quiet tail.
    #[error("seed {seed}, height {height}: burn {burn} of {amount} is not paid after the quiet tail: {why}")]
    BurnStuck {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The burn.
        burn: u64,
        /// Its amount.
        amount: Amount,
        /// What it waits for.
        why: StuckReason,
    },
    /// The state could not be read (a bug in the simulation or the ledger).
    #[error("seed {seed}: cannot read state: {source}")]
    State {
        /// Seed.
        seed: u64,
        /// The error.
        #[source]
        source: ledger::StateError,
    },
}

/// Why a burn is not paid at the end of a run (what the peg-out liveness check found).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StuckReason {
    /// Queued with no batch: the wallet in force cannot cover it (coins reserved, immature or missing).
    #[error("queued; the wallet in force has {spendable} spendable (of {held} held), the queue head needs {needed}")]
    NoCoins {
        /// Spendable now in the wallet in force.
        spendable: Amount,
        /// Held by the federation in all.
        held: Amount,
        /// The burns up to and including this one.
        needed: Amount,
    },
    /// Queued with no batch though coins suffice: the fee pool cannot pay the batch fee.
    #[error("queued; the fee pool holds {pool}, a batch needs about {fee}")]
    FeePoolShort {
        /// The pool's balance.
        pool: Amount,
        /// An estimate of the batch fee.
        fee: Amount,
    },
    /// Queued for no reason the simulation can name.
    #[error("queued with coins ({spendable}) and fee pool ({pool}) enough: no batch was built")]
    NotBatched {
        /// Spendable now in the wallet in force.
        spendable: Amount,
        /// The pool's balance.
        pool: Amount,
    },
    /// In a batch that lacks shares.
    #[error("in batch {batch} with {shares} of {needed} shares")]
    Unsigned {
        /// The batch.
        batch: u64,
        /// Shares recorded.
        shares: usize,
        /// Shares needed.
        needed: u32,
    },
    /// In a signed batch no version of which Bitcoin confirmed.
    #[error("in batch {batch}, signed ({versions} versions), never confirmed on Bitcoin")]
    Unconfirmed {
        /// The batch.
        batch: u64,
        /// Versions it has.
        versions: usize,
    },
    /// In a batch Bitcoin confirmed that state never settled.
    #[error("in batch {batch}, confirmed in BTC block {btc_height} but not settled (anchor at {anchor})")]
    Unsettled {
        /// The batch.
        batch: u64,
        /// Where it confirmed.
        btc_height: u32,
        /// The anchor.
        anchor: u32,
    },
    /// The peg is halted.
    #[error("the peg is halted")]
    Halted,
}
