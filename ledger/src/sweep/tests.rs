//! Dust never stalls a sweep or a refresh: an attacker's hundred-odd tiny coins, older than the real one,
//! stay where they are (held, reported as uneconomic), and the real coins move at the interval.

use super::*;
use crate::batching::{batch, batch_index, spendable_utxos};
use crate::economic::{input_cost, uneconomic_coins};
use crate::federation::{FederationProposal, ReconfigureTx};
use crate::state::MemStore;
use crate::testkit::{self, user_key, validator_key, validator_peg_key};
use crate::tx::{BtcOutPoint, MintTx, Tx};
use crate::{build_block, execute_block, BlockTemplate, BtcAnchor, EmergencyKeys, GenesisValidator};
use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use primitives::{BlockId, BtcHeight, Hash32, Height, ValidatorIndex};

const DUST_COINS: u16 = 120;
const DUST: u64 = 300;

fn anchor(h: u32) -> BtcAnchor {
    BtcAnchor { height: BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([h as u8; 32]) }
}

/// Four validators, emergency keys (delay 30, refresh 10 blocks before), batches every 2 blocks.
fn chain() -> (Chain, MemStore) {
    let mut g = testkit::genesis(4, 2, Amount::from_sat(1_000_000));
    g.params.pegout_interval = 2;
    g.params.pegin_confirmations = 2;
    g.params.refresh_margin = 10;
    g.params.federation_change_min_lead = 3;
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let keys = (0..3u8)
        .map(|i| {
            let sk = bitcoin::secp256k1::SecretKey::from_slice(&[0x51 + i; 32]).expect("valid scalar");
            bitcoin::PublicKey::new(sk.public_key(&secp))
        })
        .collect();
    g.emergency = Some(EmergencyKeys { threshold: 2, keys, delay: 30 });
    let chain = Chain::new(g).expect("valid genesis");
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).expect("genesis state"));
    (chain, store)
}

fn commit(chain: &Chain, store: &mut MemStore, h: u64, btc: u32, txs: Vec<Tx>) {
    let template = BlockTemplate {
        height: Height(h),
        prev_hash: BlockId(Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: ValidatorIndex(0),
        btc_anchor: anchor(btc),
        last_commit_hash: Hash32::ZERO,
    };
    let (block, outcome) = build_block(chain, store, template, txs).expect("valid block");
    assert_eq!(execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
}

/// Deposit number `n` (any u16) of `sats`, confirmed at BTC height `btc`, to epoch `epoch`'s wallet.
fn deposit(n: u16, sats: u64, btc: u32, epoch: u32) -> Tx {
    let mut txid = [0xD0; 32];
    txid[..2].copy_from_slice(&n.to_le_bytes());
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array(txid), vout: 0 },
        recipient: user_key(9).public().account_id(),
        amount: Amount::from_sat(sats),
        btc_block: anchor(btc),
        epoch,
        kind: crate::MintKind::Deposit,
        coinbase: false,
    })
}

/// The attacker's dust, all confirmed at BTC height 1 (older than any real coin).
fn dust() -> Vec<Tx> {
    (0..DUST_COINS).map(|n| deposit(n, DUST, 1, 0)).collect()
}

/// A transfer whose fee fills the fee pool, which pays every sweep's Bitcoin fee.
fn fund_pool(chain: &Chain) -> Tx {
    let to = user_key(1).public().account_id();
    testkit::transfer(chain, &user_key(0), 0, to, Amount::from_sat(1), Amount::from_sat(50_000)).into()
}

fn in_flight(store: &MemStore, h: u64) -> Vec<crate::batching::BatchRecord> {
    let snap = store.snapshot(h);
    let index = batch_index(&snap).expect("index");
    index.in_flight.iter().map(|id| batch(&snap, *id).expect("read").expect("batch")).collect()
}

#[test]
fn the_dust_is_uneconomic_at_the_agreed_rate() {
    let (chain, store) = chain();
    let rate = crate::fee_rate::agreed_bitcoin_fee_rate(&chain, &store.snapshot(0)).expect("rate");
    let cost = input_cost(chain.genesis_wallet(), rate).expect("cost");
    assert!(Amount::from_sat(DUST) <= cost, "the test's dust must cost more to spend ({cost}) than it holds");
}

#[test]
fn a_hundred_old_dust_coins_do_not_stall_the_migration_sweep() {
    let (chain, mut store) = chain();
    let mut txs = dust();
    txs.push(fund_pool(&chain));
    commit(&chain, &mut store, 1, 2, txs);
    // The real coin confirmed after all the dust.
    commit(&chain, &mut store, 2, 2, vec![deposit(1_000, 400_000, 2, 0)]);
    let members: Vec<GenesisValidator> = (0..3)
        .map(|i| GenesisValidator {
            consensus_key: validator_key(i).public(),
            peg_key: validator_peg_key(i),
            p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", 26656 + i),
            power: 1,
        })
        .collect();
    let p = FederationProposal { validators: members, peg_threshold: 3, activation_height: Height(6) };
    let approvals =
        (0..4).map(|i| p.approve(ValidatorIndex(i as u16), 0, &validator_key(i), chain.genesis_hash())).collect();
    commit(&chain, &mut store, 3, 2, vec![Tx::Reconfigure(ReconfigureTx { proposal: p, approvals })]);
    for h in 4..=6 {
        commit(&chain, &mut store, h, 2, vec![]);
    }
    // Height 6 is an interval height after the change: the sweep takes the real coin, no dust.
    let batches = in_flight(&store, 6);
    assert_eq!(batches.len(), 1, "the sweep of epoch 0 is built despite {DUST_COINS} older dust coins");
    let b = &batches[0];
    assert_eq!((b.kind, b.epoch, b.change_epoch), (BatchKind::Sweep, 0, 1));
    assert_eq!(b.inputs.iter().map(|i| i.amount.to_sat()).collect::<Vec<_>>(), vec![400_000]);
    // The dust stays held, counted in `btc_held`, and reported as uneconomic.
    let snap = store.snapshot(6);
    assert_eq!(spendable_utxos(&snap).expect("set").0.len(), usize::from(DUST_COINS));
    let u = uneconomic_coins(&chain, &snap).expect("uneconomic");
    assert_eq!((u.coins, u.amount), (u64::from(DUST_COINS), Amount::from_sat(DUST * u64::from(DUST_COINS))));
    assert!(snap.peg_totals().expect("totals").btc_held >= Amount::from_sat(400_000) + u.amount);
    // And the next intervals build nothing more from it (no batch of dust, no error).
    commit(&chain, &mut store, 7, 2, vec![]);
    commit(&chain, &mut store, 8, 2, vec![]);
    assert_eq!(in_flight(&store, 8).len(), 1);
}

#[test]
fn refreshes_take_real_coins_past_older_dust_and_what_remains_goes_next_interval() {
    let (chain, mut store) = chain();
    // 120 dust coins at BTC height 1, then 105 real coins at height 2 (more than one sweep's 100 inputs).
    let mut txs = dust();
    txs.push(fund_pool(&chain));
    commit(&chain, &mut store, 1, 2, txs);
    let real: Vec<Tx> = (0..105u16).map(|n| deposit(2_000 + n, 20_000 + u64::from(n), 2, 0)).collect();
    commit(&chain, &mut store, 2, 2, real);
    assert!(in_flight(&store, 2).is_empty(), "nothing due at anchor 2");
    // Delay 30, margin 10: every coin is due by anchor 22; height 4 is an interval height.
    commit(&chain, &mut store, 3, 12, vec![]);
    commit(&chain, &mut store, 4, 22, vec![]);
    let batches = in_flight(&store, 4);
    assert_eq!(batches.len(), 1, "a refresh despite {DUST_COINS} older dust coins");
    let first = &batches[0];
    assert_eq!(first.kind, BatchKind::Refresh);
    assert_eq!(first.inputs.len(), 100, "the input cap, all of it real coins, the largest ones");
    assert!(first.inputs.iter().all(|i| i.amount.to_sat() >= 20_005));
    // The five left out are refreshed at the next interval; the dust never is.
    commit(&chain, &mut store, 5, 22, vec![]);
    commit(&chain, &mut store, 6, 22, vec![]);
    let batches = in_flight(&store, 6);
    assert_eq!(batches.len(), 2);
    let second = &batches[1];
    assert_eq!(second.kind, BatchKind::Refresh);
    let mut amounts: Vec<u64> = second.inputs.iter().map(|i| i.amount.to_sat()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, (20_000..20_005).collect::<Vec<_>>());
    let u = uneconomic_coins(&chain, &store.snapshot(6)).expect("uneconomic");
    assert_eq!(u.coins, u64::from(DUST_COINS));
}
