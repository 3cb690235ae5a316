//! Federation epochs: which validators run consensus at each height, and which wallet holds each coin.
//!
//! Why epochs in state: a federation loses machines, rotates keys and adds members without stopping the
//! chain. A `Reconfigure` transaction approved by 2f+1 (by power) of the set in force schedules a new set
//! for a later height; the block before that height activates it. Because the set for height `h` is part
//! of the state after block `h - 1`, a full node syncing from genesis checks every commit certificate
//! against the set that was in force at its height, and follows every change without trusting anyone.
//!
//! Each epoch has its own wallet (its validators' peg keys at its threshold, with the genesis emergency
//! branch). Every federation output remembers its epoch; the wallet moves to the newest epoch by sweep
//! batches signed by the old keys (see [`crate::sweep`]). Deposits to an old epoch's addresses are watched
//! for `Params::deposit_window` blocks after the change, and claimable with `claimpegin` forever.
//!
//! Invariants owned here:
//! - `epochs` is never empty, numbered 0, 1, 2, … with strictly increasing `from_height`; the last is in force;
//! - at most one change is pending, and it always activates at a height above the block that accepted it;
//! - an approval counts only in the epoch it names and was signed for (the epoch in force), so no approval
//!   outlives the set that gave it;
//! - a proposed set passes the genesis validator checks, its peg threshold keeps the 2f+1 rule
//!   (`2f+1 <= k <= n - f`), and its wallet builds (so no emergency key is a peg key).
//!
//! Layering: this file holds the federation state, its reader and the proposal check, and re-exports the
//! plain types below it ([`crate::validators`], [`crate::reconfigure`]). The rules that change the state
//! (a `Reconfigure` transaction, the activation, the pool checks) sit above, in [`crate::federation_change`],
//! where the pending-change and approval invariants above are enforced.

use crate::genesis::{federation_threshold, validate_validator_list, Chain};
use crate::state::{StateError, StateKey, StateReader};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::Height;
use serde::{Deserialize, Serialize};

pub use crate::reconfigure::{Approval, FederationProposal, ReconfigureTx, RECONFIGURE_TXID_TAG};
pub use crate::validators::FederationEpoch;

/// The federation history, the set in force, and the change waiting for its height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FederationState {
    /// Every epoch so far, oldest first; the last one is in force.
    pub epochs: Vec<FederationEpoch>,
    /// An accepted change that has not reached its height yet.
    pub pending: Option<FederationEpoch>,
}

impl FederationState {
    /// Epoch 0: the genesis validators at the genesis threshold, from height 1.
    pub fn genesis(chain: &Chain) -> Self {
        let validators = chain.genesis().validators.clone();
        let peg_threshold = u32::try_from(federation_threshold(validators.len())).unwrap_or(u32::MAX);
        FederationState {
            epochs: vec![FederationEpoch { epoch: 0, validators, peg_threshold, from_height: Height(1) }],
            pending: None,
        }
    }

    /// The epoch in force (the last one).
    pub fn in_force(&self) -> &FederationEpoch {
        // Never empty (module invariant); a corrupt empty list is refused when read (`federation_state`).
        &self.epochs[self.epochs.len() - 1]
    }

    /// Epoch number `n`.
    pub fn epoch(&self, n: u32) -> Option<&FederationEpoch> {
        self.epochs.get(n as usize).filter(|e| e.epoch == n)
    }

    /// The epoch that decided height `h`.
    pub fn at_height(&self, h: Height) -> &FederationEpoch {
        self.epochs.iter().rev().find(|e| e.from_height <= h).unwrap_or(&self.epochs[0])
    }

    /// The epoch that decides height `h`, read from the state after some height `t`, for `t < h <= t +
    /// federation_change_min_lead`: the pending change once its activation height comes, else
    /// [`Self::at_height`]. No change scheduled after `t` can activate that soon (a `Reconfigure` in block
    /// `s > t` activates at `s + federation_change_min_lead` at the earliest), so this is exact in that
    /// window: what the node uses for the next two heights and a light client for a range of headers.
    pub fn deciding(&self, h: Height) -> &FederationEpoch {
        match &self.pending {
            Some(p) if p.from_height <= h => p,
            _ => self.at_height(h),
        }
    }

    /// Epochs whose deposit addresses proposers still watch at `height`: the one in force, and earlier ones
    /// replaced less than `window` blocks ago.
    pub fn watched_at(&self, height: Height, window: u64) -> impl Iterator<Item = &FederationEpoch> {
        let in_force = self.in_force().epoch;
        self.epochs
            .iter()
            .enumerate()
            .filter(move |(i, e)| {
                e.epoch == in_force
                    || self
                        .epochs
                        .get(i + 1)
                        .is_some_and(|next| next.from_height.get().saturating_add(window) > height.get())
            })
            .map(|(_, e)| e)
    }
}

/// The federation state after `state` (the genesis epoch alone on a store written before epochs existed).
pub fn federation_state<S: StateReader>(chain: &Chain, state: &S) -> Result<FederationState, StateError> {
    let Some(bytes) = state.get_raw(&StateKey::Federation)? else { return Ok(FederationState::genesis(chain)) };
    let fs: FederationState = borsh::from_slice(&bytes)
        .map_err(|e| StateError::Corrupt { key: StateKey::Federation, reason: e.to_string() })?;
    if fs.epochs.is_empty() {
        return Err(StateError::Corrupt { key: StateKey::Federation, reason: "no epoch".into() });
    }
    Ok(fs)
}

/// Why a proposed federation is not acceptable (before any approval is looked at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// The validator list fails the genesis checks (duplicate keys, zero power, ...).
    #[error("proposed validators: {0}")]
    Validators(crate::GenesisError),
    /// The threshold would let f keys spend, or f lost keys freeze the wallet.
    #[error("peg threshold {threshold} of {n} breaks the 2f+1 rule: it must be between {min} and {max}")]
    ThresholdBreaksQuorum {
        /// Proposed.
        threshold: u32,
        /// Keys.
        n: usize,
        /// 2f+1.
        min: usize,
        /// n - f.
        max: usize,
    },
    /// The wallet does not build (an emergency key is a peg key, miniscript limits, ...).
    #[error("proposed wallet: {0}")]
    Wallet(crate::GenesisError),
}

/// Checks a proposed set on its own: validators, threshold, wallet.
pub fn check_proposal(chain: &Chain, p: &FederationProposal) -> Result<(), ProposalError> {
    validate_validator_list(&p.validators).map_err(ProposalError::Validators)?;
    let n = p.validators.len();
    let f = n.saturating_sub(1) / 3;
    let (min, max) = (2 * f + 1, n - f);
    if (p.peg_threshold as usize) < min || (p.peg_threshold as usize) > max {
        return Err(ProposalError::ThresholdBreaksQuorum { threshold: p.peg_threshold, n, min, max });
    }
    let epoch = FederationEpoch {
        epoch: 1,
        validators: p.validators.clone(),
        peg_threshold: p.peg_threshold,
        from_height: p.activation_height,
    };
    chain.wallet(&epoch).map_err(ProposalError::Wallet)?;
    Ok(())
}

#[cfg(test)]
mod tests;
