//! Issue 9, scenario 8: load while a validator restarts. 10,000 transfers from 100 genesis accounts (each
//! sending 100, nonces in order) are submitted to three validators while the fourth is killed with -9 and
//! restarted. Every transfer a node accepted is committed exactly once, in nonce order, nothing is lost:
//! at the end every node, the restarted one included, shows each account's exact nonce and balance.
//! Then the runner's closing checks.

use bitcoin::Amount;
use ledger::{UserTx, UserTxKind};
use primitives::{canonical_bytes, GenesisHash, Height, Keypair, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{BlockTxs, GetBlockResult, HistoryEntryInfo, HistoryKindInfo};
use rpc::BlockRef;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

const ACCOUNTS: usize = 100;
const PER_ACCOUNT: u64 = 100;
const START_BALANCE: u64 = 100_000_000;
const AMOUNT: u64 = 1_000;
/// The validator that is killed and restarted; transfers go to the three others.
const RESTARTED: usize = 3;

fn key(i: usize) -> Keypair {
    let mut secret = [0x5a; 32];
    secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_secret(secret)
}

/// Each account pays the next one.
fn recipient(i: usize) -> usize {
    (i + 1) % ACCOUNTS
}

/// Submits every transfer of `accounts` to `node` (RPC URL, cookie), nonces in order per account, and returns the ids
/// the node accepted. A full mempool is waited out (bounded); any other refusal fails the test.
async fn submit(
    node: (String, std::path::PathBuf),
    accounts: Vec<usize>,
    genesis: GenesisHash,
    fee: Amount,
    accepted: Arc<AtomicUsize>,
) -> Vec<TxId> {
    let client = rpc::connect(&node.0, &rpc::ClientAuth::Cookie(node.1)).expect("client");
    let mut ids = Vec::new();
    for nonce in 0..PER_ACCOUNT {
        for &a in &accounts {
            let tx = UserTx {
                signer: key(a).public(),
                nonce,
                fee,
                kind: UserTxKind::Transfer {
                    to: key(recipient(a)).public().account_id(),
                    amount: Amount::from_sat(AMOUNT),
                },
            }
            .sign(&key(a), &genesis);
            let raw = hex::encode(canonical_bytes(&tx));
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match client.send_raw_transaction(raw.clone()).await {
                    Ok(id) => {
                        ids.push(id);
                        accepted.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(e) if e.to_string().contains("full") => {
                        assert!(Instant::now() < deadline, "mempool stayed full for 60 s: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("transfer {a}/{nonce} refused: {e}"),
                }
            }
        }
    }
    ids
}

/// Polls `accepted` until it reaches `n` (bounded).
/// Every test account's history (all of it: at most 200 entries each), in account order.
async fn histories(c: &(impl SidechainApiClient + Sync)) -> Vec<Vec<HistoryEntryInfo>> {
    let mut out = Vec::new();
    for a in 0..ACCOUNTS {
        out.push(c.list_transactions(key(a).public().account_id(), Some(1000), None, None).await.expect("history"));
    }
    out
}

async fn wait_accepted(accepted: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "only {} transfers accepted", accepted.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_transfers_while_a_validator_restarts_are_committed_exactly_once() {
    let scenario = Scenario::begin("load_10k_with_restart");
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        initial_accounts: (0..ACCOUNTS).map(|i| (key(i).public().account_id().to_string(), START_BALANCE)).collect(),
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(60)).await.expect("blocks");
    let info = fed.nodes[0].client().expect("client").get_blockchain_info().await.expect("info");
    let fee = info.min_fee;
    let started = Instant::now();

    let accepted = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let accounts: Vec<usize> = (0..ACCOUNTS).filter(|a| a % 3 == w).collect();
            let node = (fed.nodes[w].rpc_url(), fed.nodes[w].datadir.join(".cookie"));
            tokio::spawn(submit(node, accounts, info.genesis_hash, fee, accepted.clone()))
        })
        .collect();
    let total = ACCOUNTS * PER_ACCOUNT as usize;
    wait_accepted(&accepted, total * 3 / 10).await;
    fed.nodes[RESTARTED].process.kill9();
    let killed_at = accepted.load(Ordering::Relaxed);
    wait_accepted(&accepted, total * 6 / 10).await;
    fed.nodes[RESTARTED].process.restart().expect("restart");
    let restarted_at = accepted.load(Ordering::Relaxed);
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.expect("submitter"));
    }
    let submitted_in = started.elapsed();
    assert_eq!(ids.len(), total, "every transfer accepted");

    // Committed: every account's nonce reaches PER_ACCOUNT on a submitting node.
    let c0 = fed.nodes[0].client().expect("client");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut behind = 0;
        for a in 0..ACCOUNTS {
            if c0.get_account(key(a).public().account_id(), None).await.expect("account").nonce < PER_ACCOUNT {
                behind += 1;
            }
        }
        if behind == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{behind} accounts still have transfers pending");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let committed_in = started.elapsed();

    // Exactly once: every accepted id is in exactly one block, and blocks hold nothing else.
    let tip = fed.nodes[0].height().await.expect("height");
    let mut seen: HashMap<TxId, u64> = HashMap::new();
    for h in 1..=tip {
        let GetBlockResult::Json(b) = c0.get_block(BlockRef::Height(Height(h)), Some(1)).await.expect("block") else {
            panic!("verbosity 1 is JSON")
        };
        let BlockTxs::Ids(txids) = b.tx else { panic!("verbosity 1 lists ids") };
        for id in txids {
            if let Some(first) = seen.insert(id, h) {
                panic!("transaction {id} committed twice: heights {first} and {h}");
            }
        }
    }
    assert_eq!(seen.len(), total, "blocks hold exactly the accepted transfers");
    for id in &ids {
        assert!(seen.contains_key(id), "accepted transfer {id} was never committed");
    }

    // The closing checks first (they wait for the restarted validator to reach the common tip), then
    // every node shows the same exact accounts.
    let restarted_name = fed.nodes[RESTARTED].name.clone();
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
    let spent = Amount::from_sat(AMOUNT * PER_ACCOUNT) + fee * PER_ACCOUNT;
    let received = Amount::from_sat(AMOUNT * PER_ACCOUNT);
    let expected = Amount::from_sat(START_BALANCE) - spent + received;
    let mut wrong = Vec::new();
    for n in &fed.nodes {
        let c = n.client().expect("client");
        for a in 0..ACCOUNTS {
            let acct = c.get_account(key(a).public().account_id(), None).await.expect("account");
            if acct.nonce != PER_ACCOUNT || acct.balance != expected {
                wrong.push(format!("{} account {a}: {acct:?}", n.name));
            }
        }
    }
    assert!(wrong.is_empty(), "accounts differ from the exact expectation ({expected} each): {wrong:?}");

    // The account history: each account's 100 transfers out and every transfer in, the same on every node
    // (the validator killed mid-load included); then, its history column family dropped, the restarted
    // validator rebuilds the same lists from its blocks when it opens.
    let expected_history = histories(&c0).await;
    for (a, h) in expected_history.iter().enumerate() {
        let sent = h.iter().filter(|e| matches!(e.kind, HistoryKindInfo::Sent { .. })).count();
        let received = h.iter().filter(|e| matches!(e.kind, HistoryKindInfo::Received { .. })).count();
        let senders_to_a = (0..ACCOUNTS).filter(|s| recipient(*s) == a).count();
        assert_eq!((sent, received), (PER_ACCOUNT as usize, senders_to_a * PER_ACCOUNT as usize), "account {a}");
        assert!(h.windows(2).all(|w| (w[0].height, w[0].index) >= (w[1].height, w[1].index)), "newest first");
    }
    for n in &fed.nodes {
        assert!(histories(&n.client().expect("client")).await == expected_history, "{}'s history differs", n.name);
    }
    fed.nodes[RESTARTED].process.kill9();
    {
        let db = fed.nodes[RESTARTED].datadir.join("db");
        let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &db).expect("column families");
        let mut raw = rocksdb::DB::open_cf(&rocksdb::Options::default(), &db, &cfs).expect("raw open");
        raw.drop_cf(node::storage::CF_HISTORY).expect("drop the history");
    }
    fed.nodes[RESTARTED].process.restart().expect("restart");
    fed.wait_height(&[RESTARTED], tip, Duration::from_secs(60)).await.expect("restarted validator back at the tip");
    let rebuilt = histories(&fed.nodes[RESTARTED].client().expect("client")).await;
    assert!(rebuilt == expected_history, "{restarted_name} rebuilt another history");
    println!(
        "load_10k_with_restart: {total} transfers accepted in {:.1} s, all committed after {:.1} s over {tip} \
         blocks; {restarted_name} killed after {killed_at} accepted, restarted after {restarted_at}",
        submitted_in.as_secs_f64(),
        committed_in.as_secs_f64()
    );
}
