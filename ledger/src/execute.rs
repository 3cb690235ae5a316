//! Transaction checks and block execution: the state transition function every node re-runs.
//!
//! Invariants owned here:
//! - execution reads only the previous state version and the block (no clock, no bitcoind, no IO);
//! - a block is all or nothing: one invalid transaction makes the whole block invalid (validators
//!   prevote nil), never a partial application;
//! - value is conserved: every debit has an equal credit (the recipient, or the fee pool for fees), and
//!   arithmetic is checked, so an overflow makes a transaction invalid instead of panicking.
//!
//! This file is the top of execution: it dispatches each transaction to the rule module that owns it and
//! runs the end-of-block steps. What every rule shares sits below it, the [`Overlay`] (`overlay.rs`) and the
//! errors (`error.rs`), re-exported here so `crate::execute::{Overlay, TxError, ..}` keep working.

pub use crate::error::{BlockError, TxError, WalletError};
pub use crate::overlay::{Overlay, Receipt};

use crate::block::{Block, BlockHeader};
use crate::btc_anchor::BtcAnchor;
use crate::genesis::{Chain, GenesisValidator};
use crate::halt::{peg_halt, PegHalt};
use crate::overlay::credit;
use crate::state::{build_write_set, fee_pool_id, ChainMeta, Snapshot, StateError, StateKey, StateReader, WriteSet};
use crate::tx::{tx_root, EvidenceRecord, EvidenceTx, SignedUserTx, Tx, UserTxKind};
use bitcoin::Amount;
use jmt::storage::TreeReader;
use primitives::{
    canonical_bytes, verify_batch, AccountId, BlockId, GenesisHash, Hash32, Height, PublicKey, Signature,
    SignatureError, StateRoot, TxId, ValidatorIndex,
};

/// What executing a block produced. Persist `write_set` atomically with the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionOutcome {
    /// Root after the block (equals `write_set.root`).
    pub state_root: StateRoot,
    /// The writes, at version = block height.
    pub write_set: WriteSet,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// The chain meta written by this block.
    pub meta: ChainMeta,
}

impl<S: StateReader> Overlay<'_, S> {
    /// Applies a user transaction whose signature was already checked. All or nothing: on error the
    /// overlay is unchanged.
    pub fn apply_user_tx(&mut self, chain: &Chain, signed: &SignedUserTx) -> Result<Receipt, TxError> {
        match signed.tx.kind {
            UserTxKind::Transfer { to, amount } => self.apply_transfer(chain, signed, to, amount),
            UserTxKind::RegisterDeposit => self.apply_register(chain, signed),
            UserTxKind::PegOut { ref btc_script_pubkey, amount } => {
                crate::pegout_limit::check_burn_amount(chain.params(), amount)?;
                self.apply_pegout(chain, signed, btc_script_pubkey, amount)
            }
        }
    }

    fn apply_transfer(
        &mut self,
        chain: &Chain,
        signed: &SignedUserTx,
        to: AccountId,
        amount: Amount,
    ) -> Result<Receipt, TxError> {
        let tx = &signed.tx;
        if amount == Amount::ZERO {
            return Err(TxError::ZeroAmount);
        }
        let min = chain.params().min_fee;
        if tx.fee < min {
            return Err(TxError::FeeTooLow { fee: tx.fee, min });
        }
        let (from, sender) = self.debited_sender(tx, amount)?;
        // Credits read through the debits above, so a self-transfer only costs the fee.
        let mut recipient = if to == from { sender } else { self.account(&to)? };
        recipient.balance = credit(to, recipient.balance, amount)?;
        let pool_id = fee_pool_id();
        let mut pool = if pool_id == to { recipient } else { self.account(&pool_id)? };
        pool.balance = credit(pool_id, pool.balance, tx.fee)?;
        // Everything checked: now write, sender first so a self-transfer keeps the credited value.
        self.accounts.insert(from, sender);
        self.accounts.insert(to, recipient);
        self.accounts.insert(pool_id, pool);
        Ok(Receipt { txid: signed.txid(), sender: Some(from), fee: tx.fee })
    }

    /// Records equivocation evidence (its proof already verified by the node). Refused when the offender
    /// is not a validator or the same (offender, height, round) is already recorded.
    pub fn apply_evidence(&mut self, chain: &Chain, ev: &EvidenceTx, included_at: Height) -> Result<Receipt, TxError> {
        let federation = crate::federation::federation_state(chain, self)?;
        let validators = federation.at_height(ev.height).validators.len();
        if ev.offender.as_usize() >= validators {
            return Err(TxError::UnknownOffender { offender: ev.offender, validators });
        }
        let key = StateKey::Evidence { offender: ev.offender, height: ev.height, round: ev.round };
        if self.writes.contains_key(&key) || self.base.get_raw(&key)?.is_some() {
            return Err(TxError::EvidenceAlreadyRecorded { offender: ev.offender, height: ev.height, round: ev.round });
        }
        let txid = ev.txid();
        let record = EvidenceRecord { offender: ev.offender, height: ev.height, round: ev.round, included_at, txid };
        self.writes.insert(key, canonical_bytes(&record));
        Ok(Receipt { txid, sender: None, fee: Amount::ZERO })
    }
}

/// Mempool admission: is `tx` valid as the next transaction of its sender on top of `state`?
/// Checks the signature, amount, fee, nonce and balance; changes nothing.
pub fn check_tx<S: StateReader>(chain: &Chain, state: &S, tx: &SignedUserTx) -> Result<(), TxError> {
    tx.verify_signature(chain.genesis_hash())?;
    Overlay::new(state).apply_user_tx(chain, tx).map(|_| ())
}

/// Verifies every signature of `txs`: one batch, then one by one only to name the first bad one.
///
/// `validators` is the set in force for the block (validator transactions name a position in it).
pub fn verify_tx_signatures(chain: &Chain, validators: &[GenesisValidator], txs: &[Tx]) -> Result<(), BlockError> {
    if txs.is_empty() {
        return Ok(());
    }
    let items: Vec<(PublicKey, Vec<u8>, Signature)> = txs
        .iter()
        .filter_map(|t| match t {
            Tx::User(s) => Some((s.tx.signer, s.tx.signing_bytes(chain.genesis_hash()), s.signature)),
            // Its signatures are consensus signatures, checked by the node (see `EvidenceTx`).
            Tx::Evidence(_) => None,
            // Unsigned: BTC facts the proposer asserts and validators check against bitcoind.
            Tx::Mint(_) | Tx::Settle(_) => None,
            // Carry their own authority (approvals, ECDSA shares), checked by execution.
            Tx::Reconfigure(_) | Tx::PegShare(_) | Tx::Frost(_) => None,
            // An unknown signer is refused by execution (`UnknownValidator`).
            Tx::Validator(v) => validators
                .get(v.tx.validator.as_usize())
                .map(|g| (g.consensus_key, v.tx.signing_bytes(chain.genesis_hash()), v.signature)),
        })
        .collect();
    if verify_batch(&items).is_ok() {
        return Ok(());
    }
    for (index, t) in txs.iter().enumerate() {
        let checked = match t {
            Tx::User(s) => s.verify_signature(chain.genesis_hash()),
            Tx::Validator(v) => match validators.get(v.tx.validator.as_usize()) {
                Some(g) => g.consensus_key.verify(
                    primitives::SignDomain::ValidatorTx,
                    chain.genesis_hash(),
                    &canonical_bytes(&v.tx),
                    &v.signature,
                ),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        if let Err(source) = checked {
            return Err(BlockError::BadSignature { index, txid: t.txid(), source });
        }
    }
    // Batch and single verification disagree only for crafted small-order keys or signatures (see
    // docs/PROTOCOL.md); the batch verdict decides, deterministically on every node.
    Err(BlockError::BadSignature { index: 0, txid: txs[0].txid(), source: SignatureError::BatchInvalid(txs.len()) })
}

/// The header fields a proposer chooses; `tx_root` and `state_root` are computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Height of the new block.
    pub height: Height,
    /// Hash of the previous header.
    pub prev_hash: BlockId,
    /// Proposer's time.
    pub time_ms: u64,
    /// Proposer's index.
    pub proposer: ValidatorIndex,
    /// Anchor after this block.
    pub btc_anchor: BtcAnchor,
    /// Hash of the previous block's commit certificate.
    pub last_commit_hash: Hash32,
}

/// Checks the header against the previous state's chain meta, peg halt and the parameters; returns the new
/// meta.
#[allow(clippy::too_many_arguments)]
fn check_header(
    chain: &Chain,
    validators: usize,
    prev: &ChainMeta,
    halt: &PegHalt,
    cursor: Option<&crate::peg_cursor::PegCursor>,
    genesis_hash: &GenesisHash,
    height: Height,
    time_ms: u64,
    proposer: ValidatorIndex,
    anchor: &BtcAnchor,
) -> Result<ChainMeta, BlockError> {
    if genesis_hash != chain.genesis_hash() {
        return Err(BlockError::WrongGenesis { expected: *chain.genesis_hash(), got: *genesis_hash });
    }
    let expected = prev.height.next();
    if height != expected {
        return Err(BlockError::WrongHeight { expected, got: height });
    }
    if time_ms <= prev.time_ms {
        return Err(BlockError::TimeNotIncreasing { prev_ms: prev.time_ms, got_ms: time_ms });
    }
    if proposer.as_usize() >= validators {
        return Err(BlockError::UnknownProposer { proposer, validators });
    }
    if let Some(agreed) = halt.resume_to {
        if *anchor != agreed {
            return Err(BlockError::ResumeAnchorMismatch { agreed, got: *anchor });
        }
        return Ok(ChainMeta { height, time_ms, btc_anchor: *anchor });
    }
    if halt.is_halted() && *anchor != prev.btc_anchor {
        return Err(BlockError::AnchorWhileHalted { kept: prev.btc_anchor, got: *anchor });
    }
    let (p, g) = (prev.btc_anchor.height, anchor.height);
    if g < p {
        return Err(BlockError::AnchorBackwards { prev: p, got: g });
    }
    let max = chain.params().max_anchor_step;
    if g.get() - p.get() > max {
        return Err(BlockError::AnchorStepTooLarge { prev: p, got: g, max });
    }
    if g == p && anchor.hash != prev.btc_anchor.hash {
        return Err(BlockError::AnchorHashChanged { height: g, prev: prev.btc_anchor.hash, got: anchor.hash });
    }
    crate::peg_cursor::check_anchor(cursor, anchor)
        .map_err(|cursor| BlockError::AnchorOffCursor { cursor, got: *anchor })?;
    Ok(ChainMeta { height, time_ms, btc_anchor: *anchor })
}

/// What the previous block left that the header is checked against.
struct Previous {
    meta: ChainMeta,
    halt: PegHalt,
    cursor: Option<crate::peg_cursor::PegCursor>,
    validators: usize,
}

/// The chain meta, the peg halt, the peg cursor and the number of validators in force after the previous
/// block.
fn previous_meta<R: TreeReader>(chain: &Chain, store: &R, height: Height) -> Result<Previous, BlockError> {
    let Some(prev_height) = height.prev() else {
        return Err(BlockError::WrongHeight { expected: Height(1), got: height });
    };
    let snap = Snapshot::new(store, prev_height.get());
    let meta = snap.chain_meta()?.ok_or_else(|| {
        BlockError::State(StateError::MissingVersion {
            version: prev_height.get(),
            reason: "no chain meta: genesis state not written".into(),
        })
    })?;
    let validators = crate::federation::federation_state(chain, &snap)?.in_force().validators.len();
    Ok(Previous { meta, halt: peg_halt(&snap)?, cursor: crate::peg_cursor::peg_cursor(&snap)?, validators })
}

/// Limits, signatures, then every transaction in order; returns the outcome at version `meta.height`.
fn run_txs<R: TreeReader>(
    chain: &Chain,
    store: &R,
    prev_anchor: &BtcAnchor,
    meta: ChainMeta,
    txs: &[Tx],
) -> Result<ExecutionOutcome, BlockError> {
    let params = chain.params();
    if txs.len() > params.block_max_txs as usize {
        return Err(BlockError::TooManyTxs { count: txs.len(), max: params.block_max_txs });
    }
    let bytes = txs_encoded_len(txs);
    if bytes > params.block_max_bytes as usize {
        return Err(BlockError::TooLarge { bytes, max: params.block_max_bytes });
    }
    let version = meta.height.get();
    let prev = Snapshot::new(store, version.saturating_sub(1));
    let federation = crate::federation::federation_state(chain, &prev)?;
    verify_tx_signatures(chain, &federation.in_force().validators, txs)?;
    let mut overlay = Overlay::new(&prev);
    let halt = peg_halt(&prev)?;
    let resuming = halt.resume_to.is_some();
    if resuming {
        // This block took the agreed anchor: the resume is complete.
        overlay.writes.insert(StateKey::PegHalt, canonical_bytes(&PegHalt { resume_to: None, ..halt }));
    }
    // The anchor reached the early items' block (the header rule made it that very block), or the peg
    // resumes from an agreed anchor: early items are no longer early.
    if crate::peg_cursor::peg_cursor(&prev)?.is_some_and(|c| resuming || meta.btc_anchor.height >= c.btc_block.height) {
        overlay.clear_peg_cursor()?;
    }
    let mut receipts = Vec::with_capacity(txs.len());
    for (index, t) in txs.iter().enumerate() {
        let applied = match t {
            Tx::User(s) => overlay.apply_user_tx(chain, s),
            Tx::Evidence(e) => overlay.apply_evidence(chain, e, meta.height),
            Tx::Mint(m) => overlay.apply_mint(chain, m, &meta),
            Tx::Settle(s) => overlay.apply_settle(s, &meta),
            Tx::Validator(v) => overlay.apply_validator_tx(chain, v, &meta, prev_anchor),
            Tx::Reconfigure(r) => overlay.apply_reconfigure(chain, r, &meta),
            Tx::PegShare(p) => overlay.apply_peg_share(chain, &meta, p),
            Tx::Frost(f) => overlay.apply_frost(chain, &meta, f),
        };
        let receipt = applied.map_err(|source| BlockError::InvalidTx { index, txid: t.txid(), source })?;
        receipts.push(receipt);
    }
    overlay.update_agreed_fee_rate(chain, &meta)?;
    overlay.bump_stuck_batches(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.build_batch_if_due(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.build_sweeps_if_due(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.advance_frost_sessions(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.activate_pending_federation(chain, &meta)?;
    check_reserve(chain, &overlay)?;
    let mut changes = overlay.into_changes();
    changes.push((StateKey::ChainMeta, Some(canonical_bytes(&meta))));
    let write_set = build_write_set(store, version, changes)?;
    Ok(ExecutionOutcome { state_root: write_set.root, write_set, receipts, meta })
}

/// The reserve promise after a block: `supply + unpaid_burns <= btc_held + genesis supply`.
fn check_reserve<S: StateReader>(chain: &Chain, state: &S) -> Result<(), BlockError> {
    let t = state.peg_totals()?;
    let genesis_supply = chain.genesis_supply();
    let owed = t.supply.checked_add(t.unpaid_burns);
    let backed = t.btc_held.checked_add(genesis_supply);
    match (owed, backed) {
        (Some(owed), Some(backed)) if owed <= backed => Ok(()),
        _ => Err(BlockError::ReserveBroken {
            supply: t.supply,
            unpaid_burns: t.unpaid_burns,
            btc_held: t.btc_held,
            genesis_supply,
        }),
    }
}

/// Encoded size of the transaction list as in a block (4-byte length, then each transaction).
pub fn txs_encoded_len(txs: &[Tx]) -> usize {
    4 + txs.iter().map(Tx::encoded_len).sum::<usize>()
}

/// Validates and executes `block` on top of the state at version `height - 1` in `store`.
///
/// Checks, in order: genesis hash, height, time, proposer, anchor rules, tx count and size, tx root,
/// signatures (batched), each transaction, and finally the header's state root against the result.
/// On success the caller persists `outcome.write_set` atomically with the block.
pub fn execute_block<R: TreeReader>(chain: &Chain, store: &R, block: &Block) -> Result<ExecutionOutcome, BlockError> {
    let h = &block.header;
    let p = previous_meta(chain, store, h.height)?;
    let meta = check_header(
        chain,
        p.validators,
        &p.meta,
        &p.halt,
        p.cursor.as_ref(),
        &h.genesis_hash,
        h.height,
        h.time_ms,
        h.proposer,
        &h.btc_anchor,
    )?;
    let computed = block.compute_tx_root();
    if computed != h.tx_root {
        return Err(BlockError::TxRootMismatch { header: h.tx_root, computed });
    }
    let outcome = run_txs(chain, store, &p.meta.btc_anchor, meta, &block.txs)?;
    if outcome.state_root != h.state_root {
        return Err(BlockError::StateRootMismatch { header: h.state_root, computed: outcome.state_root });
    }
    Ok(outcome)
}

/// Builds the proposer's block from chosen transactions (e.g. from [`crate::select_txs`]): executes
/// them and fills in `tx_root` and `state_root`.
pub fn build_block<R: TreeReader>(
    chain: &Chain,
    store: &R,
    template: BlockTemplate,
    txs: Vec<Tx>,
) -> Result<(Block, ExecutionOutcome), BlockError> {
    let p = previous_meta(chain, store, template.height)?;
    let meta = check_header(
        chain,
        p.validators,
        &p.meta,
        &p.halt,
        p.cursor.as_ref(),
        chain.genesis_hash(),
        template.height,
        template.time_ms,
        template.proposer,
        &template.btc_anchor,
    )?;
    let outcome = run_txs(chain, store, &p.meta.btc_anchor, meta, &txs)?;
    let ids: Vec<TxId> = txs.iter().map(Tx::txid).collect();
    let header = BlockHeader {
        genesis_hash: *chain.genesis_hash(),
        height: template.height,
        prev_hash: template.prev_hash,
        time_ms: template.time_ms,
        proposer: template.proposer,
        btc_anchor: template.btc_anchor,
        tx_root: tx_root(&ids),
        state_root: outcome.state_root,
        last_commit_hash: template.last_commit_hash,
    };
    Ok((Block { header, txs }, outcome))
}

#[cfg(test)]
mod tests;
