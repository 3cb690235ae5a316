//! The validity judge: this node's verdict on a proposed block, which its prevote carries. A block is
//! refused when it is not for the next height, when (validators only) its peg part does not match what our
//! own bitcoind shows, when its time is too far ahead of our clock, or when it does not execute.
//!
//! It only reads, and says why in a typed [`Refusal`]; the event loop logs it and answers the core.

use crate::bridge::{BlockObjection, PegDuties};
use crate::chain::{ChainError, ChainState, FullBlock};
use ledger::StateReader;
use primitives::Height;

/// Why this node votes nil on a proposed block.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The block is not for the height after our tip.
    #[error("the block is for height {block}, not {expected}")]
    WrongHeight { block: Height, expected: Height },
    /// Its peg part does not match our bitcoind.
    #[error(transparent)]
    Peg(#[from] BlockObjection),
    /// Its time is further ahead of our clock than we tolerate.
    #[error("the block's time {time_ms} is after {limit_ms} (our clock plus the allowed skew)")]
    TooFarAhead { time_ms: u64, limit_ms: u64 },
    /// It does not execute, or breaks a chain rule.
    #[error(transparent)]
    Invalid(#[from] ChainError),
}

/// What the judge reads.
pub struct Judge<'a> {
    pub chain: &'a ChainState,
    pub duties: &'a PegDuties,
    /// Validators check the peg part against their bitcoind; full nodes only re-execute.
    pub is_validator: bool,
    pub max_future_block_ms: u64,
}

impl Judge<'_> {
    /// Our verdict on `fb`, proposed for `height`, at our clock `now_ms`.
    pub fn judge(&self, height: Height, fb: &FullBlock, now_ms: u64) -> Result<(), Refusal> {
        let expected = self.chain.tip().next();
        if height != expected || fb.height() != expected {
            return Err(Refusal::WrongHeight { block: fb.height(), expected });
        }
        if self.is_validator {
            let state = self.chain.state();
            let prev = state.chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default();
            if let Some(why) = self.duties.objection(self.chain, &prev, &fb.block) {
                return Err(why.into());
            }
        }
        let limit_ms = now_ms.saturating_add(self.max_future_block_ms);
        if fb.block.header.time_ms > limit_ms {
            return Err(Refusal::TooFarAhead { time_ms: fb.block.header.time_ms, limit_ms });
        }
        self.chain.validate_next(fb)?;
        Ok(())
    }
}
