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

use crate::execute::{Overlay, Receipt, TxError};
use crate::genesis::{federation_threshold, validate_validator_list, Chain, GenesisValidator};
use crate::state::{ChainMeta, StateError, StateKey, StateReader};
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, tagged_hash, Hash32, Height, SignDomain, Signature, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Tag of a federation change's id.
pub const RECONFIGURE_TXID_TAG: &str = "sidechain/reconfigure-txid";

/// One federation: its validators (consensus keys, peg keys, addresses, power) and its wallet threshold.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FederationEpoch {
    /// 0 for the genesis set, then one more per change.
    pub epoch: u32,
    /// The validators; a `ValidatorIndex` in this epoch is a position in this list.
    pub validators: Vec<GenesisValidator>,
    /// Signatures the epoch's wallet needs.
    pub peg_threshold: u32,
    /// The first height this set decides.
    pub from_height: Height,
}

impl FederationEpoch {
    /// Total voting power.
    pub fn total_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).fold(0, u64::saturating_add)
    }

    /// Whether `power` is more than two thirds of the total (2f+1).
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power()) * 2
    }

    /// The position of the validator with peg key `key`.
    pub fn peg_signer(&self, key: &bitcoin::PublicKey) -> Option<usize> {
        self.validators.iter().position(|v| v.peg_key.inner == key.inner)
    }
}

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

/// A proposed federation: who validates from `activation_height` on, and the wallet threshold.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct FederationProposal {
    /// The new validator list.
    pub validators: Vec<GenesisValidator>,
    /// Signatures the new wallet needs (`2f+1 <= k <= n - f` for the new n).
    pub peg_threshold: u32,
    /// The first height the new set decides.
    pub activation_height: Height,
}

impl FederationProposal {
    /// What an approval signs besides the domain and the genesis hash: `borsh((epoch, proposal))`, with
    /// `epoch` the number of the federation epoch in force whose member approves. Binding the epoch makes an
    /// approval worthless once that epoch is over: a change approved (or merely signed) under epoch `e` cannot
    /// be replayed under `e + 1`, even when the new set kept the same keys at the same indices.
    pub fn approval_body(&self, epoch: u32) -> Vec<u8> {
        let mut body = epoch.to_le_bytes().to_vec();
        body.extend(canonical_bytes(self));
        body
    }

    /// The exact bytes an approval under `epoch` signs (domain `FederationChange`, this chain's genesis
    /// hash, then [`Self::approval_body`]).
    pub fn signing_bytes(&self, genesis_hash: &Hash32, epoch: u32) -> Vec<u8> {
        primitives::signing_bytes(SignDomain::FederationChange, genesis_hash, &self.approval_body(epoch))
    }

    /// A validator's approval with its consensus key, as a member of epoch `epoch` (the one in force).
    pub fn approve(
        &self,
        validator: ValidatorIndex,
        epoch: u32,
        key: &primitives::Keypair,
        genesis_hash: &Hash32,
    ) -> Approval {
        let signature = key.sign(SignDomain::FederationChange, genesis_hash, &self.approval_body(epoch));
        Approval { validator, epoch, signature }
    }
}

/// One validator's signature on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Approval {
    /// Its index in the set in force.
    pub validator: ValidatorIndex,
    /// The epoch in force when it approved (signed): valid only while that epoch is in force.
    pub epoch: u32,
    /// By its consensus key, over [`FederationProposal::signing_bytes`] for `epoch`.
    pub signature: Signature,
}

/// A federation change with the approvals of 2f+1 (by power) of the set in force. Not signed as a whole:
/// the approvals are its authority, so any node may relay it and any proposer include it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReconfigureTx {
    /// The change.
    pub proposal: FederationProposal,
    /// Approvals by distinct validators of the set in force.
    pub approvals: Vec<Approval>,
}

impl ReconfigureTx {
    /// `tagged_hash("sidechain/reconfigure-txid", borsh(tx))`.
    pub fn txid(&self) -> Hash32 {
        tagged_hash(RECONFIGURE_TXID_TAG, &[&canonical_bytes(self)])
    }
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

impl<S: StateReader> Overlay<'_, S> {
    /// `Reconfigure`: checks the proposal, the approvals (distinct members of the set in force, valid
    /// signatures, more than two thirds of its power) and the timing, then schedules the new epoch.
    pub(crate) fn apply_reconfigure(
        &mut self,
        chain: &Chain,
        tx: &ReconfigureTx,
        meta: &ChainMeta,
    ) -> Result<Receipt, TxError> {
        let mut fs = federation_state(chain, self)?;
        if let Some(p) = &fs.pending {
            return Err(TxError::ChangeAlreadyPending { activation_height: p.from_height });
        }
        let p = &tx.proposal;
        let earliest = Height(meta.height.get().saturating_add(chain.params().federation_change_min_lead));
        if p.activation_height < earliest {
            return Err(TxError::ActivationTooSoon { activation_height: p.activation_height, earliest });
        }
        check_proposal(chain, p)?;
        let current = fs.in_force();
        let bytes = p.approval_body(current.epoch);
        let mut seen = Vec::with_capacity(tx.approvals.len());
        let mut power = 0u64;
        for a in &tx.approvals {
            let Some(v) = current.validators.get(a.validator.as_usize()) else {
                return Err(TxError::UnknownValidator { validator: a.validator, validators: current.validators.len() });
            };
            if seen.contains(&a.validator) {
                return Err(TxError::AlreadyVoted { validator: a.validator });
            }
            seen.push(a.validator);
            // Checked before the signature so a replayed change says why it is refused.
            if a.epoch != current.epoch {
                return Err(TxError::StaleApproval {
                    validator: a.validator,
                    approved_in: a.epoch,
                    in_force: current.epoch,
                });
            }
            v.consensus_key
                .verify(SignDomain::FederationChange, chain.genesis_hash(), &bytes, &a.signature)
                .map_err(|e| TxError::BadApproval { validator: a.validator, reason: e.to_string() })?;
            power = power.saturating_add(v.power);
        }
        if !current.is_quorum(power) {
            return Err(TxError::NotEnoughApprovals { power, total: current.total_power() });
        }
        let epoch = current.epoch.checked_add(1).ok_or(TxError::PegTotalOverflow)?;
        fs.pending = Some(FederationEpoch {
            epoch,
            validators: p.validators.clone(),
            peg_threshold: p.peg_threshold,
            from_height: p.activation_height,
        });
        self.writes.insert(StateKey::Federation, canonical_bytes(&fs));
        Ok(Receipt { txid: tx.txid(), sender: None, fee: Amount::ZERO })
    }

    /// At the end of block `meta.height`: a pending change for the next height takes effect. Votes that
    /// name validators by index (fee-rate votes, halt reports and resume votes) are cleared: an index means
    /// someone else in the new set. The agreed fee rate and a halt stay as they are.
    pub(crate) fn activate_pending_federation(&mut self, chain: &Chain, meta: &ChainMeta) -> Result<(), StateError> {
        let mut fs = federation_state(chain, self)?;
        let due = fs.pending.as_ref().is_some_and(|p| p.from_height <= meta.height.next());
        if !due {
            return Ok(());
        }
        if let Some(mut next) = fs.pending.take() {
            next.from_height = meta.height.next();
            fs.epochs.push(next);
        }
        self.writes.insert(StateKey::Federation, canonical_bytes(&fs));
        let mut rates = crate::fee_rate::fee_rates(self)?;
        rates.votes.clear();
        self.writes.insert(StateKey::FeeRates, canonical_bytes(&rates));
        let halt = crate::halt::peg_halt(self)?;
        let cleared = crate::halt::PegHalt { reports: Vec::new(), resume_votes: Vec::new(), ..halt };
        self.writes.insert(StateKey::PegHalt, canonical_bytes(&cleared));
        Ok(())
    }
}

/// The meta of the block after `state`'s, as pool checks see it.
fn next_meta<S: StateReader>(state: &S) -> Result<ChainMeta, StateError> {
    let prev = state.chain_meta()?.ok_or(StateError::MissingVersion { version: 0, reason: "no chain meta".into() })?;
    Ok(ChainMeta { height: prev.height.next(), ..prev })
}

/// Applies a share or a federation change to `overlay`; anything else is not a pool transaction.
fn apply_pool_tx<S: StateReader>(
    overlay: &mut Overlay<'_, S>,
    chain: &Chain,
    meta: &ChainMeta,
    tx: &crate::Tx,
) -> Result<(), TxError> {
    match tx {
        crate::Tx::PegShare(p) => overlay.apply_peg_share(chain, meta, p).map(|_| ()),
        crate::Tx::Reconfigure(r) => overlay.apply_reconfigure(chain, r, meta).map(|_| ()),
        _ => Err(TxError::NotAPoolTx),
    }
}

/// Of `txs` (signature shares and federation changes, which any node relays), those that apply in order on
/// top of `state` in the next block: a share for a batch that is signed already, a second share by one
/// signer, a change that is pending already or lacks approvals are left out. What a proposer includes.
pub fn select_pool_txs<S: StateReader>(
    chain: &Chain,
    state: &S,
    txs: &[crate::Tx],
) -> Result<Vec<crate::Tx>, StateError> {
    if state.chain_meta()?.is_none() {
        return Ok(Vec::new());
    }
    let meta = next_meta(state)?;
    let mut overlay = Overlay::new(state);
    let mut out = Vec::new();
    for tx in txs {
        match apply_pool_tx(&mut overlay, chain, &meta, tx) {
            Ok(()) => out.push(tx.clone()),
            Err(TxError::State(e)) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Whether `tx` (a share or a federation change) would apply on top of `state` in the next block; the
/// error says why not. What a node checks before relaying one or accepting it over RPC.
pub fn check_pool_tx<S: StateReader>(chain: &Chain, state: &S, tx: &crate::Tx) -> Result<(), TxError> {
    apply_pool_tx(&mut Overlay::new(state), chain, &next_meta(state)?, tx)
}

#[cfg(test)]
mod tests;
