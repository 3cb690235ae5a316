//! Why a queued burn waits (`ledger::pegout_wait`), one test per reason, each checked against what block
//! execution then does; and the fee rule that lets a lone burn pay its own batch: a peg-out on a chain
//! whose fee pool is empty is still batched.

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use primitives::{BtcHeight, Height, ValidatorIndex};
use sidechain_ledger::batching::{batch, batch_index, PayoutWait};
use sidechain_ledger::pegout::{burn, pegout_share_vbytes, required_pegout_fee, required_pegout_fee_at};
use sidechain_ledger::pegout_wait::{pegout_wait, queue_wait, PegOutWait};
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    fee_pool_id, BlockError, BtcAnchor, BtcOutPoint, Chain, Genesis, MemStore, MintTx, StateReader, Tx, TxError,
    UserTx, UserTxKind, ValidatorTx, ValidatorTxKind,
};

const BAL: u64 = 10_000_000;

fn chain_with(tune: impl FnOnce(&mut Genesis)) -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(BAL));
    g.params.pegout_enabled = true;
    g.params.pegout_interval = 4;
    // Mints below this credit nobody and pay no peg-in fee: the fee pool stays empty unless a test fills it.
    g.params.pegin_min_amount = Amount::from_int_btc(10);
    tune(&mut g);
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
    Ok(())
}

fn commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) {
    try_commit(chain, store, h, btc, txs).expect("valid block");
}

fn p2wpkh() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])))
}

/// A federation coin of `sats` (a deposit below `pegin_min_amount`: no fee reaches the pool).
fn coin(n: u8, sats: u64, coinbase: bool, at: u32) -> Tx {
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: anchor(at),
        epoch: 0,
        kind: sidechain_ledger::MintKind::Deposit,
        coinbase,
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

fn vtx(chain: &Chain, v: u32, h: u64, kind: ValidatorTxKind) -> Tx {
    ValidatorTx { validator: ValidatorIndex(v as u16), height: Height(h), kind }
        .sign(&testkit::validator_key(v), chain.genesis_hash())
        .into()
}

fn pool(store: &MemStore, h: u64) -> Amount {
    store.snapshot(h).get_account(&fee_pool_id()).unwrap().map(|a| a.balance).unwrap_or(Amount::ZERO)
}

/// The wait of burn `id` after height `h`.
fn wait(chain: &Chain, store: &MemStore, h: u64, id: u64) -> Option<PegOutWait> {
    let snap = store.snapshot(h);
    let b = burn(&snap, id).unwrap().expect("burn recorded");
    pegout_wait(chain, &snap, &b).unwrap()
}

fn batched(store: &MemStore, h: u64, id: u64) -> Option<u64> {
    burn(&store.snapshot(h), id).unwrap().expect("burn").batch
}

#[test]
fn a_lone_pegout_on_a_chain_with_an_empty_fee_pool_is_batched() {
    let (chain, mut store) = chain_with(|_| {});
    commit(&chain, &mut store, 1, 2, vec![coin(1, 1_000_000, false, 2)]);
    assert_eq!(pool(&store, 1), Amount::ZERO, "no fee income at all");
    let fee = required_pegout_fee(&chain, &p2wpkh());
    // The fee pays the whole lone batch at twice the rate: far more than the payout output alone.
    let share = pegout_share_vbytes(chain.genesis_wallet()).unwrap();
    let rate = chain.params().pegin_fee_rate_sat_vb;
    assert_eq!(fee, chain.params().min_fee + Amount::from_sat((share + peg::output_vbytes(&p2wpkh())) * rate * 2));
    // One sat less is refused, with the typed error that says what it pays for.
    let low = try_commit(&chain, &mut store, 2, 2, vec![pegout(&chain, 0, 0, 50_000, fee - Amount::ONE_SAT)]);
    match low {
        Err(BlockError::InvalidTx {
            source: TxError::PegOutFeeTooLow { min, batch_vbytes, sat_per_vb, .. }, ..
        }) => {
            assert_eq!((min, sat_per_vb), (fee, rate));
            assert_eq!(batch_vbytes, share + peg::output_vbytes(&p2wpkh()));
        }
        other => panic!("expected PegOutFeeTooLow, got {other:?}"),
    }
    commit(&chain, &mut store, 2, 2, vec![pegout(&chain, 0, 0, 50_000, fee)]);
    assert_eq!(pool(&store, 2), fee, "the pool holds only the burn's own fee");
    assert_eq!(wait(&chain, &store, 2, 0), Some(PegOutWait::NextBatch { at: Height(4) }));
    commit(&chain, &mut store, 3, 2, vec![]);
    commit(&chain, &mut store, 4, 2, vec![]);
    assert_eq!(batched(&store, 4, 0), Some(0), "batched at the next interval");
    assert_eq!(wait(&chain, &store, 4, 0), None);
    let b = batch(&store.snapshot(4), 0).unwrap().expect("batch 0");
    assert_eq!(pool(&store, 4), fee - b.fee, "the batch fee came out of the burn's own fee");
    // Finding 10: the old price (min_fee plus the payout output at twice the rate) left the pool short of
    // this very batch, and the burn waited for good.
    let old = chain.params().min_fee + Amount::from_sat(peg::output_vbytes(&p2wpkh()) * rate * 2);
    assert!(old < b.fee, "old price {old}, batch fee {}", b.fee);
}

#[test]
fn a_fee_pool_short_of_the_batch_fee_is_named_with_the_shortfall() {
    // The rate rises past twice the burn's before the batch (interval 40): the pool cannot pay.
    let (chain, mut store) = chain_with(|g| g.params.pegout_interval = 40);
    let fee = required_pegout_fee_at(&chain, 2, &p2wpkh());
    commit(&chain, &mut store, 1, 2, vec![coin(1, 1_000_000, false, 2), pegout(&chain, 0, 0, 50_000, fee)]);
    let votes = |h: u64| (0..3).map(|v| vtx(&chain, v, h, ValidatorTxKind::FeeRateVote { sat_per_vb: 40 })).collect();
    commit(&chain, &mut store, 2, 2, votes(2));
    for h in 3..40 {
        commit(&chain, &mut store, h, 2, vec![]);
    }
    let Some(PegOutWait::FeePoolShort { fee: batch_fee, pool: p, short_by }) = wait(&chain, &store, 39, 0) else {
        panic!("expected the fee pool wait, got {:?}", wait(&chain, &store, 39, 0));
    };
    assert_eq!((p, short_by), (pool(&store, 39), batch_fee - p));
    assert!(PegOutWait::FeePoolShort { fee: batch_fee, pool: p, short_by }.needs_operator());
    // Execution agrees: no batch at the interval.
    commit(&chain, &mut store, 40, 2, vec![]);
    assert_eq!(batched(&store, 40, 0), None);
    assert!(matches!(queue_wait(&chain, &store.snapshot(40)).unwrap(), Some(PegOutWait::FeePoolShort { .. })));
}

#[test]
fn no_spendable_coin_names_the_batch_in_flight_and_immature_coinbases() {
    let (chain, mut store) = chain_with(|_| {});
    let fee = required_pegout_fee(&chain, &p2wpkh());
    // No coin at all.
    commit(&chain, &mut store, 1, 2, vec![pegout(&chain, 0, 0, 50_000, fee)]);
    match wait(&chain, &store, 1, 0) {
        Some(PegOutWait::NoSpendableCoin { have, need, reserved_by, immature }) => {
            assert_eq!((have, reserved_by, immature), (Amount::ZERO, vec![], Amount::ZERO));
            assert!(need > Amount::from_sat(50_000), "payout and fee: {need}");
        }
        other => panic!("{other:?}"),
    }
    // One coin, taken by burn 0's batch; burn 1 then waits on that batch; a coinbase coin is immature.
    commit(&chain, &mut store, 2, 2, vec![coin(1, 200_000, false, 2), coin(2, 300_000, true, 2)]);
    commit(&chain, &mut store, 3, 2, vec![]);
    commit(&chain, &mut store, 4, 2, vec![]);
    assert_eq!(batched(&store, 4, 0), Some(0));
    assert_eq!(batch_index(&store.snapshot(4)).unwrap().in_flight, vec![0]);
    commit(&chain, &mut store, 5, 2, vec![pegout(&chain, 1, 0, 50_000, fee)]);
    match wait(&chain, &store, 5, 1) {
        Some(PegOutWait::NoSpendableCoin { have, reserved_by, immature, .. }) => {
            assert_eq!((have, reserved_by, immature), (Amount::ZERO, vec![0], Amount::from_sat(300_000)));
        }
        other => panic!("{other:?}"),
    }
    // The coinbase matures (100 blocks past BTC height 2, the anchor moving 10 per block): burn 1 is paid
    // by the next batch.
    for h in 6..=15 {
        commit(&chain, &mut store, h, 2 + 10 * (h as u32 - 5), vec![]);
        if h < 15 {
            assert!(matches!(wait(&chain, &store, h, 1), Some(PegOutWait::NoSpendableCoin { .. })), "at {h}");
        }
    }
    assert_eq!(wait(&chain, &store, 15, 1), Some(PegOutWait::NextBatch { at: Height(16) }));
    commit(&chain, &mut store, 16, 102, vec![]);
    assert_eq!(batched(&store, 16, 1), Some(1));
}

#[test]
fn the_rolling_limit_and_a_halt_are_named() {
    let (chain, mut store) = chain_with(|g| {
        g.params.pegout_limit = Amount::from_sat(80_000);
        g.params.pegout_limit_window = 10;
    });
    let fee = required_pegout_fee(&chain, &p2wpkh());
    commit(
        &chain,
        &mut store,
        1,
        2,
        vec![coin(1, 5_000_000, false, 2), pegout(&chain, 0, 0, 50_000, fee), pegout(&chain, 1, 0, 50_000, fee)],
    );
    assert_eq!(wait(&chain, &store, 1, 0), Some(PegOutWait::NextBatch { at: Height(4) }));
    // Burn 1 does not fit with burn 0 in one window: it waits until BTC height 12 (2 + 10).
    let limited = Some(PegOutWait::RollingLimit {
        used: Amount::ZERO,
        limit: Amount::from_sat(80_000),
        window: 10,
        until: BtcHeight(12),
    });
    assert_eq!(wait(&chain, &store, 1, 1), limited);
    commit(&chain, &mut store, 2, 2, vec![]);
    commit(&chain, &mut store, 3, 2, vec![]);
    commit(&chain, &mut store, 4, 2, vec![]);
    assert_eq!((batched(&store, 4, 0), batched(&store, 4, 1)), (Some(0), None));
    let w = wait(&chain, &store, 4, 1);
    assert!(matches!(w, Some(PegOutWait::RollingLimit { until: BtcHeight(12), .. })), "{w:?}");
    assert!(!w.unwrap().needs_operator());
    // f + 1 reorg reports halt the peg: the wait says so.
    use ValidatorTxKind::ReportReorg;
    let reports = vec![
        vtx(&chain, 0, 5, ReportReorg { anchor: anchor(2) }),
        vtx(&chain, 1, 5, ReportReorg { anchor: anchor(2) }),
    ];
    commit(&chain, &mut store, 5, 2, reports);
    assert_eq!(wait(&chain, &store, 5, 1), Some(PegOutWait::PegHalted));
    let _ = PayoutWait::Halted;
}

/// 251 burns in one interval: a batch pays at most 250, so the last one is named as behind a full batch
/// (with how many are ahead and when the next batch is), is left out of the batch execution builds, and is
/// paid by the batch after it from a coin the first batch did not reserve.
#[test]
fn a_burn_behind_a_full_batch_is_named_and_paid_by_the_next_one() {
    let (chain, mut store) = chain_with(|_| {});
    let max = peg::BatchLimits::STANDARD.max_outputs;
    let fee = required_pegout_fee(&chain, &p2wpkh());
    let amount = chain.params().pegout_min_amount.to_sat();
    let mut txs = vec![coin(1, 3_000_000, false, 2), coin(2, 3_000_000, false, 2)];
    txs.extend((0..=max as u64).map(|n| pegout(&chain, 0, n, amount, fee)));
    commit(&chain, &mut store, 1, 2, txs);
    let last = max as u64;
    assert_eq!(
        wait(&chain, &store, 1, last),
        Some(PegOutWait::BehindFullBatch { ahead: max, batch_size: max, next_batch: Height(4) })
    );
    assert_eq!(wait(&chain, &store, 1, last - 1), Some(PegOutWait::NextBatch { at: Height(4) }));
    assert!(!wait(&chain, &store, 1, last).unwrap().needs_operator(), "it ends by itself");
    commit(&chain, &mut store, 2, 2, vec![]);
    commit(&chain, &mut store, 3, 2, vec![]);
    commit(&chain, &mut store, 4, 2, vec![]);
    assert_eq!(
        (batched(&store, 4, 0), batched(&store, 4, last - 1), batched(&store, 4, last)),
        (Some(0), Some(0), None)
    );
    assert_eq!(batch(&store.snapshot(4), 0).unwrap().expect("batch 0").burns.len(), max);
    assert_eq!(wait(&chain, &store, 4, last), Some(PegOutWait::NextBatch { at: Height(8) }));
    for h in 5..=8 {
        commit(&chain, &mut store, h, 2, vec![]);
    }
    assert_eq!(batched(&store, 8, last), Some(1));
}
