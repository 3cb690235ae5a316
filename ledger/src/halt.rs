//! The peg halt: what happens when Bitcoin reorganises deeper than the anchor's N confirmations.
//!
//! Why it exists: every mint was checked against the anchored chain. If that chain is replaced, mints may
//! have credited deposits that no longer exist; minting more on either branch would only make it worse.
//! So when f+1 validators report that their bitcoind no longer has the anchor in force (at least one of
//! them honest), peg operations stop: the anchor stays where it is and no block may mint. Transfers go on.
//! People then decide what to do; 2f+1 validators name the anchor to resume from with `ResumePeg`, and the
//! next block's anchor is exactly that one (it may sit on the new branch, below the old anchor).
//!
//! Counting is by validators, not power: f = (n - 1) / 3, reports need f + 1, a resume needs n - f.
//!
//! This file holds the halt as state and its reader, which the peg cursor and every peg rule read; the
//! votes that change it are applied above, in [`crate::halt_vote`].

use crate::btc_anchor::BtcAnchor;
use crate::state::{StateKey, StateReader};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Height, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Reorg reports, the halt, and resume votes (one value in state, usually empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegHalt {
    /// The anchor the reports are about (reports for an older anchor are dropped when it changes).
    pub reported_anchor: Option<BtcAnchor>,
    /// Validators that reported it, sorted.
    pub reports: Vec<ValidatorIndex>,
    /// Set while halted: the height whose block completed f+1 reports.
    pub halted_at: Option<Height>,
    /// While halted: votes to resume, (anchor, validator), sorted.
    pub resume_votes: Vec<(BtcAnchor, ValidatorIndex)>,
    /// Set by the block that completed 2f+1 resume votes: the next block's anchor must be this one.
    pub resume_to: Option<BtcAnchor>,
}

impl PegHalt {
    /// Whether peg operations are halted.
    pub fn is_halted(&self) -> bool {
        self.halted_at.is_some()
    }
}

/// f + 1 for `n` validators.
pub fn reports_needed(n: usize) -> usize {
    n.saturating_sub(1) / 3 + 1
}

/// n - f for `n` validators.
pub fn resume_votes_needed(n: usize) -> usize {
    crate::genesis::federation_threshold(n)
}

/// Reads the halt state (empty when never written).
pub fn peg_halt<S: StateReader>(state: &S) -> Result<PegHalt, crate::state::StateError> {
    let raw = state.get_raw(&StateKey::PegHalt)?;
    raw.map(|b| {
        borsh::from_slice(&b)
            .map_err(|e| crate::state::StateError::Corrupt { key: StateKey::PegHalt, reason: e.to_string() })
    })
    .transpose()
    .map(Option::unwrap_or_default)
}
