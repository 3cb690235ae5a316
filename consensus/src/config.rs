//! Configuration of the consensus core: timeouts and the bounds that keep a Byzantine peer from growing
//! memory without limit.
//!
//! Invariant owned here: a timeout of round `r` is `base + r * delta`, so it grows with the round and
//! eventually exceeds the (unknown) message delay after GST, which is what liveness needs.

use crate::types::TimeoutStep;
use primitives::Round;
use serde::{Deserialize, Serialize};

/// Timeouts (milliseconds) and bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// `timeoutPropose(0)`.
    pub propose_ms: u64,
    /// Added to `timeoutPropose` per round.
    pub propose_delta_ms: u64,
    /// `timeoutPrevote(0)`.
    pub prevote_ms: u64,
    /// Added to `timeoutPrevote` per round.
    pub prevote_delta_ms: u64,
    /// `timeoutPrecommit(0)`.
    pub precommit_ms: u64,
    /// Added to `timeoutPrecommit` per round.
    pub precommit_delta_ms: u64,
    /// Messages for rounds more than this far above the current round are dropped.
    pub max_round_lookahead: u32,
    /// At most this many messages for the next height are buffered.
    pub max_buffered_next_height: usize,
    /// Read by the host, not the core: in round 0 a proposer with nothing to put in a block (no
    /// transactions, no peg work) waits up to this long after the last commit before proposing an empty
    /// block (Tendermint's `create_empty_blocks_interval`), so an idle chain does not write empty blocks
    /// as fast as it can. Must stay well under `propose_ms`, or the others time out waiting.
    #[serde(default = "default_empty_block_interval_ms")]
    pub empty_block_interval_ms: u64,
}

fn default_empty_block_interval_ms() -> u64 {
    1000
}

impl Default for Config {
    fn default() -> Self {
        Config {
            propose_ms: 3000,
            propose_delta_ms: 500,
            prevote_ms: 1000,
            prevote_delta_ms: 500,
            precommit_ms: 1000,
            precommit_delta_ms: 500,
            max_round_lookahead: 1024,
            max_buffered_next_height: 4096,
            empty_block_interval_ms: default_empty_block_interval_ms(),
        }
    }
}

impl Config {
    /// How long the timeout of `step` in `round` lasts.
    pub fn timeout_ms(&self, step: TimeoutStep, round: Round) -> u64 {
        let (base, delta) = match step {
            TimeoutStep::Propose => (self.propose_ms, self.propose_delta_ms),
            TimeoutStep::Prevote => (self.prevote_ms, self.prevote_delta_ms),
            TimeoutStep::Precommit => (self.precommit_ms, self.precommit_delta_ms),
        };
        base.saturating_add(delta.saturating_mul(u64::from(round.get())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_linearly_with_the_round() {
        let c = Config::default();
        assert_eq!(c.timeout_ms(TimeoutStep::Propose, Round(0)), 3000);
        assert_eq!(c.timeout_ms(TimeoutStep::Propose, Round(2)), 4000);
        assert_eq!(c.timeout_ms(TimeoutStep::Precommit, Round(1)), 1500);
        assert_eq!(c.timeout_ms(TimeoutStep::Prevote, Round(u32::MAX)), 1000 + 500 * u64::from(u32::MAX));
    }
}
