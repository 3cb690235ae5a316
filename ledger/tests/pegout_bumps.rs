//! Fee-rate votes, fee bumps and the settlement of any version of a batch, through block execution:
//! the agreed rate follows a quorum's median in bounded steps; a fully signed batch that does not confirm
//! in the `pegout_bump_after` BTC blocks after it went out (as the anchor shows them) gets a new version spending a superset of its inputs, paid by
//! the fee pool; whichever version confirms settles the batch once, the unspent fee going back to the pool;
//! shares from a non-validator, over another sighash, or with a high S are refused; and no block may break
//! `supply + unpaid_burns <= btc_held` (plus the test genesis supply).

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use primitives::{BtcHeight, Height, ValidatorIndex};
use sidechain_ledger::batching::{batch, batch_index, spendable_utxos, BatchRecord};
use sidechain_ledger::fee_rate::{agreed_fee_rate, fee_rates};
use sidechain_ledger::pegout::{burn, required_pegout_fee_at};
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    fee_pool_id, BlockError, BtcAnchor, BtcOutPoint, Chain, MemStore, MintTx, PegShareTx, SettleTx, StateReader, Tx,
    TxError, UserTx, UserTxKind, ValidatorTx, ValidatorTxKind,
};

const BAL: u64 = 1_000_000;

/// Peg-out enabled, a batch every 2 blocks, bumps after 3 anchor blocks (one confirmation, so the anchor
/// is the tip and "3 BTC blocks after it went out" is "3 anchor blocks after its k-th share").
fn chain() -> (Chain, MemStore) {
    chain_with_confirmations(1)
}

fn chain_with_confirmations(n: u32) -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 2;
    g.params.pegout_bump_after = 3;
    g.params.pegin_confirmations = n;
    let chain = Chain::new(g).unwrap();
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).unwrap());
    (chain, store)
}

fn anchor(h: u32) -> BtcAnchor {
    testkit::btc_anchor(h)
}

fn try_commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) -> Result<(), BlockError> {
    testkit::commit_block(chain, store, h, anchor(btc), txs)?;
    let t = store.snapshot(h).peg_totals().unwrap();
    assert!(t.supply + t.unpaid_burns <= t.btc_held + Amount::from_sat(2 * BAL), "reserve at height {h}: {t:?}");
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

fn p2wpkh() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])))
}

fn deposit(n: u8, sats: u64) -> Tx {
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: anchor(1),
        epoch: 0,
        kind: sidechain_ledger::MintKind::Deposit,
        coinbase: false,
    })
}

fn pegout(chain: &Chain, user: u32, nonce: u64, amount: u64, fee: Amount) -> Tx {
    let k = user_key(user);
    UserTx {
        signer: k.public(),
        nonce,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: p2wpkh().to_bytes(), amount: Amount::from_sat(amount) },
    }
    .sign(&k, chain.genesis_hash())
    .into()
}

fn validator_tx(chain: &Chain, v: u32, h: u64, kind: ValidatorTxKind) -> Tx {
    ValidatorTx { validator: ValidatorIndex(v as u16), height: Height(h), kind }
        .sign(&testkit::validator_key(v), chain.genesis_hash())
        .into()
}

fn vote(chain: &Chain, v: u32, h: u64, sat_per_vb: u64) -> Tx {
    validator_tx(chain, v, h, ValidatorTxKind::FeeRateVote { sat_per_vb })
}

/// Validator `v`'s signatures over the current version of `b`.
fn share(chain: &Chain, b: &BatchRecord, v: u32) -> Vec<Vec<u8>> {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let tx = b.unsigned().unwrap();
    let peg_key = testkit::validator_peg_secret(v);
    let fed = chain.genesis_wallet();
    peg::shares::sign_batch(&secp, fed, *chain.genesis_hash().as_bytes(), &tx, &b.peg_inputs(), v as usize, &peg_key)
        .expect("sign")
        .signatures
}

fn share_tx(b: &BatchRecord, txid: bitcoin::Txid, v: u32, signatures: Vec<Vec<u8>>) -> Tx {
    Tx::PegShare(PegShareTx { batch: b.id, txid, signer: ValidatorIndex(v as u16), signatures })
}

fn shares_tx(chain: &Chain, b: &BatchRecord, v: u32, _h: u64) -> Tx {
    share_tx(b, b.txid, v, share(chain, b, v))
}

fn pool(store: &MemStore, h: u64) -> Amount {
    store.snapshot(h).get_account(&fee_pool_id()).unwrap().map(|a| a.balance).unwrap_or(Amount::ZERO)
}

#[test]
fn the_agreed_rate_follows_a_quorum_median_in_bounded_steps() {
    let (chain, mut store) = chain();
    assert_eq!(agreed_fee_rate(&chain, &store.snapshot(0)).unwrap(), 2, "the chain's floor before any vote");
    // One validator alone: no quorum, nothing moves.
    commit(&chain, &mut store, 1, 0, vec![vote(&chain, 3, 1, 9_000)]);
    assert_eq!(agreed_fee_rate(&chain, &store.snapshot(1)).unwrap(), 2);
    // Three of four at 30: the rate climbs by at most an eighth (at least 1) per block.
    commit(&chain, &mut store, 2, 0, vec![vote(&chain, 0, 2, 30), vote(&chain, 1, 2, 30)]);
    assert_eq!(agreed_fee_rate(&chain, &store.snapshot(2)).unwrap(), 3, "median 30, one step from 2");
    let mut h = 3;
    while agreed_fee_rate(&chain, &store.snapshot(h - 1)).unwrap() < 30 {
        commit(&chain, &mut store, h, 0, vec![]);
        h += 1;
    }
    assert_eq!(h - 1, 21, "2 -> 30 in 20 blocks");
    assert_eq!(agreed_fee_rate(&chain, &store.snapshot(h - 1)).unwrap(), 30, "not past the median");
    // The outlier at 9000 never pulls it up: the lower median of {30, 30, 9000} is 30.
    commit(&chain, &mut store, h, 0, vec![]);
    assert_eq!(agreed_fee_rate(&chain, &store.snapshot(h)).unwrap(), 30);
    // Bad votes: zero, above the maximum, twice in one block.
    let zero = try_commit(&chain, &mut store, h + 1, 0, vec![vote(&chain, 2, h + 1, 0)]);
    assert!(matches!(tx_error(zero), TxError::BadFeeRateVote { .. }));
    let huge = try_commit(&chain, &mut store, h + 1, 0, vec![vote(&chain, 2, h + 1, 10_001)]);
    assert!(matches!(tx_error(huge), TxError::BadFeeRateVote { .. }));
    let twice = try_commit(&chain, &mut store, h + 1, 0, vec![vote(&chain, 2, h + 1, 5), vote(&chain, 2, h + 1, 6)]);
    assert!(matches!(tx_error(twice), TxError::AlreadyVoted { .. }));
    // Votes age out: after fee_vote_max_age blocks without fresh ones the rate stays where it was.
    assert_eq!(fee_rates(&store.snapshot(h)).unwrap().votes.len(), 3);
    // The agreed rate prices burns: the fee must now cover its lone batch (216 vB) at twice 30 sat/vB.
    let at_floor = required_pegout_fee_at(&chain, 2, &p2wpkh());
    let refused = try_commit(&chain, &mut store, h + 1, 0, vec![pegout(&chain, 0, 0, 50_000, at_floor)]);
    assert!(matches!(tx_error(refused), TxError::PegOutFeeTooLow { .. }));
    let fee = required_pegout_fee_at(&chain, 30, &p2wpkh());
    assert_eq!(fee, Amount::from_sat(100 + 2 * 216 * 30));
    commit(&chain, &mut store, h + 1, 0, vec![pegout(&chain, 0, 0, 50_000, fee)]);
}

/// Height 1: two deposits (400k, 100k), one burn of 50k, and a transfer whose 20k fee fills the fee pool
/// (which pays bumps); height 2 batches the burn; height 3 records three shares at anchor 1. Returns the
/// first version.
fn signed_batch(chain: &Chain, store: &mut MemStore) -> BatchRecord {
    signed_batch_with_tip(chain, store, Amount::from_sat(20_000))
}

/// [`signed_batch`] with a transfer fee of `tip` into the fee pool.
fn signed_batch_with_tip(chain: &Chain, store: &mut MemStore, tip: Amount) -> BatchRecord {
    let fee = required_pegout_fee_at(chain, 2, &p2wpkh());
    let tip = testkit::transfer(chain, &user_key(1), 0, user_key(0).public().account_id(), Amount::ONE_SAT, tip);
    let txs = vec![deposit(1, 400_000), deposit(2, 100_000), pegout(chain, 0, 0, 50_000, fee), tip.into()];
    commit(chain, store, 1, 1, txs);
    commit(chain, store, 2, 1, vec![]);
    let b = batch(&store.snapshot(2), 0).unwrap().expect("batch 0");
    assert_eq!(b.signed_at_anchor, None);
    let shares = (0..3).map(|v| shares_tx(chain, &b, v, 3)).collect();
    commit(chain, store, 3, 1, shares);
    let signed = batch(&store.snapshot(3), 0).unwrap().unwrap();
    assert_eq!(signed.signed_at_anchor, Some(BtcHeight(1)), "the bump clock starts at the k-th share");
    signed
}

#[test]
fn a_stuck_batch_is_bumped_once_due_and_every_version_conflicts() {
    let (chain, mut store) = chain();
    let v1 = signed_batch(&chain, &mut store);
    // Two anchor blocks later: not due yet.
    commit(&chain, &mut store, 4, 3, vec![]);
    assert_eq!(batch(&store.snapshot(4), 0).unwrap().unwrap().bumps(), 0);
    // Validators raise the agreed rate to 10 meanwhile.
    let votes = (0..3).map(|v| vote(&chain, v, 5, 10)).collect();
    commit(&chain, &mut store, 5, 3, votes);
    let pool_before = pool(&store, 5);
    let totals_before = store.snapshot(5).peg_totals().unwrap();
    let rate = agreed_fee_rate(&chain, &store.snapshot(5)).unwrap();
    // Three anchor blocks after signing: due. The next version spends a superset of v1's inputs at the agreed
    // rate (and at least v1's fee plus 1 sat/vB), and the fee pool pays the difference.
    commit(&chain, &mut store, 6, 4, vec![]);
    let s6 = store.snapshot(6);
    let v2 = batch(&s6, 0).unwrap().unwrap();
    assert_eq!(v2.bumps(), 1);
    assert_eq!(v2.earlier[0].txid, v1.txid);
    assert_ne!(v2.txid, v1.txid);
    assert!(v1.inputs.iter().all(|i| v2.inputs.iter().any(|j| j.outpoint == i.outpoint)), "superset of inputs");
    assert!(v2.fee >= v1.fee + Amount::from_sat(v2.vbytes), "BIP125: at least the relay increment more");
    let new_rate = agreed_fee_rate(&chain, &s6).unwrap();
    assert!(new_rate > rate || new_rate == 10);
    assert!(v2.fee >= Amount::from_sat(new_rate * v2.vbytes), "priced at the agreed rate");
    assert_eq!((v2.shares.len(), v2.signed_at_anchor), (0, None), "the new version needs its own shares");
    assert_eq!(pool_before - pool(&store, 6), v2.fee - v1.fee, "the fee pool pays the bump");
    let t = s6.peg_totals().unwrap();
    assert_eq!(t.unpaid_burns, totals_before.unpaid_burns + (v2.fee - v1.fee));
    assert_eq!(t.supply + t.unpaid_burns, totals_before.supply + totals_before.unpaid_burns);
    // A share for the old version is refused now; shares for v2 are recorded.
    let stale = share_tx(&v1, v1.txid, 3, share(&chain, &v1, 3));
    let r = try_commit(&chain, &mut store, 7, 4, vec![stale]);
    assert!(matches!(tx_error(r), TxError::NotCurrentBatchVersion { .. }));
    commit(&chain, &mut store, 7, 4, (1..4).map(|v| shares_tx(&chain, &v2, v, 7)).collect());
    assert!(batch(&store.snapshot(7), 0).unwrap().unwrap().is_signed());

    // Either version may be the one Bitcoin confirms. If v1 does: the batch settles with v1's fee, the rest
    // of the bump's fee goes back to the pool, and nothing is owed.
    let mut v1_branch = store.clone();
    let settle = |txid: bitcoin::Txid, h: u32| Tx::Settle(SettleTx { batch: 0, txid, btc_block: anchor(h) });
    let pool7 = pool(&store, 7);
    commit(&chain, &mut v1_branch, 8, 5, vec![settle(v1.txid, 5)]);
    let s = v1_branch.snapshot(8);
    let t = s.peg_totals().unwrap();
    assert_eq!(t.unpaid_burns, Amount::ZERO);
    assert_eq!(pool(&v1_branch, 8) - pool7, v2.fee - v1.fee, "the unspent bump fee is refunded");
    assert_eq!(t.btc_held, Amount::from_sat(100_000) + v1.change.unwrap(), "coin B and v1's change");
    let spendable = spendable_utxos(&s).unwrap().0;
    assert!(spendable.contains(&BtcOutPoint { txid: v1.txid, vout: 1 }), "v1's change is spendable");
    assert_eq!(burn(&s, 0).unwrap().unwrap().paid_in, Some(anchor(5)));
    let again = try_commit(&chain, &mut v1_branch, 9, 5, vec![settle(v2.txid, 5)]);
    assert!(matches!(tx_error(again), TxError::NotInFlight { .. }), "paid exactly once");
    // The change of a settled batch can never be minted as a deposit.
    let mint_change = Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: v1.txid, vout: 1 },
        recipient: fee_pool_id(),
        amount: v1.change.unwrap(),
        btc_block: anchor(5),
        epoch: 0,
        kind: sidechain_ledger::MintKind::Federation,
        coinbase: false,
    });
    let r = try_commit(&chain, &mut v1_branch, 9, 5, vec![mint_change]);
    assert!(matches!(tx_error(r), TxError::AlreadyHeld { .. }));

    // If v2 does: settled with v2's fee, nothing refunded.
    commit(&chain, &mut store, 8, 5, vec![settle(v2.txid, 5)]);
    let t = store.snapshot(8).peg_totals().unwrap();
    assert_eq!((t.unpaid_burns, pool(&store, 8)), (Amount::ZERO, pool7));
    assert!(batch_index(&store.snapshot(8)).unwrap().in_flight.is_empty());
}

/// The anchor lags the tip by N - 1 blocks: a version signed at anchor 1 went out when the tip was at least
/// 1 + 5 (N = 6), so it could confirm at 7 at the earliest, and the anchor shows that only at 7. Bumping it
/// 3 anchor blocks after signing (at 4) would bump a batch that may well be confirmed already; it is due
/// once the anchor shows 3 blocks above that tip (at 9), and a settlement before then stops it for good.
#[test]
fn a_version_is_not_bumped_before_the_anchor_could_show_it_confirmed() {
    let (chain, mut store) = chain_with_confirmations(6);
    let v1 = signed_batch(&chain, &mut store);
    let signed_at = v1.signed_at_anchor.expect("signed");
    assert_eq!(sidechain_ledger::bumping::bump_due_at(&chain, signed_at), BtcHeight(1 + 5 + 3));
    let mut confirmed_branch = store.clone();
    for (h, btc) in (4..).zip(2..=8) {
        commit(&chain, &mut store, h, btc, vec![]);
        assert_eq!(batch(&store.snapshot(h), 0).unwrap().unwrap().bumps(), 0, "not due at anchor {btc}");
    }
    commit(&chain, &mut store, 11, 9, vec![]);
    assert_eq!(batch(&store.snapshot(11), 0).unwrap().unwrap().bumps(), 1, "due at anchor 9");

    // Confirmed in the first block it could be in: the anchor reaches it before the bump is due, the batch
    // settles with version 1 and is never bumped.
    for (h, btc) in (4..).zip(2..=6) {
        commit(&chain, &mut confirmed_branch, h, btc, vec![]);
    }
    let settle = Tx::Settle(SettleTx { batch: 0, txid: v1.txid, btc_block: anchor(7) });
    commit(&chain, &mut confirmed_branch, 9, 7, vec![settle]);
    for (h, btc) in (10..).zip(8..=12) {
        commit(&chain, &mut confirmed_branch, h, btc, vec![]);
    }
    let s = confirmed_branch.snapshot(14);
    assert!(batch_index(&s).unwrap().in_flight.is_empty());
    assert_eq!(batch(&s, 0).unwrap().unwrap().bumps(), 0, "a confirmed batch is never bumped");
}

#[test]
fn a_fee_pool_short_of_the_agreed_rate_still_bumps_as_high_as_it_can_pay() {
    let (chain, mut store) = chain();
    // The pool holds the two peg-in fees and the burn fee less the first version's fee: a few hundred sat.
    let v1 = signed_batch_with_tip(&chain, &mut store, Amount::from_sat(100));
    let votes = (0..3).map(|v| vote(&chain, v, 4, 30)).collect();
    commit(&chain, &mut store, 4, 1, votes);
    let mut h = 5;
    while agreed_fee_rate(&chain, &store.snapshot(h - 1)).unwrap() < 30 {
        commit(&chain, &mut store, h, 1, vec![]);
        h += 1;
    }
    let pool_before = pool(&store, h - 1);
    assert!(pool_before < Amount::from_sat(30 * v1.vbytes) - v1.fee, "the pool cannot pay 30 sat/vB: {pool_before}");
    // Due: the bump is built at the highest whole rate the pool pays, still a valid replacement.
    commit(&chain, &mut store, h, 4, vec![]);
    let v2 = batch(&store.snapshot(h), 0).unwrap().unwrap();
    assert_eq!(v2.bumps(), 1, "a short pool still bumps");
    assert!(v2.fee >= v1.fee + Amount::from_sat(v2.vbytes), "BIP125: at least the relay increment more");
    assert!(v2.fee < Amount::from_sat(30 * v2.vbytes), "below the agreed rate: {}", v2.fee);
    let paid = pool_before - pool(&store, h);
    assert_eq!(paid, v2.fee - v1.fee);
    // One more sat/vB would have been more than the pool held.
    assert!(v2.fee + Amount::from_sat(v2.vbytes) - v1.fee > pool_before, "not the highest affordable rate");
}

#[test]
fn bad_shares_are_refused_non_validator_other_sighash_high_s() {
    let (chain, mut store) = chain();
    let fee = required_pegout_fee_at(&chain, 2, &p2wpkh());
    commit(&chain, &mut store, 1, 1, vec![deposit(1, 400_000), pegout(&chain, 0, 0, 50_000, fee)]);
    commit(&chain, &mut store, 2, 1, vec![]);
    let b = batch(&store.snapshot(2), 0).unwrap().unwrap();
    let submit = |v: u32, signatures: Vec<Vec<u8>>| share_tx(&b, b.txid, v, signatures);
    // From outside the wallet's signers (index 4 of 4).
    let r = try_commit(&chain, &mut store, 3, 1, vec![submit(4, share(&chain, &b, 0))]);
    let e = tx_error(r);
    assert!(matches!(e, TxError::UnknownSigner { signers: 4, .. }), "{e:?}");
    // Signer 1 naming itself with signer 0's signatures.
    let r = try_commit(&chain, &mut store, 3, 1, vec![submit(1, share(&chain, &b, 0))]);
    assert!(matches!(tx_error(r), TxError::BadBatchShare { .. }));
    // Over another sighash: validator 0's signature of a different transaction (one more sat of fee).
    let mut other = b.clone();
    let mut tx = b.unsigned().unwrap();
    tx.output[1].value -= Amount::from_sat(1);
    other.unsigned_tx = bitcoin::consensus::encode::serialize(&tx);
    let r = try_commit(&chain, &mut store, 3, 1, vec![submit(0, share(&chain, &other, 0))]);
    let e = tx_error(r);
    assert!(matches!(e, TxError::BadBatchShare { .. }), "{e:?}");
    // High S: the same valid signature with s replaced by n - s (valid ECDSA, not standard).
    let mut high = share(&chain, &b, 0);
    let (der, hashtype) = high[0].split_at(high[0].len() - 1);
    let sig = bitcoin::secp256k1::ecdsa::Signature::from_der(der).expect("der");
    let mut compact = sig.serialize_compact();
    let s = num_sub_from_order(&compact[32..]);
    compact[32..].copy_from_slice(&s);
    let flipped = bitcoin::secp256k1::ecdsa::Signature::from_compact(&compact).expect("compact");
    let mut bytes = flipped.serialize_der().to_vec();
    bytes.extend_from_slice(hashtype);
    high[0] = bytes;
    let r = try_commit(&chain, &mut store, 3, 1, vec![submit(0, high)]);
    let e = tx_error(r);
    assert!(matches!(e, TxError::BadBatchShare { .. }), "{e:?}");
    // The genuine share is fine.
    commit(&chain, &mut store, 3, 1, vec![submit(0, share(&chain, &b, 0))]);
}

/// `n - s` for the secp256k1 group order `n` (big-endian, 32 bytes).
fn num_sub_from_order(s: &[u8]) -> [u8; 32] {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE,
        0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
    ];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[i] = d as u8;
    }
    out
}
