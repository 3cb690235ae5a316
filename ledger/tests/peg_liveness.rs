//! Peg liveness: whatever a user pays to, the transactions a block moving the BTC anchor must carry are
//! exactly those execution accepts (`plan_peg_txs` decides both), and every coin the federation records is
//! spendable on Bitcoin by the keys it records (tweak explicit, coinbase maturity).
//!
//! Each test is one of the review's findings, replayed on the pure ledger.

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use primitives::{AccountId, Height};
use sidechain_ledger::batching::{batch, batch_index, spendable_utxos};
use sidechain_ledger::pegout::required_pegout_fee;
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    fee_pool_id, plan_peg_txs, BlockError, BtcAnchor, BtcBlockFacts, BtcOutPoint, Chain, MemStore, MintKind, MintTx,
    Room, StateReader, Tx, TxError, UserTx, UserTxKind,
};

const BAL: u64 = 1_000_000;

/// Peg-out enabled, a batch every 2 blocks.
fn batching_chain() -> (Chain, MemStore) {
    batching_chain_with_step(10)
}

fn batching_chain_with_step(max_anchor_step: u32) -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.max_anchor_step = max_anchor_step;
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

fn anchor(h: u32) -> BtcAnchor {
    testkit::btc_anchor(h)
}

fn user_tx(chain: &Chain, user: u32, nonce: u64, fee: Amount, kind: UserTxKind) -> Tx {
    let k = user_key(user);
    UserTx { signer: k.public(), nonce, fee, kind }.sign(&k, chain.genesis_hash()).into()
}

fn pegout(chain: &Chain, user: u32, nonce: u64, script: &ScriptBuf, amount: u64) -> Tx {
    let fee = required_pegout_fee(chain, script);
    let kind = UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount: Amount::from_sat(amount) };
    user_tx(chain, user, nonce, fee, kind)
}

fn deposit_script(chain: &Chain, recipient: &AccountId) -> ScriptBuf {
    chain
        .genesis_wallet()
        .deposit_descriptor(*chain.genesis_hash().as_bytes(), recipient.0 .0)
        .expect("script")
        .script_pubkey()
}

fn mint(n: u8, recipient: AccountId, sats: u64, btc: u32, kind: MintKind, coinbase: bool) -> MintTx {
    MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient,
        amount: Amount::from_sat(sats),
        btc_block: anchor(btc),
        epoch: 0,
        kind,
        coinbase,
    }
}

fn try_commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) -> Result<(), BlockError> {
    testkit::commit_block(chain, store, h, anchor(btc), txs)?;
    Ok(())
}

fn commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) {
    try_commit(chain, store, h, btc, txs).expect("valid block");
}

fn tx_error(r: Result<(), BlockError>) -> TxError {
    match r {
        Err(BlockError::InvalidTx { source, .. }) => source,
        other => panic!("expected an invalid transaction, got {other:?}"),
    }
}

/// Finding 1: Bob registers, pegs out to his own deposit address, the batch confirms. The move covering
/// that BTC block must settle the batch and re-peg Bob's output, and a block carrying exactly that applies.
/// The pre-fix rule (every output to a live deposit script required, mints before settlements) could not
/// be built at all: the anchor froze for good.
#[test]
fn a_peg_out_to_ones_own_deposit_address_is_settled_then_re_pegged_once() {
    let (chain, mut store) = batching_chain();
    let bob = user_key(0).public().account_id();
    let own = deposit_script(&chain, &bob);
    // Height 1, anchor 1: a deposit funds the federation; Bob registers and burns to his own deposit script.
    let funding = mint(1, user_key(9).public().account_id(), 400_000, 1, MintKind::Deposit, false);
    let register = user_tx(&chain, 0, 0, chain.params().registration_fee, UserTxKind::RegisterDeposit);
    commit(&chain, &mut store, 1, 1, vec![Tx::Mint(funding), register, pegout(&chain, 0, 1, &own, 50_000)]);
    // Height 2: the batch is built (its first output pays Bob's deposit script, the last is change).
    commit(&chain, &mut store, 2, 1, vec![]);
    let state = store.snapshot(2);
    let b = batch(&state, 0).unwrap().expect("batch 0");
    let tx = b.unsigned().unwrap();
    assert_eq!(tx.output[0].script_pubkey, own);
    let change_vout = (tx.output.len() - 1) as u32;
    assert!(b.change.is_some());

    // BTC block 2 confirms the batch; Bob's bitcoind-shown facts: his deposit output and the change.
    let repeg = MintTx {
        outpoint: BtcOutPoint { txid: b.txid, vout: 0 },
        recipient: bob,
        amount: Amount::from_sat(50_000),
        btc_block: anchor(2),
        epoch: 0,
        kind: MintKind::Deposit,
        coinbase: false,
    };
    let change = MintTx {
        outpoint: BtcOutPoint { txid: b.txid, vout: change_vout },
        recipient: fee_pool_id(),
        amount: b.change.unwrap(),
        kind: MintKind::Federation,
        ..repeg.clone()
    };
    let facts =
        vec![BtcBlockFacts { block: anchor(2), outputs: vec![repeg.clone(), change.clone()], txids: vec![b.txid] }];

    // Without the fix: the old proposer put every output to a live deposit script in, before settlements.
    let old_order = vec![
        Tx::Mint(repeg.clone()),
        Tx::Settle(sidechain_ledger::SettleTx { batch: 0, txid: b.txid, btc_block: anchor(2) }),
    ];
    let e = tx_error(try_commit(&chain, &mut store.clone(), 3, 2, old_order));
    assert_eq!(e, TxError::MintOfBatchOutput { batch: 0 });

    // With it: settle first, then the re-peg; the change is the federation's own coin, never required.
    let plan = plan_peg_txs(&chain, &state, Height(3), anchor(2), &facts, &[], Room::block(&chain)).unwrap();
    assert_eq!(plan.settles.len(), 1);
    assert_eq!(plan.mints, vec![repeg.clone()]);
    assert!(matches!(plan.refused.as_slice(), [(m, TxError::AlreadyHeld { .. })] if *m == change));
    let before = state.get_account(&bob).unwrap().unwrap().balance;
    commit(&chain, &mut store, 3, 2, plan.txs());
    let after = store.snapshot(3);
    assert!(after.get_account(&bob).unwrap().unwrap().balance > before, "Bob's burn came back to him");
    assert!(after.get_pegin(&repeg.outpoint).unwrap().is_some(), "recorded: never minted again");
    assert!(batch_index(&after).unwrap().in_flight.is_empty(), "settled");
    let again =
        plan_peg_txs(&chain, &after, Height(4), anchor(2), &[], std::slice::from_ref(&repeg), Room::block(&chain))
            .unwrap();
    assert!(again.claims.is_empty() && matches!(again.refused[0].1, TxError::AlreadyMinted { .. }));
}

/// Zero-value and below-minimum outputs: never required (execution refuses the first, records the second).
#[test]
fn outputs_execution_refuses_are_never_required() {
    let (chain, store) = batching_chain();
    let r = user_key(1).public().account_id();
    // A zero-value output to the plain federation script (a deposit needs a live registration to count).
    let zero = mint(1, fee_pool_id(), 0, 1, MintKind::Federation, false);
    let plain_to_user = mint(2, r, 10_000, 1, MintKind::Federation, false);
    let facts =
        vec![BtcBlockFacts { block: anchor(1), outputs: vec![zero.clone(), plain_to_user.clone()], txids: vec![] }];
    let state = store.snapshot(0);
    let plan = plan_peg_txs(&chain, &state, Height(1), anchor(1), &facts, &[], Room::block(&chain)).unwrap();
    assert!(plan.mints.is_empty(), "{plan:?}");
    assert!(matches!(plan.refused[0].1, TxError::BadMintAmount(_)), "{plan:?}");
    assert!(matches!(plan.refused[1].1, TxError::FederationMintRecipient { .. }));
}

/// Finding 2: a deposit to the script bound to the fee pool's id is tweaked like any other; only a
/// `Federation` mint records an untweaked coin.
#[test]
fn the_tweak_is_recorded_from_the_script_never_from_the_recipient() {
    let (chain, mut store) = batching_chain();
    let to_pool_script = mint(1, fee_pool_id(), 100_000, 1, MintKind::Deposit, false);
    let plain = mint(2, fee_pool_id(), 100_000, 1, MintKind::Federation, false);
    commit(&chain, &mut store, 1, 1, vec![Tx::Mint(to_pool_script.clone()), Tx::Mint(plain.clone())]);
    let s = store.snapshot(1);
    let tweaked = s.get_federation_utxo(&to_pool_script.outpoint).unwrap().expect("held");
    let untweaked = s.get_federation_utxo(&plain.outpoint).unwrap().expect("held");
    assert_eq!((tweaked.tweak, untweaked.tweak), (Some(fee_pool_id()), None));
}

/// Finding 8: a coinbase deposit goes into no batch until it is 100 BTC blocks deep.
#[test]
fn coinbase_deposits_wait_for_maturity_before_any_batch_spends_them() {
    let (chain, mut store) = batching_chain_with_step(100);
    let script = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])));
    let coinbase = mint(1, user_key(9).public().account_id(), 5_000_000, 1, MintKind::Deposit, true);
    commit(&chain, &mut store, 1, 1, vec![Tx::Mint(coinbase), pegout(&chain, 0, 0, &script, 50_000)]);
    // Interval heights with the anchor 99 blocks past it: the only coin is immature, nothing is batched.
    commit(&chain, &mut store, 2, 50, vec![]);
    commit(&chain, &mut store, 3, 100, vec![]);
    commit(&chain, &mut store, 4, 100, vec![]);
    assert_eq!(batch_index(&store.snapshot(4)).unwrap().next_id, 0, "no batch spends an immature coinbase");
    assert_eq!(spendable_utxos(&store.snapshot(4)).unwrap().0.len(), 1);
    // At anchor 101 (100 past it) it may be spent.
    commit(&chain, &mut store, 5, 101, vec![]);
    commit(&chain, &mut store, 6, 101, vec![]);
    let index = batch_index(&store.snapshot(6)).unwrap();
    assert_eq!(index.in_flight, vec![0], "batched once mature");
}

/// Finding 9: a burn paying the plain federation script would come back bound to nobody: refused.
#[test]
fn a_peg_out_to_the_federation_wallet_is_refused() {
    let (chain, mut store) = batching_chain();
    let federation = chain.genesis_wallet().script_pubkey();
    let e = tx_error(try_commit(&chain, &mut store, 1, 0, vec![pegout(&chain, 0, 0, &federation, 50_000)]));
    assert_eq!(e, TxError::PayoutToFederation { epoch: 0 });
}
