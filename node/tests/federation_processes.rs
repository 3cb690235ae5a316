//! Issue 5's end-to-end checks with real processes: four validators and a full node as separate
//! `sidechaind` processes on loopback, real RocksDB, real libp2p, driven over JSON-RPC.

use bitcoin::Amount;
use ledger::{UserTx, UserTxKind};
use primitives::{canonical_bytes, Keypair};
use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

fn user() -> Keypair {
    Keypair::from_secret([42; 32])
}

fn start(validators: usize, full_nodes: usize) -> Federation {
    Federation::start(FederationConfig {
        // The binary cargo built for this test run.
        validators,
        full_nodes,
        initial_accounts: vec![(user().public().account_id().to_string(), 10_000_000)],
        ..Default::default()
    })
    .expect("federation starts")
}

async fn heights(fed: &Federation, which: &[usize]) -> Vec<u64> {
    let mut out = vec![];
    for &i in which {
        out.push(fed.nodes[i].height().await.unwrap_or(0));
    }
    out
}

async fn balance(fed: &Federation, i: usize, id: primitives::AccountId) -> Option<Amount> {
    let c = fed.nodes[i].client().ok()?;
    c.get_account(id, None).await.ok().map(|a| a.balance)
}

async fn block_hash_at(fed: &Federation, i: usize, h: u64) -> primitives::BlockId {
    fed.nodes[i].client().expect("client").get_block_hash(primitives::Height(h)).await.expect("block hash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_is_committed_everywhere_and_a_killed_validator_catches_up_without_double_signing() {
    let scenario = Scenario::begin("kill9_catch_up");
    let mut fed = start(4, 1);
    let all = [0, 1, 2, 3, 4];
    fed.wait_height(&all, 2, Duration::from_secs(90)).await.expect("all nodes commit blocks");

    // A transfer submitted to one validator is committed, and every node reports the same balance.
    let info = fed.nodes[0].client().expect("client").get_blockchain_info().await.expect("info");
    let to = Keypair::from_secret([7; 32]).public().account_id();
    let tx = UserTx {
        signer: user().public(),
        nonce: 0,
        fee: info.min_fee,
        kind: UserTxKind::Transfer { to, amount: Amount::from_sat(123_456) },
    }
    .sign(&user(), &info.genesis_hash);
    let c1 = fed.nodes[1].client().expect("client");
    c1.send_raw_transaction(hex::encode(canonical_bytes(&tx))).await.expect("accepted");
    let bad = c1.send_raw_transaction(hex::encode(canonical_bytes(&tx))).await.expect_err("duplicate");
    assert!(bad.to_string().contains("already"), "{bad}");
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in all {
        while balance(&fed, i, to).await != Some(Amount::from_sat(123_456)) {
            assert!(Instant::now() < deadline, "transfer not committed on {}", fed.nodes[i].name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let h = heights(&fed, &all).await.into_iter().min().unwrap_or(1);
    let reference = block_hash_at(&fed, 0, h).await;
    for i in all {
        assert_eq!(block_hash_at(&fed, i, h).await, reference, "{} agrees at height {h}", fed.nodes[i].name);
    }

    // kill -9 one validator: the other three keep committing.
    fed.nodes[3].process.kill9();
    let before = heights(&fed, &[0]).await[0];
    fed.wait_height(&[0, 1, 2, 4], before + 3, Duration::from_secs(60)).await.expect("three validators go on");
    // Restarted, it catches up from its own disk and the network.
    fed.nodes[3].process.restart().expect("restart");
    let now = heights(&fed, &[0]).await[0];
    fed.wait_height(&[3], now + 1, Duration::from_secs(90)).await.expect("restarted validator catches up");

    // Nobody saw two different votes from anyone.
    for i in all {
        let ev = fed.nodes[i].client().expect("client").get_evidence().await.expect("evidence");
        assert!(ev.is_empty(), "{} recorded equivocation: {ev:?}", fed.nodes[i].name);
    }
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_four_down_halts_without_forking_and_progress_resumes() {
    let scenario = Scenario::begin("two_of_four_down");
    let mut fed = start(4, 0);
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    fed.nodes[2].process.kill9();
    fed.nodes[3].process.kill9();
    // Whatever was in flight settles; then the two survivors cannot reach 2f+1.
    let settle = Instant::now() + Duration::from_secs(3);
    let mut stuck = heights(&fed, &[0, 1]).await;
    while Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stuck = heights(&fed, &[0, 1]).await;
    }
    // Observe a window of several rounds: no new block on either survivor.
    let window = Instant::now() + Duration::from_secs(6);
    while Instant::now() < window {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(heights(&fed, &[0, 1]).await, stuck, "no block without a quorum");
    }
    let top = stuck.iter().copied().max().unwrap_or(0);
    fed.nodes[2].process.restart().expect("restart");
    fed.nodes[3].process.restart().expect("restart");
    fed.wait_height(&[0, 1, 2, 3], top + 2, Duration::from_secs(120)).await.expect("progress resumes");
    for h in 1..=top + 1 {
        let reference = block_hash_at(&fed, 0, h).await;
        for i in 1..4 {
            assert_eq!(block_hash_at(&fed, i, h).await, reference, "no fork at height {h}");
        }
    }
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

/// Polls `getconsensusstate` on node `i` until `pick` returns something, within `bound`.
async fn wait_consensus<T>(
    fed: &Federation,
    i: usize,
    bound: Duration,
    pick: impl Fn(&rpc::types::ConsensusStateInfo) -> Option<T>,
) -> T {
    let deadline = Instant::now() + bound;
    loop {
        let last;
        let state = match fed.nodes[i].client() {
            Ok(c) => c.get_consensus_state().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match state {
            Ok(s) => match pick(&s) {
                Some(v) => return v,
                None => last = format!("{s:?}"),
            },
            Err(e) => last = e,
        }
        assert!(Instant::now() < deadline, "{}: condition not met within {bound:?}; last: {last}", fed.nodes[i].name);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_killed_after_precommitting_is_still_locked_on_that_block() {
    // Validators 0 and 1 send nil precommits and count no one's: everyone prevotes the proposal,
    // validators 2 and 3 lock on it and precommit it, but the height cannot complete.
    let scenario = Scenario::begin("lock_kept_after_kill9");
    let blackhole = "[fault]\nprecommit_nil = true".to_string();
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        node_toml: vec![(0, blackhole.clone()), (1, blackhole)],
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into()), ("SIDECHAIND_ALLOW_FAULTS".into(), "1".into())],
        ..Default::default()
    })
    .expect("federation starts");
    let locked = wait_consensus(&fed, 3, Duration::from_secs(60), |s| s.locked_block.zip(s.locked_round)).await;
    fed.nodes[3].process.kill9();
    assert_eq!(heights(&fed, &[0, 1, 2]).await, vec![0, 0, 0], "no height completes without precommits");

    // Restarted from its WAL, it is locked on the same block (the lock's round can only be a later polka
    // for the same block, since no other block can gather 2f+1 prevotes against three locks).
    fed.nodes[3].process.restart().expect("restart");
    let after = wait_consensus(&fed, 3, Duration::from_secs(30), |s| s.locked_block.zip(s.locked_round)).await;
    assert_eq!(after.0, locked.0, "validator3 locked on {} before the kill, {} after", locked.0, after.0);
    assert!(after.1 >= locked.1, "lock round went back from {} to {}", locked.1, after.1);

    // Lift the faults: the height completes, and with the block everyone was locked on.
    for i in [0, 1] {
        fed.nodes[i].process.terminate(Duration::from_secs(10));
        fed.write_config(&fed.nodes[i].datadir.clone(), "").expect("config");
        fed.nodes[i].process.restart().expect("restart");
    }
    fed.wait_height(&[0, 1, 2, 3], 1, Duration::from_secs(90)).await.expect("height 1 completes");
    assert_eq!(block_hash_at(&fed, 2, 1).await, locked.0, "the decided block is the one validator3 was locked on");
    // Validators 0 and 1 did sign two precommits per round (the nil they sent, the one their WAL keeps):
    // evidence against them is expected. Against the honest ones, and the killed one, there is none.
    for i in 0..4 {
        let ev = fed.nodes[i].client().expect("client").get_evidence().await.expect("evidence");
        assert!(
            ev.iter().all(|e| e.offender.get() < 2),
            "{} recorded equivocation by 2 or 3: {ev:?}",
            fed.nodes[i].name
        );
    }
    let checks = Checks { honest_validators: Some(vec![2, 3]), ..Default::default() };
    scenario.finish(&mut fed, checks).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_started_after_200_blocks_syncs_from_genesis_and_follows() {
    let mut fed =
        Federation::start(FederationConfig { validators: 4, full_nodes: 1, deferred: vec![4], ..Default::default() })
            .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 200, Duration::from_secs(300)).await.expect("200 blocks");
    fed.nodes[4].process.restart().expect("start the full node");
    let tip = heights(&fed, &[0]).await[0];
    fed.wait_height(&[4], tip, Duration::from_secs(120)).await.expect("full node syncs to the tip it saw at start");
    // ... and then follows: a few more blocks arrive by consensus gossip or sync.
    let tip = heights(&fed, &[0]).await[0];
    fed.wait_height(&[4], tip + 3, Duration::from_secs(60)).await.expect("full node follows the tip");
    let info = fed.nodes[4].client().expect("client").get_blockchain_info().await.expect("info");
    assert!(!info.validator, "the full node is not a validator");
    for h in [1, 100, 200, tip] {
        assert_eq!(block_hash_at(&fed, 4, h).await, block_hash_at(&fed, 0, h).await, "same block at {h}");
    }
    // Its metrics say how it got there.
    // (Metrics follow the node's status asynchronously: poll, bounded.)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let synced = fed.nodes[4].metric("sidechain_blocks_synced_total").expect("metrics").unwrap_or(0.0);
        if synced >= 190.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the full node synced its blocks: sidechain_blocks_synced_total = {synced}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let height = fed.nodes[4].metric("sidechain_height").expect("metrics").unwrap_or(0.0);
    assert!(height >= tip as f64, "sidechain_height {height} >= {tip}");
    let text = fed.nodes[0].metrics().expect("validator metrics");
    for name in
        ["sidechain_round", "sidechain_rounds_per_height_count", "sidechain_finality_seconds_count", "sidechain_peers"]
    {
        assert!(text.contains(name), "validator metrics have {name}");
    }
    // Each block is executed once per node (the judge's or, for its own proposals, the builder's outcome
    // serves the commit), not once to judge and again to commit as before: about 1 per committed block on
    // the validator, with slack for heights decided in a later round (a block judged and then not decided).
    let committed = fed.nodes[0].metric("sidechain_blocks_committed_total").expect("metrics").unwrap_or(0.0);
    let executed = fed.nodes[0].metric("sidechain_block_executions_total").expect("metrics").unwrap_or(0.0);
    // (At least half: its own proposals, a quarter of the blocks, are executed by the builder, not counted.)
    assert!(
        committed >= 200.0 && executed >= committed * 0.5 && executed <= committed * 1.25,
        "{executed} executions for {committed} blocks"
    );
    println!("validator0: {executed} block executions for {committed} committed blocks");
    // It keeps the certificates it verified: a quorum of precommits for the same block.
    let commit = fed.nodes[4].client().expect("client").get_commit(primitives::Height(200)).await.expect("commit");
    assert_eq!(commit.block_hash, block_hash_at(&fed, 0, 200).await);
    assert!(commit.signatures.len() >= 3, "a quorum of 4 is 3 precommits: {commit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_validator_is_recorded_in_blocks_once_and_the_chain_stays_single() {
    let scenario = Scenario::begin("equivocation");
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 1,
        deferred: vec![4],
        node_toml: vec![(3, "[fault]\nequivocate = true".into())],
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into()), ("SIDECHAIND_ALLOW_FAULTS".into(), "1".into())],
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 1, Duration::from_secs(60)).await.expect("blocks");
    // Blocks carry evidence against validator 3; scan them until some is found.
    let c0 = fed.nodes[0].client().expect("client");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut recorded: Vec<(u64, u64, u32)> = Vec::new();
    let mut scanned = 0;
    while recorded.len() < 2 {
        assert!(Instant::now() < deadline, "no evidence committed within 90 s (scanned {scanned} blocks)");
        let tip = fed.nodes[0].height().await.unwrap_or(0);
        while scanned < tip {
            scanned += 1;
            let block = c0.get_block(rpc::BlockRef::Height(primitives::Height(scanned)), Some(2)).await.expect("block");
            let rpc::types::GetBlockResult::Json(b) = block else { panic!("verbosity 2 is JSON") };
            // An empty list reads back as `Ids` (the type is untagged): no transactions either way.
            let txs = match b.tx {
                rpc::types::BlockTxs::Full(txs) => txs,
                rpc::types::BlockTxs::Ids(ids) if ids.is_empty() => Vec::new(),
                rpc::types::BlockTxs::Ids(_) => panic!("verbosity 2 has full transactions"),
            };
            for t in txs {
                if let rpc::types::TxKindInfo::Evidence { offender, height, round } = t.kind {
                    assert_eq!(offender.get(), 3, "only validator 3 equivocates");
                    assert_eq!(t.from, None);
                    recorded.push((scanned, height.get(), round.get()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each equivocation is recorded once, forever.
    let mut keys: Vec<(u64, u32)> = recorded.iter().map(|(_, h, r)| (*h, *r)).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "an equivocation recorded twice: {recorded:?}");
    // A full node syncing from genesis re-verifies every evidence proof and agrees on every block.
    fed.nodes[4].process.restart().expect("start the full node");
    let top = scanned;
    fed.wait_height(&[0, 1, 2, 3, 4], top, Duration::from_secs(60)).await.expect("everyone reaches the evidence");
    for h in 1..=top {
        let reference = block_hash_at(&fed, 0, h).await;
        for i in 1..5 {
            assert_eq!(block_hash_at(&fed, i, h).await, reference, "{} at height {h}", fed.nodes[i].name);
        }
    }
    // The check that closes every scenario would catch it: validator 3 is not honest.
    let caught = testnet::scenario::check_evidence(&fed, &[0], &[3]).await;
    assert!(matches!(caught, Err(testnet::scenario::ScenarioError::DoubleSigned { offender: 3, .. })), "{caught:?}");
    let checks = Checks { honest_validators: Some(vec![0, 1, 2]), ..Default::default() };
    scenario.finish(&mut fed, checks).await.expect("closing checks");
}
