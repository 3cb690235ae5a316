//! The follower against a fake bitcoind (a JSON-RPC server in a thread, with a slow `getblock` as a busy
//! mainnet node has): registration churn and a pile of pending claims must not keep the snapshot behind
//! bitcoind's best.

use super::*;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, Block, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut};
use primitives::{AccountId, Hash32, Height};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How long the fake takes to answer one `getblock`.
const GETBLOCK_DELAY: Duration = Duration::from_millis(250);

struct Fake {
    chain: Mutex<Vec<Block>>,
    getblocks: AtomicUsize,
}

fn block(prev: bitcoin::BlockHash, height: u32) -> Block {
    let coinbase = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(height.to_le_bytes().to_vec()),
            sequence: Sequence::MAX,
            witness: bitcoin::Witness::new(),
        }],
        output: vec![TxOut { value: Amount::from_sat(50), script_pubkey: ScriptBuf::new() }],
    };
    let header = Header {
        version: Version::TWO,
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::all_zeros(),
        time: height,
        bits: CompactTarget::from_consensus(0x207fffff),
        nonce: 0,
    };
    Block { header, txdata: vec![coinbase] }
}

impl Fake {
    fn new(blocks: u32) -> Arc<Self> {
        let fake = Arc::new(Fake { chain: Mutex::new(Vec::new()), getblocks: AtomicUsize::new(0) });
        for _ in 0..blocks {
            fake.mine();
        }
        fake
    }

    fn mine(&self) {
        let mut chain = self.chain.lock().expect("lock");
        let prev = chain.last().map(|b| b.block_hash()).unwrap_or(bitcoin::BlockHash::all_zeros());
        let height = chain.len() as u32;
        chain.push(block(prev, height));
    }

    fn hash(&self, height: u32) -> bitcoin::BlockHash {
        self.chain.lock().expect("lock")[height as usize].block_hash()
    }

    fn answer(&self, method: &str, params: &[Value]) -> Result<Value, (i64, &'static str)> {
        let chain = self.chain.lock().expect("lock").clone();
        let by_hash = |v: &Value| {
            let hash: bitcoin::BlockHash = v.as_str().and_then(|s| s.parse().ok()).ok_or((-8, "bad hash"))?;
            chain.iter().position(|b| b.block_hash() == hash).ok_or((-5, "Block not found"))
        };
        match method {
            "getblockcount" => Ok(json!(chain.len() - 1)),
            "getblockhash" => {
                let h = params[0].as_u64().unwrap_or(u64::MAX) as usize;
                chain.get(h).map(|b| json!(b.block_hash().to_string())).ok_or((-8, "Block height out of range"))
            }
            "getblock" => {
                let at = by_hash(&params[0])?;
                self.getblocks.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(GETBLOCK_DELAY);
                Ok(json!(bitcoin::consensus::encode::serialize_hex(&chain[at])))
            }
            "getblockheader" => {
                let at = by_hash(&params[0])?;
                Ok(json!({ "height": at, "confirmations": chain.len() - at }))
            }
            "estimatesmartfee" => Ok(json!({ "errors": ["Insufficient data or no feerate found"], "blocks": 2 })),
            "getmempoolinfo" => Ok(json!({ "mempoolminfee": 0.00001 })),
            _ => Err((-32601, "Method not found")),
        }
    }

    /// Serves JSON-RPC over HTTP/1.1 on a loopback port, a thread per connection (keep-alive).
    fn serve(self: &Arc<Self>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let fake = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let fake = fake.clone();
                std::thread::spawn(move || fake.connection(stream));
            }
        });
        url
    }

    fn connection(&self, stream: std::net::TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut out = stream;
        // One write per answer and no Nagle delay: the fake must be fast except where it means to be slow.
        let _ = out.set_nodelay(true);
        loop {
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let params = req["params"].as_array().cloned().unwrap_or_default();
            let reply = match self.answer(req["method"].as_str().unwrap_or(""), &params) {
                Ok(result) => json!({ "result": result, "error": null, "id": req["id"] }),
                Err((code, message)) => {
                    json!({ "result": null, "error": { "code": code, "message": message }, "id": req["id"] })
                }
            };
            let text = reply.to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            if out.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn account(i: u32) -> AccountId {
    ledger::testkit::user_key(i).public().account_id()
}

/// Waits (bounded) for a snapshot that `done` accepts; returns it and how long it took.
async fn wait_for(
    rx: &mut watch::Receiver<BtcSnapshot>,
    bound: Duration,
    done: impl Fn(&BtcSnapshot) -> bool,
) -> Option<(BtcSnapshot, Duration)> {
    let start = Instant::now();
    loop {
        {
            let s = rx.borrow_and_update();
            if done(&s) {
                return Some((s.clone(), start.elapsed()));
            }
        }
        if tokio::time::timeout(bound.saturating_sub(start.elapsed()), rx.changed()).await.is_err() {
            return None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_and_claims_do_not_keep_the_snapshot_behind_bitcoinds_best() {
    let fake = Fake::new(11); // heights 0..=10
    let url = fake.serve();
    let auth = crate::bitcoin::BitcoindAuth::UserPass { user: "u".into(), password: "p".into() };
    let client = Arc::new(BitcoindClient::new(url, auth).expect("client"));
    let chain = ledger::Chain::new(ledger::testkit::genesis(4, 0, Amount::ZERO)).expect("genesis");
    let fs = ledger::FederationState::genesis(&chain);
    let accounts: Vec<AccountId> = (0..50).map(account).collect();
    let registry = Registry::new(&chain, &fs, Height(1), &accounts);
    // Many pending claims, each naming a real block (so each check fetches it) and a transaction not in it.
    let at = Hash32(fake.hash(5).to_byte_array());
    let pending: Vec<PegClaim> = (0..200u32)
        .map(|n| PegClaim {
            outpoint: ledger::BtcOutPoint { txid: Hash32([n as u8; 32]), vout: n },
            recipient: account(n),
            btc_block: at,
        })
        .collect();
    let (_anchor_tx, anchor) = watch::channel(0u32);
    let (registry_tx, registry_rx) = watch::channel(Arc::new(registry.clone()));
    let (_claims_tx, claims) = watch::channel(pending);
    let cfg = FollowConfig {
        anchor,
        registry: registry_rx,
        claims,
        max_step: 10,
        chain: chain.clone(),
        interval: Duration::from_secs(3600),
    };
    let mut rx = follow(client, cfg);
    let first = wait_for(&mut rx, Duration::from_secs(60), |s| s.best == Some(10) && s.deposits.len() == 10).await;
    assert!(first.is_some(), "the first snapshot covers the window");

    // Registrations in every block, a new BTC block each time: the snapshot follows within about one poll,
    // without fetching the window again, however many claims wait to be checked.
    let mut reg = registry;
    for round in 0..3u32 {
        fake.mine();
        let best = 11 + round;
        reg.add(&chain, &(1_000 + round * 10..1_010 + round * 10).map(account).collect::<Vec<_>>());
        let version = reg.version;
        let fetched = fake.getblocks.load(Ordering::SeqCst);
        registry_tx.send(Arc::new(reg.clone())).expect("follower alive");
        let seen =
            wait_for(&mut rx, Duration::from_secs(30), |s| s.best == Some(best) && s.registry_version == version).await;
        let (snap, took) = seen.expect("the snapshot reached bitcoind's best with the new registrations");
        assert_eq!(snap.deposits.len(), 10, "the window is still fully indexed");
        // At most the claim checks already under way when the registry changed (their time budget and one
        // more block), never the window again (10 blocks) and a batch of claims (8) before publishing.
        assert!(
            took < CLAIMS_TIME_BUDGET + GETBLOCK_DELAY * 4,
            "took {took:?} after the registry change (round {round}), {} getblocks since",
            fake.getblocks.load(Ordering::SeqCst) - fetched
        );
    }
    // And the claims are being worked through (bounded per poll), their verdicts published.
    let checked = wait_for(&mut rx, Duration::from_secs(60), |s| s.rejected_claims.len() >= 8).await;
    assert!(checked.is_some(), "claim verdicts are published");
}
