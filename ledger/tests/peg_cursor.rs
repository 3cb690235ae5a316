//! Peg liveness when one BTC block pays the federation more outputs than one sidechain block holds: its
//! items go in early (before the anchor moves to it), pinned to one block by the peg cursor, until the
//! move's plan fits (see `ledger::peg_cursor`).

use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use primitives::{AccountId, BtcHeight, Height, ValidatorIndex};
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    fee_pool_id, peg_cursor, plan_early_peg_txs, plan_peg_txs, BlockError, BtcAnchor, BtcBlockFacts, BtcOutPoint,
    Chain, MemStore, MintKind, MintTx, PegCursor, PegPlan, Room, StateReader, Tx, TxError, UserTx, UserTxKind,
    ValidatorTx, ValidatorTxKind,
};

const MAX_TXS: u32 = 5;

/// No bound: the whole plan (what planning within a room is a prefix of).
const EVERYTHING: Room = Room { txs: usize::MAX, bytes: usize::MAX };

fn small_blocks() -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(1_000_000));
    g.params.block_max_txs = MAX_TXS;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

fn anchor(h: u32) -> BtcAnchor {
    testkit::btc_anchor(h)
}

fn other(h: u32) -> BtcAnchor {
    BtcAnchor { height: BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([0xee; 32]) }
}

fn try_commit(chain: &Chain, store: &mut MemStore, h: u64, at: BtcAnchor, txs: Vec<Tx>) -> Result<(), BlockError> {
    testkit::commit_block(chain, store, h, at, txs)?;
    Ok(())
}

fn tx_error(r: Result<(), BlockError>) -> TxError {
    match r {
        Err(BlockError::InvalidTx { source, .. }) => source,
        other => panic!("expected an invalid transaction, got {other:?}"),
    }
}

/// Output `i` of BTC block `block`: dust (below the minimum, still recorded and held) or a real deposit.
fn output(i: u32, block: BtcAnchor, recipient: AccountId) -> MintTx {
    let sats = if i.is_multiple_of(2) { 294 } else { 60_000 };
    MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([0x70; 32]), vout: i },
        recipient,
        amount: Amount::from_sat(sats),
        btc_block: block,
        epoch: 0,
        kind: MintKind::Deposit,
        coinbase: false,
    }
}

/// User 1 registers at height 1 (anchor 1); BTC block 2 then pays its deposit address `n` outputs.
fn flooded(n: u32) -> (Chain, MemStore, BtcBlockFacts) {
    let (chain, mut store) = small_blocks();
    let k = user_key(1);
    let fee = chain.params().registration_fee;
    let reg =
        UserTx { signer: k.public(), nonce: 0, fee, kind: UserTxKind::RegisterDeposit }.sign(&k, chain.genesis_hash());
    try_commit(&chain, &mut store, 1, anchor(1), vec![reg.into()]).unwrap();
    let me = k.public().account_id();
    let facts =
        BtcBlockFacts { block: anchor(2), outputs: (0..n).map(|i| output(i, anchor(2), me)).collect(), txids: vec![] };
    (chain, store, facts)
}

/// What an honest proposer does at `h`: the move if its plan fits, else a prefix of the early plan.
fn honest_block(chain: &Chain, store: &MemStore, h: u64, facts: &BtcBlockFacts) -> (BtcAnchor, PegPlan) {
    let state = store.snapshot(h - 1);
    let room = Room::block(chain);
    let moving = plan_peg_txs(chain, &state, Height(h), facts.block, std::slice::from_ref(facts), &[], room).unwrap();
    if room.fits(&moving) {
        return (facts.block, moving);
    }
    let early = plan_early_peg_txs(chain, &state, Height(h), facts, room).unwrap();
    (state.chain_meta().unwrap().unwrap().btc_anchor, early)
}

#[test]
fn a_btc_block_with_three_blocks_worth_of_outputs_is_minted_across_blocks_then_anchored() {
    let n = 3 * MAX_TXS;
    let (chain, mut store, facts) = flooded(n);
    let state = store.snapshot(1);
    let all =
        plan_peg_txs(&chain, &state, Height(2), anchor(2), std::slice::from_ref(&facts), &[], EVERYTHING).unwrap();
    assert_eq!(all.mints.len(), n as usize, "every output is required, dust included");
    assert!(!all.more);
    // Within one block's room planning stops at the first item past it: the same first items, never fits.
    let room = Room::block(&chain);
    let bounded = plan_peg_txs(&chain, &state, Height(2), anchor(2), std::slice::from_ref(&facts), &[], room).unwrap();
    assert!(bounded.more && !room.fits(&bounded));
    assert_eq!(bounded.mints, all.mints[..MAX_TXS as usize].to_vec());
    assert!(matches!(
        try_commit(&chain, &mut store.clone(), 2, anchor(2), all.txs()),
        Err(BlockError::TooManyTxs { .. })
    ));

    // Within ceil(n / room) + 1 heights the anchor reaches block 2.
    let mut h = 2;
    let bound = (n / MAX_TXS) as u64 + 2;
    loop {
        let (at, plan) = honest_block(&chain, &store, h, &facts);
        assert!(!plan.is_empty(), "height {h}: every block carries peg items");
        try_commit(&chain, &mut store, h, at, plan.txs()).unwrap();
        let s = store.snapshot(h);
        if at == anchor(2) {
            assert_eq!(peg_cursor(&s).unwrap(), None, "the anchor reached the cursor: cleared");
            break;
        }
        assert_eq!(peg_cursor(&s).unwrap(), Some(PegCursor { btc_block: anchor(2) }));
        h += 1;
        assert!(h <= 1 + bound, "the anchor is still at 1 after {bound} blocks");
    }

    // Every output recorded exactly once, the held BTC is the sum of them all, the reserve holds.
    let s = store.snapshot(h);
    for m in &facts.outputs {
        let rec = s.get_pegin(&m.outpoint).unwrap().expect("recorded");
        assert_eq!(rec.amount, m.amount);
    }
    let t = s.peg_totals().unwrap();
    assert_eq!(t.deposits, u64::from(n));
    assert_eq!(t.btc_held, facts.outputs.iter().map(|m| m.amount).sum::<Amount>());
    assert!(t.supply <= t.btc_held + chain.genesis_supply());
    // Nothing of block 2 is required again.
    let again =
        plan_peg_txs(&chain, &s, Height(h + 1), anchor(2), std::slice::from_ref(&facts), &[], Room::block(&chain))
            .unwrap();
    assert!(again.is_empty());
}

/// A BTC block flooded with 100,000 outputs to the federation (a 4 MB block holds about 90,000 dust
/// outputs): planning stops at the first accepted item past one block's room, so a height applies about a
/// block's worth of candidates, not one per output (counted, not timed: every candidate tried is listed,
/// as carried or refused, but the one it stopped at); the items still go in early, in block order, each
/// once, while the move never fits.
#[test]
fn planning_a_flooded_btc_block_stops_one_item_past_a_blocks_room() {
    const ROOM: usize = 1_000;
    const OUTPUTS: u32 = 100_000;
    let mut g = testkit::genesis(4, 2, Amount::from_sat(1_000_000));
    g.params.block_max_txs = ROOM as u32;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    try_commit(&chain, &mut store, 1, anchor(1), vec![]).unwrap();
    // 330 sat to the plain federation script (credited to the fee pool, below the minimum: recorded and
    // held); every 50th output is worth nothing, which execution refuses (never required).
    let output = |i: u32| MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([0x71; 32]), vout: i },
        recipient: fee_pool_id(),
        amount: Amount::from_sat(if i % 50 == 49 { 0 } else { 330 }),
        btc_block: anchor(2),
        epoch: 0,
        kind: MintKind::Federation,
        coinbase: false,
    };
    let facts = BtcBlockFacts { block: anchor(2), outputs: (0..OUTPUTS).map(output).collect(), txids: vec![] };
    let accepted: Vec<&MintTx> = facts.outputs.iter().filter(|m| m.amount > Amount::ZERO).collect();
    let room = Room::block(&chain);
    assert_eq!(room.txs, ROOM);
    for h in 2..=4u64 {
        let state = store.snapshot(h - 1);
        let done = (h as usize - 2) * ROOM;
        // Where planning stops: the first accepted output past this block's room, in block order.
        let stop = accepted[done + ROOM].outpoint.vout as usize;
        let moving = plan_peg_txs(&chain, &state, Height(h), anchor(2), std::slice::from_ref(&facts), &[], room);
        let early = plan_early_peg_txs(&chain, &state, Height(h), &facts, room).unwrap();
        for plan in [&moving.unwrap(), &early] {
            assert!(plan.more && !room.fits(plan), "height {h}: the move does not fit one block");
            let next: Vec<MintTx> = accepted[done..done + ROOM].iter().map(|m| (*m).clone()).collect();
            assert_eq!(plan.mints, next, "height {h}: the next block's worth, in block order");
            // Every output before `stop` was tried once (carried, or refused: worth nothing or already in
            // early), the one at `stop` too, none after it.
            assert_eq!(plan.mints.len() + plan.refused.len(), stop, "height {h}");
            assert!(stop + 1 < OUTPUTS as usize / 10, "height {h}: {} of {OUTPUTS} tried", stop + 1);
        }
        try_commit(&chain, &mut store, h, anchor(1), early.txs()).unwrap();
        let s = store.snapshot(h);
        assert_eq!(peg_cursor(&s).unwrap(), Some(PegCursor { btc_block: anchor(2) }), "height {h}");
        assert_eq!(s.peg_totals().unwrap().deposits, (done + ROOM) as u64, "height {h}: each output once");
        for m in &accepted[done..done + ROOM] {
            assert_eq!(s.get_pegin(&m.outpoint).unwrap().expect("recorded").minted_at, Height(h));
        }
        assert!(s.get_pegin(&accepted[done + ROOM].outpoint).unwrap().is_none(), "height {h}");
    }
}

#[test]
fn early_items_pin_one_block_and_the_anchor_may_move_only_to_it() {
    let (chain, mut store, facts) = flooded(4);
    let me = user_key(1).public().account_id();
    // Two above the anchor is never early.
    let far = output(9, anchor(3), me);
    assert!(matches!(
        tx_error(try_commit(&chain, &mut store.clone(), 2, anchor(1), vec![Tx::Mint(far)])),
        TxError::MintAboveAnchor { .. }
    ));
    // The first early mint sets the cursor.
    try_commit(&chain, &mut store, 2, anchor(1), vec![Tx::Mint(facts.outputs[0].clone())]).unwrap();
    assert_eq!(peg_cursor(&store.snapshot(2)).unwrap(), Some(PegCursor { btc_block: anchor(2) }));
    // An early mint of another block at that height: refused.
    let forked = output(7, other(2), me);
    assert!(matches!(
        tx_error(try_commit(&chain, &mut store.clone(), 3, anchor(1), vec![Tx::Mint(forked)])),
        TxError::EarlyItemOffCursor { .. }
    ));
    // The same output again: already minted (so a move's plan leaves it out).
    assert!(matches!(
        tx_error(try_commit(&chain, &mut store.clone(), 3, anchor(1), vec![Tx::Mint(facts.outputs[0].clone())])),
        TxError::AlreadyMinted { .. }
    ));
    // The anchor may not reach that height with another block, nor jump past it.
    let r = try_commit(&chain, &mut store.clone(), 3, other(2), vec![]);
    assert!(matches!(r, Err(BlockError::AnchorOffCursor { .. })), "{r:?}");
    let r = try_commit(&chain, &mut store.clone(), 3, anchor(3), vec![]);
    assert!(matches!(r, Err(BlockError::AnchorOffCursor { .. })), "{r:?}");
    // The plan of the early plan and of the move leave out what went in early.
    let s = store.snapshot(2);
    let early = plan_early_peg_txs(&chain, &s, Height(3), &facts, Room::block(&chain)).unwrap();
    assert_eq!(early.mints, facts.outputs[1..].to_vec());
    let off = BtcBlockFacts { block: other(2), ..facts.clone() };
    assert!(
        plan_early_peg_txs(&chain, &s, Height(3), &off, Room::block(&chain)).unwrap().is_empty(),
        "another block: nothing early"
    );
    let moving =
        plan_peg_txs(&chain, &s, Height(3), anchor(2), std::slice::from_ref(&facts), &[], Room::block(&chain)).unwrap();
    assert_eq!(moving.mints, facts.outputs[1..].to_vec());
    try_commit(&chain, &mut store, 3, anchor(2), moving.txs()).unwrap();
    assert_eq!(peg_cursor(&store.snapshot(3)).unwrap(), None);
}

#[test]
fn a_halt_clears_the_cursor() {
    let (chain, mut store, facts) = flooded(2);
    try_commit(&chain, &mut store, 2, anchor(1), vec![Tx::Mint(facts.outputs[0].clone())]).unwrap();
    let report = |v: u32, h: u64| -> Tx {
        ValidatorTx {
            validator: ValidatorIndex(v as u16),
            height: Height(h),
            kind: ValidatorTxKind::ReportReorg { anchor: anchor(1) },
        }
        .sign(&testkit::validator_key(v), chain.genesis_hash())
        .into()
    };
    try_commit(&chain, &mut store, 3, anchor(1), vec![report(0, 3), report(1, 3)]).unwrap();
    let s = store.snapshot(3);
    assert!(sidechain_ledger::peg_halt(&s).unwrap().is_halted());
    assert_eq!(peg_cursor(&s).unwrap(), None);
    // Halted: nothing early either.
    assert!(matches!(
        tx_error(try_commit(&chain, &mut store.clone(), 4, anchor(1), vec![Tx::Mint(facts.outputs[1].clone())])),
        TxError::PegHalted
    ));
    assert!(plan_early_peg_txs(&chain, &s, Height(4), &facts, Room::block(&chain)).unwrap().is_empty());
}

#[test]
fn a_plan_prefix_counts_transactions_and_bytes() {
    let (chain, store, facts) = flooded(10);
    let plan = plan_early_peg_txs(&chain, &store.snapshot(1), Height(2), &facts, EVERYTHING).unwrap();
    assert_eq!(plan.len(), 10);
    assert!(!plan.more && plan.prefix(4, usize::MAX).more && !plan.prefix(10, usize::MAX).more);
    let bounded = plan_early_peg_txs(&chain, &store.snapshot(1), Height(2), &facts, Room { txs: 4, bytes: usize::MAX });
    assert_eq!(bounded.unwrap().mints, plan.prefix(4, usize::MAX).mints, "planning within a room is its prefix");
    let one = plan.prefix(1, usize::MAX).encoded_len();
    assert_eq!(plan.prefix(4, usize::MAX).mints, facts.outputs[..4].to_vec());
    // Room for 10 transactions but the bytes of only 3.
    assert_eq!(plan.prefix(10, 3 * one + one / 2).mints, facts.outputs[..3].to_vec());
    assert!(plan.prefix(10, one - 1).is_empty());
}

#[test]
fn an_early_settlement_frees_the_batch_and_its_change_waits_for_the_anchor() {
    use bitcoin::{ScriptBuf, WPubkeyHash};
    use sidechain_ledger::batching::{batch, batch_index};
    let mut g = testkit::genesis(4, 2, Amount::from_sat(1_000_000));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    let script = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])));
    let pegout = |user: u32| -> Tx {
        let fee = sidechain_ledger::pegout::required_pegout_fee(&chain, &script);
        let kind = UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount: Amount::from_sat(50_000) };
        let k = user_key(user);
        UserTx { signer: k.public(), nonce: 0, fee, kind }.sign(&k, chain.genesis_hash()).into()
    };
    let funding = MintTx { btc_block: anchor(1), ..output(1, anchor(1), user_key(9).public().account_id()) };
    let funding = MintTx { amount: Amount::from_sat(400_000), ..funding };
    try_commit(&chain, &mut store, 1, anchor(1), vec![Tx::Mint(funding), pegout(0)]).unwrap();
    try_commit(&chain, &mut store, 2, anchor(1), vec![]).unwrap();
    let b = batch(&store.snapshot(2), 0).unwrap().expect("batch 0");
    // BTC block 2 confirms it: its settlement goes in early, before the anchor moves there.
    let facts = BtcBlockFacts { block: anchor(2), outputs: vec![], txids: vec![b.txid] };
    let early = plan_early_peg_txs(&chain, &store.snapshot(2), Height(3), &facts, Room::block(&chain)).unwrap();
    assert_eq!(early.settles.len(), 1);
    // User 1 burns too, and tops up the fee pool so that only the coin can hold the next batch back.
    let top_up = testkit::transfer(
        &chain,
        &user_key(1),
        1,
        sidechain_ledger::fee_pool_id(),
        Amount::from_sat(100_000),
        chain.params().min_fee,
    );
    try_commit(&chain, &mut store, 3, anchor(1), [early.txs(), vec![pegout(1), top_up.into()]].concat()).unwrap();
    let s = store.snapshot(3);
    assert!(batch_index(&s).unwrap().in_flight.is_empty(), "settled early");
    assert_eq!(peg_cursor(&s).unwrap(), Some(PegCursor { btc_block: anchor(2) }));
    // The move to block 2 requires nothing more.
    assert!(plan_peg_txs(&chain, &s, Height(4), anchor(2), std::slice::from_ref(&facts), &[], Room::block(&chain))
        .unwrap()
        .is_empty());
    // The change (in block 2) is the only coin: no batch spends it while the anchor is below it.
    try_commit(&chain, &mut store, 4, anchor(1), vec![]).unwrap();
    assert_eq!(batch_index(&store.snapshot(4)).unwrap().next_id, 1, "no batch of a coin above the anchor");
    try_commit(&chain, &mut store, 5, anchor(2), vec![]).unwrap();
    try_commit(&chain, &mut store, 6, anchor(2), vec![]).unwrap();
    assert_eq!(batch_index(&store.snapshot(6)).unwrap().in_flight, vec![1], "batched once anchored");
}
