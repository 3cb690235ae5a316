//! Whole-ledger properties over many blocks: conservation of value, order-independent roots,
//! inclusion proofs against header roots, and overflow attempts rejected without panics.

use bitcoin::Amount;
use primitives::{AccountId, BlockId, Hash32, Height, ValidatorIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidechain_ledger::testkit::{self, transfer, user_key};
use sidechain_ledger::{
    build_block, execute_block, fee_pool_id, select_txs, BlockError, BlockTemplate, BtcAnchor, Chain, MemStore,
    StateReader, Tx, TxError,
};

const USERS: u32 = 8;
const BAL: u64 = 50_000;

fn template(chain: &Chain, h: u64) -> BlockTemplate {
    BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex((h % 4) as u16),
        btc_anchor: BtcAnchor::default(),
        last_commit_hash: Hash32::ZERO,
    }
}

fn total(store: &MemStore, version: u64) -> Amount {
    let snap = store.snapshot(version);
    let mut ids: Vec<AccountId> = (0..USERS).map(|i| user_key(i).public().account_id()).collect();
    ids.push(fee_pool_id());
    ids.iter()
        .map(|id| snap.get_account(id).unwrap().unwrap_or_default().balance)
        .fold(Amount::ZERO, |a, b| a.checked_add(b).unwrap())
}

/// Random transfers (some overspending, some with stale nonces), selected into blocks, executed by a
/// second store as a validator would; the sum of all balances plus the fee pool never changes.
fn conservation_run(seed: u64) {
    let (chain, mut proposer) = testkit::chain_and_store(4, USERS, Amount::from_sat(BAL));
    let mut validator = proposer.clone();
    let supply = total(&proposer, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nonces = vec![0u64; USERS as usize];
    let mut applied = 0;
    for h in 1..=15u64 {
        let mut cands = Vec::new();
        for _ in 0..rng.gen_range(0..20) {
            let from = rng.gen_range(0..USERS);
            let to = rng.gen_range(0..USERS);
            let amount = rng.gen_range(1..BAL / 4);
            let fee = rng.gen_range(100..500);
            // Mostly the next nonce, sometimes a stale one.
            let nonce = nonces[from as usize].saturating_sub(rng.gen_range(0..2));
            // Self-transfers included: they must cost exactly the fee.
            let t = transfer(
                &chain,
                &user_key(from),
                nonce,
                user_key(to).public().account_id(),
                Amount::from_sat(amount),
                Amount::from_sat(fee),
            );
            cands.push(t);
            if nonce == nonces[from as usize] {
                nonces[from as usize] += 1;
            }
        }
        let sel = select_txs(&chain, &proposer.snapshot(h - 1), cands).unwrap();
        let (block, outcome) = build_block(&chain, &proposer, template(&chain, h), sel.txs)
            .unwrap_or_else(|e| panic!("seed {seed}: height {h}: {e}"));
        let replayed = execute_block(&chain, &validator, &block)
            .unwrap_or_else(|e| panic!("seed {seed}: height {h}: validator rejects: {e}"));
        assert_eq!(replayed, outcome, "seed {seed}: height {h}");
        applied += outcome.receipts.len();
        proposer.apply(&outcome.write_set);
        validator.apply(&replayed.write_set);
        // Resync the generator's nonces with what actually applied.
        for i in 0..USERS {
            let id = user_key(i).public().account_id();
            nonces[i as usize] = proposer.snapshot(h).get_account(&id).unwrap().unwrap_or_default().nonce;
        }
        assert_eq!(total(&proposer, h), supply, "seed {seed}: height {h}: value not conserved");
    }
    assert!(applied > 20, "seed {seed}: only {applied} transfers applied");
}

#[test]
fn conservation_over_random_blocks() {
    let seeds: Vec<u64> = match std::env::var("LEDGER_SEED") {
        Ok(s) => vec![s.parse().expect("LEDGER_SEED is a u64")],
        Err(_) => (0..8).collect(),
    };
    for seed in seeds {
        conservation_run(seed);
    }
}

#[test]
fn same_transfers_in_two_orders_reach_the_same_root() {
    let (chain, store) = testkit::chain_and_store(4, USERS, Amount::from_sat(BAL));
    let txs: Vec<Tx> = (0..USERS)
        .map(|i| {
            transfer(
                &chain,
                &user_key(i),
                0,
                user_key((i + 1) % USERS).public().account_id(),
                Amount::from_sat(1_000 + u64::from(i)),
                Amount::from_sat(100),
            )
            .into()
        })
        .collect();
    let mut reversed = txs.clone();
    reversed.reverse();
    let (a, oa) = build_block(&chain, &store, template(&chain, 1), txs).unwrap();
    let (b, ob) = build_block(&chain, &store, template(&chain, 1), reversed).unwrap();
    assert_ne!(a.header.tx_root, b.header.tx_root);
    assert_eq!(oa.state_root, ob.state_root);
    // Same final state reached through two blocks instead of one.
    let (first, o1) = build_block(&chain, &store, template(&chain, 1), a.txs[..3].to_vec()).unwrap();
    let mut s2 = store.clone();
    s2.apply(&o1.write_set);
    let (_, o2) = build_block(&chain, &s2, template(&chain, 2), a.txs[3..].to_vec()).unwrap();
    assert_ne!(first.header.state_root, o2.state_root);
    // Accounts match; roots differ only through the chain meta (height, time).
    for i in 0..USERS {
        let id = user_key(i).public().account_id();
        let mut s1 = store.clone();
        s1.apply(&oa.write_set);
        let mut s2b = s2.clone();
        s2b.apply(&o2.write_set);
        assert_eq!(s1.snapshot(1).get_account(&id).unwrap(), s2b.snapshot(2).get_account(&id).unwrap());
    }
}

#[test]
fn account_proof_verifies_against_the_header_root() {
    let (chain, mut store) = testkit::chain_and_store(4, USERS, Amount::from_sat(BAL));
    let to = user_key(1).public().account_id();
    let t = transfer(&chain, &user_key(0), 0, to, Amount::from_sat(777), Amount::from_sat(100));
    let (block, outcome) = build_block(&chain, &store, template(&chain, 1), vec![t.into()]).unwrap();
    store.apply(&outcome.write_set);
    let (account, proof) = store.snapshot(1).prove_account(&to).unwrap();
    let account = account.unwrap();
    assert_eq!(account.balance, Amount::from_sat(BAL + 777));
    assert_eq!(proof.verify_account(block.header.state_root, &to, Some(&account)), Ok(()));
    // The proof survives a borsh round trip (what RPC would send).
    let bytes = borsh::to_vec(&proof).unwrap();
    let back: sidechain_ledger::StateProof = borsh::from_slice(&bytes).unwrap();
    assert_eq!(back.verify_account(block.header.state_root, &to, Some(&account)), Ok(()));
    // The fee pool holds the fee, provably.
    let (pool, proof) = store.snapshot(1).prove_account(&fee_pool_id()).unwrap();
    assert_eq!(pool.unwrap().balance, Amount::from_sat(100));
    assert!(proof.verify_account(block.header.state_root, &fee_pool_id(), pool.as_ref()).is_ok());
}

#[test]
fn overflow_attempts_are_rejected_not_panicking() {
    let (chain, store) = testkit::chain_and_store(4, USERS, Amount::from_sat(BAL));
    let to = user_key(1).public().account_id();
    for (amount, fee) in [
        (Amount::MAX, Amount::from_sat(100)),
        (Amount::from_sat(1), Amount::MAX),
        (Amount::MAX_MONEY, Amount::MAX_MONEY),
    ] {
        let t = transfer(&chain, &user_key(0), 0, to, amount, fee);
        let r = build_block(&chain, &store, template(&chain, 1), vec![t.into()]);
        assert!(
            matches!(
                r,
                Err(BlockError::InvalidTx {
                    source: TxError::AmountOverflow { .. } | TxError::InsufficientBalance { .. },
                    ..
                })
            ),
            "{amount} + {fee}: {r:?}"
        );
    }
}
