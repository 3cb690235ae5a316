//! A Bitcoin reorg deeper than N with real bitcoinds and real processes: the anchored block disappears from
//! every bitcoind, f+1 validators report it, peg operations halt loudly (metric, RPC) while transfers go on;
//! 2f+1 operators vote `resumepeg` for an anchor on the new branch and the peg runs again from there.

use bitcoin::Amount;
use primitives::{AccountId, Keypair};
use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::btc_wallet::BtcWallet;
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

const N: u64 = 6;

async fn chain_info(fed: &Federation, i: usize) -> rpc::types::ChainInfo {
    fed.nodes[i].client().expect("client").get_blockchain_info().await.expect("info")
}

async fn wait_until<F, Fut>(what: &str, bound: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    while !f().await {
        assert!(Instant::now() < deadline, "{what}: not after {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Mines `n` blocks on bitcoind 0 paying wallet `seed` (no transactions are pending in this test) and waits
/// for every bitcoind. A new branch must pay another wallet than the old one, or its first block could be
/// byte-identical to the invalidated one.
fn mine_empty(fed: &Federation, n: u64, seed: u8) -> u64 {
    if let Err(e) = fed.bitcoinds[0].mine_to(n, &BtcWallet::from_seed(seed).address()) {
        panic!("mine: {e}: {}", fed.bitcoinds[0].log_tail(15));
    }
    let h = fed.bitcoinds[0].height().expect("height");
    for b in &fed.bitcoinds {
        b.wait_for_height(h, Duration::from_secs(30)).expect("bitcoinds share blocks");
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_n_halts_the_peg_transfers_go_on_and_resumepeg_resumes() {
    let scenario = Scenario::begin("deep_reorg_peg_halt");
    let payer = Keypair::from_secret([21; 32]);
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 1,
        bitcoind: true,
        initial_accounts: vec![(payer.public().account_id().to_string(), 1_000_000)],
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let tip = mine_empty(&fed, 12, 77);
    wait_until("anchor follows", Duration::from_secs(60), || async {
        u64::from(chain_info(&fed, 0).await.btc_anchor.height.get()) >= tip - (N - 1)
    })
    .await;
    let anchored = chain_info(&fed, 0).await.btc_anchor;
    assert!(!chain_info(&fed, 4).await.peg.halted);

    // Replace every block from below the anchor with a longer branch: the anchored block is gone everywhere.
    let fork_at = u64::from(anchored.height.get()) - 1;
    let fork_hash: String = fed.bitcoinds[0].call("getblockhash", &[serde_json::json!(fork_at)]).expect("hash");
    fed.bitcoinds[0].call::<serde_json::Value>("invalidateblock", &[serde_json::json!(fork_hash)]).expect("inv");
    let new_tip = mine_empty(&fed, tip - fork_at + 4, 78);
    assert!(new_tip > tip);
    wait_until("peg halts", Duration::from_secs(60), || async { chain_info(&fed, 4).await.peg.halted }).await;
    assert_eq!(fed.nodes[4].metric("sidechain_peg_halted").expect("metrics"), Some(1.0));
    let halted_anchor = chain_info(&fed, 0).await.btc_anchor;
    assert_eq!(halted_anchor, anchored, "the anchor stays while halted");

    // Transfers go on; the anchor does not move however far Bitcoin goes.
    let to = AccountId(primitives::Hash32([5; 32]));
    let c = fed.nodes[1].client().expect("client");
    let genesis = chain_info(&fed, 1).await.genesis_hash;
    let tx = ledger::UserTx {
        signer: payer.public(),
        nonce: 0,
        fee: Amount::from_sat(100),
        kind: ledger::UserTxKind::Transfer { to, amount: Amount::from_sat(1_234) },
    }
    .sign(&payer, &genesis);
    c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&tx))).await.expect("transfer accepted");
    wait_until("transfer committed while halted", Duration::from_secs(60), || async {
        c.get_account(to, None).await.map(|a| a.balance == Amount::from_sat(1_234)).unwrap_or(false)
    })
    .await;
    mine_empty(&fed, 8, 78);
    let h = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0], h + 5, Duration::from_secs(60)).await.expect("blocks go on");
    assert_eq!(chain_info(&fed, 0).await.btc_anchor, anchored);

    // 2f+1 operators vote to resume from a block of the new branch with N confirmations.
    let best = fed.bitcoinds[0].height().expect("height");
    let resume_height = best - (N - 1);
    let resume_hash: bitcoin::BlockHash = fed.bitcoinds[0]
        .call::<String>("getblockhash", &[serde_json::json!(resume_height)])
        .expect("hash")
        .parse()
        .expect("hash");
    let refused =
        fed.nodes[4].client().expect("client").resume_peg(resume_height as u32, resume_hash.to_string()).await;
    assert!(refused.is_err(), "a full node cannot vote");
    for i in 0..3 {
        fed.nodes[i]
            .client()
            .expect("client")
            .resume_peg(resume_height as u32, resume_hash.to_string())
            .await
            .expect("vote");
    }
    wait_until("peg resumes", Duration::from_secs(60), || async { !chain_info(&fed, 4).await.peg.halted }).await;
    wait_until("anchor on the new branch", Duration::from_secs(60), || async {
        let a = chain_info(&fed, 4).await.btc_anchor;
        u64::from(a.height.get()) >= resume_height && a != anchored
    })
    .await;
    let a = chain_info(&fed, 4).await.btc_anchor;
    let shown: String = fed.bitcoinds[1].call("getblockhash", &[serde_json::json!(a.height.get())]).expect("hash");
    assert_eq!(a.hash.to_string(), shown, "the resumed anchor is on the new branch");
    // And it follows Bitcoin again.
    let t = mine_empty(&fed, 3, 78);
    wait_until("anchor moves after resume", Duration::from_secs(60), || async {
        u64::from(chain_info(&fed, 0).await.btc_anchor.height.get()) >= t - (N - 1)
    })
    .await;
    for n in &mut fed.nodes {
        assert!(n.process.is_running(), "{} stopped: {}", n.name, n.process.log_tail(20));
    }
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
