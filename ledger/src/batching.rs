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
//! Fee bumps are built the same way (see [`Overlay::bump_stuck_batches`]): when a fully signed version has
//! not confirmed in the `pegout_bump_after` BTC blocks mined after it went out (as the anchor shows them,
//! [`crate::bumping::bump_due_at`]), execution builds
//! the next version at the agreed rate (at least the previous rate plus the relay increment) spending a
//! superset of its inputs, so every version conflicts with every other and at most one can ever confirm.
//! Whichever version the anchor shows confirmed settles the batch.

use crate::execute::{Overlay, TxError};
use crate::genesis::Chain;
use crate::pegout::{burn, pegout_queue, BurnRecord};
use crate::state::{fee_pool_id, ChainMeta, StateError, StateKey, StateReader};
use crate::tx::BtcOutPoint;
use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, AccountId, Hash32, Height};
use serde::{Deserialize, Serialize};

/// One input of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchInputRecord {
    /// The federation output spent.
    pub outpoint: BtcOutPoint,
    /// Its value.
    #[borsh(
        serialize_with = "crate::codec::amount::serialize",
        deserialize_with = "crate::codec::amount::deserialize"
    )]
    pub amount: Amount,
    /// Whose deposit tweak the keys need (`None`: the plain, untweaked script).
    pub tweak: Option<AccountId>,
}

/// What a batch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Pays queued burns.
    Payout,
    /// Moves outputs that near the emergency delay back to the federation, restarting their clock.
    Refresh,
    /// Moves an earlier epoch's outputs to the wallet in force after a federation change.
    Sweep,
}

/// A batch: which burns it pays and the unsigned transaction that pays them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Sequence number, from 0.
    pub id: u64,
    /// Payout, refresh or sweep.
    pub kind: BatchKind,
    /// The federation epoch whose wallet holds every input (whose keys sign).
    pub epoch: u32,
    /// Signatures that wallet needs.
    pub signers_needed: u32,
    /// The epoch whose wallet the change output pays (the one in force when the batch was built).
    pub change_epoch: u32,
    /// The block that built it.
    pub created_at: Height,
    /// The burns it pays, in output order.
    pub burns: Vec<u64>,
    /// The inputs, in transaction order.
    pub inputs: Vec<BatchInputRecord>,
    /// Change back to the federation (the last output), if any.
    #[borsh(
        serialize_with = "crate::codec::option_amount::serialize",
        deserialize_with = "crate::codec::option_amount::deserialize"
    )]
    pub change: Option<Amount>,
    /// The Bitcoin fee, paid by the fee pool.
    #[borsh(
        serialize_with = "crate::codec::amount::serialize",
        deserialize_with = "crate::codec::amount::deserialize"
    )]
    pub fee: Amount,
    /// Upper bound of the signed size the fee was priced on.
    pub vbytes: u64,
    /// The unsigned transaction, consensus-encoded.
    pub unsigned_tx: Vec<u8>,
    /// Its txid (internal byte order).
    pub txid: Hash32,
    /// Verified signature shares for this version, by signer (position in the epoch's validator list), in
    /// the order they were recorded.
    pub shares: Vec<(primitives::ValidatorIndex, Vec<Vec<u8>>)>,
    /// The anchor height of the block that recorded this version's k-th share: the bump clock.
    pub signed_at_anchor: Option<primitives::BtcHeight>,
    /// Earlier versions, oldest first. Each spends a subset of the inputs of every later one.
    pub earlier: Vec<BatchVersion>,
    /// The agreed fee rate (sat/vB) this version was priced at: the agreed rate when it was built or
    /// bumped, never below the previous version's; 0 reads as the chain's floor, as in
    /// [`crate::fee_rate::FeeRates`]. The share-time fee bound is taken against it (as well as the rate
    /// now), so a version an honest builder produced stays signable after the rate falls.
    #[serde(default)]
    pub priced_at_sat_vb: u64,
}

/// An earlier (fee-bumped) version of a batch, kept so it can still settle the batch if it is the one that
/// confirms, and so validators can keep broadcasting it until its successor is signed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchVersion {
    /// Its inputs, in transaction order.
    pub inputs: Vec<BatchInputRecord>,
    /// Its change, if any (the last output).
    #[borsh(
        serialize_with = "crate::codec::option_amount::serialize",
        deserialize_with = "crate::codec::option_amount::deserialize"
    )]
    pub change: Option<Amount>,
    /// Its Bitcoin fee.
    #[borsh(
        serialize_with = "crate::codec::amount::serialize",
        deserialize_with = "crate::codec::amount::deserialize"
    )]
    pub fee: Amount,
    /// Upper bound of its signed size.
    pub vbytes: u64,
    /// The unsigned transaction, consensus-encoded.
    pub unsigned_tx: Vec<u8>,
    /// Its txid (internal byte order).
    pub txid: Hash32,
    /// Its signature shares.
    pub shares: Vec<(primitives::ValidatorIndex, Vec<Vec<u8>>)>,
    /// The agreed fee rate it was priced at (see [`BatchRecord::priced_at_sat_vb`]).
    #[serde(default)]
    pub priced_at_sat_vb: u64,
}

/// Most versions a batch may have (the first and its bumps): bounds what one batch keeps in state.
pub const MAX_BATCH_VERSIONS: usize = 8;

/// The relay increment every bump adds on top of the previous fee, per vbyte (Bitcoin Core's default
/// `incrementalrelayfee` of 1 sat/vB; later Core versions lowered it, so this satisfies both).
pub const INCREMENTAL_RELAY_SAT_VB: u64 = 1;

impl BatchRecord {
    /// The current version as a [`BatchVersion`].
    pub fn current_version(&self) -> BatchVersion {
        BatchVersion {
            inputs: self.inputs.clone(),
            change: self.change,
            fee: self.fee,
            vbytes: self.vbytes,
            unsigned_tx: self.unsigned_tx.clone(),
            txid: self.txid,
            shares: self.shares.clone(),
            priced_at_sat_vb: self.priced_at_sat_vb,
        }
    }

    /// Every version's txid, oldest first (the current one last).
    pub fn version_txids(&self) -> impl Iterator<Item = Hash32> + '_ {
        self.earlier.iter().map(|v| v.txid).chain(std::iter::once(self.txid))
    }

    /// The version with `txid`, if it is one of this batch's.
    pub fn version(&self, txid: &Hash32) -> Option<BatchVersion> {
        if *txid == self.txid {
            return Some(self.current_version());
        }
        self.earlier.iter().find(|v| v.txid == *txid).cloned()
    }

    /// How many times it was fee-bumped.
    pub fn bumps(&self) -> usize {
        self.earlier.len()
    }

    /// The unsigned transaction.
    pub fn unsigned(&self) -> Result<bitcoin::Transaction, StateError> {
        bitcoin::consensus::deserialize(&self.unsigned_tx)
            .map_err(|e| StateError::Corrupt { key: StateKey::Batch(self.id), reason: e.to_string() })
    }

    /// The inputs as the peg crate takes them.
    pub fn peg_inputs(&self) -> Vec<peg::BatchInput> {
        to_peg_inputs(&self.inputs)
    }

    /// Whether enough signers signed the current version: it can be finalized and broadcast.
    pub fn is_signed(&self) -> bool {
        self.shares.len() >= self.signers_needed as usize
    }
}

impl BatchVersion {
    /// The unsigned transaction (`batch` names the record for the error).
    pub fn unsigned(&self, batch: u64) -> Result<bitcoin::Transaction, StateError> {
        bitcoin::consensus::deserialize(&self.unsigned_tx)
            .map_err(|e| StateError::Corrupt { key: StateKey::Batch(batch), reason: e.to_string() })
    }

    /// The inputs as the peg crate takes them.
    pub fn peg_inputs(&self) -> Vec<peg::BatchInput> {
        to_peg_inputs(&self.inputs)
    }
}

/// A plan's inputs as the ledger records them.
pub(crate) fn input_records(inputs: &[peg::BatchInput]) -> Vec<BatchInputRecord> {
    inputs
        .iter()
        .map(|i| BatchInputRecord {
            outpoint: BtcOutPoint::from_bitcoin(&i.outpoint),
            amount: i.amount,
            tweak: i.tweak.map(|t| AccountId(Hash32(t))),
        })
        .collect()
}

fn to_peg_inputs(inputs: &[BatchInputRecord]) -> Vec<peg::BatchInput> {
    inputs
        .iter()
        .map(|i| peg::BatchInput {
            outpoint: i.outpoint.to_bitcoin(),
            amount: i.amount,
            tweak: i.tweak.map(|t| t.0 .0),
        })
        .collect()
}

/// Batches in flight and the next id.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchIndex {
    /// The id the next batch gets.
    pub next_id: u64,
    /// Batches built and not yet settled, oldest first.
    pub in_flight: Vec<u64>,
}

/// Federation outputs no batch has reserved, sorted by outpoint: what the next batch may spend.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SpendableUtxos(pub Vec<BtcOutPoint>);

fn read<S: StateReader, T: BorshDeserialize>(state: &S, key: StateKey) -> Result<Option<T>, StateError> {
    state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()
}

/// A batch by id.
pub fn batch<S: StateReader>(state: &S, id: u64) -> Result<Option<BatchRecord>, StateError> {
    read(state, StateKey::Batch(id))
}

/// The batch index (empty when never written).
pub fn batch_index<S: StateReader>(state: &S) -> Result<BatchIndex, StateError> {
    Ok(read(state, StateKey::BatchIndex)?.unwrap_or_default())
}

/// The spendable federation outputs (empty when never written).
pub fn spendable_utxos<S: StateReader>(state: &S) -> Result<SpendableUtxos, StateError> {
    Ok(read(state, StateKey::SpendableUtxos)?.unwrap_or_default())
}

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
    ) -> Result<crate::execute::Receipt, TxError> {
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
            pool.balance = crate::execute::credit(pool_id, pool.balance, refund)?;
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
            let utxo = crate::pegin::FederationUtxo {
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
        Ok(crate::execute::Receipt { txid: s.txid(), sender: None, fee: Amount::ZERO })
    }

    /// `PegShare`: records a signer's shares for a batch version after verifying every signature against
    /// the peg key (tweaked where the input needs it) of that signer in the batch's wallet epoch.
    pub(crate) fn apply_peg_share(
        &mut self,
        chain: &Chain,
        meta: &ChainMeta,
        share: &crate::tx::PegShareTx,
    ) -> Result<crate::execute::Receipt, TxError> {
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
        let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
        let tx = record.unsigned()?;
        let peg_share = peg::shares::Share { signer: signer.as_usize(), signatures: share.signatures.clone() };
        let secp = bitcoin::secp256k1::Secp256k1::verification_only();
        peg::shares::verify_share(&secp, &wallet, chain.genesis_hash().0, &tx, &record.peg_inputs(), &peg_share)
            .map_err(|e| TxError::BadBatchShare { batch: id, reason: e.to_string() })?;
        record.shares.push((signer, share.signatures.clone()));
        if record.is_signed() {
            record.signed_at_anchor = Some(meta.btc_anchor.height);
        }
        self.writes.insert(StateKey::Batch(id), canonical_bytes(&record));
        Ok(crate::execute::Receipt { txid: share.txid(), sender: None, fee: Amount::ZERO })
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
            txid: Hash32(plan.tx.compute_txid().to_byte_array()),
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
            chain.genesis_hash().0,
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

/// What [`Overlay::plan_payout`] decided.
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

/// A spendable federation output as batch builders see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// As the peg crate takes it.
    pub input: peg::BatchInput,
    /// The epoch whose wallet holds it.
    pub epoch: u32,
    /// The Bitcoin height it confirmed at (the emergency clock starts there).
    pub confirmed_at: primitives::BtcHeight,
}

/// Every state entry behind the reserve promise, each with a proof against `root`: the peg totals, the fee
/// pool, the spendable set and each of its outputs, each batch in flight with the outputs it spends, and
/// the federation epochs (whose wallets hold them).
/// Anyone holding a header (whose state root a commit certificate made final) can check the figures alone.
#[derive(Clone, Debug)]
pub struct ReserveProof {
    /// The state root the proofs are against (the tip header's).
    pub root: Hash32,
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
