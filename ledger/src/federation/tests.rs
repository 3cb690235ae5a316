//! Tests of federation epochs: a change approved by 2f+1 takes effect at its height and not before, bad
//! changes are refused with clear errors, the old wallet is swept by its own keys (a member who left
//! included), and coins nearing the emergency delay are refreshed.

use super::*;
use crate::batching::{batch, batch_index, spendable_utxos, BatchKind};
use crate::error::{BlockError, TxError};
use crate::federation_change::{check_pool_tx, select_pool_txs};
use crate::state::MemStore;
use crate::testkit::{self, user_key, validator, validator_key, validator_peg_key, validator_peg_secret};
use crate::tx::{BtcOutPoint, MintTx, PegShareTx, SettleTx, Tx};
use crate::{build_block, execute_block, BlockTemplate, BtcAnchor, EmergencyKeys};
use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use primitives::BtcHeight;
use primitives::{BlockId, Hash32, ValidatorIndex};

const BAL: u64 = 1_000_000;

fn anchor(h: u32) -> BtcAnchor {
    BtcAnchor { height: BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([h as u8; 32]) }
}

fn emergency_keys() -> EmergencyKeys {
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let keys = (0..3u8)
        .map(|i| {
            let sk = bitcoin::secp256k1::SecretKey::from_slice(&[0x51 + i; 32]).expect("valid scalar");
            bitcoin::PublicKey::new(sk.public_key(&secp))
        })
        .collect();
    EmergencyKeys { threshold: 2, keys, delay: 30 }
}

/// Four validators, emergency keys (delay 30, refresh 10 blocks before), batches every 2 blocks.
fn chain() -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_interval = 2;
    g.params.pegin_confirmations = 2;
    g.params.refresh_margin = 10;
    g.params.federation_change_min_lead = 3;
    g.emergency = Some(emergency_keys());
    let chain = Chain::new(g).expect("valid genesis");
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).expect("genesis state"));
    (chain, store)
}

fn try_commit(
    chain: &Chain,
    store: &mut MemStore,
    h: u64,
    btc: u32,
    proposer: u16,
    txs: Vec<Tx>,
) -> Result<(), BlockError> {
    let template = BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(proposer),
        btc_anchor: anchor(btc),
        last_commit_hash: Hash32::ZERO,
    };
    let (block, outcome) = build_block(chain, store, template, txs)?;
    assert_eq!(execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
    let t = store.snapshot(h).peg_totals().expect("totals");
    assert!(t.supply + t.unpaid_burns <= t.btc_held + Amount::from_sat(2 * BAL), "reserve at height {h}: {t:?}");
    Ok(())
}

fn commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) {
    try_commit(chain, store, h, btc, 0, txs).expect("valid block");
}

fn tx_error(r: Result<(), BlockError>) -> TxError {
    match r {
        Err(BlockError::InvalidTx { source, .. }) => source,
        other => panic!("expected an invalid transaction, got {other:?}"),
    }
}

fn proposal(members: &[u32], threshold: u32, at: u64) -> FederationProposal {
    FederationProposal {
        validators: members.iter().map(|i| validator(*i)).collect(),
        peg_threshold: threshold,
        activation_height: Height(at),
    }
}

/// Approved by genesis validators `by` (at their genesis indices) as members of epoch 0.
fn reconfigure(chain: &Chain, p: &FederationProposal, by: &[u32]) -> Tx {
    reconfigure_in(chain, 0, p, by)
}

/// Approved under `epoch` by test validators `by`, each at its genesis index.
fn reconfigure_in(chain: &Chain, epoch: u32, p: &FederationProposal, by: &[u32]) -> Tx {
    let approvals = by
        .iter()
        .map(|i| p.approve(ValidatorIndex(*i as u16), epoch, &validator_key(*i), chain.genesis_hash()))
        .collect();
    Tx::Reconfigure(ReconfigureTx { proposal: p.clone(), approvals })
}

fn deposit(n: u8, sats: u64, btc: u32, epoch: u32) -> Tx {
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: anchor(btc),
        epoch,
        kind: crate::MintKind::Deposit,
        coinbase: false,
    })
}

/// Signer `signer` of `epoch`'s wallet (genesis test validator `key`) signs batch `id`'s current version.
fn share(chain: &Chain, store: &MemStore, h: u64, id: u64, signer: u16, key: u32) -> Tx {
    let snap = store.snapshot(h);
    let b = batch(&snap, id).expect("read").expect("batch");
    let fs = federation_state(chain, &snap).expect("federation");
    let wallet = chain.wallet(fs.epoch(b.epoch).expect("epoch")).expect("wallet");
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let tx = b.unsigned().expect("tx");
    let s = peg::shares::sign_batch(
        &secp,
        &wallet,
        *chain.genesis_hash().as_bytes(),
        &tx,
        &b.peg_inputs(),
        signer as usize,
        &validator_peg_secret(key),
    )
    .expect("sign");
    Tx::PegShare(PegShareTx { batch: id, txid: b.txid, signer: ValidatorIndex(signer), signatures: s.signatures })
}

/// A transfer whose fee fills the fee pool, which pays every sweep's Bitcoin fee.
fn fund_pool(chain: &Chain) -> Tx {
    let to = user_key(1).public().account_id();
    testkit::transfer(chain, &user_key(0), 0, to, Amount::from_sat(1), Amount::from_sat(50_000)).into()
}

#[test]
fn a_change_approved_by_two_thirds_takes_effect_at_its_height() {
    let (chain, mut store) = chain();
    // Replace validator 3 by validator 4 from height 6.
    let p = proposal(&[0, 1, 2, 4], 3, 6);
    commit(&chain, &mut store, 1, 1, vec![reconfigure(&chain, &p, &[0, 1, 3])]);
    let fs = federation_state(&chain, &store.snapshot(1)).expect("read");
    assert_eq!(fs.in_force().epoch, 0);
    assert_eq!(fs.pending.as_ref().map(|e| (e.epoch, e.from_height)), Some((1, Height(6))));
    for h in 2..=4 {
        commit(&chain, &mut store, h, 1, vec![]);
    }
    // Block 5 is the last of epoch 0: validator 3 still signs validator transactions in it.
    let vote = |v: u32, h: u64| -> Tx {
        crate::ValidatorTx {
            validator: ValidatorIndex(v as u16),
            height: Height(h),
            kind: crate::ValidatorTxKind::FeeRateVote { sat_per_vb: 5 },
        }
        .sign(&validator_key(v), chain.genesis_hash())
        .into()
    };
    commit(&chain, &mut store, 5, 1, vec![vote(3, 5)]);
    let fs = federation_state(&chain, &store.snapshot(5)).expect("read");
    assert_eq!((fs.in_force().epoch, fs.in_force().from_height, fs.pending.is_none()), (1, Height(6), true));
    assert_eq!(fs.at_height(Height(5)).epoch, 0);
    assert_eq!(fs.at_height(Height(6)).epoch, 1);
    assert!(crate::fee_rate::fee_rates(&store.snapshot(5)).expect("rates").votes.is_empty(), "index votes cleared");
    // From height 6 index 3 is validator 4: validator 3's key no longer signs for it, validator 4's does.
    let r = try_commit(&chain, &mut store, 6, 1, 0, vec![vote(3, 6)]);
    assert!(matches!(r, Err(BlockError::BadSignature { .. })), "{r:?}");
    let by_new = crate::ValidatorTx {
        validator: ValidatorIndex(3),
        height: Height(6),
        kind: crate::ValidatorTxKind::FeeRateVote { sat_per_vb: 5 },
    }
    .sign(&validator_key(4), chain.genesis_hash());
    commit(&chain, &mut store, 6, 1, vec![by_new.into()]);
}

#[test]
fn bad_changes_are_refused_with_clear_errors() {
    let (chain, mut store) = chain();
    let reject = |tx: Tx| tx_error(try_commit(&chain, &mut store.clone(), 1, 1, 0, vec![tx]));
    let good = proposal(&[0, 1, 2, 4], 3, 10);
    // Fewer than 2f+1: two of four.
    let e = reject(reconfigure(&chain, &good, &[0, 1]));
    assert_eq!(e, TxError::NotEnoughApprovals { power: 2, total: 4 });
    assert!(e.to_string().contains("2f+1"), "{e}");
    // The same validator twice does not count twice.
    let e = reject(reconfigure(&chain, &good, &[0, 1, 1]));
    assert_eq!(e, TxError::AlreadyVoted { validator: ValidatorIndex(1) });
    // An approval by someone outside the set, and a forged one.
    let mut outsider = reconfigure(&chain, &good, &[0, 1, 2]);
    if let Tx::Reconfigure(r) = &mut outsider {
        r.approvals[2] = good.approve(ValidatorIndex(7), 0, &validator_key(7), chain.genesis_hash());
    }
    assert!(matches!(reject(outsider), TxError::UnknownValidator { .. }));
    let mut forged = reconfigure(&chain, &good, &[0, 1, 2]);
    if let Tx::Reconfigure(r) = &mut forged {
        r.approvals[2].signature =
            good.approve(ValidatorIndex(2), 0, &validator_key(5), chain.genesis_hash()).signature;
    }
    assert!(matches!(reject(forged), TxError::BadApproval { .. }));
    // Duplicate keys in the new set.
    let mut dup = proposal(&[0, 1, 2, 4], 3, 10);
    dup.validators[3].peg_key = dup.validators[0].peg_key;
    let e = reject(reconfigure(&chain, &dup, &[0, 1, 2]));
    assert!(matches!(&e, TxError::BadProposal(m) if m.to_string().contains("share peg key")), "{e}");
    let mut dup = proposal(&[0, 1, 2, 4], 3, 10);
    dup.validators[3].consensus_key = dup.validators[1].consensus_key;
    let e = reject(reconfigure(&chain, &dup, &[0, 1, 2]));
    assert!(matches!(&e, TxError::BadProposal(m) if m.to_string().contains("share consensus key")), "{e}");
    // A threshold that breaks 2f+1 (2 of 4 lets f+1 spend; 4 of 4 lets one lost key freeze).
    for k in [2, 4] {
        let e = reject(reconfigure(&chain, &proposal(&[0, 1, 2, 4], k, 10), &[0, 1, 2]));
        assert!(matches!(&e, TxError::BadProposal(m) if m.to_string().contains("breaks the 2f+1 rule")), "{e}");
    }
    // An emergency key as a validator's peg key.
    let mut shared = proposal(&[0, 1, 2, 4], 3, 10);
    shared.validators[3].peg_key = emergency_keys().keys[1];
    let e = reject(reconfigure(&chain, &shared, &[0, 1, 2]));
    assert!(matches!(&e, TxError::BadProposal(m) if m.to_string().contains("emergency key")), "{e}");
    // Too soon: the lead is 3 blocks after the accepting block (1).
    let e = reject(reconfigure(&chain, &proposal(&[0, 1, 2, 4], 3, 3), &[0, 1, 2]));
    assert_eq!(e, TxError::ActivationTooSoon { activation_height: Height(3), earliest: Height(4) });
    // Approvals of another chain's proposal bytes (another activation height) do not verify.
    let mut moved = reconfigure(&chain, &good, &[0, 1, 2]);
    if let Tx::Reconfigure(r) = &mut moved {
        r.proposal.activation_height = Height(11);
    }
    assert!(matches!(reject(moved), TxError::BadApproval { .. }));
    // One change at a time.
    commit(&chain, &mut store, 1, 1, vec![reconfigure(&chain, &good, &[0, 1, 2])]);
    let again = tx_error(try_commit(
        &chain,
        &mut store,
        2,
        1,
        0,
        vec![reconfigure(&chain, &proposal(&[0, 1, 2, 5], 3, 12), &[0, 1, 2])],
    ));
    assert_eq!(again, TxError::ChangeAlreadyPending { activation_height: Height(10) });
}

/// Finding 7: an approved change is bound to the epoch that approved it. Epoch 0 approves two changes that
/// keep validators 0..=3 at their indices (only the wallet threshold differs); the first goes in, the
/// second is held back. Once the first has taken over (epoch 1, same keys at the same indices), the second,
/// replayed as it was, is refused as stale; re-labelled to epoch 1 its signatures do not verify; only a
/// fresh approval under epoch 1 goes in.
#[test]
fn an_approved_change_cannot_be_replayed_under_a_later_epoch_with_the_same_keys() {
    let (chain, mut store) = chain();
    let first = proposal(&[0, 1, 2, 3], 3, 5);
    let superseded = proposal(&[0, 1, 2, 3], 3, 20);
    let held_back = reconfigure(&chain, &superseded, &[0, 1, 2, 3]);
    commit(&chain, &mut store, 1, 1, vec![reconfigure(&chain, &first, &[0, 1, 2])]);
    for h in 2..=5 {
        commit(&chain, &mut store, h, 1, vec![]);
    }
    let fs = federation_state(&chain, &store.snapshot(5)).expect("read");
    assert_eq!((fs.in_force().epoch, fs.pending.is_none()), (1, true));
    assert_eq!(fs.in_force().validators, fs.epochs[0].validators, "the new set kept the keys and indices");
    // Replayed as it was: refused with the typed reason, by block execution and by the pool check.
    let e = tx_error(try_commit(&chain, &mut store.clone(), 6, 1, 0, vec![held_back.clone()]));
    assert_eq!(e, TxError::StaleApproval { validator: ValidatorIndex(0), approved_in: 0, in_force: 1 });
    assert!(e.to_string().contains("approve again"), "{e}");
    assert_eq!(check_pool_tx(&chain, &store.snapshot(5), &held_back), Err(e));
    assert!(select_pool_txs(&chain, &store.snapshot(5), std::slice::from_ref(&held_back)).expect("select").is_empty());
    // Re-labelled to the epoch in force: the signatures were made for epoch 0 and do not verify.
    let mut relabelled = held_back;
    if let Tx::Reconfigure(r) = &mut relabelled {
        for a in &mut r.approvals {
            a.epoch = 1;
        }
    }
    assert!(matches!(
        tx_error(try_commit(&chain, &mut store.clone(), 6, 1, 0, vec![relabelled])),
        TxError::BadApproval { validator: ValidatorIndex(0), .. }
    ));
    // The same proposal approved again by the set in force is a change like any other.
    commit(&chain, &mut store, 6, 1, vec![reconfigure_in(&chain, 1, &superseded, &[0, 1, 2])]);
    let fs = federation_state(&chain, &store.snapshot(6)).expect("read");
    assert_eq!(fs.pending.as_ref().map(|p| (p.epoch, p.from_height)), Some((2, Height(20))));
}

#[test]
fn the_old_wallet_is_swept_to_the_new_one_by_the_old_keys() {
    let (chain, mut store) = chain();
    // Epoch 0 holds two deposits; shrink to validators 0, 1, 2 (threshold 3 of 3) from height 5.
    commit(&chain, &mut store, 1, 1, vec![deposit(1, 300_000, 1, 0), deposit(2, 200_000, 1, 0), fund_pool(&chain)]);
    let p = proposal(&[0, 1, 2], 3, 5);
    commit(&chain, &mut store, 2, 1, vec![reconfigure(&chain, &p, &[0, 1, 2, 3])]);
    for h in 3..=5 {
        commit(&chain, &mut store, h, 1, vec![]);
    }
    // Height 6 is an interval height: the sweep of epoch 0 is built, change to epoch 1's wallet.
    commit(&chain, &mut store, 6, 1, vec![]);
    let snap = store.snapshot(6);
    let index = batch_index(&snap).expect("index");
    assert_eq!(index.in_flight.len(), 1);
    let b = batch(&snap, index.in_flight[0]).expect("read").expect("batch");
    assert_eq!((b.kind, b.epoch, b.change_epoch, b.signers_needed), (BatchKind::Sweep, 0, 1, 3));
    assert_eq!(b.inputs.len(), 2);
    assert!(b.burns.is_empty());
    let fs = federation_state(&chain, &snap).expect("read");
    let new_wallet = chain.wallet(fs.in_force()).expect("wallet");
    let tx = b.unsigned().expect("tx");
    assert_eq!(tx.output.len(), 1);
    assert_eq!(tx.output[0].script_pubkey, new_wallet.script_pubkey());
    assert_eq!(tx.output[0].value + b.fee, Amount::from_sat(500_000));
    assert!(spendable_utxos(&snap).expect("set").0.is_empty());
    // Validator 3 left the federation but still holds an epoch-0 key: its share counts.
    let first = vec![share(&chain, &store, 6, b.id, 3, 3), share(&chain, &store, 6, b.id, 0, 0)];
    commit(&chain, &mut store, 7, 1, first);
    let last = share(&chain, &store, 7, b.id, 1, 1);
    commit(&chain, &mut store, 8, 1, vec![last]);
    assert!(batch(&store.snapshot(8), b.id).expect("read").expect("batch").is_signed());
    // Settled: the new output belongs to epoch 1 and is spendable there; nothing is left in epoch 0.
    let settle = Tx::Settle(SettleTx { batch: b.id, txid: b.txid, btc_block: anchor(2) });
    commit(&chain, &mut store, 9, 2, vec![settle]);
    let snap = store.snapshot(9);
    let spendable = spendable_utxos(&snap).expect("set").0;
    assert_eq!(spendable, vec![BtcOutPoint { txid: b.txid, vout: 0 }]);
    let utxo = snap.get_federation_utxo(&spendable[0]).expect("read").expect("utxo");
    assert_eq!((utxo.epoch, utxo.tweak), (1, None));
    // A deposit to an old address after the change is minted into epoch 0 and swept at the next interval.
    commit(&chain, &mut store, 10, 3, vec![deposit(3, 150_000, 3, 0)]);
    let index = batch_index(&store.snapshot(10)).expect("index");
    let late = batch(&store.snapshot(10), index.in_flight[0]).expect("read").expect("batch");
    assert_eq!((late.kind, late.epoch, late.change_epoch, late.inputs.len()), (BatchKind::Sweep, 0, 1, 1));
    // A mint naming an epoch that does not exist is refused.
    let e = tx_error(try_commit(&chain, &mut store, 11, 3, 0, vec![deposit(4, 150_000, 3, 7)]));
    assert_eq!(e, TxError::UnknownEpoch(7));
}

#[test]
fn coins_nearing_the_emergency_delay_are_refreshed_and_others_are_not() {
    let (chain, mut store) = chain();
    // Two coins: one confirmed at BTC height 1, one at 10. Delay 30, margin 10: due at anchor 21 and 30.
    commit(&chain, &mut store, 1, 10, vec![deposit(1, 300_000, 1, 0), deposit(2, 200_000, 10, 0), fund_pool(&chain)]);
    commit(&chain, &mut store, 2, 20, vec![]);
    assert!(batch_index(&store.snapshot(2)).expect("index").in_flight.is_empty(), "nothing due at anchor 20");
    commit(&chain, &mut store, 3, 21, vec![]);
    commit(&chain, &mut store, 4, 21, vec![]);
    let snap = store.snapshot(4);
    let index = batch_index(&snap).expect("index");
    assert_eq!(index.in_flight.len(), 1, "one refresh at the interval height after anchor 21");
    let b = batch(&snap, index.in_flight[0]).expect("read").expect("batch");
    assert_eq!((b.kind, b.epoch, b.change_epoch), (BatchKind::Refresh, 0, 0));
    assert_eq!(
        b.inputs.iter().map(|i| i.outpoint.txid).collect::<Vec<_>>(),
        vec![bitcoin::Txid::from_byte_array([1; 32])]
    );
    let tx = b.unsigned().expect("tx");
    assert_eq!(tx.output[0].script_pubkey, chain.genesis_wallet().script_pubkey(), "back to the federation");
    // No emergency keys: never refreshed.
    let mut g = chain.genesis().clone();
    g.emergency = None;
    let plain = Chain::new(g).expect("valid");
    assert!(!crate::sweep::refresh_due(&plain, BtcHeight(1), BtcHeight(10_000)));
    assert!(crate::sweep::refresh_due(&chain, BtcHeight(1), BtcHeight(21)));
    assert!(!crate::sweep::refresh_due(&chain, BtcHeight(1), BtcHeight(20)));
}

#[test]
fn an_emergency_margin_that_leaves_no_time_is_refused() {
    let mut g = chain().0.genesis().clone();
    g.params.refresh_margin = 30;
    assert!(matches!(Chain::new(g.clone()), Err(crate::GenesisError::BadParam { name: "refresh_margin", .. })));
    g.params.refresh_margin = 2;
    assert!(matches!(Chain::new(g.clone()), Err(crate::GenesisError::BadParam { name: "refresh_margin", .. })));
    g.emergency =
        Some(EmergencyKeys { keys: vec![validator_peg_key(1), emergency_keys().keys[0]], ..emergency_keys() });
    g.params.refresh_margin = 10;
    let e = Chain::new(g).expect_err("shared key");
    assert!(e.to_string().contains("emergency key"), "{e}");
}

#[test]
fn the_pool_selection_keeps_what_applies_in_order() {
    let (chain, mut store) = chain();
    commit(&chain, &mut store, 1, 1, vec![deposit(1, 300_000, 1, 0), deposit(2, 200_000, 1, 0), fund_pool(&chain)]);
    let p = proposal(&[0, 1, 2], 3, 5);
    commit(&chain, &mut store, 2, 1, vec![reconfigure(&chain, &p, &[0, 1, 2, 3])]);
    for h in 3..=6 {
        commit(&chain, &mut store, h, 1, vec![]);
    }
    let snap = store.snapshot(6);
    let id = batch_index(&snap).expect("index").in_flight[0];
    // Five shares of a 3-of-4 sweep: one twice, one forged, three good ones.
    let good: Vec<Tx> = [(0, 0), (1, 1), (3, 3)].iter().map(|(s, k)| share(&chain, &store, 6, id, *s, *k)).collect();
    let forged = match &good[0] {
        Tx::PegShare(s) => Tx::PegShare(PegShareTx { signer: ValidatorIndex(2), ..s.clone() }),
        _ => unreachable!("a share"),
    };
    let pool = vec![good[0].clone(), good[0].clone(), forged.clone(), good[1].clone(), good[2].clone()];
    assert_eq!(select_pool_txs(&chain, &snap, &pool).expect("select"), good);
    assert!(matches!(check_pool_tx(&chain, &snap, &forged), Err(TxError::BadBatchShare { .. })));
    assert_eq!(check_pool_tx(&chain, &snap, &deposit(9, 1, 1, 0)), Err(TxError::NotAPoolTx));
    // A change that is not 2f+1 never leaves the pool for a block.
    let weak = reconfigure(&chain, &proposal(&[0, 1, 2, 4], 3, 20), &[0]);
    assert!(select_pool_txs(&chain, &snap, &[weak]).expect("select").is_empty());
}
