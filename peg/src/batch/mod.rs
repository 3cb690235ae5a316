//! The peg-out batch builder: which federation coins pay which queued burns, and for what fee.
//!
//! Why it exists: at every `pegout_interval` height, block execution itself builds the Bitcoin transaction
//! that pays the queued burns (DESIGN.md, "Peg-out"). Every validator and full node runs this code, so the
//! invariant it owns is **determinism**: the same federation, candidates (in any order), payouts, rate, limits
//! and change script give the same transaction, byte for byte, on every machine. Hence no hash-map iteration,
//! no randomness, no floats, no clock; every sum is checked and every failure is a [`BatchError`], never a
//! panic.
//!
//! # Shape of a batch
//! Version 2, locktime 0, every input with sequence `0xFFFFFFFD` (BIP-0125 replaceable), empty scriptSig and
//! witness (the validators sign it later, BIP-0143 SIGHASH_ALL, see [`crate::signing`]). Outputs `0..payouts`
//! are the payouts in the order given; the last output, if any, is the change to the federation.
//!
//! # Size (BIP-0141 weight, rounded up to virtual bytes once, at the end)
//! ```text
//! weight = predict_weight(#inputs with an empty scriptSig and no witness, output script lengths)
//!            = 4 * (4 version + 4 locktime + varint(#inputs) + varint(#outputs)
//!                   + #inputs * 41 + sum(8 + varint(len) + len))
//!        + 2                                  segwit marker and flag (0.5 vB)
//!        + #inputs * planned_witness_weight(fed)
//! vbytes = ceil(weight / 4)
//! ```
//! rust-bitcoin's `predict_weight` does the transaction's layout. For the wsh wallet,
//! [`planned_witness_weight`] is [`crate::fee::witness_weight`], the largest possible
//! witness spending the federation script: `k` 73-byte signatures and the witness script, from miniscript's
//! `max_weight_to_satisfy`; with the outpoint, empty scriptSig and sequence (41 bytes, 4 WU each) it is
//! [`crate::fee::input_weight`]. A deposit output has the same script with tweaked keys, hence the
//! same size, so one figure serves every input. For a 3-of-4 federation an input is 525 WU, so one input,
//! `n` P2WPKH payouts and a P2WSH change weigh `42 + 525 + 124 n + 172` WU (`n < 252`). The signed wsh
//! transaction is never larger (ECDSA signatures are at most 72 bytes with their sighash flag) and usually a
//! fraction of a vbyte per input smaller (a signature with a low R is one byte shorter). Core's
//! sigop-adjusted size does not bind: a P2WSH CHECKMULTISIG input costs `n` sigops, `20 n` WU at most.
//! For taproot custody it is the key path's witness, one 64-byte signature (66 WU, 230 WU with the rest of
//! the input: 57.5 vB), which the signed transaction meets exactly; a wallet planned for the leaf
//! ([`crate::SpendPath::Leaf`]) takes the largest script-path witness instead (miniscript's bound over the
//! leaves, control block included), which a `multi_a` spend meets to within one byte per absent signer.
//!
//! # Coin selection
//! Candidates are sorted by (amount descending, outpoint ascending) and taken in that order until they
//! cover the payouts plus the fee of the transaction *without* change at the current size (each input
//! raises the fee). Then the change is `inputs - payouts - fee(with a change output)`; when that is below
//! the change script's dust limit (or negative), there is no change output and the remainder goes to the
//! fee, which is then `inputs - payouts`, priced on the size without the change output.
//!
//! # Fee bumps (BIP-0125)
//! [`bump_batch`] spends the previous version's inputs first, in the same order (so every version conflicts
//! with every other), adds candidates only if needed, keeps the payouts, and pays at least: the new rate;
//! the previous fee plus the incremental relay fee on the new size (rule 4, which implies rule 3); and a
//! fee rate strictly above the previous one (Core's rule 6), both rates taken on the size bounds.

use crate::error::PegError;
use crate::federation::Federation;
use crate::fee::planned_witness_weight;
use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::VarInt;
use bitcoin::psbt::Psbt;
use bitcoin::transaction::{predict_weight, InputWeightPrediction, Version};
use bitcoin::{Amount, FeeRate, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Weight, Witness};
use std::collections::BTreeSet;

/// Core's largest standard transaction: 400 000 WU (100 000 vB). A batch above it is an error.
pub const MAX_STANDARD_WEIGHT: Weight = Weight::from_wu(bitcoin::policy::MAX_STANDARD_TX_WEIGHT as u64);

/// The segwit marker and flag bytes, counted at 1 WU each (BIP-0141).
const SEGWIT_MARKER_FLAG: Weight = Weight::from_wu(2);

/// A federation output that a batch may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInput {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
    /// The recipient whose deposit tweak the keys need; `None` = untweaked federation output (a plain
    /// federation address or the change of an earlier batch).
    pub tweak: Option<[u8; 32]>,
}

/// One payment of a batch: a queued burn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// Where the BTC goes.
    pub script_pubkey: ScriptBuf,
    /// How much, exactly.
    pub amount: Amount,
}

/// Caps on a batch's size. Payouts are capped at `max_outputs`; the change output comes on top.
///
/// The default (100 inputs, 250 payouts) stays well under the 100 000 vB standardness limit for every
/// federation miniscript allows: worst case, 20-of-20 (578 vB per input), 250 payouts of 43 vB (P2WSH or
/// P2TR, the longest scripts a burn may pay) and a P2WSH change output weigh 68 654 vB (checked in a test);
/// a 3-of-4 federation's worst case is 23 929 vB. The cap also limits how much a payee's child transaction
/// can pin (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most inputs a batch spends.
    pub max_inputs: usize,
    /// Most payouts a batch pays (not counting the change output).
    pub max_outputs: usize,
}

impl BatchLimits {
    /// 100 inputs, 250 payouts.
    pub const STANDARD: BatchLimits = BatchLimits { max_inputs: 100, max_outputs: 250 };
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits::STANDARD
    }
}

/// An unsigned batch and what it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Unsigned: version 2, locktime 0, every input sequence `0xFFFFFFFD`, empty witness and scriptSig.
    pub tx: Transaction,
    /// The spent outputs, in the order of `tx.input`.
    pub inputs: Vec<BatchInput>,
    /// Outputs `0..payouts` are the payouts, in the order given.
    pub payouts: usize,
    /// The change, if any: the last output, paying `change_script`.
    pub change: Option<Amount>,
    /// `sum(inputs) - sum(outputs)`.
    pub fee: Amount,
    /// Upper bound of the signed transaction's virtual size: what `fee` was priced on.
    pub vbytes: u64,
}

/// Why a batch could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Nothing to pay.
    #[error("a batch needs at least one payout")]
    NoPayouts,
    /// More payouts than `max_outputs`.
    #[error("{count} payouts exceed the batch limit of {max}")]
    TooManyPayouts {
        /// Payouts asked for.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The previous version already spends more than `max_inputs`.
    #[error("{count} inputs exceed the batch limit of {max}")]
    TooManyInputs {
        /// Inputs the batch must spend.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A payout is zero or below its script's dust limit: bitcoind would not relay the batch.
    #[error("payout {index} of {amount} is below the dust limit {min} of its script")]
    DustPayout {
        /// Position in the payouts.
        index: usize,
        /// The payout.
        amount: Amount,
        /// The least amount that is not dust for that script.
        min: Amount,
    },
    /// The same outpoint was offered twice (spending it twice makes an invalid transaction).
    #[error("candidate {0} appears more than once")]
    DuplicateCandidate(OutPoint),
    /// A candidate with the outpoint of a previous version's input but another amount or tweak.
    #[error("candidate {0} differs from the input of the previous version with the same outpoint")]
    CandidateMismatch(OutPoint),
    /// A candidate of zero value.
    #[error("candidate {0} has a zero amount")]
    ZeroAmount(OutPoint),
    /// A sum of amounts goes past the 21 million BTC supply.
    #[error("the sum of {what} exceeds 21 million BTC")]
    AmountOverflow {
        /// What was being added up.
        what: &'static str,
    },
    /// The fee does not fit in an amount.
    #[error("fee overflows: {vbytes} vB at {rate} sat/kwu")]
    FeeOverflow {
        /// The size priced.
        vbytes: u64,
        /// The rate.
        rate: FeeRate,
    },
    /// The candidates (at most `max_inputs` of them) cannot cover the payouts and the fee.
    #[error("insufficient funds for the batch: have {have}, need {need} (payouts and fee)")]
    InsufficientFunds {
        /// The value of the inputs taken.
        have: Amount,
        /// Payouts plus the fee at the size with those inputs, without change.
        need: Amount,
    },
    /// The batch would exceed Core's standard transaction size.
    #[error("batch of {vbytes} vB exceeds the standard limit of {max} vB; lower the batch limits")]
    TooLarge {
        /// The batch's size bound.
        vbytes: u64,
        /// The limit.
        max: u64,
    },
    /// The deposit tweak of an input gives no valid key (probability about 2^-128).
    #[error("input {outpoint} cannot be spent: {source}")]
    Tweak {
        /// The input.
        outpoint: OutPoint,
        /// Why the tweak failed.
        source: PegError,
    },
    /// Miniscript could not size a federation input.
    #[error("sizing a federation input: {0}")]
    InputSize(PegError),
    /// A plan given back (a previous version, or the plan to turn into a PSBT) contradicts itself.
    #[error("inconsistent batch plan: {0}")]
    InconsistentPlan(&'static str),
    /// A bump would not pay enough more than the previous version (BIP-0125 rule 4); a guard, not expected.
    #[error("bump fee {fee} is below {need}: the previous fee plus the incremental relay fee on the new size")]
    BumpTooSmall {
        /// The new version's fee.
        fee: Amount,
        /// What rule 4 requires.
        need: Amount,
    },
}

/// Virtual bytes of one output paying `script_pubkey`: value (8), script length varint, script.
pub fn output_vbytes(script_pubkey: &Script) -> u64 {
    // The value is an 8-byte amount; the script is prefixed by its compact-size length.
    let len = script_pubkey.len() as u64;
    (8 + VarInt(len).size() as u64).saturating_add(len)
}

/// The size bound of the smallest batch that pays one burn: one federation input, the payout to
/// `payout_script` and a change output to `change_script` (a lone burn's whole batch). What a burn's fee is
/// priced on, so that a burn alone pays for the batch that pays it (see the ledger's `pegout` module).
pub fn lone_payout_vbytes(fed: &Federation, payout_script: &Script, change_script: &Script) -> Result<u64, BatchError> {
    let witness = planned_witness_weight(fed).map_err(BatchError::InputSize)?;
    Ok(tx_vbytes(witness, 1, [payout_script.len(), change_script.len()]))
}

/// Plans a new batch paying `payouts` from `candidates` at `rate`, change to `change_script` (normally
/// `fed.script_pubkey()`). See the module docs for the size, the coin selection and the change rule.
pub fn plan_batch(
    fed: &Federation,
    genesis: [u8; 32],
    candidates: &[BatchInput],
    payouts: &[Payout],
    rate: FeeRate,
    limits: BatchLimits,
    change_script: &ScriptBuf,
) -> Result<BatchPlan, BatchError> {
    let pool = sorted_candidates(candidates, &[])?;
    build(fed, genesis, &[], &pool, payouts, limits, change_script, |vbytes| fee_at(rate, vbytes))
}

/// A sweep: spends every one of `inputs` (at most `max_inputs`) into a single output paying `to`, at
/// `rate`, the fee coming out of the swept value. How the federation refreshes outputs that near the
/// emergency delay, and moves its coins to a new wallet after a federation change. Fails with
/// [`BatchError::InsufficientFunds`] when the inputs cannot pay the fee and leave a non-dust output.
pub fn plan_sweep(
    fed: &Federation,
    genesis: [u8; 32],
    inputs: &[BatchInput],
    rate: FeeRate,
    limits: BatchLimits,
    to: &ScriptBuf,
) -> Result<BatchPlan, BatchError> {
    if inputs.is_empty() {
        return Err(BatchError::NoPayouts);
    }
    if inputs.len() > limits.max_inputs {
        return Err(BatchError::TooManyInputs { count: inputs.len(), max: limits.max_inputs });
    }
    let fixed = sorted_candidates(inputs, &[])?;
    let plan = build(fed, genesis, &fixed, &[], &[], limits, to, |vbytes| fee_at(rate, vbytes))?;
    if plan.change.is_none() {
        let have = sum(inputs.iter().map(|i| i.amount), "inputs")?;
        return Err(BatchError::InsufficientFunds {
            have,
            need: have.checked_add(to.minimal_non_dust()).unwrap_or(have),
        });
    }
    Ok(plan)
}

/// A fee bump: the next version of `previous`, spending a superset of its inputs (in the same order, adding
/// candidates only if needed), with the same payouts, at `rate` (the caller passes the previous rate plus
/// the incremental relay fee). Its fee exceeds the previous fee by at least `incremental_relay` on its own
/// size (BIP-0125 rule 4) and its fee rate exceeds the previous one; [`BatchError::InsufficientFunds`]
/// when the candidates cannot pay that. Candidates that are inputs of `previous` are skipped.
#[allow(clippy::too_many_arguments)]
pub fn bump_batch(
    fed: &Federation,
    genesis: [u8; 32],
    previous: &BatchPlan,
    candidates: &[BatchInput],
    rate: FeeRate,
    incremental_relay: FeeRate,
    limits: BatchLimits,
    change_script: &ScriptBuf,
) -> Result<BatchPlan, BatchError> {
    check_plan(previous)?;
    let payouts: Vec<Payout> = previous.tx.output[..previous.payouts]
        .iter()
        .map(|o| Payout { script_pubkey: o.script_pubkey.clone(), amount: o.value })
        .collect();
    let pool = sorted_candidates(candidates, &previous.inputs)?;
    let (prev_fee, prev_vbytes) = (previous.fee, previous.vbytes);
    let target = |vbytes: u64| -> Result<Amount, BatchError> {
        let at_rate = fee_at(rate, vbytes)?;
        let rule4 = add(prev_fee, fee_at(incremental_relay, vbytes)?, "the previous fee and the relay increment")?;
        // Strictly higher fee rate on the size bounds: fee * prev_vbytes > prev_fee * vbytes.
        let higher_rate = u128::from(prev_fee.to_sat())
            .checked_mul(u128::from(vbytes))
            .and_then(|x| x.checked_div(u128::from(prev_vbytes)))
            .and_then(|x| u64::try_from(x.saturating_add(1)).ok())
            .map(Amount::from_sat)
            .filter(|a| *a <= Amount::MAX_MONEY)
            .ok_or(BatchError::AmountOverflow { what: "the previous fee scaled to the new size" })?;
        Ok(at_rate.max(rule4).max(higher_rate))
    };
    let plan = build(fed, genesis, &previous.inputs, &pool, &payouts, limits, change_script, target)?;
    let need = add(prev_fee, fee_at(incremental_relay, plan.vbytes)?, "the previous fee and the relay increment")?;
    if plan.fee < need {
        return Err(BatchError::BumpTooSmall { fee: plan.fee, need });
    }
    Ok(plan)
}

impl BatchPlan {
    /// The PSBT the validators sign (BIP-0174 Creator and Updater): every input carries its spent output
    /// and its witness script (the federation's, or the deposit's for a tweaked input), ready for
    /// [`crate::signing::sign_input`].
    pub fn psbt(&self, fed: &Federation, genesis: [u8; 32]) -> Result<Psbt, BatchError> {
        check_plan(self)?;
        let mut psbt = Psbt::from_unsigned_tx(self.tx.clone())
            .map_err(|_| BatchError::InconsistentPlan("the transaction is not unsigned"))?;
        for (psbt_input, input) in psbt.inputs.iter_mut().zip(&self.inputs) {
            let descriptor = match input.tweak {
                None => fed.descriptor().clone(),
                Some(recipient) => fed
                    .deposit_descriptor(genesis, recipient)
                    .map_err(|source| BatchError::Tweak { outpoint: input.outpoint, source })?,
            };
            let witness_script = descriptor
                .explicit_script()
                .map_err(|e| BatchError::Tweak { outpoint: input.outpoint, source: e.into() })?;
            psbt_input.witness_utxo = Some(TxOut { value: input.amount, script_pubkey: descriptor.script_pubkey() });
            psbt_input.witness_script = Some(witness_script);
        }
        Ok(psbt)
    }
}

/// Checks that a plan handed back agrees with itself: inputs match the transaction, the payouts are a
/// non-empty prefix of the outputs, no input is spent twice and the fee is what the amounts say.
fn check_plan(plan: &BatchPlan) -> Result<(), BatchError> {
    if plan.inputs.len() != plan.tx.input.len()
        || plan.inputs.iter().zip(&plan.tx.input).any(|(i, t)| i.outpoint != t.previous_output)
    {
        return Err(BatchError::InconsistentPlan("inputs do not match the transaction's inputs"));
    }
    let mut seen = BTreeSet::new();
    if !plan.inputs.iter().all(|i| seen.insert(i.outpoint)) {
        return Err(BatchError::InconsistentPlan("an input is spent twice"));
    }
    if plan.vbytes == 0 {
        return Err(BatchError::InconsistentPlan("zero size"));
    }
    // A sweep pays no one but has its single output.
    if plan.payouts > plan.tx.output.len() || plan.tx.output.is_empty() {
        return Err(BatchError::InconsistentPlan("payout count does not match the outputs"));
    }
    let have = sum(plan.inputs.iter().map(|i| i.amount), "inputs")?;
    let paid = sum(plan.tx.output.iter().map(|o| o.value), "outputs")?;
    if have.checked_sub(paid) != Some(plan.fee) {
        return Err(BatchError::InconsistentPlan("fee is not inputs minus outputs"));
    }
    Ok(())
}

/// Validates candidates and sorts them by (amount descending, outpoint ascending), leaving out those equal
/// to one of `fixed` (the previous version's inputs).
fn sorted_candidates(candidates: &[BatchInput], fixed: &[BatchInput]) -> Result<Vec<BatchInput>, BatchError> {
    let mut seen = BTreeSet::new();
    let mut pool = Vec::with_capacity(candidates.len());
    for c in candidates {
        if c.amount == Amount::ZERO {
            return Err(BatchError::ZeroAmount(c.outpoint));
        }
        if c.amount > Amount::MAX_MONEY {
            return Err(BatchError::AmountOverflow { what: "a candidate" });
        }
        if !seen.insert(c.outpoint) {
            return Err(BatchError::DuplicateCandidate(c.outpoint));
        }
        match fixed.iter().find(|f| f.outpoint == c.outpoint) {
            Some(f) if f == c => {}
            Some(_) => return Err(BatchError::CandidateMismatch(c.outpoint)),
            None => pool.push(*c),
        }
    }
    pool.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.outpoint.cmp(&b.outpoint)));
    Ok(pool)
}

/// The common core of [`plan_batch`] and [`bump_batch`]: spends all of `fixed`, then as much of `pool` (in
/// order) as the payouts and `target_fee(vbytes)` need.
#[allow(clippy::too_many_arguments)]
fn build(
    fed: &Federation,
    genesis: [u8; 32],
    fixed: &[BatchInput],
    pool: &[BatchInput],
    payouts: &[Payout],
    limits: BatchLimits,
    change_script: &ScriptBuf,
    target_fee: impl Fn(u64) -> Result<Amount, BatchError>,
) -> Result<BatchPlan, BatchError> {
    // A sweep (or its bump) pays no one: it moves the `fixed` inputs to `change_script`.
    if payouts.is_empty() && fixed.is_empty() {
        return Err(BatchError::NoPayouts);
    }
    if payouts.len() > limits.max_outputs {
        return Err(BatchError::TooManyPayouts { count: payouts.len(), max: limits.max_outputs });
    }
    if fixed.len() > limits.max_inputs {
        return Err(BatchError::TooManyInputs { count: fixed.len(), max: limits.max_inputs });
    }
    let mut paid = Amount::ZERO;
    for (index, p) in payouts.iter().enumerate() {
        let min = p.script_pubkey.minimal_non_dust().max(Amount::ONE_SAT);
        if p.amount < min {
            return Err(BatchError::DustPayout { index, amount: p.amount, min });
        }
        paid = add(paid, p.amount, "payouts")?;
    }
    let witness = planned_witness_weight(fed).map_err(BatchError::InputSize)?;
    let size = |inputs: usize, with_change: bool| {
        let change = with_change.then_some(change_script.len());
        tx_vbytes(witness, inputs, payouts.iter().map(|p| p.script_pubkey.len()).chain(change))
    };

    let mut inputs = fixed.to_vec();
    let mut have = sum(fixed.iter().map(|i| i.amount), "inputs")?;
    let mut pool = pool.iter();
    loop {
        let need = add(paid, target_fee(size(inputs.len(), false))?, "payouts and fee")?;
        if !inputs.is_empty() && have >= need {
            break;
        }
        match pool.next() {
            Some(c) if inputs.len() < limits.max_inputs => {
                inputs.push(*c);
                have = add(have, c.amount, "inputs")?;
            }
            _ => return Err(BatchError::InsufficientFunds { have, need }),
        }
    }

    // Change if it is not dust; otherwise the remainder is fee and the size has no change output. (A sum
    // past 21 million BTC cannot be below `have`, so it means "no change" too.)
    let with_change = size(inputs.len(), true);
    let change = add(paid, target_fee(with_change)?, "payouts and fee")
        .ok()
        .and_then(|need| have.checked_sub(need))
        .filter(|c| *c >= change_script.minimal_non_dust().max(Amount::ONE_SAT));
    let vbytes = if change.is_some() { with_change } else { size(inputs.len(), false) };
    let max = MAX_STANDARD_WEIGHT.to_vbytes_ceil();
    if vbytes > max {
        return Err(BatchError::TooLarge { vbytes, max });
    }
    for i in &inputs {
        if let Some(recipient) = i.tweak {
            fed.deposit_keys(genesis, recipient)
                .map_err(|source| BatchError::Tweak { outpoint: i.outpoint, source })?;
        }
    }

    let mut output: Vec<TxOut> =
        payouts.iter().map(|p| TxOut { value: p.amount, script_pubkey: p.script_pubkey.clone() }).collect();
    if let Some(value) = change {
        output.push(TxOut { value, script_pubkey: change_script.clone() });
    }
    let spent = sum(output.iter().map(|o| o.value), "outputs")?;
    let fee = have.checked_sub(spent).ok_or(BatchError::InsufficientFunds { have, need: spent })?;
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|i| TxIn {
                previous_output: i.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output,
    };
    Ok(BatchPlan { tx, inputs, payouts: payouts.len(), change, fee, vbytes })
}

/// The size bound of a batch with `inputs` inputs whose witness weighs at most `witness` and outputs with
/// scripts of `output_script_lens` bytes (the formula of the module docs). rust-bitcoin's [`predict_weight`]
/// sizes the transaction without witnesses (version, locktime, counts, inputs with an empty scriptSig,
/// outputs); each witness is bounded by [`planned_witness_weight`]; what joins them is BIP-0141's marker and
/// flag, which `predict_weight` adds only for inputs whose witness it knows.
fn tx_vbytes(witness: Weight, inputs: usize, output_script_lens: impl IntoIterator<Item = usize>) -> u64 {
    let unwitnessed =
        predict_weight(std::iter::repeat_n(InputWeightPrediction::from_slice(0, &[]), inputs), output_script_lens);
    let witnesses = Weight::from_wu(witness.to_wu().saturating_mul(inputs as u64));
    unwitnessed
        .checked_add(SEGWIT_MARKER_FLAG)
        .and_then(|w| w.checked_add(witnesses))
        .unwrap_or(Weight::MAX)
        .to_vbytes_ceil()
}

/// `rate * vbytes`, rounded up.
fn fee_at(rate: FeeRate, vbytes: u64) -> Result<Amount, BatchError> {
    rate.fee_vb(vbytes).filter(|f| *f <= Amount::MAX_MONEY).ok_or(BatchError::FeeOverflow { vbytes, rate })
}

/// `a + b`, refusing anything past the 21 million BTC supply.
fn add(a: Amount, b: Amount, what: &'static str) -> Result<Amount, BatchError> {
    a.checked_add(b).filter(|s| *s <= Amount::MAX_MONEY).ok_or(BatchError::AmountOverflow { what })
}

fn sum(amounts: impl Iterator<Item = Amount>, what: &'static str) -> Result<Amount, BatchError> {
    amounts.into_iter().try_fold(Amount::ZERO, |acc, a| add(acc, a, what))
}

#[cfg(test)]
mod tests;
