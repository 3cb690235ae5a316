//! Peg-out batches built by block execution itself, at every `pegout_interval` height.
//!
//! Why in execution and not by a proposer: a batch decides which federation coins pay which burns. If a
//! proposer chose, a Byzantine one could pay a burn twice (two batches) or starve one. Built from state
//! alone (the queue, the spendable UTXOs, the agreed rate) with the deterministic builder in
//! `peg::batch`, every node gets the same unsigned transaction, byte for byte, and each burn lands in
//! exactly one batch, forever.
//!
//! Accounting: the batch's Bitcoin fee is paid by the fee pool (which peg-in and peg-out fees fill), so it
//! leaves `supply` and joins `unpaid_burns` (BTC the federation owes out of its reserves) until the batch
//! confirms. `supply + unpaid_burns <= btc_held` is therefore unchanged by batching.
//!
//! Fee bumps are built the same way (see `Overlay::bump_stuck_batches`): when a fully signed version has
//! not confirmed in the `pegout_bump_after` BTC blocks mined after it went out (as the anchor shows them,
//! [`crate::bumping::bump_due_at`]), execution builds
//! the next version at the agreed rate (at least the previous rate plus the relay increment) spending a
//! superset of its inputs, so every version conflicts with every other and at most one can ever confirm.
//! Whichever version the anchor shows confirmed settles the batch.
//!
//! The batch records and their readers sit below, in [`crate::batch_records`] (re-exported here), so the
//! overlay and the coin rules can read them; this file builds, bumps' inputs aside, and settles batches.

use crate::batch_records::input_records;
pub use crate::batch_records::{
    batch, batch_index, spendable_utxos, BatchIndex, BatchInputRecord, BatchKind, BatchRecord, BatchVersion, Candidate,
    SpendableUtxos, INCREMENTAL_RELAY_SAT_VB, MAX_BATCH_VERSIONS,
};
use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::pegout::{burn, pegout_queue, BurnRecord};
use crate::state::{fee_pool_id, ChainMeta, StateError, StateKey, StateReader};
use crate::tx::BtcOutPoint;
use bitcoin::{Amount, ScriptBuf};
use primitives::{canonical_bytes, StateRoot};

impl<S: StateReader> Overlay<'_, S> {
    /// Settles batch `s.batch` confirmed on Bitcoin by version `s.txid` (the current one or an earlier one):
    /// its burns are paid (`unpaid_burns` falls by the payouts and the whole fee reserved for the batch, the
    /// part the confirmed version did not spend going back to the fee pool), that version's inputs leave
    /// `btc_held`, its change (if any) joins the federation's outputs and the spendable set, and inputs of
    /// later versions it did not spend are spendable again. Valid once per batch, at or below the anchor.
    pub(crate) fn apply_settle(
        &mut self,
        s: &crate::tx::SettleTx,
        meta: &ChainMeta,
    ) -> Result<crate::overlay::Receipt, TxError> {
        // An early settlement (in the block right above the anchor) must agree with the peg cursor.
        let early = crate::peg_cursor::is_early(&s.btc_block, &meta.btc_anchor);
        if early {
            self.check_early(&s.btc_block)?;
        } else if s.btc_block.height > meta.btc_anchor.height
            || (s.btc_block.height == meta.btc_anchor.height && s.btc_block.hash != meta.btc_anchor.hash)
        {
            return Err(TxError::SettleAboveAnchor { btc_height: s.btc_block.height, anchor: meta.btc_anchor.height });
        }
        let mut index = batch_index(self)?;
        let Some(pos) = index.in_flight.iter().position(|id| *id == s.batch) else {
            return Err(TxError::NotInFlight { batch: s.batch });
        };
        let record = batch(self, s.batch)?.ok_or(TxError::UnknownBatch(s.batch))?;
        let Some(confirmed) = record.version(&s.txid) else {
            return Err(TxError::NotInFlight { batch: s.batch });
        };
        index.in_flight.remove(pos);
        let mut totals = self.peg_totals()?;
        // The fee pool paid the current (highest) fee into `unpaid_burns`; what the confirmed version did
        // not spend goes back to it.
        let refund = record.fee.checked_sub(confirmed.fee).ok_or(TxError::PegTotalOverflow)?;
        let mut paid = confirmed.fee;
        for id in &record.burns {
            let mut b = burn(self, *id)?
                .ok_or(StateError::Corrupt { key: StateKey::Burn(*id), reason: "batched burn has no record".into() })?;
            paid = paid.checked_add(b.amount).ok_or(TxError::PegTotalOverflow)?;
            b.paid_in = Some(s.btc_block);
            self.writes.insert(StateKey::Burn(*id), canonical_bytes(&b));
        }
        if refund > Amount::ZERO {
            let pool_id = fee_pool_id();
            let mut pool = self.account(&pool_id)?;
            pool.balance = crate::overlay::credit(pool_id, pool.balance, refund)?;
            self.put_account(pool_id, pool);
            totals.supply = totals.supply.checked_add(refund).ok_or(TxError::PegTotalOverflow)?;
        }
        let spent: Amount = confirmed.inputs.iter().map(|i| i.amount).sum();
        let reserved = paid.checked_add(refund).ok_or(TxError::PegTotalOverflow)?;
        totals.unpaid_burns = totals.unpaid_burns.checked_sub(reserved).ok_or(TxError::PegTotalOverflow)?;
        totals.btc_held = totals.btc_held.checked_sub(spent).ok_or(TxError::PegTotalOverflow)?;
        if let Some(change) = confirmed.change {
            let tx = confirmed.unsigned(record.id)?;
            let vout = u32::try_from(tx.output.len().saturating_sub(1)).map_err(|_| TxError::PegTotalOverflow)?;
            let outpoint = BtcOutPoint { txid: confirmed.txid, vout };
            totals.btc_held = totals.btc_held.checked_add(change).ok_or(TxError::PegTotalOverflow)?;
            let utxo = crate::peg_records::FederationUtxo {
                amount: change,
                tweak: None,
                btc_block: s.btc_block,
                epoch: record.change_epoch,
                coinbase: false,
            };
            self.writes.insert(StateKey::FederationUtxo(outpoint), canonical_bytes(&utxo));
            self.add_spendable(outpoint)?;
        }
        // Inputs a later version added but the confirmed one did not spend are still the federation's.
        for i in &record.inputs {
            if !confirmed.inputs.iter().any(|c| c.outpoint == i.outpoint) {
                self.add_spendable(i.outpoint)?;
            }
        }
        // Spent inputs keep their `FederationUtxo` record as history; they left the spendable set when the
        // batch was built, and `btc_held` no longer counts them.
        self.writes.insert(StateKey::BatchIndex, canonical_bytes(&index));
        self.writes.insert(StateKey::PegTotals, canonical_bytes(&totals));
        if early {
            self.set_peg_cursor(s.btc_block);
        }
        Ok(crate::overlay::Receipt { txid: s.txid(), sender: None, fee: Amount::ZERO })
    }

    /// `PegShare`: records a signer's shares for a batch version after verifying every signature against
    /// the peg key (tweaked where the input needs it) of that signer in the batch's wallet epoch.
    pub(crate) fn apply_peg_share(
        &mut self,
        chain: &Chain,
        meta: &ChainMeta,
        share: &crate::tx::PegShareTx,
    ) -> Result<crate::overlay::Receipt, TxError> {
        let id = share.batch;
        if !batch_index(self)?.in_flight.contains(&id) {
            return Err(TxError::NotInFlight { batch: id });
        }
        let mut record = batch(self, id)?.ok_or(TxError::UnknownBatch(id))?;
        if record.txid != share.txid {
            return Err(TxError::NotCurrentBatchVersion { batch: id });
        }
        let federation = crate::federation::federation_state(chain, self)?;
        let epoch = federation.epoch(record.epoch).ok_or(TxError::UnknownEpoch(record.epoch))?;
        let signer = share.signer;
        if signer.as_usize() >= epoch.validators.len() {
            return Err(TxError::UnknownSigner { batch: id, signer, signers: epoch.validators.len() });
        }
        if record.shares.iter().any(|(v, _)| *v == signer) {
            return Err(TxError::AlreadyVoted { validator: signer });
        }
        if record.is_signed() {
            return Err(TxError::BatchAlreadySigned(id));
        }
        crate::frost_records::check_leaf_share_allowed(self, chain, epoch, &record)?;
        let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
        let tx = record.unsigned()?;
        let peg_share = peg::shares::Share { signer: signer.as_usize(), signatures: share.signatures.clone() };
        let secp = bitcoin::secp256k1::Secp256k1::verification_only();
        peg::shares::verify_share(
            &secp,
            &wallet,
            *chain.genesis_hash().as_bytes(),
            &tx,
            &record.peg_inputs(),
            &peg_share,
        )
        .map_err(|e| TxError::BadBatchShare { batch: id, source: Box::new(e) })?;
        record.shares.push((signer, share.signatures.clone()));
        if record.is_signed() {
            record.signed_at_anchor = Some(meta.btc_anchor.height);
        }
        self.writes.insert(StateKey::Batch(id), canonical_bytes(&record));
        Ok(crate::overlay::Receipt { txid: share.txid(), sender: None, fee: Amount::ZERO })
    }

    /// Adds a federation output to the spendable set (kept sorted).
    pub(crate) fn add_spendable(&mut self, outpoint: BtcOutPoint) -> Result<(), StateError> {
        if self.spendable.is_none() {
            self.spendable = Some(spendable_utxos(self)?);
        }
        let set = self.spendable.as_mut().expect("loaded above");
        if let Err(at) = set.0.binary_search(&outpoint) {
            set.0.insert(at, outpoint);
        }
        Ok(())
    }

    /// Replaces the spendable federation outputs.
    pub(crate) fn put_spendable(&mut self, set: SpendableUtxos) {
        self.spendable = Some(set);
    }

    /// The spendable set and each of its outputs a batch built at anchor height `anchor` may spend as a
    /// candidate (an immature coinbase output, or one above the anchor, stays in the set but is no
    /// candidate yet).
    pub(crate) fn spendable_candidates(
        &self,
        anchor: primitives::BtcHeight,
    ) -> Result<(SpendableUtxos, Vec<Candidate>), StateError> {
        let spendable = spendable_utxos(self)?;
        let mut candidates = Vec::with_capacity(spendable.0.len());
        for o in &spendable.0 {
            let u = self.get_federation_utxo(o)?.ok_or(StateError::Corrupt {
                key: StateKey::FederationUtxo(*o),
                reason: "spendable output has no record".into(),
            })?;
            // Not yet: an immature coinbase, or a coin above the anchor (minted early, see
            // `crate::peg_cursor`): batches spend only what the anchored chain holds.
            if !u.is_mature_at(anchor) || u.btc_block.height > anchor {
                continue;
            }
            let tweak = u.tweak.map(|t| t.0 .0);
            candidates.push(Candidate {
                input: peg::BatchInput { outpoint: o.to_bitcoin(), amount: u.amount, tweak },
                epoch: u.epoch,
                confirmed_at: u.btc_block.height,
            });
        }
        Ok((spendable, candidates))
    }

    /// Records a new batch built from `plan`: the fee pool pays its fee (into `unpaid_burns`, as every
    /// batch fee), its inputs leave the spendable set, its burns are marked batched. `Ok(false)` when the
    /// pool cannot pay the fee (nothing is written; the batch waits, deterministically on every node).
    pub(crate) fn record_batch(
        &mut self,
        meta: &ChainMeta,
        plan: &peg::BatchPlan,
        kind: BatchKind,
        epoch: &crate::federation::FederationEpoch,
        change_epoch: u32,
        burns: &mut [BurnRecord],
    ) -> Result<bool, TxError> {
        let pool_id = fee_pool_id();
        let mut pool = self.account(&pool_id)?;
        let Some(left) = pool.balance.checked_sub(plan.fee) else { return Ok(false) };
        pool.balance = left;
        let mut totals = self.peg_totals()?;
        totals.supply = totals.supply.checked_sub(plan.fee).ok_or(TxError::PegTotalOverflow)?;
        totals.unpaid_burns = totals.unpaid_burns.checked_add(plan.fee).ok_or(TxError::PegTotalOverflow)?;

        let mut index = batch_index(self)?;
        let id = index.next_id;
        index.next_id = id.checked_add(1).ok_or(TxError::PegTotalOverflow)?;
        index.in_flight.push(id);
        let inputs = input_records(&plan.inputs);
        let mut left_spendable = spendable_utxos(self)?.0;
        left_spendable.retain(|o| !inputs.iter().any(|i| i.outpoint == *o));
        for b in burns.iter_mut() {
            b.batch = Some(id);
            self.writes.insert(StateKey::Burn(b.id), canonical_bytes(b));
        }
        let record = BatchRecord {
            id,
            kind,
            epoch: epoch.epoch,
            signers_needed: epoch.peg_threshold,
            change_epoch,
            created_at: meta.height,
            burns: burns.iter().map(|b| b.id).collect(),
            inputs,
            change: plan.change,
            fee: plan.fee,
            vbytes: plan.vbytes,
            unsigned_tx: bitcoin::consensus::encode::serialize(&plan.tx),
            txid: plan.tx.compute_txid(),
            shares: Vec::new(),
            signed_at_anchor: None,
            earlier: Vec::new(),
            // Every builder prices at the agreed rate of the state it builds on.
            priced_at_sat_vb: crate::fee_rate::fee_rates(self)?.agreed_sat_vb,
        };
        self.put_account(pool_id, pool);
        self.writes.insert(StateKey::Batch(id), canonical_bytes(&record));
        self.writes.insert(StateKey::BatchIndex, canonical_bytes(&index));
        self.put_spendable(SpendableUtxos(left_spendable));
        self.writes.insert(StateKey::PegTotals, canonical_bytes(&totals));
        Ok(true)
    }

    /// At `pegout_interval` heights: pays queued burns with one deterministic batch, if the spendable
    /// outputs and the fee pool can. Nothing happens otherwise (the burns wait for the next interval, and
    /// [`crate::pegout_wait`] says why from the same [`Overlay::plan_payout`]).
    pub(crate) fn build_batch_if_due(&mut self, chain: &Chain, meta: &ChainMeta) -> Result<(), TxError> {
        let params = chain.params();
        if !params.pegout_enabled || !meta.height.get().is_multiple_of(params.pegout_interval) {
            return Ok(());
        }
        let PayoutPlan::Build { plan, mut burns } = self.plan_payout(chain, meta.btc_anchor.height)? else {
            return Ok(());
        };
        let federation = crate::federation::federation_state(chain, self)?;
        let epoch = federation.in_force();
        if self.record_batch(meta, &plan, BatchKind::Payout, epoch, epoch.epoch, &mut burns)? {
            self.count_payouts(chain, meta.btc_anchor.height, &burns)?;
            let mut queue = pegout_queue(self)?;
            queue.queued.drain(..burns.len());
            self.writes.insert(StateKey::PegOutQueue, canonical_bytes(&queue));
        }
        Ok(())
    }

    /// The payout batch a block at anchor height `anchor` would build from this state, or why it builds
    /// none: the one planner behind both the batch execution records and the wait reasons users see.
    pub(crate) fn plan_payout(&self, chain: &Chain, anchor: primitives::BtcHeight) -> Result<PayoutPlan, TxError> {
        if crate::halt::peg_halt(self)?.is_halted() {
            return Ok(PayoutPlan::Wait(PayoutWait::Halted));
        }
        let queue = pegout_queue(self)?;
        if queue.queued.is_empty() {
            return Ok(PayoutPlan::Nothing);
        }
        let limits = peg::BatchLimits::STANDARD;
        let mut burns: Vec<BurnRecord> = Vec::new();
        for id in queue.queued.iter().take(limits.max_outputs) {
            burns.push(
                burn(self, *id)?.ok_or(StateError::Corrupt {
                    key: StateKey::Burn(*id),
                    reason: "queued burn has no record".into(),
                })?,
            );
        }
        // The circuit breaker: only the head of the queue that fits in the rolling limit (see
        // `crate::pegout_limit`); the rest waits for the window to move.
        burns.truncate(self.burns_within_limit(chain, anchor, &burns)?);
        if burns.is_empty() {
            return Ok(PayoutPlan::Wait(PayoutWait::RollingLimit));
        }
        let payouts: Vec<peg::Payout> = burns
            .iter()
            .map(|b| peg::Payout { script_pubkey: ScriptBuf::from_bytes(b.script_pubkey.clone()), amount: b.amount })
            .collect();
        // Payouts spend the wallet in force only: earlier epochs' coins reach it through sweeps, so every
        // batch is signed by one key set.
        let federation = crate::federation::federation_state(chain, self)?;
        let epoch = federation.in_force();
        let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
        let (_, candidates) = self.spendable_candidates(anchor)?;
        let rate = crate::fee_rate::agreed_bitcoin_fee_rate(chain, self)?;
        // Economic coins only (see `crate::economic`): dust would only raise the fee it is meant to cover.
        let cost = crate::economic::input_cost(&wallet, rate).map_err(TxError::wallet)?;
        let candidates: Vec<peg::BatchInput> =
            crate::economic::by_value(candidates.into_iter().filter(|c| c.epoch == epoch.epoch), cost)
                .into_iter()
                .map(|c| c.input)
                .collect();
        let plan = match peg::plan_batch(
            &wallet,
            *chain.genesis_hash().as_bytes(),
            &candidates,
            &payouts,
            rate,
            limits,
            &wallet.script_pubkey(),
        ) {
            Ok(plan) => plan,
            // Not enough coins yet (or nothing valid to pay): the burns wait; deterministic on every node.
            Err(e) => return Ok(PayoutPlan::Wait(PayoutWait::Builder(e))),
        };
        let pool = self.account(&fee_pool_id())?.balance;
        if pool < plan.fee {
            return Ok(PayoutPlan::Wait(PayoutWait::FeePoolShort { fee: plan.fee, pool }));
        }
        Ok(PayoutPlan::Build { plan, burns })
    }
}

/// What `Overlay::plan_payout` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutPlan {
    /// No burn is queued.
    Nothing,
    /// This batch pays `burns`, the head of the queue, in order.
    Build {
        /// The unsigned batch.
        plan: peg::BatchPlan,
        /// The burns it pays.
        burns: Vec<BurnRecord>,
    },
    /// No batch now, and why (every queued burn waits).
    Wait(PayoutWait),
}

/// Why no payout batch is built although burns are queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutWait {
    /// The peg is halted.
    Halted,
    /// The burn at the head of the queue does not fit in the rolling limit.
    RollingLimit,
    /// The builder refused: not enough spendable coins, a dust payout, a size limit.
    Builder(peg::BatchError),
    /// The fee pool holds less than the batch's Bitcoin fee.
    FeePoolShort {
        /// The batch's fee.
        fee: Amount,
        /// The pool's balance.
        pool: Amount,
    },
}

/// Every state entry behind the reserve promise, each with a proof against `root`: the peg totals, the fee
/// pool, the spendable set and each of its outputs, each batch in flight with the outputs it spends, and
/// the federation epochs (whose wallets hold them).
/// Anyone holding a header (whose state root a commit certificate made final) can check the figures alone.
#[derive(Clone, Debug)]
pub struct ReserveProof {
    /// The state root the proofs are against (the tip header's).
    pub root: StateRoot,
    /// Key, value (borsh; `None` for an absent entry) and proof, for every entry read.
    pub entries: Vec<(StateKey, Option<Vec<u8>>, crate::state::StateProof)>,
}

/// Collects [`ReserveProof`] from one state version.
pub fn reserve_proof<R: jmt::storage::TreeReader>(
    state: &crate::state::Snapshot<'_, R>,
) -> Result<ReserveProof, StateError> {
    // The federation epochs too: with them, each output's spending script can be rebuilt from the proof
    // alone (what the emergency keys' holders need).
    let mut keys = vec![
        StateKey::PegTotals,
        StateKey::Account(fee_pool_id()),
        StateKey::SpendableUtxos,
        StateKey::BatchIndex,
        StateKey::Federation,
    ];
    for o in spendable_utxos(state)?.0 {
        keys.push(StateKey::FederationUtxo(o));
    }
    for id in batch_index(state)?.in_flight {
        keys.push(StateKey::Batch(id));
        if let Some(b) = batch(state, id)? {
            keys.extend(b.inputs.iter().map(|i| StateKey::FederationUtxo(i.outpoint)));
        }
    }
    let mut entries = Vec::with_capacity(keys.len());
    for key in keys {
        let (value, proof) = state.prove(&key)?;
        entries.push((key, value, proof));
    }
    Ok(ReserveProof { root: state.root()?, entries })
}
