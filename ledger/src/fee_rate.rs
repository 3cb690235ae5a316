//! Fee-rate votes and the agreed Bitcoin fee rate the peg prices everything at.
//!
//! Why votes: the federation pays Bitcoin fees for peg-out batches, charges burns for their payout output
//! and charges peg-ins for the later cost of spending their input. If a proposer or one validator chose
//! that rate, it could drain the fee pool (too high) or strand batches (too low). So each validator signs a
//! `FeeRateVote` from its own bitcoind's estimate, state keeps the latest vote of each, and execution moves
//! the agreed rate towards the median of the fresh votes.
//!
//! Invariants owned here:
//! - only a quorum of fresh votes (n - f, each at most `Params::fee_vote_max_age` blocks old) moves the
//!   rate: the median of n - f values lies between two honest votes, so f Byzantine voters cannot push it
//!   outside what honest validators see;
//! - the rate moves at most one eighth (at least 1 sat/vB) per block, so a burst of votes cannot make it
//!   jump between a burn being priced and its batch being built;
//! - it never goes below `Params::pegin_fee_rate_sat_vb` (the chain's floor) nor above [`MAX_FEE_RATE`].

use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::state::{ChainMeta, StateError, StateKey, StateReader};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, Height, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Highest rate a vote may name, in sat/vB (far above any fee market Bitcoin has seen).
pub const MAX_FEE_RATE: u64 = 10_000;

/// The votes and the rate they agreed on (one value in state).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FeeRates {
    /// The latest vote of each validator that voted: (validator, sat/vB, height of the vote), by validator.
    pub votes: Vec<(ValidatorIndex, u64, Height)>,
    /// The agreed rate in sat/vB; 0 until the first block that computed one (read as the chain's floor).
    pub agreed_sat_vb: u64,
}

/// Reads the fee-rate record (empty when never written).
pub fn fee_rates<S: StateReader>(state: &S) -> Result<FeeRates, StateError> {
    let key = StateKey::FeeRates;
    state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The agreed fee rate in sat/vB: the voted rate, never below the chain's floor.
pub fn agreed_fee_rate<S: StateReader>(chain: &Chain, state: &S) -> Result<u64, StateError> {
    Ok(fee_rates(state)?.agreed_sat_vb.max(chain.params().pegin_fee_rate_sat_vb))
}

/// The agreed rate as a `bitcoin::FeeRate`.
pub fn agreed_bitcoin_fee_rate<S: StateReader>(chain: &Chain, state: &S) -> Result<bitcoin::FeeRate, StateError> {
    let rate = agreed_fee_rate(chain, state)?;
    Ok(bitcoin::FeeRate::from_sat_per_vb(rate).unwrap_or(bitcoin::FeeRate::ZERO))
}

/// The lower median of the fresh votes at `height`, if n - f of the `n` validators voted recently enough.
pub fn fresh_median(rates: &FeeRates, n: usize, height: Height, max_age: u64) -> Option<u64> {
    let mut fresh: Vec<u64> = rates
        .votes
        .iter()
        .filter(|(_, _, at)| at.get().saturating_add(max_age) >= height.get())
        .map(|(_, rate, _)| *rate)
        .collect();
    if fresh.len() < crate::genesis::federation_threshold(n) {
        return None;
    }
    fresh.sort_unstable();
    fresh.get((fresh.len() - 1) / 2).copied()
}

/// One block's step of the agreed rate from `current` towards `target`: at most an eighth, at least 1.
pub fn step_towards(current: u64, target: u64) -> u64 {
    let step = (current / 8).max(1);
    if target > current {
        target.min(current.saturating_add(step))
    } else {
        target.max(current.saturating_sub(step))
    }
}

impl<S: StateReader> Overlay<'_, S> {
    /// `FeeRateVote` from `validator` at `height`: replaces its previous vote.
    pub(crate) fn apply_fee_rate_vote(
        &mut self,
        validator: ValidatorIndex,
        height: Height,
        sat_per_vb: u64,
    ) -> Result<(), TxError> {
        if sat_per_vb == 0 || sat_per_vb > MAX_FEE_RATE {
            return Err(TxError::BadFeeRateVote { sat_per_vb, max: MAX_FEE_RATE });
        }
        let mut rates = fee_rates(self)?;
        match rates.votes.binary_search_by_key(&validator, |(v, _, _)| *v) {
            Ok(at) if rates.votes[at].2 == height => return Err(TxError::AlreadyVoted { validator }),
            Ok(at) => rates.votes[at] = (validator, sat_per_vb, height),
            Err(at) => rates.votes.insert(at, (validator, sat_per_vb, height)),
        }
        self.writes.insert(StateKey::FeeRates, canonical_bytes(&rates));
        Ok(())
    }

    /// End of every block: moves the agreed rate one bounded step towards the median of fresh votes.
    pub(crate) fn update_agreed_fee_rate(&mut self, chain: &Chain, meta: &ChainMeta) -> Result<(), StateError> {
        let mut rates = fee_rates(self)?;
        if rates.votes.is_empty() {
            return Ok(());
        }
        let params = chain.params();
        let floor = params.pegin_fee_rate_sat_vb;
        let current = rates.agreed_sat_vb.max(floor);
        let n = crate::federation::federation_state(chain, self)?.in_force().validators.len();
        let Some(median) = fresh_median(&rates, n, meta.height, params.fee_vote_max_age) else {
            return Ok(());
        };
        let next = step_towards(current, median.clamp(floor, MAX_FEE_RATE.max(floor)));
        if next != rates.agreed_sat_vb {
            rates.agreed_sat_vb = next;
            self.writes.insert(StateKey::FeeRates, canonical_bytes(&rates));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(votes: &[(u16, u64, u64)]) -> FeeRates {
        FeeRates {
            votes: votes.iter().map(|(v, r, h)| (ValidatorIndex(*v), *r, Height(*h))).collect(),
            agreed_sat_vb: 0,
        }
    }

    #[test]
    fn the_median_needs_a_quorum_of_fresh_votes() {
        // n = 4: n - f = 3 fresh votes needed.
        assert_eq!(fresh_median(&rates(&[(0, 5, 10), (1, 7, 10)]), 4, Height(10), 100), None);
        assert_eq!(fresh_median(&rates(&[(0, 5, 10), (1, 7, 10), (2, 9, 10)]), 4, Height(10), 100), Some(7));
        // One vote is too old at height 111: no quorum.
        assert_eq!(fresh_median(&rates(&[(0, 5, 10), (1, 7, 10), (2, 9, 11)]), 4, Height(111), 100), None);
        // One validator alone cannot set it: an outlier in four votes does not move the lower median.
        let outlier = rates(&[(0, 2, 10), (1, 2, 10), (2, 2, 10), (3, 9_000, 10)]);
        assert_eq!(fresh_median(&outlier, 4, Height(10), 100), Some(2));
        let low = rates(&[(0, 50, 10), (1, 50, 10), (2, 50, 10), (3, 1, 10)]);
        assert_eq!(fresh_median(&low, 4, Height(10), 100), Some(50));
    }

    #[test]
    fn the_rate_moves_by_at_most_an_eighth_per_block() {
        assert_eq!(step_towards(2, 30), 3);
        assert_eq!(step_towards(80, 1_000), 90);
        assert_eq!(step_towards(80, 85), 85);
        assert_eq!(step_towards(80, 2), 70);
        assert_eq!(step_towards(3, 2), 2);
        assert_eq!(step_towards(7, 7), 7);
        let mut r = 2;
        let mut blocks = 0;
        while r < 30 {
            r = step_towards(r, 30);
            blocks += 1;
        }
        assert_eq!((r, blocks), (30, 20), "2 -> 30 sat/vB takes 20 blocks");
    }
}
