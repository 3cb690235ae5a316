//! The share-time circuit breaker: the last check a validator makes, from its own committed state, before
//! its signature share for a federation transaction (a payout batch, a fee bump, a sweep or a refresh)
//! leaves the node.
//!
//! Why: execution builds every batch and every bump from state, and every validator re-executes every
//! block, so normally what a validator is asked to sign is exactly what state says it should be. The
//! breaker is for when that fails: a bug in a builder, a damaged store, or a block a supermajority accepted
//! that it should not have (the Liquid incident of September 2026: about 4,000 BTC of peg-outs followed an
//! invalid block). It re-derives what the transaction may do from state, independently of the builders
//! (`peg::batch`, [`crate::batching`], [`crate::bumping`], [`crate::sweep`]), and refuses otherwise.
//!
//! Invariant owned here: a validator releases a share only for a transaction whose
//! - outputs each pay either a burn recorded in state (exact script and amount, batched into this batch,
//!   not paid yet, each burn once, in the batch's order) or, as the last output only, the federation's
//!   own wallet of the batch's change epoch (change, sweep, refresh);
//! - inputs are federation outputs state records, with the amount and tweak the signature commits to;
//! - fee (inputs minus outputs) is what the fee pool paid for the batch, and at most [`fee_bound`] at the
//!   higher of the agreed rate now and the rate the version was priced at (recorded when it was built or
//!   bumped): the rate may halve in a few blocks while a signer restarts, and a late signer must still
//!   sign what the honest builder produced, or nothing ever rebuilds it and the burns are stuck;
//!
//! and only while the reserve promise `supply + unpaid_burns <= btc_held` holds (plus the genesis supply of
//! test networks, as block execution counts it).
//!
//! A refusal withholds one share. With k-of-n signing a bad transaction is paid only if k validators all
//! sign it, so one honest breaker that trips among n - k + 1 is enough to stop it.

use crate::batching::{BatchRecord, INCREMENTAL_RELAY_SAT_VB};
use crate::genesis::Chain;
use crate::pegin::PegTotals;
use crate::state::{StateError, StateReader};
use bitcoin::{Amount, ScriptBuf};
use std::collections::BTreeSet;

/// How far above its pricing rate a batch may pay (a bump pays at least the previous fee plus the relay
/// increment, which may be above the rate it is priced at; twice leaves room for that and for the builder's
/// size estimate).
pub const FEE_RATE_HEADROOM: u64 = 2;

/// Why a validator refuses to sign a federation transaction. Each one means state and the transaction
/// disagree, or the reserves are short: operators must find out why before signing resumes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareCheckError {
    /// The recorded transaction does not decode.
    #[error("batch {batch}: its unsigned transaction does not decode")]
    Undecodable {
        /// The batch.
        batch: u64,
    },
    /// An output pays a script that is neither the burn at its position nor the federation's wallet.
    #[error("batch {batch}: output {vout} pays {}, which is neither a burn of this batch nor the federation", script.to_hex_string())]
    UnknownScript {
        /// The batch.
        batch: u64,
        /// The output.
        vout: usize,
        /// What it pays.
        script: ScriptBuf,
    },
    /// A payout output pays another amount than its burn.
    #[error("batch {batch}: output {vout} pays {paid} for burn {burn}, which is owed {owed}")]
    WrongAmount {
        /// The batch.
        batch: u64,
        /// The output.
        vout: usize,
        /// The burn it pays.
        burn: u64,
        /// What the output pays.
        paid: Amount,
        /// What the burn is owed.
        owed: Amount,
    },
    /// The batch lists one burn more than once.
    #[error("batch {batch}: burn {burn} is paid more than once")]
    BurnPaidTwice {
        /// The batch.
        batch: u64,
        /// The burn.
        burn: u64,
    },
    /// A burn the batch lists has no record in state.
    #[error("batch {batch}: burn {burn} is not recorded in state")]
    UnknownBurn {
        /// The batch.
        batch: u64,
        /// The burn.
        burn: u64,
    },
    /// A burn the batch lists belongs to another batch (or to none).
    #[error("batch {batch}: burn {burn} belongs to batch {owner:?}, not to this one")]
    BurnOfAnotherBatch {
        /// The batch.
        batch: u64,
        /// The burn.
        burn: u64,
        /// The batch state says pays it.
        owner: Option<u64>,
    },
    /// A burn the batch lists was paid already.
    #[error("batch {batch}: burn {burn} was already paid on Bitcoin")]
    BurnAlreadyPaid {
        /// The batch.
        batch: u64,
        /// The burn.
        burn: u64,
    },
    /// The transaction has another number of outputs than its burns (and its change) need.
    #[error("batch {batch}: {outputs} outputs, but its burns and change need {expected}")]
    OutputCount {
        /// The batch.
        batch: u64,
        /// Outputs in the transaction.
        outputs: usize,
        /// What state says it should have.
        expected: usize,
    },
    /// The change output's value is not the change state recorded.
    #[error("batch {batch}: the change output pays {paid}, state records {recorded:?}")]
    WrongChange {
        /// The batch.
        batch: u64,
        /// What the last output pays.
        paid: Amount,
        /// What state recorded.
        recorded: Option<Amount>,
    },
    /// An input is not a federation output of the batch's wallet as state records it.
    #[error(
        "batch {batch}: input {vin} is not a federation output of epoch {epoch} with the recorded amount and tweak"
    )]
    UnknownInput {
        /// The batch.
        batch: u64,
        /// The input.
        vin: usize,
        /// The batch's wallet epoch.
        epoch: u32,
    },
    /// The wallet of an epoch the batch names is not in the federation state.
    #[error("batch {batch}: epoch {epoch} is not a known federation epoch")]
    UnknownEpoch {
        /// The batch.
        batch: u64,
        /// The epoch.
        epoch: u32,
    },
    /// Inputs minus outputs is not the fee state charged the fee pool for.
    #[error("batch {batch}: the transaction pays a fee of {actual:?}, state charged {recorded}")]
    FeeMismatch {
        /// The batch.
        batch: u64,
        /// Inputs minus outputs (`None`: outputs exceed inputs).
        actual: Option<Amount>,
        /// The fee recorded.
        recorded: Amount,
    },
    /// The fee is above the bound at the agreed rate.
    #[error("batch {batch}: fee {fee} is above the bound {bound} ({vbytes} vB at up to {rate_sat_vb} sat/vB)")]
    FeeAboveBound {
        /// The batch.
        batch: u64,
        /// The fee.
        fee: Amount,
        /// The bound.
        bound: Amount,
        /// The size bound it was computed on.
        vbytes: u64,
        /// The highest rate allowed.
        rate_sat_vb: u64,
    },
    /// The reserve promise does not hold: signing would pay out of reserves that are already short.
    #[error("reserves short: supply {supply} + unpaid burns {unpaid_burns} exceeds btc held {btc_held} + genesis supply {genesis_supply}")]
    ReserveShort {
        /// Sidechain supply.
        supply: Amount,
        /// Burned, not yet paid.
        unpaid_burns: Amount,
        /// BTC the federation holds.
        btc_held: Amount,
        /// Genesis balances (test networks).
        genesis_supply: Amount,
    },
    /// State could not be read.
    #[error("batch {batch}: cannot read state: {source}")]
    State {
        /// The batch.
        batch: u64,
        /// Why.
        #[source]
        source: StateError,
    },
}

impl ShareCheckError {
    /// A short, stable name of the reason (metrics labels, the status).
    pub fn kind(&self) -> &'static str {
        match self {
            ShareCheckError::Undecodable { .. } => "undecodable",
            ShareCheckError::UnknownScript { .. } => "unknown_script",
            ShareCheckError::WrongAmount { .. } => "wrong_amount",
            ShareCheckError::BurnPaidTwice { .. } => "burn_paid_twice",
            ShareCheckError::UnknownBurn { .. } => "unknown_burn",
            ShareCheckError::BurnOfAnotherBatch { .. } => "burn_of_another_batch",
            ShareCheckError::BurnAlreadyPaid { .. } => "burn_already_paid",
            ShareCheckError::OutputCount { .. } => "output_count",
            ShareCheckError::WrongChange { .. } => "wrong_change",
            ShareCheckError::UnknownInput { .. } => "unknown_input",
            ShareCheckError::UnknownEpoch { .. } => "unknown_epoch",
            ShareCheckError::FeeMismatch { .. } => "fee_mismatch",
            ShareCheckError::FeeAboveBound { .. } => "fee_above_bound",
            ShareCheckError::ReserveShort { .. } => "reserve_short",
            ShareCheckError::State { .. } => "state",
        }
    }
}

/// `Err` when `supply + unpaid_burns > btc_held + genesis supply`: the reserve promise of block execution.
pub fn check_reserve(chain: &Chain, t: &PegTotals) -> Result<(), ShareCheckError> {
    let genesis_supply = chain.genesis_supply();
    match (t.supply.checked_add(t.unpaid_burns), t.btc_held.checked_add(genesis_supply)) {
        (Some(owed), Some(backed)) if owed <= backed => Ok(()),
        _ => Err(ShareCheckError::ReserveShort {
            supply: t.supply,
            unpaid_burns: t.unpaid_burns,
            btc_held: t.btc_held,
            genesis_supply,
        }),
    }
}

/// The most a version of `record` may pay in fees: its size bound (the unsigned transaction plus the
/// largest witness of each input, computed here from the wallet's descriptor, not read from the record) at
/// [`FEE_RATE_HEADROOM`] times the agreed rate plus one relay increment per version, and, for a change
/// output too small to keep (it then goes to the fee), the change script's dust limit and output size.
/// Returns (bound, vbytes, rate).
pub fn fee_bound(
    wallet: &peg::Federation,
    tx: &bitcoin::Transaction,
    versions: usize,
    agreed_sat_vb: u64,
) -> Option<(Amount, u64, u64)> {
    // The witness of one input: its whole weight less the outpoint, scriptSig and sequence, which the
    // unsigned transaction already holds.
    let witness = peg::input_weight(wallet.descriptor())
        .ok()?
        .to_wu()
        .checked_sub(peg::fee::NON_WITNESS_INPUT_BYTES.checked_mul(4)?)?;
    let inputs = u64::try_from(tx.input.len()).ok()?;
    // Unsigned: no witness, so the serialization is the base size; +2 WU for the segwit marker and flag.
    let base = u64::try_from(tx.base_size()).ok()?;
    let wu = base.checked_mul(4)?.checked_add(2)?.checked_add(witness.checked_mul(inputs)?)?;
    let vbytes = wu.div_ceil(4);
    let rate = agreed_sat_vb
        .checked_mul(FEE_RATE_HEADROOM)?
        .checked_add(INCREMENTAL_RELAY_SAT_VB.checked_mul(u64::try_from(versions).ok()?)?)?;
    let change = wallet.script_pubkey();
    let dropped_change =
        change.minimal_non_dust().to_sat().checked_add(peg::output_vbytes(&change).checked_mul(rate)?)?;
    let bound = vbytes.checked_mul(rate)?.checked_add(dropped_change)?;
    Some((Amount::from_sat(bound), vbytes, rate))
}

/// Whether this validator may release its share for the current version of `record`, judged from
/// `state` (the committed tip) alone. See the module docs for what is checked.
pub fn check_batch<S: StateReader>(chain: &Chain, state: &S, record: &BatchRecord) -> Result<(), ShareCheckError> {
    let batch = record.id;
    let st = |source| ShareCheckError::State { batch, source };
    check_reserve(chain, &state.peg_totals().map_err(st)?)?;
    let tx = record.unsigned().map_err(|_| ShareCheckError::Undecodable { batch })?;
    let federation = crate::federation::federation_state(chain, state).map_err(st)?;
    let wallet_of = |epoch: u32| {
        federation.epoch(epoch).and_then(|e| chain.wallet(e).ok()).ok_or(ShareCheckError::UnknownEpoch { batch, epoch })
    };
    let wallet = wallet_of(record.epoch)?;
    let change_script = wallet_of(record.change_epoch)?.script_pubkey();

    // Outputs: the burns, in order, then at most one output to the federation.
    let expected = record.burns.len() + usize::from(record.change.is_some());
    let mut seen = BTreeSet::new();
    for (vout, out) in tx.output.iter().enumerate() {
        let Some(id) = record.burns.get(vout).copied() else {
            if out.script_pubkey != change_script || vout + 1 != tx.output.len() {
                return Err(ShareCheckError::UnknownScript { batch, vout, script: out.script_pubkey.clone() });
            }
            if record.change != Some(out.value) {
                return Err(ShareCheckError::WrongChange { batch, paid: out.value, recorded: record.change });
            }
            continue;
        };
        if !seen.insert(id) {
            return Err(ShareCheckError::BurnPaidTwice { batch, burn: id });
        }
        let b = crate::pegout::burn(state, id).map_err(st)?.ok_or(ShareCheckError::UnknownBurn { batch, burn: id })?;
        if b.batch != Some(batch) {
            return Err(ShareCheckError::BurnOfAnotherBatch { batch, burn: id, owner: b.batch });
        }
        if b.paid_in.is_some() {
            return Err(ShareCheckError::BurnAlreadyPaid { batch, burn: id });
        }
        if out.script_pubkey.as_bytes() != b.script_pubkey.as_slice() {
            return Err(ShareCheckError::UnknownScript { batch, vout, script: out.script_pubkey.clone() });
        }
        if out.value != b.amount {
            return Err(ShareCheckError::WrongAmount { batch, vout, burn: id, paid: out.value, owed: b.amount });
        }
    }
    if tx.output.len() != expected {
        return Err(ShareCheckError::OutputCount { batch, outputs: tx.output.len(), expected });
    }

    // Inputs: federation outputs of the batch's wallet, with the amounts and tweaks the signature covers.
    if tx.input.len() != record.inputs.len() {
        return Err(ShareCheckError::UnknownInput {
            batch,
            vin: tx.input.len().min(record.inputs.len()),
            epoch: record.epoch,
        });
    }
    let mut have = Amount::ZERO;
    for (vin, (txin, rec)) in tx.input.iter().zip(&record.inputs).enumerate() {
        let unknown = ShareCheckError::UnknownInput { batch, vin, epoch: record.epoch };
        if txin.previous_output != rec.outpoint.to_bitcoin() {
            return Err(unknown);
        }
        let utxo = state.get_federation_utxo(&rec.outpoint).map_err(st)?.ok_or(unknown.clone())?;
        if utxo.amount != rec.amount || utxo.tweak != rec.tweak || utxo.epoch != record.epoch {
            return Err(unknown);
        }
        have = have.checked_add(utxo.amount).ok_or(unknown)?;
    }

    // The fee: what the fee pool paid, and within the bound at the agreed rate.
    let paid: Option<Amount> = tx.output.iter().try_fold(Amount::ZERO, |acc, o| acc.checked_add(o.value));
    let actual = paid.and_then(|p| have.checked_sub(p));
    if actual != Some(record.fee) {
        return Err(ShareCheckError::FeeMismatch { batch, actual, recorded: record.fee });
    }
    let agreed = crate::fee_rate::agreed_fee_rate(chain, state).map_err(st)?;
    let pricing = agreed.max(record.priced_at_sat_vb);
    let (bound, vbytes, rate_sat_vb) =
        fee_bound(&wallet, &tx, record.bumps() + 1, pricing).unwrap_or((Amount::ZERO, 0, 0));
    if record.fee > bound {
        return Err(ShareCheckError::FeeAboveBound { batch, fee: record.fee, bound, vbytes, rate_sat_vb });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
