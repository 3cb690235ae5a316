//! Unit tests of the node's peg-in rules: required mints, the proposer's anchor and early items.

use super::*;
use crate::bitcoin::IndexedBlock;
use crate::storage::SignedVersion;
use bitcoin::hashes::Hash;
use ledger::testkit::{self, user_key};
use ledger::{BlockHeader, MemStore, MintKind, UserTx, UserTxKind};
use primitives::{AccountId, Hash32};
use primitives::{BlockId, BtcHeight, GenesisHash, StateRoot, ValidatorIndex};

/// Chain with `R` registered at height 1; a snapshot whose BTC block 3 pays R (the deposit) and the
/// plain federation script.
fn setup() -> (Chain, MemStore, BtcSnapshot, peg::Deposit, AccountId) {
    // User 3 holds exactly the registration fee, and pays it.
    let fee = ledger::Params::default().registration_fee;
    let (chain, mut store) = testkit::chain_and_store(4, 4, fee);
    let key = user_key(3);
    let r = key.public().account_id();
    let reg = UserTx { signer: key.public(), nonce: 0, fee, kind: UserTxKind::RegisterDeposit }
        .sign(&key, chain.genesis_hash());
    let template = ledger::BlockTemplate {
        height: Height(1),
        prev_hash: BlockId::ZERO,
        time_ms: chain.genesis().genesis_time_ms + 1,
        proposer: ValidatorIndex(0),
        btc_anchor: BtcAnchor::default(),
        last_commit_hash: Hash32::ZERO,
    };
    let (_, outcome) = ledger::build_block(&chain, &store, template, vec![reg.into()]).expect("block");
    store.apply(&outcome.write_set);
    let hash = bitcoin::BlockHash::from_byte_array([3; 32]);
    let deposit = peg::Deposit {
        outpoint: bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([7; 32]), vout: 1 },
        amount: bitcoin::Amount::from_sat(50_000),
        script_pubkey: deposit_descriptor(&chain, chain.genesis_wallet(), &r).expect("script").script_pubkey(),
        recipient: r.0 .0,
        epoch: 0,
        btc_block_hash: hash,
        btc_height: 3,
        coinbase: false,
    };
    let plain = peg::FederationOutput {
        outpoint: bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([8; 32]), vout: 0 },
        amount: bitcoin::Amount::from_sat(20_000),
        epoch: 0,
        btc_block_hash: hash,
        btc_height: 3,
        coinbase: false,
    };
    let mut snap = BtcSnapshot { best: Some(9), registry_version: 1, ..BtcSnapshot::default() };
    for h in 1..=3u32 {
        let scan = if h == 3 {
            peg::BlockScan { deposits: vec![deposit.clone()], plain: vec![plain.clone()] }
        } else {
            peg::BlockScan::default()
        };
        let hash = bitcoin::BlockHash::from_byte_array([h as u8; 32]);
        snap.deposits.insert(h, IndexedBlock { hash, scan, txids: Vec::new() });
        snap.hashes.insert(h, hash);
    }
    (chain, store, snap, deposit, r)
}

fn block(anchor_height: u32, txs: Vec<Tx>) -> Block {
    let header = BlockHeader {
        genesis_hash: GenesisHash::ZERO,
        height: Height(2),
        prev_hash: BlockId::ZERO,
        time_ms: 0,
        proposer: ValidatorIndex(0),
        btc_anchor: from_peg((anchor_height, bitcoin::BlockHash::from_byte_array([anchor_height as u8; 32]))),
        tx_root: Hash32::ZERO,
        state_root: StateRoot::ZERO,
        last_commit_hash: Hash32::ZERO,
    };
    Block { header, txs }
}

#[test]
fn a_block_must_mint_exactly_what_the_index_shows() {
    let (chain, store, snap, deposit, _r) = setup();
    let state = store.snapshot(1);
    let prev = BtcAnchor::default();
    let to3 = block(3, vec![]).header.btc_anchor;
    let plan = peg_plan(&chain, &state, &snap, 1, &prev, &to3, Height(2), false, Room::block(&chain))
        .expect("index covers 1..=3");
    let required = plan.mints.clone();
    assert_eq!(required.len(), 2, "the registered deposit and the plain output: {required:?}");
    assert_eq!(required[0], mint_for(&deposit));
    assert_eq!((required[1].recipient, required[1].kind), (ledger::fee_pool_id(), MintKind::Federation));
    let all: Vec<Tx> = required.iter().cloned().map(Tx::Mint).collect();
    assert_eq!(check_block_peg(&chain, &state, Some(&snap), 1, &prev, &block(3, all.clone())), Ok(()));

    // Leaving one out.
    let why = check_block_peg(&chain, &state, Some(&snap), 1, &prev, &block(3, all[1..].to_vec())).unwrap_err();
    assert!(matches!(why, PegObjection::MissingMint { btc_height: 3, .. }), "{why}");
    // A wrong amount (or any fact bitcoind does not show).
    let mut wrong = required.clone();
    wrong[0].amount = bitcoin::Amount::from_sat(50_001);
    let mut txs: Vec<Tx> = wrong.into_iter().map(Tx::Mint).collect();
    txs.push(Tx::Mint(required[0].clone()));
    let why = check_block_peg(&chain, &state, Some(&snap), 1, &prev, &block(3, txs)).unwrap_err();
    assert!(matches!(why, PegObjection::UnconfirmedMint { .. }), "{why}");
    // The plain output claimed as a deposit to the fee pool (a tweaked record of an untweaked coin).
    let mut relabelled = required.clone();
    relabelled[1].kind = MintKind::Deposit;
    let txs: Vec<Tx> = relabelled.into_iter().map(Tx::Mint).chain([Tx::Mint(required[1].clone())]).collect();
    let why = check_block_peg(&chain, &state, Some(&snap), 1, &prev, &block(3, txs)).unwrap_err();
    assert!(matches!(why, PegObjection::UnconfirmedMint { .. }), "{why}");
    // A mint above what the index covers is "cannot tell", never a shorter list.
    let why = check_block_peg(&chain, &state, Some(&snap), 1, &prev, &block(4, all.clone())).unwrap_err();
    assert_eq!(why, PegObjection::CannotTell(CannotTell::NotCovered(4)));
    // An index built before the latest registration is not trusted to move the anchor.
    let why = check_block_peg(&chain, &state, Some(&snap), 2, &prev, &block(3, all)).unwrap_err();
    assert_eq!(why, PegObjection::CannotTell(CannotTell::StaleRegistry { built: 1, now: 2 }));
}

#[test]
fn outputs_execution_refuses_are_never_required() {
    let (chain, store, mut snap, deposit, _r) = setup();
    let state = store.snapshot(1);
    // A zero-value output to the deposit script next to the real deposit.
    let zero = peg::Deposit {
        outpoint: bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([9; 32]), vout: 0 },
        amount: bitcoin::Amount::ZERO,
        ..deposit.clone()
    };
    snap.deposits.get_mut(&3).expect("block 3").scan.deposits.push(zero.clone());
    let to3 = block(3, vec![]).header.btc_anchor;
    let plan = peg_plan(&chain, &state, &snap, 1, &BtcAnchor::default(), &to3, Height(2), false, Room::block(&chain))
        .expect("covered");
    assert_eq!(plan.mints.len(), 2, "the deposit and the plain output, not the zero-value one");
    assert!(plan
        .refused
        .iter()
        .any(|(m, why)| *m == mint_for(&zero) && matches!(why, ledger::TxError::BadMintAmount(_))));
    let txs: Vec<Tx> = plan.mints.iter().cloned().map(Tx::Mint).collect();
    assert_eq!(check_block_peg(&chain, &state, Some(&snap), 1, &BtcAnchor::default(), &block(3, txs)), Ok(()));
}

#[test]
fn a_validator_only_signs_versions_that_conflict_with_what_it_signed() {
    let o = |n: u8| BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 };
    let signed = vec![SignedVersion { txid: bitcoin::Txid::from_byte_array([1; 32]), inputs: vec![o(1), o(2)] }];
    assert!(safe_to_sign(&[], &bitcoin::Txid::from_byte_array([1; 32]), &[o(1)]), "nothing signed yet");
    assert!(safe_to_sign(&signed, &bitcoin::Txid::from_byte_array([1; 32]), &[o(1), o(2)]), "the same version again");
    assert!(
        safe_to_sign(&signed, &bitcoin::Txid::from_byte_array([2; 32]), &[o(1), o(2), o(3)]),
        "a bump spending a superset"
    );
    assert!(
        !safe_to_sign(&signed, &bitcoin::Txid::from_byte_array([2; 32]), &[o(1), o(3)]),
        "would not conflict on o(2)"
    );
    assert!(!safe_to_sign(&signed, &bitcoin::Txid::from_byte_array([3; 32]), &[o(4)]), "disjoint: both could confirm");
}

#[test]
fn blocks_that_keep_the_anchor_and_mint_nothing_need_no_bitcoind() {
    let (chain, store, _snap, _deposit, _r) = setup();
    let state = store.snapshot(1);
    assert_eq!(check_block_peg(&chain, &state, None, 5, &BtcAnchor::default(), &block(0, vec![])), Ok(()));
    let moved = check_block_peg(&chain, &state, None, 5, &BtcAnchor::default(), &block(2, vec![]));
    assert_eq!(moved, Err(PegObjection::NoBitcoind));
}

#[test]
fn the_proposer_moves_the_anchor_only_as_far_as_its_index_can_list_mints() {
    let (chain, store, mut snap, _deposit, _r) = setup();
    let state = store.snapshot(1);
    snap.hashes.insert(4, bitcoin::BlockHash::from_byte_array([4; 32]));
    let wanted = from_peg((4, bitcoin::BlockHash::from_byte_array([4; 32])));
    let all = Room::after(&chain, &[]);
    let (anchor, plan) =
        anchor_with_plan(&chain, &state, &snap, 1, &BtcAnchor::default(), &wanted, Height(2), all).expect("a move");
    assert_eq!(anchor.height, BtcHeight(3), "height 4 is not indexed yet");
    assert_eq!(plan.mints.len(), 2);
    // With room for only one more transaction, block 3's two mints do not fit: stop below it.
    let room = Room { txs: 1, ..all };
    let (anchor, plan) =
        anchor_with_plan(&chain, &state, &snap, 1, &BtcAnchor::default(), &wanted, Height(2), room).expect("a move");
    assert_eq!((anchor.height, plan.mints.len()), (BtcHeight(2), 0));
}

/// A chain with small blocks (`max_txs`, `max_bytes`) where user 3 registered at height 1, and a snapshot
/// whose BTC block 1 pays R `n` deposits (half of them dust), with Bitcoin's best block at `best`.
fn flooded(n: u32, max_txs: u32, max_bytes: u32, best: u32) -> (Chain, MemStore, BtcSnapshot, Vec<MintTx>) {
    let fee = ledger::Params::default().registration_fee;
    let mut g = testkit::genesis(4, 4, fee);
    g.params.block_max_txs = max_txs;
    g.params.block_max_bytes = max_bytes;
    let chain = Chain::new(g).expect("valid genesis");
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).expect("in memory"));
    let key = user_key(3);
    let r = key.public().account_id();
    let reg = UserTx { signer: key.public(), nonce: 0, fee, kind: UserTxKind::RegisterDeposit }
        .sign(&key, chain.genesis_hash());
    let template = ledger::BlockTemplate {
        height: Height(1),
        prev_hash: BlockId::ZERO,
        time_ms: chain.genesis().genesis_time_ms + 1,
        proposer: ValidatorIndex(0),
        btc_anchor: BtcAnchor::default(),
        last_commit_hash: Hash32::ZERO,
    };
    let (_, outcome) = ledger::build_block(&chain, &store, template, vec![reg.into()]).expect("block");
    store.apply(&outcome.write_set);
    let script = deposit_descriptor(&chain, chain.genesis_wallet(), &r).expect("script").script_pubkey();
    let hash1 = bitcoin::BlockHash::from_byte_array([1; 32]);
    let deposits: Vec<peg::Deposit> = (0..n)
        .map(|i| peg::Deposit {
            outpoint: bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([0x70; 32]), vout: i },
            amount: bitcoin::Amount::from_sat(if i % 2 == 0 { 294 } else { 50_000 }),
            script_pubkey: script.clone(),
            recipient: r.0 .0,
            epoch: 0,
            btc_block_hash: hash1,
            btc_height: 1,
            coinbase: false,
        })
        .collect();
    let mut snap = BtcSnapshot { best: Some(best), registry_version: 1, ..BtcSnapshot::default() };
    snap.hashes.insert(0, bitcoin::BlockHash::from_byte_array([0; 32]));
    for h in 1..=best {
        let hash = bitcoin::BlockHash::from_byte_array([h as u8; 32]);
        let scan = if h == 1 {
            peg::BlockScan { deposits: deposits.clone(), plain: Vec::new() }
        } else {
            peg::BlockScan::default()
        };
        snap.deposits.insert(h, IndexedBlock { hash, scan, txids: Vec::new() });
        snap.hashes.insert(h, hash);
    }
    (chain, store, snap, deposits.iter().map(mint_for).collect())
}

/// Honest proposers and validators (this node's rules) from height 2 until the anchor covers BTC block 1;
/// returns the height that moved it there.
fn run_until_anchored(chain: &Chain, store: &mut MemStore, snap: &BtcSnapshot, bound: u64) -> u64 {
    let p = chain.params();
    for h in 2..=1 + bound {
        let state = store.snapshot(h - 1);
        let prev = state.chain_meta().expect("meta").expect("meta").btc_anchor;
        let wanted = from_peg(
            peg::choose_anchor(snap, crate::btc_follow::to_peg(&prev), p.pegin_confirmations, p.max_anchor_step)
                .expect("Bitcoin is ready for a move"),
        );
        let room = Room::after(chain, &[]);
        let (anchor, plan) = anchor_with_plan(chain, &state, snap, 1, &prev, &wanted, Height(h), room)
            .or_else(|| early_plan(chain, &state, snap, 1, &prev, &wanted, Height(h), room).map(|e| (prev, e)))
            .expect("every block either moves the anchor or carries early items");
        let template = ledger::BlockTemplate {
            height: Height(h),
            prev_hash: BlockId::ZERO,
            time_ms: chain.genesis().genesis_time_ms + h,
            proposer: ValidatorIndex(0),
            btc_anchor: anchor,
            last_commit_hash: Hash32::ZERO,
        };
        let (block, outcome) = ledger::build_block(chain, store, template, plan.txs()).expect("an honest block builds");
        assert_eq!(check_block_peg(chain, &state, Some(snap), 1, &prev, &block), Ok(()), "height {h}");
        store.apply(&outcome.write_set);
        if anchor.height >= BtcHeight(1) {
            return h;
        }
    }
    panic!("the anchor did not reach BTC block 1 within {bound} blocks");
}

fn assert_each_minted_once(store: &MemStore, height: u64, mints: &[MintTx]) {
    let s = store.snapshot(height);
    for m in mints {
        assert_eq!(s.get_pegin(&m.outpoint).expect("read").expect("recorded").amount, m.amount);
    }
    let t = s.peg_totals().expect("totals");
    assert_eq!(t.deposits, mints.len() as u64, "each output recorded exactly once");
    assert_eq!(t.btc_held, mints.iter().map(|m| m.amount).sum::<bitcoin::Amount>());
    assert_eq!(ledger::peg_cursor(&s).expect("read"), None, "the anchor passed the early items' block");
}

#[test]
fn a_btc_block_with_three_blocks_worth_of_deposits_is_anchored_within_a_bound() {
    let (chain, mut store, snap, mints) = flooded(15, 5, 4 * 1024 * 1024, 10);
    // The move does not fit one block of 5.
    let state = store.snapshot(1);
    let wanted = from_peg((5, bitcoin::BlockHash::from_byte_array([5; 32])));
    let room = Room::after(&chain, &[]);
    assert!(anchor_with_plan(&chain, &state, &snap, 1, &BtcAnchor::default(), &wanted, Height(2), room).is_none());
    // Validators plan the move only as far as a whole block holds: a block moving there with the first 5
    // (all a block can carry) is refused as too large, not accepted for lack of a check on the rest.
    let first: Vec<Tx> = mints[..5].iter().cloned().map(Tx::Mint).collect();
    let why = check_block_peg(&chain, &state, Some(&snap), 1, &BtcAnchor::default(), &block(1, first)).unwrap_err();
    assert_eq!(why, PegObjection::MoveTooLarge { btc_height: 1, at_least: 6 });
    // 15 outputs, 5 a block: two blocks of early mints, then the move with the last 5.
    let moved_at = run_until_anchored(&chain, &mut store, &snap, 4);
    assert_eq!(moved_at, 4);
    assert_each_minted_once(&store, moved_at, &mints);
}

#[test]
fn what_fits_counts_bytes_as_well_as_transactions() {
    // Room for 100 transactions but only 1 KiB: 15 mints (about 120 bytes each) do not fit one block.
    let (chain, mut store, snap, mints) = flooded(15, 100, 1024, 10);
    let state = store.snapshot(1);
    let wanted = from_peg((5, bitcoin::BlockHash::from_byte_array([5; 32])));
    let room = Room::after(&chain, &[]);
    assert!(anchor_with_plan(&chain, &state, &snap, 1, &BtcAnchor::default(), &wanted, Height(2), room).is_none());
    let early = early_plan(&chain, &state, &snap, 1, &BtcAnchor::default(), &wanted, Height(2), room).expect("early");
    assert!(
        early.len() < 15 && early.encoded_len() <= room.bytes,
        "{} items, {} bytes",
        early.len(),
        early.encoded_len()
    );
    let moved_at = run_until_anchored(&chain, &mut store, &snap, 3);
    assert_each_minted_once(&store, moved_at, &mints);
}

#[test]
fn validators_accept_early_items_only_when_their_bitcoind_shows_them_n_deep() {
    let (chain, store, snap, mints) = flooded(6, 5, 4 * 1024 * 1024, 10);
    let state = store.snapshot(1);
    let early = |txs: Vec<Tx>| block(0, txs);
    let one = vec![Tx::Mint(mints[0].clone())];
    let mut b = early(one.clone());
    b.header.btc_anchor = BtcAnchor::default();
    assert_eq!(check_block_peg(&chain, &state, Some(&snap), 1, &BtcAnchor::default(), &b), Ok(()));
    // Optional: keeping the anchor with none of them is fine too.
    assert_eq!(check_block_peg(&chain, &state, Some(&snap), 1, &BtcAnchor::default(), &early(vec![])), Ok(()));
    // Our bitcoind has block 1 only 3 deep (N = 6): not yet.
    let (_, _, shallow, _) = flooded(6, 5, 4 * 1024 * 1024, 3);
    let why = check_block_peg(&chain, &state, Some(&shallow), 1, &BtcAnchor::default(), &early(one)).unwrap_err();
    assert!(matches!(why, PegObjection::EarlyNotDeep { btc_height: 1, .. }), "{why}");
    // An output our index does not hold there.
    let mut fake = mints[0].clone();
    fake.amount = bitcoin::Amount::from_sat(1_000_000);
    let why = check_block_peg(&chain, &state, Some(&snap), 1, &BtcAnchor::default(), &early(vec![Tx::Mint(fake)]))
        .unwrap_err();
    assert!(matches!(why, PegObjection::UnconfirmedMint { .. }), "{why}");
    // Without a bitcoind a validator cannot tell.
    let why = check_block_peg(&chain, &state, None, 1, &BtcAnchor::default(), &b).unwrap_err();
    assert_eq!(why, PegObjection::NoBitcoind);
}

#[test]
fn late_settlements_are_proposed_and_accepted_only_as_our_bitcoind_shows_them() {
    // A batch in flight whose version our bitcoind shows at or below the anchor (as after a resume to an
    // anchor above the block that confirmed it on the new branch).
    let mut g = testkit::genesis(4, 2, bitcoin::Amount::from_sat(1_000_000));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    let chain = Chain::new(g).expect("valid genesis");
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).expect("in memory"));
    let at = |h: u32, b: u8| from_peg((h, bitcoin::BlockHash::from_byte_array([b; 32])));
    let anchor = at(5, 5);
    let funding = MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([1; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: bitcoin::Amount::from_sat(400_000),
        btc_block: at(1, 1),
        epoch: 0,
        kind: MintKind::Deposit,
        coinbase: false,
    };
    let script = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]));
    let k = user_key(0);
    let kind = UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount: bitcoin::Amount::from_sat(50_000) };
    let fee = ledger::pegout::required_pegout_fee(&chain, &script);
    let pegout = UserTx { signer: k.public(), nonce: 0, fee, kind }.sign(&k, chain.genesis_hash());
    for (h, txs) in [(1u64, vec![Tx::Mint(funding), pegout.into()]), (2, vec![])] {
        let template = ledger::BlockTemplate {
            height: Height(h),
            prev_hash: BlockId::ZERO,
            time_ms: chain.genesis().genesis_time_ms + h,
            proposer: ValidatorIndex(0),
            btc_anchor: anchor,
            last_commit_hash: Hash32::ZERO,
        };
        let (_, outcome) = ledger::build_block(&chain, &store, template, txs).expect("block");
        store.apply(&outcome.write_set);
    }
    let state = store.snapshot(2);
    let b = ledger::batching::batch(&state, 0).expect("read").expect("batch 0 in flight");
    let mut snap = BtcSnapshot { best: Some(20), registry_version: 0, ..BtcSnapshot::default() };
    snap.batch_confirmations.insert(b.txid, at(4, 0xb4));

    // The proposer adds it (next to nothing else); a validator whose bitcoind shows it accepts it.
    let room = Room::after(&chain, &[]);
    let late = late_settles(&state, &snap, Height(3), &anchor, &PegPlan::default(), room);
    assert_eq!(late, vec![ledger::SettleTx { batch: 0, txid: b.txid, btc_block: at(4, 0xb4) }]);
    let mut blk = block(5, late.iter().cloned().map(Tx::Settle).collect());
    blk.header.btc_anchor = anchor;
    assert_eq!(check_block_peg(&chain, &state, Some(&snap), 0, &anchor, &blk), Ok(()));
    // No room, or already settled by the plan: none.
    assert!(late_settles(&state, &snap, Height(3), &anchor, &PegPlan::default(), Room { txs: 0, ..room }).is_empty());
    let settling = PegPlan { settles: late.clone(), ..PegPlan::default() };
    assert!(late_settles(&state, &snap, Height(3), &anchor, &settling, room).is_empty());
    // Above the block's anchor it is not late (a move must cover it).
    let mut above = snap.clone();
    above.batch_confirmations.insert(b.txid, at(6, 0xb6));
    assert!(late_settles(&state, &above, Height(3), &anchor, &PegPlan::default(), room).is_empty());
    // A validator whose bitcoind does not show it there (elsewhere, or not at all) objects.
    let mut elsewhere = snap.clone();
    elsewhere.batch_confirmations.insert(b.txid, at(3, 0xb3));
    for other in [elsewhere, BtcSnapshot { best: Some(20), ..BtcSnapshot::default() }] {
        let why = check_block_peg(&chain, &state, Some(&other), 0, &anchor, &blk).unwrap_err();
        assert!(matches!(why, PegObjection::UnknownSettle { batch: 0, btc_height: 4 }), "{why}");
    }
    // And the block applies: the batch is settled.
    let template = ledger::BlockTemplate {
        height: Height(3),
        prev_hash: BlockId::ZERO,
        time_ms: chain.genesis().genesis_time_ms + 3,
        proposer: ValidatorIndex(0),
        btc_anchor: anchor,
        last_commit_hash: Hash32::ZERO,
    };
    let (_, outcome) = ledger::build_block(&chain, &store, template, blk.txs.clone()).expect("a late settle applies");
    store.apply(&outcome.write_set);
    assert!(ledger::batching::batch_index(&store.snapshot(3)).expect("read").in_flight.is_empty());
}
