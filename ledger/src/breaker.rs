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
//! Invariant owned here: a validator releases a share only for the current version of an in-flight batch
//! whose
//! - outputs each pay either a burn recorded in state (exact script and amount, batched into this batch
//!   and listed by no other in-flight batch, not paid yet, each burn once, in the batch's order) or, as the
//!   last output only, the federation's own wallet of the batch's change epoch: the spending epoch for a
//!   payout or a refresh, a newer one (at most the one in force) for a sweep;
//! - inputs are federation outputs state records, with the amount and tweak the signature commits to,
//!   reserved for this batch (out of the spendable set, spent by no other in-flight batch);
//! - earlier versions each spend a subset of its inputs (so at most one version confirms) and pay the
//!   same payouts;
//! - fee (inputs minus outputs) is what the fee pool paid for the batch, and at most [`fee_bound`] at the
//!   higher of the agreed rate now and the rate the version was priced at (recorded when it was built or
//!   bumped): the rate may halve in a few blocks while a signer restarts, and a late signer must still
//!   sign what the honest builder produced, or nothing ever rebuilds it and the burns are stuck;
//!
//! and only while the coins state says the federation holds (the spendable outputs plus every in-flight
//! batch's inputs) add up to `btc_held`, and the reserve promise `supply + unpaid_burns <= btc_held` holds
//! (plus the genesis supply of test networks, as block execution counts it). Execution keeps the promise
//! on the committed totals after every block, so the totals alone could never trip here; the recount is
//! what catches a coin a settled version already spent (its record stays as history) or one nobody
//! reserved.
//!
//! A refusal withholds one share. With k-of-n signing a bad transaction is paid only if k validators all
//! sign it, so one honest breaker that trips among n - k + 1 is enough to stop it.

use crate::batching::{BatchRecord, INCREMENTAL_RELAY_SAT_VB};
use crate::genesis::Chain;
use crate::peg_records::PegTotals;
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
    /// The batch is not in flight (settled, or never built).
    #[error("batch {batch} is not in flight")]
    NotInFlight {
        /// The batch.
        batch: u64,
    },
    /// The change goes to an epoch the batch's kind may not pay: a payout's or a refresh's change goes back
    /// to the wallet that spends, a sweep's to a newer one, never past the epoch in force.
    #[error(
        "batch {batch} ({kind:?}) spends epoch {epoch} and pays change to epoch {change_epoch} (in force: {in_force})"
    )]
    ChangeEpoch {
        /// The batch.
        batch: u64,
        /// Its kind.
        kind: crate::batching::BatchKind,
        /// The epoch whose wallet spends.
        epoch: u32,
        /// The epoch the change pays.
        change_epoch: u32,
        /// The epoch in force.
        in_force: u32,
    },
    /// An earlier version spends an input the current one does not: both could confirm.
    #[error("batch {batch}: version {version} spends an input the current version does not")]
    EarlierInputsNotSubset {
        /// The batch.
        batch: u64,
        /// The earlier version (0 = the first).
        version: usize,
    },
    /// An earlier version pays other payouts than the current one (or more than one change output).
    #[error("batch {batch}: version {version} pays other outputs than the current version")]
    EarlierPayoutsDiffer {
        /// The batch.
        batch: u64,
        /// The earlier version (0 = the first).
        version: usize,
    },
    /// An input is still in the spendable set: no batch reserved it, so another may spend it too.
    #[error("batch {batch}: input {vin} is not reserved for it (still spendable)")]
    InputNotReserved {
        /// The batch.
        batch: u64,
        /// The input.
        vin: usize,
    },
    /// An input is one another in-flight batch spends (in any of its versions).
    #[error("batch {batch}: input {vin} is spent by batch {other} too")]
    InputOfAnotherBatch {
        /// The batch.
        batch: u64,
        /// The input.
        vin: usize,
        /// The other batch.
        other: u64,
    },
    /// The coins state says the federation holds (spendable, or reserved by in-flight batches) do not add
    /// up to the `btc_held` total: a spent coin is listed as held, or a held one is lost track of.
    #[error("federation coins add up to {counted}, the peg totals record {recorded} held")]
    HeldMismatch {
        /// The sum of the spendable outputs and the in-flight batches' inputs.
        counted: Amount,
        /// `btc_held` in the peg totals.
        recorded: Amount,
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
            ShareCheckError::NotInFlight { .. } => "not_in_flight",
            ShareCheckError::ChangeEpoch { .. } => "change_epoch",
            ShareCheckError::EarlierInputsNotSubset { .. } => "earlier_inputs_not_subset",
            ShareCheckError::EarlierPayoutsDiffer { .. } => "earlier_payouts_differ",
            ShareCheckError::InputNotReserved { .. } => "input_not_reserved",
            ShareCheckError::InputOfAnotherBatch { .. } => "input_of_another_batch",
            ShareCheckError::HeldMismatch { .. } => "held_mismatch",
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
    let (others, counted) = held(state, record)?;
    let tx = record.unsigned().map_err(|_| ShareCheckError::Undecodable { batch })?;
    let federation = crate::federation::federation_state(chain, state).map_err(st)?;
    let wallet_of = |epoch: u32| {
        federation.epoch(epoch).and_then(|e| chain.wallet(e).ok()).ok_or(ShareCheckError::UnknownEpoch { batch, epoch })
    };
    let wallet = wallet_of(record.epoch)?;
    let change_script = wallet_of(record.change_epoch)?.script_pubkey();
    check_change_epoch(record, federation.in_force().epoch)?;
    check_earlier_versions(record, &tx, &change_script)?;
    for other in &others {
        if let Some(burn) = other.burns.iter().find(|b| record.burns.contains(b)) {
            return Err(ShareCheckError::BurnOfAnotherBatch { batch, burn: *burn, owner: Some(other.id) });
        }
    }

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
        if let Some(other) = others.iter().find(|o| spends(o, &rec.outpoint)) {
            return Err(ShareCheckError::InputOfAnotherBatch { batch, vin, other: other.id });
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

    // Reserves: the coins add up to what the totals say is held, and that covers what is owed.
    let totals = state.peg_totals().map_err(st)?;
    if counted != totals.btc_held {
        return Err(ShareCheckError::HeldMismatch { counted, recorded: totals.btc_held });
    }
    check_reserve(chain, &totals)
}

/// Whether any version of `record` spends `outpoint`.
fn spends(record: &BatchRecord, outpoint: &crate::tx::BtcOutPoint) -> bool {
    record.inputs.iter().chain(record.earlier.iter().flat_map(|v| &v.inputs)).any(|i| i.outpoint == *outpoint)
}

/// `record` must be in flight and none of its inputs may still be spendable. Returns the other in-flight
/// batches and what the coins state says the federation holds add up to (the spendable outputs and every
/// in-flight batch's current inputs), which must be `btc_held`.
///
/// Why a recount: execution keeps `supply + unpaid_burns <= btc_held` after every block, so checking the
/// committed totals alone cannot fail here. What it cannot see is a record that lists a coin a settled
/// version already spent (records of spent outputs stay in state as history) or a coin nobody reserved:
/// those break the sum, so the reserve check below rests on coins the federation really holds.
fn held<S: StateReader>(state: &S, record: &BatchRecord) -> Result<(Vec<BatchRecord>, Amount), ShareCheckError> {
    let batch = record.id;
    let st = |source| ShareCheckError::State { batch, source };
    let index = crate::batching::batch_index(state).map_err(st)?;
    if !index.in_flight.contains(&batch) {
        return Err(ShareCheckError::NotInFlight { batch });
    }
    let spendable = crate::batching::spendable_utxos(state).map_err(st)?;
    if let Some(vin) = record.inputs.iter().position(|i| spendable.0.contains(&i.outpoint)) {
        return Err(ShareCheckError::InputNotReserved { batch, vin });
    }
    let overflow = |counted| ShareCheckError::HeldMismatch { counted, recorded: Amount::MAX };
    let mut counted = Amount::ZERO;
    for o in &spendable.0 {
        let utxo = state.get_federation_utxo(o).map_err(st)?.ok_or(ShareCheckError::State {
            batch,
            source: StateError::Corrupt {
                key: crate::state::StateKey::FederationUtxo(*o),
                reason: "spendable output has no record".into(),
            },
        })?;
        counted = counted.checked_add(utxo.amount).ok_or(overflow(counted))?;
    }
    let mut others = Vec::new();
    for id in &index.in_flight {
        let b = if *id == batch {
            record.clone()
        } else {
            crate::batching::batch(state, *id).map_err(st)?.ok_or(ShareCheckError::State {
                batch,
                source: StateError::Corrupt {
                    key: crate::state::StateKey::Batch(*id),
                    reason: "in-flight batch has no record".into(),
                },
            })?
        };
        for i in &b.inputs {
            counted = counted.checked_add(i.amount).ok_or(overflow(counted))?;
        }
        if *id != batch {
            others.push(b);
        }
    }
    Ok((others, counted))
}

/// A payout's or a refresh's change goes back to the wallet that spends (the one in force when it was
/// built); a sweep's to a newer one. Never past the epoch in force, never to a retired one for a sweep.
fn check_change_epoch(record: &BatchRecord, in_force: u32) -> Result<(), ShareCheckError> {
    use crate::batching::BatchKind;
    let ok = match record.kind {
        BatchKind::Payout | BatchKind::Refresh => record.change_epoch == record.epoch,
        BatchKind::Sweep => record.change_epoch > record.epoch,
    } && record.change_epoch <= in_force;
    if ok {
        return Ok(());
    }
    Err(ShareCheckError::ChangeEpoch {
        batch: record.id,
        kind: record.kind,
        epoch: record.epoch,
        change_epoch: record.change_epoch,
        in_force,
    })
}

/// Every earlier version spends a subset of the current version's inputs (so any two versions conflict
/// on Bitcoin and at most one confirms) and pays the same payouts, plus at most one change output to
/// the same wallet.
fn check_earlier_versions(
    record: &BatchRecord,
    tx: &bitcoin::Transaction,
    change_script: &ScriptBuf,
) -> Result<(), ShareCheckError> {
    let batch = record.id;
    let current: BTreeSet<bitcoin::OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
    let payouts = record.burns.len();
    for (version, v) in record.earlier.iter().enumerate() {
        let etx = v.unsigned(batch).map_err(|_| ShareCheckError::Undecodable { batch })?;
        let recorded: Vec<bitcoin::OutPoint> = v.inputs.iter().map(|i| i.outpoint.to_bitcoin()).collect();
        let spent: Vec<bitcoin::OutPoint> = etx.input.iter().map(|i| i.previous_output).collect();
        if spent.is_empty() || spent != recorded || !spent.iter().all(|o| current.contains(o)) {
            return Err(ShareCheckError::EarlierInputsNotSubset { batch, version });
        }
        let same_payouts = etx.output.len() >= payouts
            && tx.output.len() >= payouts
            && etx.output[..payouts] == tx.output[..payouts]
            && etx.output.len() <= payouts + 1
            && (etx.output.len() == payouts) == v.change.is_none()
            && etx.output[payouts..].iter().all(|o| o.script_pubkey == *change_script && Some(o.value) == v.change);
        if !same_payouts {
            return Err(ShareCheckError::EarlierPayoutsDiffer { batch, version });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
