//! One test per `TxError` and `BlockError` path, plus all-or-nothing and self-transfer semantics.

use super::*;
use crate::genesis::Params;
use crate::select::select_txs;
use crate::state::{Account, MemStore};
use crate::testkit::{self, transfer, user_key};
use bitcoin::hashes::Hash as _;
use primitives::Keypair;
use primitives::{BtcHeight, Round};
use std::collections::BTreeMap;

const BAL: u64 = 1_000_000;
const FEE: Amount = Amount::from_sat(100);

fn sats(n: u64) -> Amount {
    Amount::from_sat(n)
}

fn setup() -> (Chain, MemStore) {
    testkit::chain_and_store(4, 3, sats(BAL))
}

fn with_params(f: impl FnOnce(&mut Params)) -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 3, sats(BAL));
    f(&mut g.params);
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

fn acct(i: u32) -> AccountId {
    user_key(i).public().account_id()
}

fn template(chain: &Chain, h: u64) -> BlockTemplate {
    BlockTemplate {
        height: Height(h),
        prev_hash: BlockId::ZERO,
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: BtcAnchor::default(),
        last_commit_hash: Hash32::ZERO,
    }
}

fn pay(chain: &Chain, from: u32, nonce: u64, to: u32, amount: u64) -> SignedUserTx {
    transfer(chain, &user_key(from), nonce, acct(to), sats(amount), FEE)
}

/// A state made of a map, to reach balances genesis would never allow.
struct MapState(BTreeMap<AccountId, Account>, bool);

impl StateReader for MapState {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        if self.1 {
            return Err(StateError::Backend("disk on fire".into()));
        }
        Ok(match key {
            StateKey::Account(id) => self.0.get(id).map(canonical_bytes),
            _ => None,
        })
    }
}

fn map_state(entries: &[(AccountId, u64, u64)]) -> MapState {
    MapState(
        entries.iter().map(|(id, bal, nonce)| (*id, Account { balance: sats(*bal), nonce: *nonce })).collect(),
        false,
    )
}

#[test]
fn valid_transfer_passes_check_tx() {
    let (chain, store) = setup();
    assert_eq!(check_tx(&chain, &store.snapshot(0), &pay(&chain, 0, 0, 1, 500)), Ok(()));
}

#[test]
fn tx_error_bad_signature_on_altered_tx_or_other_chain() {
    let (chain, store) = setup();
    let mut t = pay(&chain, 0, 0, 1, 500);
    t.tx.fee = sats(101);
    assert!(matches!(check_tx(&chain, &store.snapshot(0), &t), Err(TxError::BadSignature(SignatureError::Invalid(_)))));
    let other = Chain::new(testkit::genesis(3, 3, sats(BAL))).unwrap();
    let foreign = pay(&other, 0, 0, 1, 500);
    assert!(matches!(check_tx(&chain, &store.snapshot(0), &foreign), Err(TxError::BadSignature(_))));
}

#[test]
fn tx_error_zero_amount() {
    let (chain, store) = setup();
    let t = pay(&chain, 0, 0, 1, 0);
    assert_eq!(check_tx(&chain, &store.snapshot(0), &t), Err(TxError::ZeroAmount));
}

#[test]
fn tx_error_fee_too_low() {
    let (chain, store) = setup();
    let t = transfer(&chain, &user_key(0), 0, acct(1), sats(5), sats(99));
    assert_eq!(check_tx(&chain, &store.snapshot(0), &t), Err(TxError::FeeTooLow { fee: sats(99), min: FEE }));
}

#[test]
fn tx_error_bad_nonce_replay_and_gap() {
    let (chain, store) = setup();
    let t = pay(&chain, 0, 1, 1, 5);
    assert_eq!(
        check_tx(&chain, &store.snapshot(0), &t),
        Err(TxError::BadNonce { account: acct(0), expected: 0, got: 1 })
    );
    // Replay of an applied transaction.
    let (block, outcome) =
        build_block(&chain, &store, template(&chain, 1), vec![pay(&chain, 0, 0, 1, 5).into()]).unwrap();
    assert_eq!(block.txs.len(), 1);
    let mut store = store;
    store.apply(&outcome.write_set);
    assert!(matches!(
        check_tx(&chain, &store.snapshot(1), &pay(&chain, 0, 0, 1, 5)),
        Err(TxError::BadNonce { expected: 1, got: 0, .. })
    ));
}

#[test]
fn tx_error_amount_overflow() {
    let (chain, store) = setup();
    let t = transfer(&chain, &user_key(0), 0, acct(1), Amount::MAX, FEE);
    assert_eq!(
        check_tx(&chain, &store.snapshot(0), &t),
        Err(TxError::AmountOverflow { amount: Amount::MAX, fee: FEE })
    );
}

#[test]
fn tx_error_insufficient_balance() {
    let (chain, store) = setup();
    let t = pay(&chain, 0, 0, 1, BAL);
    assert_eq!(
        check_tx(&chain, &store.snapshot(0), &t),
        Err(TxError::InsufficientBalance { account: acct(0), balance: sats(BAL), needed: sats(BAL + 100) })
    );
    // A key that never received anything.
    let t = transfer(&chain, &user_key(99), 0, acct(1), sats(1), FEE);
    assert!(matches!(
        check_tx(&chain, &store.snapshot(0), &t),
        Err(TxError::InsufficientBalance { balance, .. }) if balance == Amount::ZERO
    ));
}

#[test]
fn tx_error_balance_overflow_for_recipient_and_fee_pool() {
    let (chain, _) = setup();
    let max = Amount::MAX_MONEY.to_sat();
    let state = map_state(&[(acct(0), 1_000, 0), (acct(1), max, 0)]);
    assert_eq!(
        check_tx(&chain, &state, &pay(&chain, 0, 0, 1, 1)),
        Err(TxError::BalanceOverflow { account: acct(1), amount: sats(1) })
    );
    let state = map_state(&[(acct(0), 1_000, 0), (fee_pool_id(), max, 0)]);
    assert_eq!(
        check_tx(&chain, &state, &pay(&chain, 0, 0, 1, 1)),
        Err(TxError::BalanceOverflow { account: fee_pool_id(), amount: FEE })
    );
}

#[test]
fn tx_error_nonce_exhausted() {
    let (chain, _) = setup();
    let state = map_state(&[(acct(0), 1_000, u64::MAX)]);
    assert_eq!(check_tx(&chain, &state, &pay(&chain, 0, u64::MAX, 1, 1)), Err(TxError::NonceExhausted(acct(0))));
}

#[test]
fn tx_error_state_backend() {
    let (chain, _) = setup();
    let state = MapState(BTreeMap::new(), true);
    assert!(matches!(check_tx(&chain, &state, &pay(&chain, 0, 0, 1, 1)), Err(TxError::State(StateError::Backend(_)))));
}

#[test]
fn failed_apply_leaves_overlay_unchanged_and_self_transfer_costs_the_fee() {
    let (chain, _) = setup();
    let max = Amount::MAX_MONEY.to_sat();
    let state = map_state(&[(acct(0), 1_000, 0), (acct(1), max, 0)]);
    let mut o = Overlay::new(&state);
    assert!(o.apply_user_tx(&chain, &pay(&chain, 0, 0, 1, 1)).is_err());
    assert_eq!(o.account(&acct(0)).unwrap().balance, sats(1_000));
    assert_eq!(o.account(&acct(0)).unwrap().nonce, 0);
    let r = o.apply_user_tx(&chain, &pay(&chain, 0, 0, 0, 400)).unwrap();
    assert_eq!(r.fee, FEE);
    let a = o.account(&acct(0)).unwrap();
    assert_eq!((a.balance, a.nonce), (sats(900), 1));
    assert_eq!(o.account(&fee_pool_id()).unwrap().balance, FEE);
    // The overlay reads through as a StateReader too (mempool chaining).
    assert_eq!(o.get_account(&acct(0)).unwrap(), Some(a));
}

fn built(chain: &Chain, store: &MemStore, h: u64, txs: Vec<SignedUserTx>) -> Block {
    let txs = txs.into_iter().map(Tx::from).collect();
    build_block(chain, store, template(chain, h), txs).unwrap().0
}

fn reroot(mut b: Block) -> Block {
    b.header.tx_root = b.compute_tx_root();
    b
}

#[test]
fn built_block_executes_to_the_same_outcome() {
    let (chain, store) = setup();
    let txs = vec![pay(&chain, 0, 0, 1, 10), pay(&chain, 0, 1, 2, 10)];
    let (block, outcome) =
        build_block(&chain, &store, template(&chain, 1), txs.into_iter().map(Tx::from).collect()).unwrap();
    assert_eq!(execute_block(&chain, &store, &block), Ok(outcome.clone()));
    assert_eq!(outcome.receipts.len(), 2);
    assert_eq!(outcome.meta.height, Height(1));
    // Empty blocks are fine and still get their own version.
    let mut store = store;
    store.apply(&outcome.write_set);
    let empty = built(&chain, &store, 2, vec![]);
    let o2 = execute_block(&chain, &store, &empty).unwrap();
    assert_ne!(o2.state_root, outcome.state_root);
}

#[test]
fn block_error_wrong_genesis() {
    let (chain, store) = setup();
    let mut b = built(&chain, &store, 1, vec![]);
    b.header.genesis_hash = GenesisHash(Hash32([7; 32]));
    assert!(matches!(execute_block(&chain, &store, &b), Err(BlockError::WrongGenesis { .. })));
}

#[test]
fn block_error_wrong_height() {
    let (chain, store) = setup();
    let mut b = built(&chain, &store, 1, vec![]);
    b.header.height = Height(0);
    assert_eq!(execute_block(&chain, &store, &b), Err(BlockError::WrongHeight { expected: Height(1), got: Height(0) }));
    // Height 2 on a store at genesis reads meta at version 1, which holds genesis meta.
    b.header.height = Height(2);
    assert_eq!(execute_block(&chain, &store, &b), Err(BlockError::WrongHeight { expected: Height(1), got: Height(2) }));
}

#[test]
fn block_error_time_not_increasing() {
    let (chain, store) = setup();
    let mut b = built(&chain, &store, 1, vec![]);
    b.header.time_ms = chain.genesis().genesis_time_ms;
    assert!(matches!(execute_block(&chain, &store, &b), Err(BlockError::TimeNotIncreasing { .. })));
}

#[test]
fn block_error_unknown_proposer() {
    let (chain, store) = setup();
    let mut b = built(&chain, &store, 1, vec![]);
    b.header.proposer = ValidatorIndex(4);
    assert_eq!(
        execute_block(&chain, &store, &b),
        Err(BlockError::UnknownProposer { proposer: ValidatorIndex(4), validators: 4 })
    );
}

#[test]
fn block_error_anchor_rules() {
    let (chain, mut store) = setup();
    let mut t = template(&chain, 1);
    t.btc_anchor = BtcAnchor { height: BtcHeight(5), hash: bitcoin::BlockHash::from_byte_array([5; 32]) };
    let (b1, o1) = build_block(&chain, &store, t, vec![]).unwrap();
    assert_eq!(execute_block(&chain, &store, &b1), Ok(o1.clone()));
    store.apply(&o1.write_set);
    // A template that keeps the genesis anchor goes backwards: rejected while building too.
    assert!(matches!(
        build_block(&chain, &store, template(&chain, 2), vec![]),
        Err(BlockError::AnchorBackwards { .. })
    ));
    let mut b = b1.clone();
    b.header.height = Height(2);
    b.header.time_ms += 1;
    b.header.btc_anchor.height = BtcHeight(4);
    assert_eq!(
        execute_block(&chain, &store, &b),
        Err(BlockError::AnchorBackwards { prev: BtcHeight(5), got: BtcHeight(4) })
    );
    b.header.btc_anchor.height = BtcHeight(16);
    assert_eq!(
        execute_block(&chain, &store, &b),
        Err(BlockError::AnchorStepTooLarge { prev: BtcHeight(5), got: BtcHeight(16), max: 10 })
    );
    b.header.btc_anchor = BtcAnchor { height: BtcHeight(5), hash: bitcoin::BlockHash::from_byte_array([6; 32]) };
    assert!(matches!(execute_block(&chain, &store, &b), Err(BlockError::AnchorHashChanged { .. })));
}

#[test]
fn block_error_too_many_txs_and_too_large() {
    let (chain, store) = with_params(|p| p.block_max_txs = 1);
    let txs: Vec<Tx> = vec![pay(&chain, 0, 0, 1, 1).into(), pay(&chain, 1, 0, 2, 1).into()];
    assert_eq!(build_block(&chain, &store, template(&chain, 1), txs), Err(BlockError::TooManyTxs { count: 2, max: 1 }));
    let (chain, store) = with_params(|p| p.block_max_bytes = 1024);
    let txs: Vec<Tx> = (0..7).map(|n| pay(&chain, 0, n, 1, 1).into()).collect();
    let bytes = txs_encoded_len(&txs);
    assert!(bytes > 1024);
    assert_eq!(build_block(&chain, &store, template(&chain, 1), txs), Err(BlockError::TooLarge { bytes, max: 1024 }));
}

#[test]
fn block_error_tx_root_mismatch() {
    let (chain, store) = setup();
    let mut b = built(&chain, &store, 1, vec![pay(&chain, 0, 0, 1, 1)]);
    b.header.tx_root = Hash32::ZERO;
    assert!(matches!(execute_block(&chain, &store, &b), Err(BlockError::TxRootMismatch { .. })));
}

#[test]
fn block_error_state_root_mismatch() {
    let (chain, store) = setup();
    let mut b = built(&chain, &store, 1, vec![pay(&chain, 0, 0, 1, 1)]);
    let real = b.header.state_root;
    b.header.state_root = StateRoot::ZERO;
    assert_eq!(
        execute_block(&chain, &store, &b),
        Err(BlockError::StateRootMismatch { header: StateRoot::ZERO, computed: real })
    );
}

#[test]
fn block_error_bad_signature_names_the_tx() {
    let (chain, store) = setup();
    let mut b =
        built(&chain, &store, 1, vec![pay(&chain, 0, 0, 1, 1), pay(&chain, 1, 0, 2, 1), pay(&chain, 2, 0, 0, 1)]);
    let Tx::User(s) = &mut b.txs[1] else { panic!("a user transaction") };
    s.tx.nonce = 5;
    let b = reroot(b);
    let txid = b.txs[1].txid();
    assert!(matches!(
        execute_block(&chain, &store, &b),
        Err(BlockError::BadSignature { index: 1, txid: t, .. }) if t == txid
    ));
}

#[test]
fn block_error_invalid_tx_rejects_the_whole_block() {
    let (chain, store) = setup();
    let good = built(&chain, &store, 1, vec![pay(&chain, 0, 0, 1, 1)]);
    let mut b = good.clone();
    b.txs.push(pay(&chain, 0, 0, 2, 1).into()); // same nonce again
    let b = reroot(b);
    let err = execute_block(&chain, &store, &b).unwrap_err();
    assert!(err.is_invalid_block());
    assert!(matches!(err, BlockError::InvalidTx { index: 1, source: TxError::BadNonce { .. }, .. }));
    // An overflow attempt is an invalid block, not a panic.
    let mut b = good;
    b.txs = vec![transfer(&chain, &user_key(1), 0, acct(2), Amount::MAX, FEE).into()];
    let b = reroot(b);
    assert!(matches!(
        execute_block(&chain, &store, &b),
        Err(BlockError::InvalidTx { index: 0, source: TxError::AmountOverflow { .. }, .. })
    ));
}

#[test]
fn block_error_state_missing_is_not_a_verdict() {
    let (chain, store) = setup();
    let b = built(&chain, &store, 1, vec![]);
    let empty = MemStore::new();
    let err = execute_block(&chain, &empty, &b).unwrap_err();
    assert!(matches!(err, BlockError::State(StateError::MissingVersion { .. })));
    assert!(!err.is_invalid_block());
}

#[test]
fn select_txs_orders_nonces_round_robin_and_caps() {
    let (chain, store) = with_params(|p| p.block_max_txs = 5);
    let k0: Keypair = user_key(0);
    let cands = vec![
        transfer(&chain, &k0, 2, acct(1), sats(1), FEE),
        transfer(&chain, &k0, 0, acct(1), sats(1), FEE),
        transfer(&chain, &k0, 1, acct(1), sats(1), FEE),
        pay(&chain, 1, 0, 2, BAL), // insufficient balance
        pay(&chain, 2, 0, 0, 1),
        pay(&chain, 2, 1, 0, 1),
        pay(&chain, 2, 2, 0, 1),
        pay(&chain, 2, 3, 0, 1),
    ];
    let mut bad = pay(&chain, 2, 9, 0, 1);
    bad.tx.fee = sats(1000); // breaks the signature
    let mut cands = cands;
    cands.push(bad);
    let sel = select_txs(&chain, &store.snapshot(0), cands).unwrap();
    let picked: Vec<(AccountId, u64)> = sel
        .txs
        .iter()
        .map(|t| {
            let Tx::User(s) = t else { panic!("only user transactions here") };
            (s.tx.sender(), s.tx.nonce)
        })
        .collect();
    assert_eq!(picked, vec![(acct(0), 0), (acct(2), 0), (acct(0), 1), (acct(2), 1), (acct(0), 2)]);
    assert_eq!(sel.rejected.len(), 2);
    assert!(sel.rejected.iter().any(|(_, e)| matches!(e, TxError::BadSignature(_))));
    assert_eq!(sel.left_out, 2);
    // What was selected builds.
    assert!(build_block(&chain, &store, template(&chain, 1), sel.txs).is_ok());
}

fn evidence(offender: u16, height: u64, round: u32) -> Tx {
    Tx::Evidence(EvidenceTx {
        offender: ValidatorIndex(offender),
        height: Height(height),
        round: Round(round),
        proof: vec![1, 2, 3],
    })
}

#[test]
fn evidence_is_recorded_in_state_once_and_costs_nobody_anything() {
    let (chain, mut store) = setup();
    let ev = evidence(2, 1, 0);
    let (block, outcome) = build_block(&chain, &store, template(&chain, 1), vec![ev.clone()]).unwrap();
    assert_eq!(execute_block(&chain, &store, &block), Ok(outcome.clone()));
    assert_eq!(outcome.receipts[0].sender, None);
    assert_eq!(outcome.receipts[0].fee, Amount::ZERO);
    store.apply(&outcome.write_set);
    let record = store.snapshot(1).get_evidence(ValidatorIndex(2), Height(1), Round(0)).unwrap().unwrap();
    assert_eq!((record.included_at, record.txid), (Height(1), ev.txid()));
    assert_eq!(store.snapshot(0).get_evidence(ValidatorIndex(2), Height(1), Round(0)).unwrap(), None);
    // The fee pool and accounts are untouched: evidence moves no money.
    assert_eq!(
        store.snapshot(1).get_account(&fee_pool_id()).unwrap(),
        store.snapshot(0).get_account(&fee_pool_id()).unwrap()
    );

    // Again in a later block, or twice in one block: the block is invalid.
    let err = build_block(&chain, &store, template(&chain, 2), vec![ev.clone()]).unwrap_err();
    assert!(matches!(err, BlockError::InvalidTx { source: TxError::EvidenceAlreadyRecorded { .. }, .. }), "{err}");
    let (chain2, store2) = setup();
    let err = build_block(&chain2, &store2, template(&chain2, 1), vec![ev.clone(), ev]).unwrap_err();
    assert!(matches!(err, BlockError::InvalidTx { index: 1, .. }), "{err}");
}

#[test]
fn evidence_against_a_non_validator_is_invalid() {
    let (chain, store) = setup();
    let err = build_block(&chain, &store, template(&chain, 1), vec![evidence(4, 1, 0)]).unwrap_err();
    assert!(matches!(err, BlockError::InvalidTx { source: TxError::UnknownOffender { validators: 4, .. }, .. }));
    assert!(err.to_string().contains("there are 4 validators"), "{err}");
}
