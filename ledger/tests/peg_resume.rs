//! Finding 6: after `ResumePeg` the anchor jumps to an agreed block without covering anything, so a batch
//! in flight during the deep reorg that confirmed on the new branch at or below the resume anchor must
//! still be settled ("late settles", `ledger::plan_late_settles`), and one none of whose versions is on the
//! new branch stays in flight.

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use primitives::{BlockId, BtcHeight, Hash32, Height, ValidatorIndex};
use sidechain_ledger::batching::{batch, batch_index};
use sidechain_ledger::pegout::required_pegout_fee;
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    build_block, execute_block, peg_halt, plan_late_settles, BlockTemplate, BtcAnchor, BtcOutPoint, Chain, MemStore,
    MintKind, MintTx, StateReader, Tx, UserTx, UserTxKind, ValidatorTx, ValidatorTxKind,
};
use std::collections::BTreeMap;

fn anchor(h: u32) -> BtcAnchor {
    BtcAnchor { height: BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([h as u8; 32]) }
}

/// A block of the new branch (another hash at that height).
fn new_branch(h: u32) -> BtcAnchor {
    BtcAnchor { height: BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([0xb0 + h as u8; 32]) }
}

fn commit(chain: &Chain, store: &mut MemStore, h: u64, at: BtcAnchor, txs: Vec<Tx>) {
    let template = BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: at,
        last_commit_hash: Hash32::ZERO,
    };
    let (block, outcome) = build_block(chain, store, template, txs).expect("valid block");
    assert_eq!(execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
}

fn deposit(n: u8, sats: u64) -> Tx {
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: anchor(1),
        epoch: 0,
        kind: MintKind::Deposit,
        coinbase: false,
    })
}

fn pegout(chain: &Chain, user: u32, amount: u64) -> Tx {
    let script = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])));
    let fee = required_pegout_fee(chain, &script);
    let kind = UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount: Amount::from_sat(amount) };
    let k = user_key(user);
    UserTx { signer: k.public(), nonce: 0, fee, kind }.sign(&k, chain.genesis_hash()).into()
}

fn vtx(chain: &Chain, v: u32, h: u64, kind: ValidatorTxKind) -> Tx {
    ValidatorTx { validator: ValidatorIndex(v as u16), height: Height(h), kind }
        .sign(&testkit::validator_key(v), chain.genesis_hash())
        .into()
}

#[test]
fn a_batch_confirmed_at_or_below_the_resume_anchor_is_settled_late_and_an_absent_one_stays_in_flight() {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(1_000_000));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());

    // Two batches in flight: 0 (built at height 2) and 1 (built at height 4), each spending its own coin.
    commit(&chain, &mut store, 1, anchor(5), vec![deposit(1, 400_000), deposit(2, 400_000), pegout(&chain, 0, 50_000)]);
    commit(&chain, &mut store, 2, anchor(5), vec![]);
    commit(&chain, &mut store, 3, anchor(5), vec![pegout(&chain, 1, 60_000)]);
    commit(&chain, &mut store, 4, anchor(5), vec![]);
    let s = store.snapshot(4);
    assert_eq!(batch_index(&s).unwrap().in_flight, vec![0, 1]);
    let (b0, b1) = (batch(&s, 0).unwrap().unwrap(), batch(&s, 1).unwrap().unwrap());

    // A reorg deeper than N: f + 1 reports halt the peg, 2f + 1 resume from block 4 of the new branch.
    // On that branch batch 0 confirmed in block 3; no version of batch 1 is there.
    let confirmed = BTreeMap::from([(b0.txid, new_branch(3))]);
    let report = |v| vtx(&chain, v, 5, ValidatorTxKind::ReportReorg { anchor: anchor(5) });
    commit(&chain, &mut store, 5, anchor(5), vec![report(0), report(1)]);
    let halted = store.snapshot(5);
    assert!(peg_halt(&halted).unwrap().is_halted());
    assert!(plan_late_settles(&halted, Height(6), anchor(5), &confirmed).unwrap().is_empty(), "not while halted");
    let resume = |v| vtx(&chain, v, 6, ValidatorTxKind::ResumePeg { anchor: new_branch(4) });
    commit(&chain, &mut store, 6, anchor(5), vec![resume(0), resume(1), resume(2)]);
    let s = store.snapshot(6);
    assert_eq!(peg_halt(&s).unwrap().resume_to, Some(new_branch(4)));

    // The resume block may carry the late settlement of batch 0; a confirmation above the resume anchor,
    // or of another block at its height, is not one.
    let above = BTreeMap::from([(b0.txid, new_branch(5))]);
    assert!(plan_late_settles(&s, Height(7), new_branch(4), &above).unwrap().is_empty());
    let other_at_anchor = BTreeMap::from([(b0.txid, anchor(4))]);
    assert!(plan_late_settles(&s, Height(7), new_branch(4), &other_at_anchor).unwrap().is_empty());
    let late = plan_late_settles(&s, Height(7), new_branch(4), &confirmed).unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].batch, late[0].txid, late[0].btc_block), (0, b0.txid, new_branch(3)));
    let held_before = s.peg_totals().unwrap().btc_held;
    commit(&chain, &mut store, 7, new_branch(4), late.into_iter().map(Tx::Settle).collect());

    // Batch 0 is settled (its burn paid, its input no longer held); batch 1 stays in flight.
    let s = store.snapshot(7);
    assert_eq!(batch_index(&s).unwrap().in_flight, vec![1]);
    let paid = sidechain_ledger::pegout::burn(&s, b0.burns[0]).unwrap().unwrap().paid_in;
    assert_eq!(paid, Some(new_branch(3)));
    let spent: Amount = b0.inputs.iter().map(|i| i.amount).sum();
    assert_eq!(s.peg_totals().unwrap().btc_held, held_before - spent + b0.change.unwrap_or(Amount::ZERO));
    assert!(plan_late_settles(&s, Height(8), new_branch(4), &confirmed).unwrap().is_empty(), "settled once");
    assert_eq!(b1.burns.len(), 1);
}
