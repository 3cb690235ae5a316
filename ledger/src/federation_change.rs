//! Federation changes in execution: a `Reconfigure` transaction schedules a new epoch, the end of a block
//! activates it; and the federation pool (signature shares and changes, which any node relays) is checked
//! and selected the way the next block would apply it.
//!
//! Why apart from `federation.rs`: these are rules over an [`Overlay`] and refuse with [`TxError`], which sit
//! above the federation state they read (`TxError` names [`crate::federation::ProposalError`]). Inside
//! `federation.rs` they made the federation state and execution need each other.

use crate::error::TxError;
use crate::federation::{check_proposal, federation_state};
use crate::genesis::Chain;
use crate::overlay::{Overlay, Receipt};
use crate::reconfigure::ReconfigureTx;
use crate::state::{ChainMeta, StateError, StateKey, StateReader};
use crate::validators::FederationEpoch;
use bitcoin::Amount;
use primitives::{canonical_bytes, Height, SignDomain};

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
                .map_err(|source| TxError::BadApproval { validator: a.validator, source })?;
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
        crate::Tx::Frost(f) => overlay.apply_frost(chain, meta, f).map(|_| ()),
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
