//! Planning the peg items of one height when the BTC block above the anchor is flooded with outputs, next
//! to planning one block's worth (`Room::block`) of ordinary mints, measured in the same run; prints the
//! ratio. Planning stops one accepted item past a block's room (`ledger::anchor_move`), so the ratio stays
//! near 1 however many outputs the BTC block holds (it was about outputs / room before the bound).
//!
//! Also printed: the same height once half the flood went in early, where planning still tries (and
//! refuses, already minted) every output already in before it reaches the next block's worth: the part of
//! the cost that remains linear in the flood.
//!
//! Run: `cargo bench -p sidechain-ledger --bench peg_flood`. Outputs default to 90,000 (about what a 4 MB
//! BTC block holds); override with `PEG_FLOOD_OUTPUTS=200000`.

mod common;
use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use common::median;
use primitives::Height;
use sidechain_ledger::testkit::{self, btc_anchor};
use sidechain_ledger::{
    fee_pool_id, plan_early_peg_txs, plan_peg_txs, BtcBlockFacts, BtcOutPoint, Chain, MemStore, MintKind, MintTx, Room,
};
use std::time::Duration;

/// `n` outputs of `sats` to the plain federation script in BTC block 2 (credited to the fee pool).
fn facts(n: u32, sats: u64) -> BtcBlockFacts {
    let output = |i: u32| MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([0x71; 32]), vout: i },
        recipient: fee_pool_id(),
        amount: Amount::from_sat(sats),
        btc_block: btc_anchor(2),
        epoch: 0,
        kind: MintKind::Federation,
        coinbase: false,
    };
    BtcBlockFacts { block: btc_anchor(2), outputs: (0..n).map(output).collect(), txids: vec![] }
}

/// The time to plan height `h` on `store` (the move to BTC block 2, then the early items, as a proposer
/// whose move does not fit does), and how many candidates the plans tried.
fn plan_height(chain: &Chain, store: &MemStore, h: u64, facts: &BtcBlockFacts) -> (Duration, usize) {
    let state = store.snapshot(h - 1);
    let room = Room::block(chain);
    let mut tried = 0;
    let time = median(
        || {
            let moving = plan_peg_txs(chain, &state, Height(h), facts.block, std::slice::from_ref(facts), &[], room)
                .expect("in-memory state");
            let early = plan_early_peg_txs(chain, &state, Height(h), facts, room).expect("in-memory state");
            tried = [&moving, &early].iter().map(|p| p.len() + p.refused.len() + usize::from(p.more)).sum();
        },
        5,
    );
    (time, tried)
}

fn main() {
    let outputs: u32 = match std::env::var("PEG_FLOOD_OUTPUTS") {
        Ok(v) => v.parse().expect("PEG_FLOOD_OUTPUTS is a number"),
        Err(_) => 90_000,
    };
    let (chain, mut store) = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000));
    testkit::commit_block(&chain, &mut store, 1, btc_anchor(1), vec![]).expect("an empty block");
    let room = Room::block(&chain);
    let ordinary = facts(room.txs as u32, 50_000);
    let flood = facts(outputs, 330);

    let (bound, bound_tried) = plan_height(&chain, &store, 2, &ordinary);
    let (first, first_tried) = plan_height(&chain, &store, 2, &flood);
    // Half the flood in early, a block's worth at a time, as honest proposers carry it.
    let mut h = 2;
    while (h - 2) * (room.txs as u64) < u64::from(outputs) / 2 {
        let state = store.snapshot(h - 1);
        let early = plan_early_peg_txs(&chain, &state, Height(h), &flood, room).expect("in-memory state");
        testkit::commit_block(&chain, &mut store, h, btc_anchor(1), early.txs()).expect("honest early items");
        h += 1;
    }
    let (mid, mid_tried) = plan_height(&chain, &store, h, &flood);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("\nsame-run comparison (median of 5; each figure plans the move and the early items of one height):");
    println!("room of ordinary mints ({} txs, {} candidates tried): {:.1} ms", room.txs, bound_tried, ms(bound));
    println!(
        "flood of {outputs} outputs, first height ({first_tried} candidates tried): {:.1} ms, ratio flood/room = {:.2}",
        ms(first),
        first.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "flood of {outputs} outputs, height {h} with {} in early ({mid_tried} candidates tried): {:.1} ms, \
         ratio flood/room = {:.2}",
        (h - 2) * room.txs as u64,
        ms(mid),
        mid.as_secs_f64() / bound.as_secs_f64()
    );
}
