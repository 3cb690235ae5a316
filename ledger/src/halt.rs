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

use crate::block::BtcAnchor;
use crate::execute::{Overlay, TxError};
use crate::genesis::Chain;
use crate::state::{StateKey, StateReader};
use crate::tx::ValidatorTxKind;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, Height, ValidatorIndex};
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

impl<S: StateReader> Overlay<'_, S> {
    /// `ReportReorg` or `ResumePeg` from validator `tx.validator` (already checked to exist and to be for
    /// this height by [`Overlay::apply_validator_tx`]).
    pub(crate) fn apply_halt_vote(
        &mut self,
        chain: &Chain,
        tx: &crate::tx::ValidatorTx,
        prev_anchor: &BtcAnchor,
    ) -> Result<(), TxError> {
        let n = crate::federation::federation_state(chain, self)?.in_force().validators.len();
        let mut halt = peg_halt(self)?;
        match &tx.kind {
            ValidatorTxKind::ReportReorg { anchor } => {
                if anchor != prev_anchor {
                    return Err(TxError::ReportNotForAnchorInForce { reported: *anchor, in_force: *prev_anchor });
                }
                if halt.reported_anchor != Some(*anchor) {
                    halt.reported_anchor = Some(*anchor);
                    halt.reports.clear();
                }
                if let Err(at) = halt.reports.binary_search(&tx.validator) {
                    halt.reports.insert(at, tx.validator);
                } else {
                    return Err(TxError::AlreadyVoted { validator: tx.validator });
                }
                if !halt.is_halted() && halt.reports.len() >= reports_needed(n) {
                    halt.halted_at = Some(tx.height);
                    // Early items named a block of the chain now reported replaced.
                    self.clear_peg_cursor()?;
                }
            }
            // Not a halt vote: dispatched elsewhere by `apply_validator_tx`.
            ValidatorTxKind::FeeRateVote { .. } => return Ok(()),
            ValidatorTxKind::ResumePeg { anchor } => {
                if !halt.is_halted() {
                    return Err(TxError::PegNotHalted);
                }
                if halt.resume_votes.iter().any(|(_, v)| *v == tx.validator) {
                    return Err(TxError::AlreadyVoted { validator: tx.validator });
                }
                let vote = (*anchor, tx.validator);
                let at = halt.resume_votes.binary_search(&vote).unwrap_or_else(|i| i);
                halt.resume_votes.insert(at, vote);
                let for_anchor = halt.resume_votes.iter().filter(|(a, _)| a == anchor).count();
                if for_anchor >= resume_votes_needed(n) {
                    halt = PegHalt { resume_to: Some(*anchor), ..PegHalt::default() };
                }
            }
        }
        self.writes.insert(StateKey::PegHalt, canonical_bytes(&halt));
        Ok(())
    }
}
