//! Peg-in execution: registrations, mints exactly once, the fee split, below-minimum deposits, anchor bounds
//! and conservation (`supply - genesis supply == minted + fees`, `btc_held == minted + fees + below minimum`).

use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use primitives::{AccountId, BlockId, BtcHeight, Hash32, Height, ValidatorIndex};
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    build_block, execute_block, fee_pool_id, BlockError, BlockTemplate, BtcAnchor, BtcOutPoint, Chain, MemStore,
    MintTx, StateReader, Tx, TxError, UserTx, UserTxKind,
};

const BAL: u64 = 50_000;

fn anchor(h: u32) -> BtcAnchor {
    BtcAnchor { height: BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([h as u8; 32]) }
}

fn template(chain: &Chain, h: u64, btc: u32) -> BlockTemplate {
    BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: anchor(btc),
        last_commit_hash: Hash32::ZERO,
    }
}

fn mint(n: u8, recipient: AccountId, sats: u64, btc: u32) -> MintTx {
    MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: u32::from(n) },
        recipient,
        amount: Amount::from_sat(sats),
        btc_block: anchor(btc),
        epoch: 0,
        kind: sidechain_ledger::MintKind::Deposit,
        coinbase: false,
    }
}

/// `user`'s registration paying exactly the registration fee.
fn register(chain: &Chain, user: u32, nonce: u64) -> Tx {
    register_paying(chain, user, nonce, chain.params().registration_fee)
}

fn register_paying(chain: &Chain, user: u32, nonce: u64, fee: Amount) -> Tx {
    let k = user_key(user);
    UserTx { signer: k.public(), nonce, fee, kind: UserTxKind::RegisterDeposit }.sign(&k, chain.genesis_hash()).into()
}

/// User 0 (nonce `funder_nonce`) pays `user` exactly the registration fee, then `user` registers with it
/// (its nonce 0): the user ends with nothing, the fee pool with both fees.
fn funded_register(chain: &Chain, user: u32, funder_nonce: u64) -> Vec<Tx> {
    let (fee, to) = (chain.params().registration_fee, user_key(user).public().account_id());
    let pay = testkit::transfer(chain, &user_key(0), funder_nonce, to, fee, chain.params().min_fee);
    vec![pay.into(), register(chain, user, 0)]
}

/// Builds block `h` (anchor `btc`) from `txs`, has a second store execute it as a validator would, applies it.
fn commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) -> Result<(), BlockError> {
    let (block, outcome) = build_block(chain, store, template(chain, h, btc), txs)?;
    assert_eq!(execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
    Ok(())
}

fn balance(store: &MemStore, v: u64, id: &AccountId) -> Amount {
    store.snapshot(v).get_account(id).unwrap().unwrap_or_default().balance
}

#[test]
fn mint_credits_recipient_minus_fee_exactly_once() {
    let (chain, mut store) = testkit::chain_and_store(4, 2, Amount::from_sat(BAL));
    let fee = chain.pegin_fee();
    // 3-of-4 input is 132 vB; at the default 2 sat/vB the fee is 264 sat.
    assert_eq!(fee, Amount::from_sat(264));
    let r = user_key(9).public().account_id();
    commit(&chain, &mut store, 1, 0, funded_register(&chain, 9, 0)).unwrap();
    let reg = store.snapshot(1).get_registration(&r).unwrap().expect("registered");
    assert_eq!(reg.expires_at, Height(1 + chain.params().registration_ttl));
    let pool = balance(&store, 1, &fee_pool_id());
    assert_eq!(pool, chain.params().registration_fee + chain.params().min_fee, "the registration paid its fee");
    commit(&chain, &mut store, 2, 3, vec![Tx::Mint(mint(1, r, 100_000, 2))]).unwrap();
    assert_eq!(balance(&store, 2, &r), Amount::from_sat(100_000) - fee);
    assert_eq!(balance(&store, 2, &fee_pool_id()), pool + fee);
    let snap = store.snapshot(2);
    let rec = snap.get_pegin(&mint(1, r, 0, 0).outpoint).unwrap().expect("recorded");
    assert_eq!((rec.credited, rec.fee, rec.minted_at), (Amount::from_sat(100_000) - fee, fee, Height(2)));
    let utxo = snap.get_federation_utxo(&rec_outpoint(1)).unwrap().expect("federation utxo");
    assert_eq!((utxo.amount, utxo.tweak), (Amount::from_sat(100_000), Some(r)));
    // The same outpoint again, in a later block or twice in one: refused.
    let again = commit(&chain, &mut store, 3, 3, vec![Tx::Mint(mint(1, r, 100_000, 2))]);
    assert!(matches!(again, Err(BlockError::InvalidTx { source: TxError::AlreadyMinted { .. }, .. })), "{again:?}");
    let twice =
        commit(&chain, &mut store, 3, 3, vec![Tx::Mint(mint(2, r, 50_000, 3)), Tx::Mint(mint(2, r, 50_000, 3))]);
    assert!(matches!(twice, Err(BlockError::InvalidTx { index: 1, source: TxError::AlreadyMinted { .. }, .. })));
}

fn rec_outpoint(n: u8) -> BtcOutPoint {
    BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: u32::from(n) }
}

#[test]
fn below_minimum_is_held_not_minted_and_totals_conserve() {
    let (chain, mut store) = testkit::chain_and_store(4, 2, Amount::from_sat(BAL));
    let fee = chain.pegin_fee();
    let r = user_key(7).public().account_id();
    let genesis_supply = store.snapshot(0).peg_totals().unwrap().supply;
    assert_eq!(genesis_supply, Amount::from_sat(2 * BAL));
    let min = chain.params().pegin_min_amount.to_sat();
    let mints = vec![Tx::Mint(mint(1, r, min - 1, 1)), Tx::Mint(mint(2, r, min, 1)), Tx::Mint(mint(3, r, 7 * min, 2))];
    commit(&chain, &mut store, 1, 2, mints).unwrap();
    let snap = store.snapshot(1);
    let t = snap.peg_totals().unwrap();
    assert!(snap.get_pegin(&rec_outpoint(1)).unwrap().unwrap().below_minimum());
    assert_eq!(t.below_minimum, Amount::from_sat(min - 1));
    assert_eq!(t.btc_held, Amount::from_sat(min - 1 + min + 7 * min));
    assert_eq!(t.minted, Amount::from_sat(8 * min) - fee - fee);
    assert_eq!(t.pegin_fees, fee + fee);
    assert_eq!(t.deposits, 3);
    assert_eq!(balance(&store, 1, &r), t.minted);
    assert_eq!(t.supply, genesis_supply + t.minted + t.pegin_fees);
    assert_eq!(t.btc_held, t.minted + t.pegin_fees + t.below_minimum);
    let users: Amount = (0..2).map(|i| balance(&store, 1, &user_key(i).public().account_id())).sum();
    assert_eq!(users + balance(&store, 1, &r) + balance(&store, 1, &fee_pool_id()), t.supply);
}

#[test]
fn mint_must_be_covered_by_the_anchor() {
    let (chain, mut store) = testkit::chain_and_store(4, 1, Amount::from_sat(BAL));
    let r = user_key(5).public().account_id();
    // Two above the anchor (one above is an early mint: see the peg liveness tests).
    let above = commit(&chain, &mut store, 1, 2, vec![Tx::Mint(mint(1, r, 50_000, 4))]);
    assert!(matches!(above, Err(BlockError::InvalidTx { source: TxError::MintAboveAnchor { .. }, .. })), "{above:?}");
    let mut other_branch = mint(1, r, 50_000, 2);
    other_branch.btc_block.hash = bitcoin::BlockHash::from_byte_array([0xee; 32]);
    let fork = commit(&chain, &mut store, 1, 2, vec![Tx::Mint(other_branch)]);
    assert!(matches!(fork, Err(BlockError::InvalidTx { source: TxError::MintNotInAnchoredChain { .. }, .. })));
    let at_genesis = commit(&chain, &mut store, 1, 2, vec![Tx::Mint(mint(1, r, 50_000, 0))]);
    assert!(matches!(at_genesis, Err(BlockError::InvalidTx { source: TxError::MintBeforeGenesisAnchor { .. }, .. })));
    let zero = commit(&chain, &mut store, 1, 2, vec![Tx::Mint(mint(1, r, 0, 1))]);
    assert!(matches!(zero, Err(BlockError::InvalidTx { source: TxError::BadMintAmount(_), .. })));
    // Nothing of the refused blocks was written.
    assert!(store.latest_version() == Some(0));
}

#[test]
fn registration_costs_its_fee_is_bounded_and_renewed_by_mints() {
    let (chain, mut store) = testkit::chain_and_store(4, 1, Amount::from_sat(BAL));
    let ttl = chain.params().registration_ttl;
    let reg_fee = chain.params().registration_fee;
    let r = user_key(3).public().account_id();
    // Finding 4: registration is not free. Below the registration fee (a zero fee, or the plain `min_fee`)
    // it is refused with the typed reason, whatever the sender holds; nothing is written.
    let pay = |nonce, amount| -> Tx {
        testkit::transfer(&chain, &user_key(0), nonce, r, amount, chain.params().min_fee).into()
    };
    for fee in [Amount::ZERO, chain.params().min_fee, reg_fee - Amount::ONE_SAT] {
        let cheap = commit(&chain, &mut store, 1, 0, vec![pay(0, reg_fee), register_paying(&chain, 3, 0, fee)]);
        match cheap {
            Err(BlockError::InvalidTx { source: TxError::RegistrationFeeTooLow { fee: f, min }, .. }) => {
                assert_eq!((f, min), (fee, reg_fee));
            }
            other => panic!("a registration paying {fee} went through: {other:?}"),
        }
    }
    assert_eq!(store.latest_version(), Some(0));
    // An account with nothing cannot register: its deposits come in through a claim instead.
    let broke = commit(&chain, &mut store, 1, 0, vec![register(&chain, 11, 0)]);
    assert!(matches!(broke, Err(BlockError::InvalidTx { source: TxError::InsufficientBalance { .. }, .. })));
    // Paying the fee works; the fee goes to the pool like any fee.
    let pool = balance(&store, 0, &fee_pool_id());
    commit(&chain, &mut store, 1, 0, vec![pay(0, reg_fee + reg_fee), register(&chain, 3, 0)]).unwrap();
    assert_eq!(balance(&store, 1, &fee_pool_id()), pool + chain.params().min_fee + reg_fee);
    assert_eq!(balance(&store, 1, &r), reg_fee);
    // Refreshing while more than half the life is left is refused, fee paid or not (a paid registration is
    // still not a way to fill blocks).
    let early = commit(&chain, &mut store, 2, 0, vec![register(&chain, 3, 1)]);
    assert!(matches!(early, Err(BlockError::InvalidTx { source: TxError::RegistrationStillLive { .. }, .. })));
    commit(&chain, &mut store, 2, 1, vec![Tx::Mint(mint(4, r, 20_000, 1))]).unwrap();
    let reg = store.snapshot(2).get_registration(&r).unwrap().unwrap();
    assert_eq!(reg.expires_at, Height(2 + ttl), "a mint renews the registration");
    assert!(reg.is_live_at(Height(2 + ttl)) && !reg.is_live_at(Height(3 + ttl)));
}

fn vtx(chain: &Chain, validator: u32, height: u64, kind: sidechain_ledger::ValidatorTxKind) -> Tx {
    sidechain_ledger::ValidatorTx { validator: ValidatorIndex(validator as u16), height: Height(height), kind }
        .sign(&testkit::validator_key(validator), chain.genesis_hash())
        .into()
}

#[test]
fn f_plus_one_reorg_reports_halt_the_peg_and_two_f_plus_one_resume_it() {
    use sidechain_ledger::ValidatorTxKind::{ReportReorg, ResumePeg};
    let (chain, mut store) = testkit::chain_and_store(4, 1, Amount::from_sat(BAL));
    let r = user_key(5).public().account_id();
    commit(&chain, &mut store, 1, 3, vec![]).unwrap();
    // One report (f = 1) does not halt; a second report from the same validator is refused.
    commit(&chain, &mut store, 2, 3, vec![vtx(&chain, 0, 2, ReportReorg { anchor: anchor(3) })]).unwrap();
    assert!(!sidechain_ledger::peg_halt(&store.snapshot(2)).unwrap().is_halted());
    let dup = commit(&chain, &mut store, 3, 3, vec![vtx(&chain, 0, 3, ReportReorg { anchor: anchor(3) })]);
    assert!(matches!(dup, Err(BlockError::InvalidTx { source: TxError::AlreadyVoted { .. }, .. })), "{dup:?}");
    // A report about another anchor, for another height, or with a bad signature: refused.
    let other = commit(&chain, &mut store, 3, 3, vec![vtx(&chain, 1, 3, ReportReorg { anchor: anchor(2) })]);
    assert!(matches!(other, Err(BlockError::InvalidTx { source: TxError::ReportNotForAnchorInForce { .. }, .. })));
    let stale = commit(&chain, &mut store, 3, 3, vec![vtx(&chain, 1, 2, ReportReorg { anchor: anchor(3) })]);
    assert!(matches!(stale, Err(BlockError::InvalidTx { source: TxError::ValidatorTxWrongHeight { .. }, .. })));
    let mut forged = vtx(&chain, 1, 3, ReportReorg { anchor: anchor(3) });
    if let Tx::Validator(v) = &mut forged {
        v.tx.validator = ValidatorIndex(2);
    }
    assert!(matches!(commit(&chain, &mut store, 3, 3, vec![forged]), Err(BlockError::BadSignature { .. })));
    // f + 1 = 2 reports: halted. The anchor may not move and nothing is minted; transfers go on.
    commit(&chain, &mut store, 3, 3, vec![vtx(&chain, 1, 3, ReportReorg { anchor: anchor(3) })]).unwrap();
    assert_eq!(sidechain_ledger::peg_halt(&store.snapshot(3)).unwrap().halted_at, Some(Height(3)));
    let moved = commit(&chain, &mut store, 4, 4, vec![]);
    assert!(matches!(moved, Err(BlockError::AnchorWhileHalted { .. })), "{moved:?}");
    let minted = commit(&chain, &mut store, 4, 3, vec![Tx::Mint(mint(1, r, 50_000, 2))]);
    assert!(matches!(minted, Err(BlockError::InvalidTx { source: TxError::PegHalted, .. })), "{minted:?}");
    let pay = testkit::transfer(&chain, &user_key(0), 0, r, Amount::from_sat(1_000), Amount::from_sat(100));
    commit(&chain, &mut store, 4, 3, vec![pay.into()]).unwrap();
    // Resume: 2f + 1 = 3 votes for one anchor (a lower one, on the new branch); split votes do not count.
    let new_branch = BtcAnchor { height: BtcHeight(2), hash: bitcoin::BlockHash::from_byte_array([0xbb; 32]) };
    let votes = vec![
        vtx(&chain, 0, 5, ResumePeg { anchor: new_branch }),
        vtx(&chain, 1, 5, ResumePeg { anchor: anchor(2) }),
        vtx(&chain, 2, 5, ResumePeg { anchor: new_branch }),
    ];
    commit(&chain, &mut store, 5, 3, votes).unwrap();
    assert!(sidechain_ledger::peg_halt(&store.snapshot(5)).unwrap().is_halted(), "2 of 3 needed for one anchor");
    commit(&chain, &mut store, 6, 3, vec![vtx(&chain, 3, 6, ResumePeg { anchor: new_branch })]).unwrap();
    let halt = sidechain_ledger::peg_halt(&store.snapshot(6)).unwrap();
    assert!(!halt.is_halted() && halt.resume_to == Some(new_branch));
    // The next block must take exactly the agreed anchor, then the peg runs again from there.
    let wrong = commit(&chain, &mut store, 7, 3, vec![]);
    assert!(matches!(wrong, Err(BlockError::ResumeAnchorMismatch { .. })), "{wrong:?}");
    let (block, outcome) =
        build_block(&chain, &store, BlockTemplate { btc_anchor: new_branch, ..template(&chain, 7, 0) }, vec![])
            .unwrap();
    assert_eq!(execute_block(&chain, &store, &block).unwrap(), outcome);
    store.apply(&outcome.write_set);
    assert_eq!(sidechain_ledger::peg_halt(&store.snapshot(7)).unwrap(), sidechain_ledger::PegHalt::default());
    let mut m = mint(2, r, 50_000, 2);
    m.btc_block = new_branch;
    let (block, outcome) = build_block(
        &chain,
        &store,
        BlockTemplate { btc_anchor: new_branch, ..template(&chain, 8, 0) },
        vec![Tx::Mint(m)],
    )
    .unwrap();
    assert_eq!(execute_block(&chain, &store, &block).unwrap(), outcome);
}
