//! The breaker against an honest batch built by execution, and against the same batch tampered with the
//! ways a bad block could: an unknown payee, a burn paid twice, an overpayment, a fee too high, an input
//! the federation does not hold, and reserves that are short.

use super::*;
use crate::batching::batch;
use crate::btc_anchor::BtcAnchor;
use crate::pegout::required_pegout_fee;
use crate::state::{MemStore, StateKey};
use crate::testkit::{self, user_key};
use crate::tx::{BtcOutPoint, MintKind, MintTx, Tx, UserTx, UserTxKind};
use crate::{build_block, BlockTemplate};
use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use primitives::{canonical_bytes, BlockId, Hash32, Height, ValidatorIndex};

const BAL: u64 = 1_000_000;

fn p2wpkh(n: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([n; 20])))
}

fn commit(chain: &Chain, store: &mut MemStore, h: u64, txs: Vec<Tx>) {
    let template = BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: BtcAnchor { height: primitives::BtcHeight(1), hash: bitcoin::BlockHash::from_byte_array([1; 32]) },
        last_commit_hash: Hash32::ZERO,
    };
    let (_, outcome) = build_block(chain, store, template, txs).expect("valid block");
    store.apply(&outcome.write_set);
}

fn deposit(n: u8, sats: u64) -> Tx {
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: BtcAnchor { height: primitives::BtcHeight(1), hash: bitcoin::BlockHash::from_byte_array([1; 32]) },
        epoch: 0,
        kind: MintKind::Deposit,
        coinbase: false,
    })
}

fn pegout(chain: &Chain, user: u32, script: &ScriptBuf, amount: u64, tip: u64) -> Tx {
    let k = user_key(user);
    let fee = required_pegout_fee(chain, script) + Amount::from_sat(tip);
    UserTx {
        signer: k.public(),
        nonce: 0,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount: Amount::from_sat(amount) },
    }
    .sign(&k, chain.genesis_hash())
    .into()
}

/// A chain whose height 2 built batch 0, paying burn 0 (50k to script 7) and burn 1 (70k to script 8)
/// from a 400k deposit, change back to the federation.
fn batched() -> (Chain, MemStore, BatchRecord) {
    batched_with_tip(0)
}

/// [`batched`], each peg-out paying `tip` more than the least fee into the fee pool.
fn batched_with_tip(tip: u64) -> (Chain, MemStore, BatchRecord) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    let chain = Chain::new(g).expect("genesis");
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).expect("genesis state"));
    let txs = vec![
        deposit(1, 400_000),
        deposit(2, 100_000),
        pegout(&chain, 0, &p2wpkh(7), 50_000, tip),
        pegout(&chain, 1, &p2wpkh(8), 70_000, tip),
    ];
    commit(&chain, &mut store, 1, txs);
    commit(&chain, &mut store, 2, vec![]);
    let record = batch(&store.snapshot(2), 0).expect("read").expect("batch 0");
    assert_eq!(record.burns, vec![0, 1]);
    (chain, store, record)
}

/// `record` with its transaction changed by `edit` (the txid follows, as a forged record's would).
fn tampered(record: &BatchRecord, edit: impl FnOnce(&mut bitcoin::Transaction, &mut BatchRecord)) -> BatchRecord {
    let mut r = record.clone();
    let mut tx = r.unsigned().expect("tx");
    edit(&mut tx, &mut r);
    r.unsigned_tx = bitcoin::consensus::encode::serialize(&tx);
    r
}

#[test]
fn an_honest_batch_is_signed() {
    let (chain, store, record) = batched();
    assert_eq!(check_batch(&chain, &store.snapshot(2), &record), Ok(()));
}

#[test]
fn a_batch_paying_an_unknown_script_is_refused() {
    let (chain, store, record) = batched();
    let r = tampered(&record, |tx, _| tx.output[1].script_pubkey = p2wpkh(66));
    let e = check_batch(&chain, &store.snapshot(2), &r).unwrap_err();
    assert_eq!(e, ShareCheckError::UnknownScript { batch: 0, vout: 1, script: p2wpkh(66) });
    // An extra output to someone, even with the change lowered to keep the fee: refused.
    let r = tampered(&record, |tx, r| {
        let change = tx.output.pop().expect("change");
        tx.output.push(bitcoin::TxOut { value: Amount::from_sat(1_000), script_pubkey: p2wpkh(66) });
        tx.output.push(bitcoin::TxOut { value: change.value - Amount::from_sat(1_000), ..change });
        r.change = Some(tx.output[3].value);
    });
    let e = check_batch(&chain, &store.snapshot(2), &r).unwrap_err();
    assert_eq!(e.kind(), "unknown_script", "{e}");
}

#[test]
fn a_batch_paying_a_burn_twice_is_refused() {
    let (chain, store, record) = batched();
    // The same burn listed twice, its output repeated in place of burn 1.
    let r = tampered(&record, |tx, r| {
        tx.output[1] = tx.output[0].clone();
        r.burns = vec![0, 0];
    });
    let e = check_batch(&chain, &store.snapshot(2), &r).unwrap_err();
    assert_eq!(e, ShareCheckError::BurnPaidTwice { batch: 0, burn: 0 });
    // A second batch paying burns batch 0 pays already: refused whether or not it is in flight.
    let mut second = record.clone();
    second.id = 1;
    let state = store.snapshot(2);
    let e = check_batch(&chain, &state, &second).unwrap_err();
    assert_eq!(e, ShareCheckError::NotInFlight { batch: 1 });
    let index = crate::batching::BatchIndex { next_id: 2, in_flight: vec![0, 1] };
    let both = Overridden {
        inner: &state,
        over: vec![(StateKey::BatchIndex, canonical_bytes(&index)), (StateKey::Batch(1), canonical_bytes(&second))],
    };
    let e = check_batch(&chain, &both, &second).unwrap_err();
    assert_eq!(e, ShareCheckError::BurnOfAnotherBatch { batch: 1, burn: 0, owner: Some(0) });
}

#[test]
fn a_batch_overpaying_a_burn_is_refused() {
    let (chain, store, record) = batched();
    // 1,000 sat more to burn 0, out of the change, the fee unchanged.
    let r = tampered(&record, |tx, r| {
        tx.output[0].value += Amount::from_sat(1_000);
        tx.output[2].value -= Amount::from_sat(1_000);
        r.change = Some(tx.output[2].value);
    });
    let e = check_batch(&chain, &store.snapshot(2), &r).unwrap_err();
    assert_eq!(
        e,
        ShareCheckError::WrongAmount {
            batch: 0,
            vout: 0,
            burn: 0,
            paid: Amount::from_sat(51_000),
            owed: Amount::from_sat(50_000)
        }
    );
}

#[test]
fn a_fee_above_the_bound_or_unlike_the_record_is_refused() {
    let (chain, store, record) = batched();
    let state = store.snapshot(2);
    // The change lowered by 0.001 BTC, recorded as fee: far above twice the agreed rate.
    let r = tampered(&record, |tx, r| {
        tx.output[2].value -= Amount::from_sat(100_000);
        r.change = Some(tx.output[2].value);
        r.fee += Amount::from_sat(100_000);
    });
    let e = check_batch(&chain, &state, &r).unwrap_err();
    assert!(matches!(e, ShareCheckError::FeeAboveBound { batch: 0, .. }), "{e}");
    // A fee state did not charge: refused whatever its size.
    let mut r = record.clone();
    r.fee += Amount::from_sat(1);
    let e = check_batch(&chain, &state, &r).unwrap_err();
    assert!(matches!(e, ShareCheckError::FeeMismatch { batch: 0, .. }), "{e}");
    // The honest fee (247 vB at 2 sat/vB) is inside the bound (5 sat/vB, plus a dropped change's worth),
    // and the bound is not loose: a few times the fee.
    let wallet = chain.genesis_wallet();
    let (bound, vbytes, rate) = fee_bound(wallet, &record.unsigned().expect("tx"), 1, 2).expect("bound");
    assert_eq!((record.fee, vbytes, rate), (Amount::from_sat(494), 247, 5));
    assert_eq!(bound, Amount::from_sat(247 * 5 + 330 + 43 * 5));
}

#[test]
fn a_batch_spending_an_output_the_federation_does_not_hold_is_refused() {
    let (chain, store, record) = batched();
    let r = tampered(&record, |tx, r| {
        let fake = BtcOutPoint { txid: bitcoin::Txid::from_byte_array([0xEE; 32]), vout: 3 };
        tx.input[0].previous_output = fake.to_bitcoin();
        r.inputs[0].outpoint = fake;
    });
    let e = check_batch(&chain, &store.snapshot(2), &r).unwrap_err();
    assert_eq!(e, ShareCheckError::UnknownInput { batch: 0, vin: 0, epoch: 0 });
}

/// The committed state with the peg totals replaced.
struct WithTotals<'a, S> {
    inner: &'a S,
    totals: PegTotals,
}

impl<S: StateReader> StateReader for WithTotals<'_, S> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        match key {
            StateKey::PegTotals => Ok(Some(canonical_bytes(&self.totals))),
            other => self.inner.get_raw(other),
        }
    }
}

#[test]
fn an_honest_batch_is_refused_while_reserves_are_short() {
    let (chain, store, record) = batched();
    let state = store.snapshot(2);
    let mut totals = state.peg_totals().expect("totals");
    // Exactly covered: signed.
    totals.supply = totals.btc_held + chain.genesis_supply() - totals.unpaid_burns;
    assert_eq!(check_batch(&chain, &WithTotals { inner: &state, totals }, &record), Ok(()));
    // One satoshi short: refused.
    totals.supply += Amount::from_sat(1);
    let e = check_batch(&chain, &WithTotals { inner: &state, totals }, &record).unwrap_err();
    assert_eq!(e.kind(), "reserve_short");
    assert!(e.to_string().starts_with("reserves short"), "{e}");
}

/// `inner` with some keys' values replaced.
struct Overridden<'a, S> {
    inner: &'a S,
    over: Vec<(StateKey, Vec<u8>)>,
}

impl<S: StateReader> StateReader for Overridden<'_, S> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        match self.over.iter().find(|(k, _)| k == key) {
            Some((_, v)) => Ok(Some(v.clone())),
            None => self.inner.get_raw(key),
        }
    }
}

/// `inner` with the agreed fee rate replaced (no votes).
struct WithRate<'a, S> {
    inner: &'a S,
    agreed_sat_vb: u64,
}

impl<S: StateReader> StateReader for WithRate<'_, S> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        match key {
            StateKey::FeeRates => Ok(Some(canonical_bytes(&crate::fee_rate::FeeRates {
                votes: Vec::new(),
                agreed_sat_vb: self.agreed_sat_vb,
            }))),
            other => self.inner.get_raw(other),
        }
    }
}

#[test]
fn a_version_priced_before_the_rate_fell_is_still_signed() {
    let (chain, store, _) = batched_with_tip(20_000);
    // Height 2 again, from height 1's state, but at 40 sat/vB.
    let high = WithRate { inner: &store.snapshot(1), agreed_sat_vb: 40 };
    let mut built = crate::overlay::Overlay::new(&high);
    let meta = crate::state::ChainMeta {
        height: Height(2),
        time_ms: chain.genesis().genesis_time_ms + 2000,
        btc_anchor: BtcAnchor { height: primitives::BtcHeight(1), hash: bitcoin::BlockHash::from_byte_array([1; 32]) },
    };
    built.build_batch_if_due(&chain, &meta).expect("build");
    let record = batch(&built, 0).expect("read").expect("batch 0");
    assert_eq!(record.priced_at_sat_vb, 40);
    assert!(record.fee > Amount::from_sat(247 * 30), "priced at 40 sat/vB: {}", record.fee);
    // The rate falls to the floor while a signer is away: the version the builder made is still signed.
    let low = WithRate { inner: &built, agreed_sat_vb: 2 };
    assert_eq!(check_batch(&chain, &low, &record), Ok(()));
    // Its bump at the low rate (the previous fee plus the relay increment) is signed too.
    let mut bumped = crate::overlay::Overlay::new(&low);
    bumped.bump(&chain, record.clone(), &meta).expect("bump").expect("bumped");
    let second = batch(&bumped, 0).expect("read").expect("batch 0");
    assert_eq!(second.bumps(), 1);
    assert!(second.fee > record.fee);
    assert_eq!(second.priced_at_sat_vb, 40);
    assert_eq!(check_batch(&chain, &WithRate { inner: &bumped, agreed_sat_vb: 2 }, &second), Ok(()));
    // A fee inflated far beyond the pricing rate is still refused.
    let r = tampered(&record, |tx, r| {
        let last = tx.output.len() - 1;
        tx.output[last].value -= Amount::from_sat(100_000);
        r.change = Some(tx.output[last].value);
        r.fee += Amount::from_sat(100_000);
    });
    let e = check_batch(&chain, &low, &r).unwrap_err();
    assert!(matches!(e, ShareCheckError::FeeAboveBound { batch: 0, .. }), "{e}");
}

#[test]
fn an_earlier_version_that_could_confirm_too_or_pays_others_is_refused() {
    let (chain, store, record) = batched();
    let state = store.snapshot(2);
    // An earlier version spending a coin the current one does not: both could confirm.
    let mut r = record.clone();
    let mut v = record.current_version();
    let mut etx = v.unsigned(0).expect("tx");
    let fake = BtcOutPoint { txid: bitcoin::Txid::from_byte_array([0xEE; 32]), vout: 3 };
    etx.input[0].previous_output = fake.to_bitcoin();
    v.inputs[0].outpoint = fake;
    v.unsigned_tx = bitcoin::consensus::encode::serialize(&etx);
    r.earlier.push(v);
    let e = check_batch(&chain, &state, &r).unwrap_err();
    assert_eq!(e, ShareCheckError::EarlierInputsNotSubset { batch: 0, version: 0 });
    // An earlier version paying burn 0's amount to someone else.
    let mut r = record.clone();
    let mut v = record.current_version();
    let mut etx = v.unsigned(0).expect("tx");
    etx.output[0].script_pubkey = p2wpkh(66);
    v.unsigned_tx = bitcoin::consensus::encode::serialize(&etx);
    r.earlier.push(v);
    let e = check_batch(&chain, &state, &r).unwrap_err();
    assert_eq!(e, ShareCheckError::EarlierPayoutsDiffer { batch: 0, version: 0 });
    // The same version kept as the earlier one: inputs a subset, payouts equal: signed.
    let mut r = record.clone();
    r.earlier.push(record.current_version());
    assert_eq!(check_batch(&chain, &state, &r), Ok(()));
}

#[test]
fn change_to_a_retired_or_future_epoch_is_refused() {
    let (chain, store, record) = batched();
    let state = store.snapshot(2);
    // A payout's change to an epoch other than the one spending: refused (epoch 1 is not in force either).
    let mut r = record.clone();
    r.change_epoch = 1;
    let e = check_batch(&chain, &state, &r).unwrap_err();
    assert_eq!(e.kind(), "unknown_epoch", "{e}");
    // Two epochs, 1 in force (same validators, so the same wallet script).
    let mut fed = crate::federation::FederationState::genesis(&chain);
    let mut next = fed.epochs[0].clone();
    next.epoch = 1;
    fed.epochs.push(next);
    let two = Overridden { inner: &state, over: vec![(StateKey::Federation, canonical_bytes(&fed))] };
    let e = check_batch(&chain, &two, &r).unwrap_err();
    assert_eq!(
        e,
        ShareCheckError::ChangeEpoch {
            batch: 0,
            kind: crate::batching::BatchKind::Payout,
            epoch: 0,
            change_epoch: 1,
            in_force: 1
        }
    );
    // A sweep of epoch 1 back to the retired epoch 0, and a sweep to its own epoch: refused.
    let mut r = record.clone();
    r.kind = crate::batching::BatchKind::Sweep;
    r.epoch = 1;
    r.change_epoch = 0;
    let e = check_batch(&chain, &two, &r).unwrap_err();
    assert_eq!(e.kind(), "change_epoch", "{e}");
    r.change_epoch = 1;
    let e = check_batch(&chain, &two, &r).unwrap_err();
    assert_eq!(e.kind(), "change_epoch", "{e}");
    // The honest payout of epoch 0, after epoch 1 came into force: still signed.
    assert_eq!(check_batch(&chain, &two, &record), Ok(()));
}

#[test]
fn an_input_spendable_spent_or_reserved_elsewhere_is_refused() {
    let (chain, store, record) = batched();
    let state = store.snapshot(2);
    let input = record.inputs[0];
    // Still in the spendable set: no batch reserved it.
    let mut spendable = crate::batching::spendable_utxos(&state).expect("spendable");
    spendable.0.push(input.outpoint);
    spendable.0.sort();
    let open = Overridden { inner: &state, over: vec![(StateKey::SpendableUtxos, canonical_bytes(&spendable))] };
    let e = check_batch(&chain, &open, &record).unwrap_err();
    assert_eq!(e, ShareCheckError::InputNotReserved { batch: 0, vin: 0 });
    // Reserved by another in-flight batch too.
    let mut other = record.clone();
    other.id = 1;
    other.burns = Vec::new();
    let index = crate::batching::BatchIndex { next_id: 2, in_flight: vec![0, 1] };
    let twice = Overridden {
        inner: &state,
        over: vec![(StateKey::BatchIndex, canonical_bytes(&index)), (StateKey::Batch(1), canonical_bytes(&other))],
    };
    let e = check_batch(&chain, &twice, &record).unwrap_err();
    assert_eq!(e, ShareCheckError::InputOfAnotherBatch { batch: 0, vin: 0, other: 1 });
    // Spent by a settled version: its record stays, but btc_held no longer counts it.
    let mut totals = state.peg_totals().expect("totals");
    let recorded = totals.btc_held - input.amount;
    totals.btc_held = recorded;
    let e = check_batch(&chain, &WithTotals { inner: &state, totals }, &record).unwrap_err();
    assert_eq!(e, ShareCheckError::HeldMismatch { counted: recorded + input.amount, recorded });
}
