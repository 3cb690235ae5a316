//! The node's Bitcoin view and deposit index against a real regtest bitcoind (no mocks): answers that match
//! bitcoind's own, a stopped bitcoind answered with `None` within a bound, deposits found with their exact
//! outpoint and amount, a reorg that removes a deposit, and the peg's anchor rule over the real client.

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Amount, BlockHash, OutPoint, PublicKey};
use node::bitcoin::{BitcoinError, BitcoindAuth, BitcoindClient, DepositIndex};
use peg::{check_anchor_move, choose_anchor, AnchorRejection, BitcoinView, Federation};
use serde_json::json;
use std::time::{Duration, Instant};
use testnet::btc_wallet::broadcast;
use testnet::{wait_until, Bitcoind, BtcWallet};

const GENESIS: [u8; 32] = [7; 32];
const RECIPIENT: [u8; 32] = [0xab; 32];

fn client_for(btc: &Bitcoind) -> BitcoindClient {
    let (url, user, password) = btc.rpc_credentials();
    BitcoindClient::new(url, BitcoindAuth::UserPass { user, password }).expect("valid url")
}

fn federation() -> Federation {
    let secp = Secp256k1::new();
    let keys = (1..=4u8)
        .map(|i| PublicKey::new(SecretKey::from_slice(&[0x10 + i; 32]).expect("valid scalar").public_key(&secp)))
        .collect();
    Federation::new(3, keys).expect("3-of-4 federation")
}

/// A funded wallet: one coinbase to it, matured (tip at height 101).
fn funded(btc: &Bitcoind, seed: u8) -> (BtcWallet, testnet::Utxo) {
    let wallet = BtcWallet::from_seed(seed);
    let utxo = wallet.mine_coinbases(btc, 1).expect("mine to wallet").remove(0);
    btc.mine(100).expect("mature");
    (wallet, utxo)
}

/// Syncs until the index reaches bitcoind's tip (bounded).
fn sync_to_tip(
    index: &mut DepositIndex,
    client: &BitcoindClient,
    registered: &peg::ScriptMaps,
    _fed: &Federation,
) -> (u32, u32) {
    let (mut scanned, mut rewound) = (0, 0);
    let best = client.best_height().expect("best height");
    for _ in 0..100 {
        let r = index.sync(client, registered, u32::MAX).expect("sync");
        scanned += r.scanned;
        rewound += r.rewound;
        if r.tip.map(|t| t.0) == Some(best) {
            return (scanned, rewound);
        }
    }
    panic!("index did not reach bitcoind's tip {best}: {:?}", index.tip());
}

#[test]
fn view_answers_what_bitcoind_says() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let client = client_for(&btc);
    assert_eq!(BitcoinView::best_height(&client), Some(0));
    btc.mine(12).expect("mine");
    assert_eq!(BitcoinView::best_height(&client), Some(12));
    for h in [0u32, 1, 7, 12] {
        let theirs: BlockHash = btc.call("getblockhash", &[json!(h)]).expect("getblockhash");
        assert_eq!(client.hash_at(h), Some(theirs), "height {h}");
        assert_eq!(client.block(&theirs).expect("block").block_hash(), theirs);
    }
    assert_eq!(client.hash_at(13), None, "no block above the tip");
    assert!(matches!(client.block_hash(13), Err(BitcoinError::NoBlockAtHeight { height: 13 })));
    assert!(matches!(
        client.block(&BlockHash::from_raw_hash(bitcoin::hashes::Hash::all_zeros())),
        Err(BitcoinError::Bitcoind(btc_rpc::Error::Rpc { .. }))
    ));
}

#[test]
fn a_stopped_or_silent_bitcoind_is_none_within_a_bound() {
    let mut btc = Bitcoind::start().expect("bitcoind starts");
    let client = client_for(&btc);
    btc.mine(3).expect("mine");
    assert_eq!(BitcoinView::best_height(&client), Some(3));
    btc.stop();
    let started = Instant::now();
    assert_eq!(BitcoinView::best_height(&client), None);
    assert_eq!(client.hash_at(1), None);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    // A peer that accepts TCP connections but never answers: bounded by the transport timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("addr"));
    let auth = BitcoindAuth::UserPass { user: "u".into(), password: "p".into() };
    let client = BitcoindClient::with_timeout(url, auth, Duration::from_millis(500)).expect("valid url");
    let started = Instant::now();
    let err = client.best_height().expect_err("no answer");
    assert!(matches!(&err, BitcoinError::Bitcoind(btc_rpc::Error::Timeout { .. })), "{err:?}");
    assert!(matches!(&err, BitcoinError::Bitcoind(e) if e.method() == Some("getblockcount")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    // Bad configuration is an error, not a panic.
    let missing = BitcoindAuth::CookieFile("/nonexistent/.cookie".into());
    let client = BitcoindClient::new("http://127.0.0.1:1", missing).expect("valid url");
    assert!(matches!(client.best_height(), Err(BitcoinError::Bitcoind(btc_rpc::Error::Cookie { .. }))));
    assert!(matches!(
        BitcoindClient::new("not a url", BitcoindAuth::CookieFile("x".into())),
        Err(BitcoinError::Bitcoind(btc_rpc::Error::BadUrl { .. }))
    ));
}

#[test]
fn deposits_are_indexed_exactly_and_follow_reorgs() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let client = client_for(&btc);
    let (wallet, utxo) = funded(&btc, 3);
    let fed = federation();
    let script = fed.deposit_script_pubkey(GENESIS, RECIPIENT).expect("deposit script");
    let address = fed.deposit_address(GENESIS, RECIPIENT, bitcoin::Network::Regtest).expect("address");
    assert_eq!(address.script_pubkey(), script);

    let amount = Amount::from_sat(123_456_789);
    let tx = wallet.pay(&utxo, script.clone(), amount, Amount::from_sat(2_000)).expect("pay");
    let txid = broadcast(&btc, &tx).expect("broadcast");
    let deposit_block = btc.mine(1).expect("mine deposit")[0];
    btc.mine(2).expect("confirmations"); // tip 104; deposit at 102
    let outpoint = OutPoint { txid, vout: 0 };

    // Scanned before the script is registered: not found. Registered and rescanned: found.
    let mut registered = peg::ScriptMaps::default();
    registered.plain.insert(fed.script_pubkey(), 0);
    let mut index = DepositIndex::new(0).with_max_blocks_per_sync(40);
    let (scanned, rewound) = sync_to_tip(&mut index, &client, &registered, &fed);
    assert_eq!((scanned, rewound), (105, 0), "0..=104 in batches of 40");
    assert_eq!(index.deposits_between(0, 104).expect("covered"), vec![]);
    registered.deposits.insert(script.clone(), (RECIPIENT, 0));
    // In place, from the transactions the index kept: nothing is fetched again.
    assert_eq!(index.rescan_from(101, &registered), 4);
    let (scanned, _) = sync_to_tip(&mut index, &client, &registered, &fed);
    assert_eq!(scanned, 0);

    let found = index.deposits_between(101, 102).expect("covered");
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0];
    assert_eq!((d.outpoint, d.amount, d.recipient), (outpoint, amount, RECIPIENT));
    assert_eq!((d.btc_height, d.btc_block_hash, &d.script_pubkey, d.coinbase), (102, deposit_block, &script, false));
    assert_eq!(index.get(102).expect("indexed").hash, deposit_block);
    assert_eq!(index.deposits_between(100, 104).expect("covered"), found);
    assert_eq!(index.deposits_between(102, 104).expect("covered"), vec![], "window excludes its block");
    assert_eq!(index.deposits_between(90, 101).expect("covered"), vec![], "window ends before its block");
    assert!(matches!(index.deposits_between(102, 105), Err(BitcoinError::NotIndexed { height: 105, .. })));

    // Reorg: the deposit's block is invalidated; the index rewinds to the fork point.
    let _: serde_json::Value = btc.call("invalidateblock", &[json!(deposit_block.to_string())]).expect("invalidate");
    assert_eq!(btc.height().expect("height"), 101);
    let r = index.sync(&client, &registered, u32::MAX).expect("sync");
    assert_eq!((r.scanned, r.rewound, r.tip.map(|t| t.0)), (0, 3, Some(101)));
    assert!(matches!(index.deposits_between(101, 102), Err(BitcoinError::NotIndexed { height: 102, .. })));

    // A longer chain without the deposit (it waits in the mempool; these blocks leave it out).
    let burn = BtcWallet::from_seed(9).address().to_string();
    for _ in 0..4 {
        let _: serde_json::Value = btc.call("generateblock", &[json!(burn), json!([])]).expect("generateblock");
    }
    let (scanned, rewound) = sync_to_tip(&mut index, &client, &registered, &fed);
    assert_eq!((scanned, rewound), (4, 0));
    assert_eq!(index.deposits_between(0, 105).expect("covered"), vec![], "gone with its block");
    assert_ne!(index.get(102).expect("indexed").hash, deposit_block);

    // A deeper competing branch found after the index moved on: the stale tip is rewound, not kept.
    let _: serde_json::Value = btc.call("reconsiderblock", &[json!(deposit_block.to_string())]).expect("reconsider");
    assert_eq!(btc.height().expect("height"), 105, "the longer chain stays best");
    let tip_before = index.tip().expect("tip");
    let best_at_103 = btc.call::<BlockHash>("getblockhash", &[json!(103)]).expect("hash");
    let _: serde_json::Value = btc.call("invalidateblock", &[json!(best_at_103.to_string())]).expect("invalidate");
    wait_until("the deposit branch becomes best", Duration::from_secs(20), || Ok(btc.height()? == 104))
        .expect("reorg back to the deposit branch");
    let (_, rewound) = sync_to_tip(&mut index, &client, &registered, &fed);
    assert!(rewound >= 3, "rewound {rewound} from {tip_before:?}");

    // The same deposit, in the branch now best, is found once, at its block.
    let all = index.deposits_between(0, 104).expect("covered");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].outpoint, all[0].btc_block_hash, all[0].btc_height), (outpoint, deposit_block, 102));
}

#[test]
fn anchors_need_n_confirmations_from_the_real_bitcoind() {
    const N: u32 = 6;
    const STEP: u32 = 50;
    let btc = Bitcoind::start().expect("bitcoind starts");
    let client = client_for(&btc);
    btc.mine(20).expect("mine");
    let at = |h: u32| (h, client.hash_at(h).expect("in best chain"));
    let prev = at(10);

    // Tip 20: height 15 has 6 confirmations, 16 has 5.
    assert_eq!(check_anchor_move(&client, prev, at(15), N, STEP), Ok(()));
    assert_eq!(
        check_anchor_move(&client, prev, at(16), N, STEP),
        Err(AnchorRejection::NotEnoughConfirmations { height: 16, confirmations: 5, required: N })
    );
    assert_eq!(choose_anchor(&client, prev, N, STEP), Some(at(15)));

    // One more block: 16 now has N.
    btc.mine(1).expect("mine");
    assert_eq!(check_anchor_move(&client, prev, at(16), N, STEP), Ok(()));
    assert_eq!(choose_anchor(&client, prev, N, STEP), Some(at(16)));

    // Bitcoind gone: moves are rejected as unavailability, keeping the anchor is still fine.
    let mut btc = btc;
    let proposed = at(16);
    btc.stop();
    assert_eq!(check_anchor_move(&client, prev, proposed, N, STEP), Err(AnchorRejection::BitcoindUnavailable));
    assert_eq!(check_anchor_move(&client, prev, prev, N, STEP), Ok(()));
    assert_eq!(choose_anchor(&client, prev, N, STEP), None);
}
