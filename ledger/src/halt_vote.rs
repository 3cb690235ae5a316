//! The halt votes in execution: `ReportReorg` and `ResumePeg` from validators (the rules are in
//! [`crate::halt`]).
//!
//! Why apart from `halt.rs`: a halt clears the peg cursor ([`mod@crate::peg_cursor`]), and the cursor's check
//! refuses early items while the peg is halted, so it reads the halt. With the votes inside `halt.rs`, the
//! halt and the cursor needed each other; here the votes sit above both.

use crate::btc_anchor::BtcAnchor;
use crate::error::TxError;
use crate::genesis::Chain;
use crate::halt::{peg_halt, reports_needed, resume_votes_needed, PegHalt};
use crate::overlay::Overlay;
use crate::state::{StateKey, StateReader};
use crate::tx::ValidatorTxKind;
use primitives::canonical_bytes;

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
