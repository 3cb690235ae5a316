//! The BTC anchor with real bitcoinds (one per validator, connected as a regtest network): it follows
//! Bitcoin at N confirmations; with one validator's bitcoind down the other three keep moving it; with two
//! down it stops while transfers go on (issue 7, "One validator's bitcoind stopped ...").

use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

async fn anchor(fed: &Federation, i: usize) -> (u32, String) {
    let info = fed.nodes[i].client().expect("client").get_blockchain_info().await.expect("info");
    let a = serde_json::to_value(info.btc_anchor).expect("json");
    (a["height"].as_u64().unwrap_or(0) as u32, a["hash"].as_str().unwrap_or_default().to_string())
}

async fn wait_anchor(fed: &Federation, at_least: u32, bound: Duration) -> (u32, String) {
    let deadline = Instant::now() + bound;
    loop {
        let a = anchor(fed, 0).await;
        if a.0 >= at_least {
            return a;
        }
        assert!(Instant::now() < deadline, "anchor still at {} after {bound:?}, wanted {at_least}", a.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// bitcoind's hash at `height` as bitcoind shows it (the RPC shows anchors the same way).
fn shown_hash(fed: &Federation, height: u32) -> String {
    fed.bitcoinds[0].call("getblockhash", &[serde_json::json!(height)]).expect("getblockhash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_follows_bitcoin_and_needs_a_quorum_of_bitcoinds() {
    let scenario = Scenario::begin("bitcoind_down_then_back");
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        bitcoind: true,
        initial_accounts: vec![(
            primitives::Keypair::from_secret([42; 32]).public().account_id().to_string(),
            1_000_000,
        )],
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    assert_eq!(anchor(&fed, 0).await.0, 0, "anchored at the regtest genesis");
    let n = 6; // Params::default().pegin_confirmations

    // Bitcoin moves: the anchor follows at N confirmations, step by step (at most max_anchor_step each).
    fed.bitcoinds[0].mine(20).expect("mine");
    for b in &fed.bitcoinds {
        b.wait_for_height(20, Duration::from_secs(30)).expect("bitcoinds share blocks");
    }
    let a = wait_anchor(&fed, 20 - (n - 1), Duration::from_secs(60)).await;
    assert_eq!(a.0, 20 - (n - 1), "never beyond N confirmations");
    assert_eq!(a.1, shown_hash(&fed, a.0), "the anchor names bitcoind's block at that height");

    // One bitcoind down: the three others still move the anchor.
    fed.bitcoinds[3].stop();
    fed.bitcoinds[0].mine(5).expect("mine");
    let a = wait_anchor(&fed, 25 - (n - 1), Duration::from_secs(60)).await;
    assert_eq!(a.1, shown_hash(&fed, a.0));

    // Two down: no 2f+1 can confirm a move, so the anchor stays; blocks (and transfers) go on.
    fed.bitcoinds[2].stop();
    fed.bitcoinds[0].mine(5).expect("mine");
    let stuck = anchor(&fed, 0).await;
    let h0 = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0, 1], h0 + 10, Duration::from_secs(120)).await.expect("blocks go on without the anchor");
    assert_eq!(anchor(&fed, 0).await, stuck, "two bitcoinds down: the anchor must not move");

    // Both back (same datadirs and ports): they catch up with Bitcoin, their validators see them again
    // without a restart of their own, and the anchor moves on to N confirmations of the tip.
    for i in [2, 3] {
        fed.bitcoinds[i].restart_with(&[]).expect("bitcoind restarts");
        fed.bitcoinds[0].connect(&fed.bitcoinds[i]).expect("reconnect");
        fed.bitcoinds[i].wait_for_height(30, Duration::from_secs(60)).expect("catches up");
    }
    let a = wait_anchor(&fed, 30 - (n - 1), Duration::from_secs(60)).await;
    assert_eq!(a.1, shown_hash(&fed, a.0), "the anchor moves again once a quorum of bitcoinds is back");
    fed.bitcoinds[0].mine(5).expect("mine");
    for b in &fed.bitcoinds {
        b.wait_for_height(35, Duration::from_secs(30)).expect("bitcoinds share blocks");
    }
    wait_anchor(&fed, 35 - (n - 1), Duration::from_secs(60)).await;
    for i in 0..4 {
        assert!(
            fed.nodes[i].process.is_running(),
            "{} stopped: {}",
            fed.nodes[i].name,
            fed.nodes[i].process.log_tail(20)
        );
    }
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
