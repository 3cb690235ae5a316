//! Fee bumps of stuck peg-out batches, built by block execution like the batches themselves.
//!
//! Why in execution: which coins a bump adds and what it pays decides whether a burn could be paid twice.
//! Built from state alone, every node gets the same next version, byte for byte, and it spends a superset
//! of the previous version's inputs (`peg::bump_batch`), so every version of a batch conflicts with every
//! other: Bitcoin confirms at most one of them, and the one the anchor shows settles the batch.
//!
//! When: the current version has k shares (validators broadcast it) and the anchor shows
//! `Params::pegout_bump_after` BTC blocks mined after it went out, without a settlement ([`bump_due_at`]).
//! The anchor lags the tip by `pegin_confirmations - 1` blocks, so "after it went out" starts at the
//! lowest tip the signing block's anchor allows: counting from the anchor itself would bump every batch
//! before the anchor could possibly show it confirmed (with N = 6 and `pegout_bump_after` = 3, a batch
//! confirmed in the very next BTC block was bumped whenever the anchor moved one block at a time, and with
//! a deeper N every batch would spend its versions on blocks it never had a chance to confirm in). At: the agreed fee rate, and at least the previous fee plus the relay increment
//! (BIP125 rules 3, 4 and 6). Paid: the fee difference comes out of the fee pool into `unpaid_burns`, as
//! the first fee did; settlement hands back what the confirmed version did not spend. When the pool cannot
//! pay the agreed rate, the bump goes to the highest whole rate it can pay (at least the least valid
//! replacement), so a stuck batch still moves; the node warns operators to fund the pool.

use crate::batch_records::{batch, batch_index, input_records, BatchRecord, SpendableUtxos, INCREMENTAL_RELAY_SAT_VB};
use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::state::{fee_pool_id, ChainMeta, StateKey, StateReader};
use primitives::{canonical_bytes, BtcHeight};

/// Why a due bump was not built at this height (it is tried again at the next block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpSkipped {
    /// The batch has [`crate::batching::MAX_BATCH_VERSIONS`] versions already.
    TooManyVersions,
    /// The builder refused (not enough spendable coins for the higher fee, or a size limit).
    Builder(peg::BatchError),
    /// The fee pool cannot pay the difference.
    FeePoolShort,
}

/// The anchor height from which a version signed (k-th share recorded) in a block with anchor `signed_at`
/// is due for a bump: the BTC tip was at least `signed_at + pegin_confirmations - 1` when it went out, and
/// it had `pegout_bump_after` blocks above that tip to confirm in.
pub fn bump_due_at(chain: &Chain, signed_at: BtcHeight) -> BtcHeight {
    let p = chain.params();
    let lag = p.pegin_confirmations.saturating_sub(1);
    BtcHeight(signed_at.get().saturating_add(lag).saturating_add(p.pegout_bump_after))
}

/// Whether `record` is due for a bump at `meta`'s anchor (see [`bump_due_at`]).
pub fn bump_due(chain: &Chain, record: &BatchRecord, meta: &ChainMeta) -> bool {
    record.signed_at_anchor.is_some_and(|since| meta.btc_anchor.height >= bump_due_at(chain, since))
}

impl<S: StateReader> Overlay<'_, S> {
    /// End of every block: builds the next version of every in-flight batch that is due for a bump.
    pub(crate) fn bump_stuck_batches(&mut self, chain: &Chain, meta: &ChainMeta) -> Result<(), TxError> {
        if !chain.params().pegout_enabled || crate::halt::peg_halt(self)?.is_halted() {
            return Ok(());
        }
        for id in batch_index(self)?.in_flight {
            let Some(record) = batch(self, id)? else { continue };
            if bump_due(chain, &record, meta) {
                // A skipped bump changes nothing: the same check runs at the next block.
                let _ = self.bump(chain, record, meta)?;
            }
        }
        Ok(())
    }

    /// Builds and records the next version of `record`; `Ok(Err(_))` when it cannot be built now.
    pub(crate) fn bump(
        &mut self,
        chain: &Chain,
        mut record: BatchRecord,
        meta: &ChainMeta,
    ) -> Result<Result<(), BumpSkipped>, TxError> {
        // A taproot batch still on the key path keeps one version free for its leaf fallback.
        let reserved = usize::from(crate::frost_records::frost_session(self, record.id)?.is_some_and(|s| !s.fell_back));
        if record.earlier.len() + 1 + reserved >= crate::batching::MAX_BATCH_VERSIONS {
            return Ok(Err(BumpSkipped::TooManyVersions));
        }
        let federation = crate::federation::federation_state(chain, self)?;
        let epoch = federation.epoch(record.epoch).ok_or(TxError::UnknownEpoch(record.epoch))?;
        let change_epoch = federation.epoch(record.change_epoch).ok_or(TxError::UnknownEpoch(record.change_epoch))?;
        // Planned for the leaf once the batch gave up the key path (taproot custody).
        let fed = crate::frost_records::batch_wallet(chain, self, epoch, record.id)?;
        let change_script = chain.wallet(change_epoch).map_err(TxError::wallet)?.script_pubkey();
        let tx = record.unsigned()?;
        let payouts = record.burns.len();
        let previous = peg::BatchPlan {
            tx,
            inputs: record.peg_inputs(),
            payouts,
            change: record.change,
            fee: record.fee,
            vbytes: record.vbytes,
        };
        let (spendable, candidates) = self.spendable_candidates(meta.btc_anchor.height)?;
        // Only coins of the batch's own wallet: one key set signs every input.
        let agreed = crate::fee_rate::agreed_fee_rate(chain, self)?;
        // Economic coins only (see `crate::economic`), priced at the agreed rate.
        let cost = crate::economic::input_cost(&fed, crate::fee_rate::agreed_bitcoin_fee_rate(chain, self)?)
            .map_err(TxError::wallet)?;
        let candidates: Vec<peg::BatchInput> =
            crate::economic::by_value(candidates.into_iter().filter(|c| c.epoch == record.epoch), cost)
                .into_iter()
                .map(|c| c.input)
                .collect();
        let increment = bitcoin::FeeRate::from_sat_per_vb(INCREMENTAL_RELAY_SAT_VB).unwrap_or(bitcoin::FeeRate::ZERO);
        let build = |sat_per_vb: u64| {
            let rate = bitcoin::FeeRate::from_sat_per_vb(sat_per_vb).unwrap_or(bitcoin::FeeRate::ZERO);
            peg::bump_batch(
                &fed,
                *chain.genesis_hash().as_bytes(),
                &previous,
                &candidates,
                rate,
                increment,
                peg::BatchLimits::STANDARD,
                &change_script,
            )
        };
        let pool_id = fee_pool_id();
        let mut pool = self.account(&pool_id)?;
        let affordable = |plan: &peg::BatchPlan| plan.fee.checked_sub(record.fee).is_some_and(|x| x <= pool.balance);
        let plan = match build(agreed) {
            Ok(plan) if affordable(&plan) => (plan, agreed),
            Ok(_) => {
                // The pool cannot pay the agreed rate: the highest whole rate it can pay, down to the least
                // valid replacement (rate 0 here: the previous fee plus the relay increment). A stuck batch
                // moves as far as the pool allows; the next bump goes on from there.
                let (mut lo, mut hi) = (0, agreed);
                match build(lo) {
                    Ok(p) if affordable(&p) => {}
                    Ok(_) => return Ok(Err(BumpSkipped::FeePoolShort)),
                    Err(e) => return Ok(Err(BumpSkipped::Builder(e))),
                }
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if build(mid).is_ok_and(|p| affordable(&p)) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                match build(lo) {
                    Ok(plan) => (plan, lo),
                    Err(e) => return Ok(Err(BumpSkipped::Builder(e))),
                }
            }
            Err(e) => return Ok(Err(BumpSkipped::Builder(e))),
        };
        let (plan, rate) = plan;
        let extra = plan.fee.checked_sub(record.fee).ok_or(TxError::PegTotalOverflow)?;
        pool.balance = pool.balance.checked_sub(extra).ok_or(TxError::PegTotalOverflow)?;
        let mut totals = self.peg_totals()?;
        totals.supply = totals.supply.checked_sub(extra).ok_or(TxError::PegTotalOverflow)?;
        totals.unpaid_burns = totals.unpaid_burns.checked_add(extra).ok_or(TxError::PegTotalOverflow)?;

        let inputs = input_records(&plan.inputs);
        let mut left_spendable = spendable.0;
        left_spendable.retain(|o| !inputs.iter().any(|i| i.outpoint == *o));
        let earlier = record.current_version();
        record.earlier.push(earlier);
        record.inputs = inputs;
        record.change = plan.change;
        record.fee = plan.fee;
        record.vbytes = plan.vbytes;
        record.unsigned_tx = bitcoin::consensus::encode::serialize(&plan.tx);
        record.txid = plan.tx.compute_txid();
        record.shares = Vec::new();
        record.signed_at_anchor = None;
        // A bump pays at least the previous fee, so it is priced at no less than the previous version.
        record.priced_at_sat_vb = record.priced_at_sat_vb.max(rate);
        self.put_account(pool_id, pool);
        self.writes.insert(StateKey::Batch(record.id), canonical_bytes(&record));
        self.put_spendable(SpendableUtxos(left_spendable));
        self.writes.insert(StateKey::PegTotals, canonical_bytes(&totals));
        Ok(Ok(()))
    }
}
