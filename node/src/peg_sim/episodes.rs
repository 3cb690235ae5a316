//! The episodes a seed plays besides the hostile users: a Bitcoin reorg deeper than the anchor (the halt
//! and the resume), and federation changes.
//!
//! Deep reorg: Bitcoin replaces every block from below the anchor up (same transactions at the same
//! heights, new hashes; see [`super::btc::SimBitcoin::replace_top`]). Each honest proposer whose bitcoind
//! no longer has the anchor puts a `ReportReorg` in its block; f+1 of them halt the peg. The operators then
//! agree on the new branch's block at the old anchor's height, each honest validator votes `ResumePeg` for
//! it in its next block, and 2f+1 votes set the next block's anchor to it. Checked: the halt comes and
//! ends within [`super::config::HALT_BOUND`] heights, nothing mints while halted, and the peg works afterwards.
//!
//! Federation changes: 2f+1 of the set in force approve a new set (4 -> 5, or 4 -> 7 and back to the first
//! 4, which keeps the same keys at the same indices as epoch 0), any proposer includes it from the pool,
//! and it takes effect at its height. Users keep paying old-epoch addresses (minted within the deposit
//! window, claimable after), the old keys sign the sweeps to the new wallet, and coins nearing the
//! emergency delay are refreshed. Checked: the epochs in state are exactly the approved changes.
//!
//! This file holds an episode's plan and progress ([`EpisodeState`]); the driver (`mod.rs`) plays its moves
//! before each block.

use super::config::{Episode, VALIDATORS};
use ledger::BtcAnchor;
use primitives::Height;
use rand::Rng;

/// A federation change to submit at a height.
#[derive(Clone, Debug)]
pub(super) struct Change {
    /// The height after which it is submitted.
    pub at: u64,
    /// The new set (test identities, in order).
    pub members: Vec<u32>,
    /// Its wallet threshold.
    pub threshold: u32,
}

/// An episode's plan and progress.
#[derive(Clone, Debug, Default)]
pub(super) struct EpisodeState {
    /// When Bitcoin reorganises past the anchor (not before the anchor leaves genesis).
    pub deep_reorg_from: Option<u64>,
    /// The height at which it happened.
    pub reorged_at: Option<u64>,
    /// The height whose block completed the resume votes.
    pub resumed_at: Option<u64>,
    /// The anchor the honest operators asked their validators to vote to resume from.
    pub resume_request: Option<BtcAnchor>,
    /// Changes still to submit, in order.
    pub changes: Vec<Change>,
    /// Changes a block accepted: (activation height, new set).
    approved: Vec<(Height, Vec<u32>)>,
}

impl EpisodeState {
    /// The plan for `episode`.
    pub(super) fn plan(rng: &mut impl Rng, episode: Episode) -> Self {
        let mut s = EpisodeState::default();
        match episode {
            Episode::Plain => {}
            Episode::DeepReorg => s.deep_reorg_from = Some(rng.gen_range(8..=20)),
            Episode::Grow => {
                let threshold = rng.gen_range(3..=4);
                s.changes.push(Change { at: rng.gen_range(3..=10), members: (0..5).collect(), threshold });
            }
            Episode::GrowShrink => {
                s.changes.push(Change { at: rng.gen_range(3..=6), members: (0..7).collect(), threshold: 5 });
                s.changes.push(Change { at: rng.gen_range(15..=20), members: (0..4).collect(), threshold: 3 });
            }
        }
        s
    }

    /// The 2f+1 resume votes landed in block `height`.
    pub(super) fn resumed(&mut self, height: u64) {
        self.resumed_at = Some(height);
        self.resume_request = None;
    }

    /// A block accepted a change of the set to `members` from `activation` on.
    pub(super) fn approved(&mut self, activation: Height, members: Vec<u32>) {
        self.approved.push((activation, members));
    }

    /// The validator sets state must hold once height `next` is the next to decide: genesis's, then each
    /// approved change that reached its height.
    pub(super) fn epochs_by(&self, next: Height) -> Vec<Vec<u32>> {
        let mut out = vec![(0..VALIDATORS).collect()];
        out.extend(self.approved.iter().filter(|(at, _)| *at <= next).map(|(_, m)| m.clone()));
        out
    }
}
