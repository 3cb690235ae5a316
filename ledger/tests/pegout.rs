//! Peg-out burns: accepted only when enabled, with a standard script, above the minimum and dust, with a fee
//! that covers the lone batch paying it at twice the rate; each burn queued once in block order; `supply +
//! unpaid_burns` unchanged by burning.

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use primitives::{BlockId, Hash32, Height, ValidatorIndex};
use sidechain_ledger::pegout::{burn, burn_of_tx, pegout_queue, required_pegout_fee};
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    build_block, execute_block, BlockError, BlockTemplate, BtcAnchor, Chain, MemStore, StateReader, Tx, TxError,
    UserTx, UserTxKind,
};

const BAL: u64 = 1_000_000;

fn chain(enabled: bool) -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_enabled = enabled;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

/// Peg-out enabled, a batch every 2 blocks.
fn batching_chain() -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

fn p2wpkh() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])))
}

fn pegout(chain: &Chain, user: u32, nonce: u64, script: &ScriptBuf, amount: u64, fee: Amount) -> Tx {
    let k = user_key(user);
    UserTx {
        signer: k.public(),
        nonce,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount: Amount::from_sat(amount) },
    }
    .sign(&k, chain.genesis_hash())
    .into()
}

/// Builds and applies block `h` keeping the previous anchor.
fn commit(chain: &Chain, store: &mut MemStore, h: u64, txs: Vec<Tx>) -> Result<(), BlockError> {
    let prev_anchor = store.snapshot(h - 1).chain_meta().unwrap().map(|m| m.btc_anchor).unwrap_or_default();
    let template = BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: prev_anchor,
        last_commit_hash: Hash32::ZERO,
    };
    let (block, outcome) = build_block(chain, store, template, txs)?;
    assert_eq!(execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
    Ok(())
}

fn tx_error(r: Result<(), BlockError>) -> TxError {
    match r {
        Err(BlockError::InvalidTx { source, .. }) => source,
        other => panic!("expected an invalid transaction, got {other:?}"),
    }
}

#[test]
fn burns_are_refused_until_enabled() {
    let (chain, mut store) = chain(false);
    let fee = required_pegout_fee(&chain, &p2wpkh());
    let r = commit(&chain, &mut store, 1, vec![pegout(&chain, 0, 0, &p2wpkh(), 50_000, fee)]);
    assert_eq!(tx_error(r), TxError::PegOutDisabled);
}

#[test]
fn a_burn_is_queued_once_and_moves_supply_to_unpaid_burns() {
    let (chain, mut store) = chain(true);
    let script = p2wpkh();
    // min_fee 100 + 2 * 216 vB (a lone 3-of-4 batch: one input, this P2WPKH payout, the change) * 2 sat/vB.
    let fee = required_pegout_fee(&chain, &script);
    assert_eq!(fee, Amount::from_sat(100 + 2 * 216 * 2));
    let before = store.snapshot(0).peg_totals().unwrap();
    let txs = vec![pegout(&chain, 0, 0, &script, 50_000, fee), pegout(&chain, 1, 0, &script, 60_000, fee)];
    let first_txid = txs[0].txid();
    commit(&chain, &mut store, 1, txs).unwrap();
    let snap = store.snapshot(1);
    let t = snap.peg_totals().unwrap();
    assert_eq!(t.unpaid_burns, Amount::from_sat(110_000));
    assert_eq!(t.supply + t.unpaid_burns, before.supply, "burning neither creates nor destroys value");
    let q = pegout_queue(&snap).unwrap();
    assert_eq!((q.next_burn_id, q.queued.clone()), (2, vec![0, 1]));
    let b = burn(&snap, 0).unwrap().expect("burn 0");
    assert_eq!((b.amount, b.fee, b.burned_at, b.batch), (Amount::from_sat(50_000), fee, Height(1), None));
    assert_eq!(burn_of_tx(&snap, &first_txid).unwrap(), Some(b));
    let owner = user_key(0).public().account_id();
    assert_eq!(
        snap.get_account(&owner).unwrap().unwrap().balance,
        Amount::from_sat(BAL - 50_000) - fee,
        "the burner pays amount + fee"
    );
    // Replaying the same signed burn is a stale nonce.
    let replay = commit(&chain, &mut store, 2, vec![pegout(&chain, 0, 0, &script, 50_000, fee)]);
    assert!(matches!(tx_error(replay), TxError::BadNonce { .. }));
}

#[test]
fn bad_burns_are_refused_with_a_reason() {
    let (chain, mut store) = chain(true);
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);
    type IsExpected = fn(&TxError) -> bool;
    let cases: Vec<(Tx, IsExpected)> = vec![
        // Not a standard output type.
        (pegout(&chain, 0, 0, &ScriptBuf::from_bytes(vec![0x51]), 50_000, fee), |e| {
            matches!(e, TxError::UnsupportedPayoutScript(_))
        }),
        // An OP_RETURN is not a payout.
        (pegout(&chain, 0, 0, &ScriptBuf::new_op_return([1u8; 4]), 50_000, fee), |e| {
            matches!(e, TxError::UnsupportedPayoutScript(_))
        }),
        // Below the chain's minimum.
        (pegout(&chain, 0, 0, &script, 9_999, fee), |e| matches!(e, TxError::PegOutBelowMinimum { .. })),
        // A fee short of its lone batch at twice the rate.
        (pegout(&chain, 0, 0, &script, 50_000, fee - Amount::from_sat(1)), |e| {
            matches!(e, TxError::PegOutFeeTooLow { batch_vbytes: 216, sat_per_vb: 2, .. })
        }),
        // More than the balance.
        (pegout(&chain, 0, 0, &script, BAL, fee), |e| matches!(e, TxError::InsufficientBalance { .. })),
    ];
    for (tx, is_expected) in cases {
        let e = tx_error(commit(&chain, &mut store, 1, vec![tx]));
        assert!(is_expected(&e), "unexpected error {e:?}");
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(store.latest_version(), Some(0), "nothing of the refused blocks was written");
}

fn commit_at(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) -> sidechain_ledger::Block {
    let template = BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: BtcAnchor {
            height: primitives::BtcHeight(btc),
            hash: bitcoin::BlockHash::from_byte_array([btc as u8; 32]),
        },
        last_commit_hash: Hash32::ZERO,
    };
    let (block, outcome) = build_block(chain, store, template, txs).expect("valid block");
    assert_eq!(execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
    block
}

fn deposit(n: u8, sats: u64) -> Tx {
    Tx::Mint(sidechain_ledger::MintTx {
        outpoint: sidechain_ledger::BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: BtcAnchor { height: primitives::BtcHeight(1), hash: bitcoin::BlockHash::from_byte_array([1; 32]) },
        epoch: 0,
        kind: sidechain_ledger::MintKind::Deposit,
        coinbase: false,
    })
}

#[test]
fn execution_batches_queued_burns_deterministically_at_the_interval() {
    use sidechain_ledger::batching::{batch, batch_index, spendable_utxos};
    let (chain, mut store) = batching_chain();
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);

    // Height 1: two deposits arrive, two burns are queued. Not an interval height: nothing is batched.
    let txs = vec![
        deposit(1, 400_000),
        deposit(2, 100_000),
        pegout(&chain, 0, 0, &script, 50_000, fee),
        pegout(&chain, 1, 0, &script, 70_000, fee),
    ];
    commit_at(&chain, &mut store, 1, 1, txs);
    let s1 = store.snapshot(1);
    assert_eq!(spendable_utxos(&s1).unwrap().0.len(), 2);
    assert_eq!(batch_index(&s1).unwrap().next_id, 0);
    let before = s1.peg_totals().unwrap();
    let pool_before = s1.get_account(&sidechain_ledger::fee_pool_id()).unwrap().unwrap().balance;

    // Height 2: the batch pays both burns from the largest coin, change back to the federation.
    commit_at(&chain, &mut store, 2, 1, vec![]);
    let s2 = store.snapshot(2);
    let b = batch(&s2, 0).unwrap().expect("batch 0");
    assert_eq!(b.burns, vec![0, 1]);
    assert_eq!(b.inputs.len(), 1, "the 400k coin covers both");
    assert_eq!(b.inputs[0].amount, Amount::from_sat(400_000));
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&b.unsigned_tx).expect("a transaction");
    assert_eq!(tx.output[0].value, Amount::from_sat(50_000));
    assert_eq!(tx.output[1].value, Amount::from_sat(70_000));
    assert_eq!(tx.output[0].script_pubkey, script);
    assert_eq!(tx.output[2].script_pubkey, chain.genesis_wallet().script_pubkey(), "change to the federation");
    assert_eq!(b.change, Some(tx.output[2].value));
    assert_eq!(Amount::from_sat(400_000) - Amount::from_sat(120_000) - b.change.unwrap(), b.fee);
    assert!(tx.input.iter().all(|i| i.sequence.is_rbf()));
    assert_eq!(burn(&s2, 1).unwrap().unwrap().batch, Some(0), "each burn belongs to one batch");
    assert!(pegout_queue(&s2).unwrap().queued.is_empty());
    assert_eq!(spendable_utxos(&s2).unwrap().0.len(), 1, "the spent coin is reserved");
    let after = s2.peg_totals().unwrap();
    assert_eq!(after.supply + after.unpaid_burns, before.supply + before.unpaid_burns);
    assert_eq!(after.unpaid_burns, Amount::from_sat(120_000) + b.fee);
    let pool_after = s2.get_account(&sidechain_ledger::fee_pool_id()).unwrap().unwrap().balance;
    assert_eq!(pool_before - pool_after, b.fee, "the fee pool pays the Bitcoin fee");

    // Another burn larger than the coins left: it waits, queued, at the next interval.
    commit_at(&chain, &mut store, 3, 1, vec![pegout(&chain, 0, 1, &script, 200_000, fee)]);
    commit_at(&chain, &mut store, 4, 1, vec![]);
    let s4 = store.snapshot(4);
    assert_eq!(pegout_queue(&s4).unwrap().queued, vec![2]);
    assert_eq!(batch_index(&s4).unwrap().next_id, 1);
}

#[test]
fn signature_shares_are_verified_against_the_exact_version_and_recorded_once() {
    use sidechain_ledger::batching::batch;
    let (chain, mut store) = batching_chain();
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);
    commit_at(&chain, &mut store, 1, 1, vec![deposit(1, 400_000), pegout(&chain, 0, 0, &script, 50_000, fee)]);
    commit_at(&chain, &mut store, 2, 1, vec![]);
    let b = batch(&store.snapshot(2), 0).unwrap().expect("batch");
    let tx = b.unsigned().unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let share = |v: u32| {
        peg::shares::sign_batch(
            &secp,
            chain.genesis_wallet(),
            *chain.genesis_hash().as_bytes(),
            &tx,
            &b.peg_inputs(),
            v as usize,
            &testkit::validator_peg_secret(v),
        )
        .expect("sign")
    };
    let submit = |v: u32, _h: u64, txid: bitcoin::Txid, signatures: Vec<Vec<u8>>| -> Tx {
        Tx::PegShare(sidechain_ledger::PegShareTx { batch: 0, txid, signer: ValidatorIndex(v as u16), signatures })
    };
    // A share signed by another key than the submitting validator's, a share for another version, and a
    // tampered signature: refused.
    let wrong_signer = commit(&chain, &mut store, 3, vec![submit(0, 3, b.txid, share(1).signatures)]);
    assert!(matches!(tx_error(wrong_signer), TxError::BadBatchShare { .. }));
    let other_version =
        commit(&chain, &mut store, 3, vec![submit(0, 3, bitcoin::Txid::from_byte_array([9; 32]), share(0).signatures)]);
    assert!(matches!(tx_error(other_version), TxError::NotCurrentBatchVersion { .. }));
    let mut bad = share(0).signatures;
    bad[0][10] ^= 1;
    assert!(matches!(
        tx_error(commit(&chain, &mut store, 3, vec![submit(0, 3, b.txid, bad)])),
        TxError::BadBatchShare { .. }
    ));
    // Three valid shares are recorded; a fourth is not needed and refused; the three finalize the batch.
    commit_at(
        &chain,
        &mut store,
        3,
        1,
        vec![submit(0, 3, b.txid, share(0).signatures), submit(2, 3, b.txid, share(2).signatures)],
    );
    let dup = commit(&chain, &mut store, 4, vec![submit(2, 4, b.txid, share(2).signatures)]);
    assert!(matches!(tx_error(dup), TxError::AlreadyVoted { .. }));
    commit_at(&chain, &mut store, 4, 1, vec![submit(3, 4, b.txid, share(3).signatures)]);
    let signed = batch(&store.snapshot(4), 0).unwrap().unwrap();
    assert!(signed.is_signed());
    let more = commit(&chain, &mut store, 5, vec![submit(1, 5, b.txid, share(1).signatures)]);
    assert!(matches!(tx_error(more), TxError::BatchAlreadySigned(0)));
    let shares: Vec<peg::shares::Share> =
        signed.shares.iter().map(|(v, s)| peg::shares::Share { signer: v.as_usize(), signatures: s.clone() }).collect();
    let final_tx = peg::shares::finalize_batch(
        &secp,
        chain.genesis_wallet(),
        *chain.genesis_hash().as_bytes(),
        &tx,
        &signed.peg_inputs(),
        &shares,
    )
    .expect("k shares finalize");
    assert_eq!(final_tx.compute_txid(), tx.compute_txid());
    assert!(final_tx.input.iter().all(|i| !i.witness.is_empty()));
}

#[test]
fn a_confirmed_batch_settles_once_and_its_change_joins_the_federation() {
    use sidechain_ledger::batching::{batch, batch_index, spendable_utxos};
    use sidechain_ledger::SettleTx;
    let (chain, mut store) = batching_chain();
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);
    commit_at(&chain, &mut store, 1, 1, vec![deposit(1, 400_000), pegout(&chain, 0, 0, &script, 50_000, fee)]);
    commit_at(&chain, &mut store, 2, 1, vec![]);
    let b = batch(&store.snapshot(2), 0).unwrap().unwrap();
    let at = |h: u32| BtcAnchor {
        height: primitives::BtcHeight(h),
        hash: bitcoin::BlockHash::from_byte_array([h as u8; 32]),
    };
    let settle = |txid: bitcoin::Txid, h: u32| Tx::Settle(SettleTx { batch: 0, txid, btc_block: at(h) });
    let wrong = commit(&chain, &mut store, 3, vec![settle(bitcoin::Txid::from_byte_array([5; 32]), 1)]);
    assert!(matches!(tx_error(wrong), TxError::NotInFlight { .. }));
    // Two above the anchor (one above is an early settlement: see the peg liveness tests).
    let above = commit(&chain, &mut store, 3, vec![settle(b.txid, 3)]);
    assert!(matches!(tx_error(above), TxError::SettleAboveAnchor { .. }));
    commit_at(&chain, &mut store, 3, 3, vec![settle(b.txid, 3)]);
    let s = store.snapshot(3);
    let t = s.peg_totals().unwrap();
    assert_eq!(t.unpaid_burns, Amount::ZERO);
    assert_eq!(Some(t.btc_held), b.change, "held: the change only");
    assert!(batch_index(&s).unwrap().in_flight.is_empty());
    assert_eq!(spendable_utxos(&s).unwrap().0.len(), 1, "the change is spendable");
    assert_eq!(burn(&s, 0).unwrap().unwrap().paid_in, Some(at(3)));
    let again = commit(&chain, &mut store, 4, vec![settle(b.txid, 3)]);
    assert!(matches!(tx_error(again), TxError::NotInFlight { .. }), "paid exactly once");
}

/// The circuit breaker: at most 100,000 sat paid out per 10 BTC blocks, a batch every 2 blocks.
fn limited_chain() -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_interval = 2;
    g.params.pegout_limit = Amount::from_sat(100_000);
    g.params.pegout_limit_window = 10;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

#[test]
fn burns_past_the_rolling_limit_wait_in_order_and_are_paid_once_the_window_moves() {
    use sidechain_ledger::batching::batch;
    use sidechain_ledger::pegout_limit::{burn_waits_on_limit, pegout_limit_status};
    let (chain, mut store) = limited_chain();
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);
    // Queue order: 60k, 30k, 20k (user 0), then 50k (user 1). The limit is 100k per 10 BTC blocks.
    let txs = vec![
        deposit(1, 600_000),
        deposit(2, 400_000),
        pegout(&chain, 0, 0, &script, 60_000, fee),
        pegout(&chain, 0, 1, &script, 30_000, fee),
        pegout(&chain, 0, 2, &script, 20_000, fee),
        pegout(&chain, 1, 0, &script, 50_000, fee),
    ];
    commit_at(&chain, &mut store, 1, 1, txs);
    // Height 2 (anchor 1): 60k + 30k fit; the 20k would take the window to 110k, so it and everything
    // behind it (even burns that would fit alone) wait.
    commit_at(&chain, &mut store, 2, 1, vec![]);
    let s = store.snapshot(2);
    assert_eq!(batch(&s, 0).unwrap().expect("batch 0").burns, vec![0, 1]);
    assert_eq!(pegout_queue(&s).unwrap().queued, vec![2, 3]);
    let status = pegout_limit_status(chain.params(), &s).unwrap().expect("the limit is on");
    assert_eq!((status.used, status.available), (Amount::from_sat(90_000), Amount::from_sat(10_000)));
    assert_eq!(status.head_waits_until, Some(primitives::BtcHeight(11)), "batch 0's 90k leaves the window at 1 + 10");
    let waits = burn_waits_on_limit(chain.params(), &s, &burn(&s, 3).unwrap().unwrap()).unwrap().expect("waits");
    assert_eq!((waits.used, waits.not_before), (Amount::from_sat(90_000), primitives::BtcHeight(11)));
    assert_eq!(burn_waits_on_limit(chain.params(), &s, &burn(&s, 0).unwrap().unwrap()).unwrap(), None, "batched");
    // Intervals inside the window build nothing, though coins and fees are there.
    commit_at(&chain, &mut store, 3, 5, vec![]);
    commit_at(&chain, &mut store, 4, 10, vec![]);
    let s = store.snapshot(4);
    assert_eq!(sidechain_ledger::batching::batch_index(&s).unwrap().next_id, 1, "no batch while the window is full");
    assert_eq!(pegout_queue(&s).unwrap().queued, vec![2, 3]);
    // Anchor 11: batch 0 left the window; the waiting burns are paid, in order.
    commit_at(&chain, &mut store, 5, 11, vec![]);
    commit_at(&chain, &mut store, 6, 11, vec![]);
    let s = store.snapshot(6);
    assert_eq!(batch(&s, 1).unwrap().expect("batch 1").burns, vec![2, 3]);
    assert!(pegout_queue(&s).unwrap().queued.is_empty());
    let status = pegout_limit_status(chain.params(), &s).unwrap().expect("on");
    assert_eq!((status.used, status.head_waits_until), (Amount::from_sat(70_000), None));
}

#[test]
fn a_burn_above_the_whole_limit_is_refused_when_burned() {
    let (chain, mut store) = limited_chain();
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);
    // Above the limit it could never be paid and would block the queue forever: refused up front.
    let e = tx_error(commit(&chain, &mut store, 1, vec![pegout(&chain, 0, 0, &script, 100_001, fee)]));
    assert_eq!(
        e,
        TxError::PegOutAboveLimit { amount: Amount::from_sat(100_001), limit: Amount::from_sat(100_000), window: 10 }
    );
    // Exactly the limit is a burn like any other; with the breaker off (window 0) any amount is.
    commit(&chain, &mut store, 1, vec![pegout(&chain, 0, 0, &script, 100_000, fee)]).unwrap();
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_limit_window = 0;
    let off = Chain::new(g).unwrap();
    let mut off_store = MemStore::new();
    off_store.apply(&off.genesis_state(&off_store).unwrap());
    commit(&off, &mut off_store, 1, vec![pegout(&off, 0, 0, &script, 900_000, fee)]).unwrap();
    assert_eq!(pegout_queue(&off_store.snapshot(1)).unwrap().queued, vec![0]);
}

/// The account history a block makes (`ledger::history`): every account a transfer, registration, burn,
/// deposit mint or payout touches, once, in block order, with the burn ids execution gave and the payouts
/// listed for each burn's owner at the block that settles their batch.
#[test]
fn the_history_lists_each_touched_account_in_block_order_with_payouts_at_settlement() {
    use sidechain_ledger::batching::batch;
    use sidechain_ledger::history::{block_history, HistoryEntry, HistoryKind};
    use sidechain_ledger::SettleTx;
    let (chain, mut store) = batching_chain();
    let script = p2wpkh();
    let fee = required_pegout_fee(&chain, &script);
    let min_fee = chain.params().min_fee;
    let (u0, u1, u9) = (testkit::account_of(&user_key(0).public()), testkit::account_of(&user_key(1).public()), {
        user_key(9).public().account_id()
    });
    let register = UserTx {
        signer: user_key(1).public(),
        nonce: 1,
        fee: chain.params().registration_fee,
        kind: UserTxKind::RegisterDeposit,
    }
    .sign(&user_key(1), chain.genesis_hash());
    let txs = vec![
        deposit(1, 400_000),
        pegout(&chain, 0, 0, &script, 50_000, fee),
        testkit::transfer(&chain, &user_key(0), 1, u1, Amount::from_sat(3_000), min_fee).into(),
        pegout(&chain, 1, 0, &script, 60_000, fee),
        register.into(),
    ];
    let commit_listing = |store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>| {
        let block = commit_at(&chain, store, h, btc, txs);
        let txids: Vec<_> = block.txs.iter().map(Tx::txid).collect();
        // Against the state before the block: the store keeps every version.
        (block_history(&store.snapshot(h - 1), &store.snapshot(h), Height(h), &block).expect("history"), txids)
    };
    let (h1, ids) = commit_listing(&mut store, 1, 1, txs);
    let at = |index: usize, kind| HistoryEntry { height: Height(1), index: index as u32, txid: ids[index], kind };
    let sat = Amount::from_sat;
    let outpoint = sidechain_ledger::BtcOutPoint { txid: bitcoin::Txid::from_byte_array([1; 32]), vout: 0 };
    // The mint's entry says what the account got: the deposit less execution's peg-in fee.
    let record = store.snapshot(1).get_pegin(&outpoint).unwrap().unwrap();
    let (credited, pegin_fee) = (record.credited, record.fee);
    assert!(pegin_fee > Amount::ZERO && credited + pegin_fee == sat(400_000), "{record:?}");
    assert_eq!(store.snapshot(1).get_account(&u9).unwrap().unwrap().balance, credited);
    assert_eq!(
        h1,
        vec![
            (u9, at(0, HistoryKind::Minted { outpoint, amount: sat(400_000), credited, fee: pegin_fee })),
            (
                u0,
                at(
                    1,
                    HistoryKind::Burned { burn_id: 0, amount: sat(50_000), fee, btc_script_pubkey: script.to_bytes() }
                )
            ),
            (u0, at(2, HistoryKind::Sent { to: u1, amount: sat(3_000), fee: min_fee })),
            (u1, at(2, HistoryKind::Received { from: u0, amount: sat(3_000) })),
            (
                u1,
                at(
                    3,
                    HistoryKind::Burned { burn_id: 1, amount: sat(60_000), fee, btc_script_pubkey: script.to_bytes() }
                )
            ),
            (u1, at(4, HistoryKind::Registered { fee: chain.params().registration_fee })),
        ]
    );
    let (h2, _) = commit_listing(&mut store, 2, 1, vec![]);
    assert!(h2.is_empty(), "the batch made at the interval touches no account");
    let b = batch(&store.snapshot(2), 0).unwrap().unwrap();
    assert_eq!(b.burns, vec![0, 1], "the burn ids the history gave are execution's");
    let settle = Tx::Settle(SettleTx {
        batch: 0,
        txid: b.txid,
        btc_block: BtcAnchor { height: primitives::BtcHeight(3), hash: bitcoin::BlockHash::from_byte_array([3; 32]) },
    });
    let (h3, ids) = commit_listing(&mut store, 3, 3, vec![settle]);
    let paid = |burn_id, amount| HistoryEntry {
        height: Height(3),
        index: 0,
        txid: ids[0],
        kind: HistoryKind::PaidOut { burn_id, amount, btc_txid: b.txid },
    };
    assert_eq!(h3, vec![(u0, paid(0, sat(50_000))), (u1, paid(1, sat(60_000)))]);
}
