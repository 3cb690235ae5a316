//! Issue 6: every JSON-RPC method against a running federation of four real `sidechaind` validators.
//!
//! After a transfer is committed, each method of `SidechainApi` (plus `rpc.discover` and the WebSocket
//! subscription `subscribenewblocks`) gets a good call whose result is checked against the chain, and bad
//! calls (wrong parameter type, unknown hash, height 0 or above the tip, bad verbosity, undecodable or
//! duplicate transaction, unknown method, missing auth, oversized body, oversized batch) get exactly the
//! error code of `rpc::errors` (or HTTP 401/413). Afterwards every node is still running and committing.
//!
//! The federation runs without bitcoinds, so the peg methods are checked for what a node knows without
//! one: the totals at genesis, `unknown` for any deposit, and claims kept (`submitted`, then `-27` pending).

use bitcoin::Amount;
use ledger::{UserTx, UserTxKind};
use primitives::{canonical_bytes, AccountId, Hash32, Height, Keypair};
use rpc::auth::{basic_auth_header, Cookie};
use rpc::testkit::HttpReply;
use rpc::types::{
    BlockTxs, ClaimStatus, GetBlockResult, HistoryKindInfo, PegInStage, TransactionInfo, TxKindInfo, TxStatus,
};
use rpc::{errors, openrpc, BlockRef, ClientAuth, SidechainApiClient};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};

/// Every method the server registers: the trait's methods, the generated unsubscribe, and discovery.
const METHODS: [&str; 33] = [
    "getblockchaininfo",
    "getheaders",
    "getblockcount",
    "getblockhash",
    "getblock",
    "getcommit",
    "gettransaction",
    "getaccount",
    "listtransactions",
    "sendrawtransaction",
    "getmempoolinfo",
    "getrawmempool",
    "getpeerinfo",
    "getnetworkinfo",
    "getvalidators",
    "getevidence",
    "getconsensusstate",
    "getfederationinfo",
    "getpeginaddress",
    "getpegstatus",
    "listpegouts",
    "getpegoutstatus",
    "claimpegin",
    "getreserveproof",
    "resumepeg",
    "pausesigning",
    "resumesigning",
    "approvefederationchange",
    "submitfederationchange",
    "getbitcoinview",
    "subscribenewblocks",
    "unsubscribenewblocks",
    "rpc.discover",
];

/// One HTTP/1.1 POST on a fresh connection, through hyper's client (see `post_refused_early` for a 413).
async fn post(addr: SocketAddr, body: String, auth: Option<&str>) -> HttpReply {
    let mut headers = vec![("Host", "127.0.0.1")];
    headers.extend(auth.map(|a| ("Authorization", a)));
    let request = rpc::testkit::request(addr, "POST", "/", &headers, &body);
    tokio::time::timeout(Duration::from_secs(30), request).await.expect("http reply within 30 s").expect("http")
}

/// The status of a POST the server refuses before reading its whole body (413). hyper's client cannot see
/// that answer: it fails writing the body (broken pipe) before it reads the reply. So the request is written
/// while the reply is read, on a raw socket, and only the status line is read.
async fn post_refused_early(addr: SocketAddr, body: String, auth: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Authorization: {auth}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let exchange = async {
        let (mut rd, mut wr) = tokio::net::TcpStream::connect(addr).await.expect("connect to rpc").into_split();
        let writer = tokio::spawn(async move {
            // The server may close before reading it all: write errors are expected.
            let _ = wr.write_all(head.as_bytes()).await;
            let _ = wr.write_all(body.as_bytes()).await;
        });
        let mut raw = Vec::new();
        let _ = rd.read_to_end(&mut raw).await;
        drop(writer.await);
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("http reply within 30 s");
    let status_line = String::from_utf8_lossy(raw.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
    status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// An authenticated JSON-RPC node endpoint for raw calls.
struct Raw {
    addr: SocketAddr,
    auth: String,
}

impl Raw {
    async fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
        let reply = post(self.addr, body, Some(&self.auth)).await;
        assert_eq!(reply.status, 200, "{method} {params}: {}", reply.body);
        serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{method}: {e}: {}", reply.body))
    }

    /// Asserts the call fails with `code`; returns the message.
    async fn expect_error(&self, method: &str, params: Value, code: i32) -> String {
        let v = self.call(method, params.clone()).await;
        assert_eq!(v["error"]["code"], json!(code), "{method} {params}: {v}");
        v["error"]["message"].as_str().unwrap_or_default().to_string()
    }
}

fn user() -> Keypair {
    Keypair::from_secret([42; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_good_calls_and_refuses_bad_ones_with_the_documented_code() {
    let started = Instant::now();
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        initial_accounts: vec![(user().public().account_id().to_string(), 10_000_000)],
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(90)).await.expect("height 3 everywhere");
    let node = &fed.nodes[0];
    let c = node.client().expect("client");
    let cookie = node.datadir.join(".cookie");
    let (user_name, password) = Cookie::read(&cookie).expect("cookie");
    let raw = Raw { addr: node.rpc_addr, auth: basic_auth_header(&user_name, &password) };

    // --- A transfer, submitted and committed. ---
    let info = c.get_blockchain_info().await.expect("getblockchaininfo");
    let to = Keypair::from_secret([7; 32]).public().account_id();
    let amount = Amount::from_sat(123_456);
    let tx = UserTx { signer: user().public(), nonce: 0, fee: info.min_fee, kind: UserTxKind::Transfer { to, amount } }
        .sign(&user(), &info.genesis_hash);
    let tx_hex = hex::encode(canonical_bytes(&tx));
    let txid = c.send_raw_transaction(tx_hex.clone()).await.expect("sendrawtransaction");
    assert_eq!(txid, tx.txid());
    // In the mempool or already committed: either way a duplicate is refused by the mempool (-26).
    let msg = raw.expect_error("sendrawtransaction", json!([tx_hex]), errors::VERIFY_REJECTED).await;
    assert!(msg.contains("already") || msg.contains("nonce"), "duplicate: {msg}");
    let pending = c.get_raw_mempool().await.expect("getrawmempool");
    assert!(pending.iter().all(|t| *t == txid), "only our tx can be pending: {pending:?}");
    // An accepted transaction is always found: in the mempool, then in its block (never -5 in between).
    let deadline = Instant::now() + Duration::from_secs(60);
    let committed = loop {
        let v = raw.call("gettransaction", json!([txid])).await;
        assert_ne!(v["error"]["code"], errors::NOT_FOUND, "an accepted transaction went missing: {v}");
        {
            let t: TransactionInfo = serde_json::from_value(v["result"].clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
            if t.status == TxStatus::Committed {
                break t;
            }
            assert_eq!((t.status, t.height, t.confirmations), (TxStatus::Mempool, None, 0));
        }
        assert!(Instant::now() < deadline, "transfer not committed within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let h = committed.height.expect("committed height");
    let block_hash = committed.block_hash.expect("committed block hash");
    let index = committed.index.expect("index in block") as usize;
    assert!(committed.confirmations >= 1);
    assert_eq!((committed.tx.txid, committed.tx.nonce, committed.tx.fee), (txid, Some(0), info.min_fee));
    assert_eq!(committed.tx.kind, TxKindInfo::Transfer { to, amount });
    assert_eq!(committed.tx.hex, tx_hex);

    // --- Good calls, checked against each other and the chain. ---
    let tip = c.get_block_count().await.expect("getblockcount");
    assert!(tip >= h && tip.get() >= 3, "tip {tip} below the tx height {h}");
    let info = c.get_blockchain_info().await.expect("getblockchaininfo");
    assert_eq!(info.chain_id, "sidechain-local");
    assert!(info.validator && info.height >= tip, "{info:?}");
    assert_eq!(c.get_block_hash(info.height).await.expect("hash"), info.best_block_hash);
    assert_eq!(c.get_block_hash(h).await.expect("getblockhash"), block_hash);
    let GetBlockResult::Hex(block_hex) = c.get_block(BlockRef::Height(h), Some(0)).await.expect("getblock 0") else {
        panic!("verbosity 0 is hex");
    };
    let block: ledger::Block = borsh::from_slice(&hex::decode(block_hex).expect("hex")).expect("borsh block");
    assert_eq!((block.hash(), block.header.height), (block_hash, h));
    assert_eq!(block.txs[index].txid(), txid);
    let GetBlockResult::Json(b1) = c.get_block(BlockRef::Hash(block_hash), None).await.expect("getblock 1") else {
        panic!("default verbosity is json");
    };
    assert_eq!((b1.hash, b1.height, b1.genesis_hash), (block_hash, h, info.genesis_hash));
    assert_eq!(b1.tx, BlockTxs::Ids(block.txs.iter().map(ledger::Tx::txid).collect()));
    assert_eq!((b1.tx_count, b1.commit.block_hash), (block.txs.len(), block_hash));
    assert!(b1.confirmations >= 1);
    if h.get() > 1 {
        assert_eq!(b1.prev_hash, c.get_block_hash(Height(h.get() - 1)).await.expect("previous block hash"));
    }
    let GetBlockResult::Json(b2) = c.get_block(BlockRef::Height(h), Some(2)).await.expect("getblock 2") else {
        panic!("verbosity 2 is json");
    };
    let BlockTxs::Full(full) = &b2.tx else { panic!("verbosity 2 has full transactions") };
    assert_eq!(full[index], committed.tx);
    assert_eq!(full[index].from, Some(user().public().account_id()));
    let commit = c.get_commit(h).await.expect("getcommit");
    assert_eq!((commit.height, commit.block_hash), (h, block_hash));
    assert!(commit.signatures.len() >= 3, "a quorum of 4 is 3: {commit:?}");
    assert!(commit.signatures.iter().all(|s| s.validator.get() < 4));
    assert_eq!(commit, b1.commit);

    let got = c.get_account(to, None).await.expect("getaccount");
    assert_eq!((got.account, got.balance, got.balance_btc.as_str(), got.nonce), (to, amount, "0.00123456", 0));
    let sender = c.get_account(user().public().account_id(), None).await.expect("getaccount");
    assert_eq!((sender.balance, sender.nonce), (Amount::from_sat(10_000_000) - amount - info.min_fee, 1));
    let nobody = c.get_account(AccountId(Hash32([9; 32])), None).await.expect("getaccount unknown");
    assert_eq!((nobody.balance, nobody.nonce), (Amount::ZERO, 0));
    // The history: the transfer, on both sides, where gettransaction says it is.
    let received = c.list_transactions(to, None, None, None).await.expect("listtransactions");
    let sent =
        c.list_transactions(user().public().account_id(), Some(1), Some(0), None).await.expect("listtransactions");
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!((received[0].height, received[0].index as usize), (h, index));
    assert_eq!(received[0].kind, HistoryKindInfo::Received { from: user().public().account_id(), amount });
    assert_eq!(sent[0].kind, HistoryKindInfo::Sent { to, amount, fee: info.min_fee });
    assert_eq!(sent[0].txid, received[0].txid);
    assert!(c.list_transactions(AccountId(Hash32([9; 32])), None, None, None).await.expect("unknown").is_empty());
    // getheaders and proved answers: a light client follows this node from the genesis file and believes
    // the proved balance; from 0 is refused.
    let genesis: ledger::Genesis =
        serde_json::from_str(&std::fs::read_to_string(&fed.genesis_path).expect("genesis file")).expect("genesis");
    let mut light = light::LightClient::from_genesis(&ledger::Chain::new(genesis).expect("chain"));
    let proved = c.get_account(to, Some(true)).await.expect("getaccount prove");
    let at = proved.proof.as_ref().expect("a proof").height;
    while light.tip() < at {
        let range = c.get_headers(light.tip().next(), None).await.expect("getheaders");
        light.extend(&range.decode().expect("decodes")).expect("the node's chain verifies");
    }
    proved.verify(&light, &to).expect("the proved balance verifies");
    let history = c.list_transactions(to, None, None, Some(true)).await.expect("listtransactions prove");
    assert_eq!(history.len(), 1);
    history[0].verify(&light, &to).expect("the proved history entry verifies");
    assert_eq!(proved.balance, amount);
    raw.expect_error("getheaders", json!([0]), errors::INVALID_PARAMETER).await;

    let mempool = c.get_mempool_info().await.expect("getmempoolinfo");
    assert_eq!((mempool.size, mempool.bytes), (0, 0), "committed tx left the mempool");
    assert!(mempool.max_bytes > 0);
    assert!(c.get_raw_mempool().await.expect("getrawmempool").is_empty());

    let others: BTreeSet<String> = fed.nodes[1..].iter().map(|n| n.peer_id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let peers = c.get_peer_info().await.expect("getpeerinfo");
        let ids: BTreeSet<String> = peers.iter().map(|p| p.peer_id.clone()).collect();
        let mut indexes: Vec<u16> = peers.iter().filter_map(|p| p.validator_index.map(|v| v.get())).collect();
        indexes.sort_unstable();
        if peers.len() == 3 && ids == others && indexes == [1, 2, 3] {
            break;
        }
        assert!(Instant::now() < deadline, "expected validators 1..=3 as peers: {peers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let net = c.get_network_info().await.expect("getnetworkinfo");
    assert_eq!((net.peer_id.as_str(), net.connections), (node.peer_id.as_str(), 3));
    let port = format!("/tcp/{}", node.p2p_port);
    assert!(net.listen_addrs.iter().any(|a| a.contains(&port)), "{net:?}");
    let vals = c.get_validators().await.expect("getvalidators");
    assert_eq!(vals.len(), 4);
    for (i, v) in vals.iter().enumerate() {
        assert_eq!(usize::from(v.index.get()), i);
        assert_eq!(v.consensus_key.to_string(), fed.nodes[i].consensus_key);
        assert!(v.p2p_addr.contains(&format!("/tcp/{}", fed.nodes[i].p2p_port)), "{v:?}");
    }
    assert!(c.get_evidence().await.expect("getevidence").is_empty(), "no equivocation among honest validators");
    let before = c.get_block_count().await.expect("count");
    let state = c.get_consensus_state().await.expect("getconsensusstate");
    assert!(state.height > before, "consensus decides a height above the tip: {state:?}");
    assert_eq!(state.validator_index, Some(0));

    // The federation wallet and a recipient-bound deposit address, computed the same by every node.
    let fedinfo = c.get_federation_info().await.expect("getfederationinfo");
    assert_eq!((fedinfo.threshold, fedinfo.keys, fedinfo.network.as_str()), (3, 4, "regtest"));
    assert!(fedinfo.descriptor.starts_with("wsh(sortedmulti(3,") && fedinfo.address.starts_with("bcrt1q"));
    let recipient = user().public().account_id();
    let addr = c.get_pegin_address(recipient).await.expect("getpeginaddress");
    assert_eq!(addr.recipient, recipient);
    assert!(addr.address.starts_with("bcrt1q") && addr.address != fedinfo.address, "{addr:?}");
    let other = c.get_pegin_address(Keypair::from_secret([3; 32]).public().account_id()).await.expect("other");
    assert_ne!(other.address, addr.address, "addresses are bound to their recipient");
    let from_node3 = fed.nodes[3].client().expect("client").get_pegin_address(recipient).await.expect("node 3");
    assert_eq!(from_node3, addr);

    // The peg at genesis: nothing deposited, the genesis balances unbacked, the reserve fine.
    let totals = fedinfo.peg_totals;
    assert_eq!((totals.btc_held, totals.minted, totals.deposits), (Amount::ZERO, Amount::ZERO, 0), "{totals:?}");
    assert!(totals.supply >= Amount::from_sat(10_000_000), "the user's genesis balance is supply: {totals:?}");
    assert!(fedinfo.pegin_fee > Amount::ZERO && fedinfo.pegin_fee < fedinfo.pegin_min_amount, "{fedinfo:?}");
    let peg = c.get_blockchain_info().await.expect("getblockchaininfo").peg;
    assert_eq!((peg.btc_held, peg.supply, peg.genesis_supply), (Amount::ZERO, totals.supply, totals.supply));
    assert!(peg.reserve_ok, "{peg:?}");

    // getpegstatus: no bitcoind here, so a deposit this node never recorded is unknown.
    let deposit = format!("{}:0", "5a".repeat(32));
    let status = c.get_peg_status(deposit.clone(), None).await.expect("getpegstatus");
    assert_eq!((status.stage, status.outpoint.to_string()), (PegInStage::Unknown, deposit.clone()));
    assert_eq!((status.recipient, status.confirmations), (None, None));
    assert_eq!(status.confirmations_required, fedinfo.pegin_confirmations);
    // claimpegin: a fresh outpoint is kept and gossiped; the same claim again is already pending (-27).
    let btc_block = "6b".repeat(32);
    let claim = c.claim_pegin(deposit.clone(), recipient.to_string(), btc_block.clone()).await.expect("claimpegin");
    assert_eq!((claim.status, claim.recipient), (ClaimStatus::Submitted, recipient));
    assert_eq!((claim.outpoint.to_string(), claim.btc_block_hash.to_string()), (deposit.clone(), btc_block.clone()));
    let msg = raw
        .expect_error("claimpegin", json!([deposit, recipient.to_string(), btc_block]), errors::ALREADY_IN_CHAIN)
        .await;
    assert!(msg.contains("already pending"), "second claim: {msg}");
    let status = c.get_peg_status(deposit.clone(), None).await.expect("getpegstatus after the claim");
    assert_eq!(status.stage, PegInStage::Unknown, "without a bitcoind the claim is never confirmed: {status:?}");

    // Peg-out: a fresh node has no burns; an unknown burn txid is -5; the fee rate is shown.
    assert!(c.list_pegouts(None, None).await.expect("listpegouts").is_empty());
    assert!(c.list_pegouts(Some(5), Some(2)).await.expect("listpegouts 5 2").is_empty());
    assert_eq!(raw.call("listpegouts", json!([])).await["result"], json!([]));
    let msg = raw.expect_error("getpegoutstatus", json!(["5c".repeat(32)]), errors::NOT_FOUND).await;
    assert!(msg.contains("no burn"), "unknown burn: {msg}");
    assert!(fedinfo.pegout_fee_rate_sat_vb > 0, "{fedinfo:?}");

    // getreserveproof: every figure proved against the tip's state root, which the block header carries.
    let reserves = c.get_reserve_proof().await.expect("getreserveproof");
    reserves.verify().expect("the proofs verify against the state root");
    assert!(reserves.reserve_ok);
    assert_eq!(reserves.supply, totals.supply);
    let header = c.get_block(BlockRef::Height(reserves.height), Some(1)).await.expect("block");
    if let GetBlockResult::Json(b) = header {
        assert_eq!(b.state_root, reserves.state_root, "proofs are against the final header's root");
    }
    let mut forged = reserves.clone();
    forged.supply = Amount::from_sat(1);
    assert!(forged.verify().is_err(), "a figure the proofs do not back is caught");
    let mut tampered = reserves.clone();
    tampered.entries[0].value = Some("00".into());
    assert!(tampered.verify().is_err(), "a value that is not the proved one is caught");

    // A federation change: this validator approves a well-formed one, alone it is not 2f+1, and a set that
    // breaks the 2f+1 rule is refused before anyone signs.
    let set = c.get_validators().await.expect("getvalidators");
    assert!(set.len() >= 4, "{set:?}");
    let validators: Vec<ledger::GenesisValidator> = set
        .iter()
        .map(|v| ledger::GenesisValidator {
            consensus_key: v.consensus_key,
            peg_key: v.peg_key,
            p2p_addr: v.p2p_addr.clone(),
            power: v.power,
        })
        .collect();
    let proposal =
        ledger::FederationProposal { validators, peg_threshold: 3, activation_height: Height(tip.get() + 1_000) };
    let approval = c.approve_federation_change(proposal.clone()).await.expect("approvefederationchange");
    let me = set.iter().position(|v| v.consensus_key.to_string() == node.consensus_key).expect("in the set");
    assert_eq!(approval.validator.as_usize(), me);
    let change = ledger::ReconfigureTx { proposal: proposal.clone(), approvals: vec![approval] };
    let msg = raw.expect_error("submitfederationchange", json!([change]), errors::VERIFY_REJECTED).await;
    assert!(msg.contains("2f+1"), "{msg}");
    let bad = ledger::FederationProposal { peg_threshold: 1, ..proposal };
    let msg = raw.expect_error("approvefederationchange", json!([bad]), errors::VERIFY_REJECTED).await;
    assert!(msg.contains("breaks the 2f+1 rule"), "{msg}");

    let doc = raw.call("rpc.discover", json!([])).await["result"].clone();
    assert_eq!(doc, openrpc::document());
    let listed: BTreeSet<String> = openrpc::method_names(&doc).into_iter().collect();
    assert_eq!(listed, METHODS.iter().map(|m| m.to_string()).collect::<BTreeSet<_>>());

    // --- The subscription: consecutive new blocks, as the chain has them. ---
    let ws = rpc::connect_ws(&format!("ws://{}", node.rpc_addr), &ClientAuth::Cookie(cookie.clone()))
        .await
        .expect("connect_ws");
    let mut sub = ws.subscribe_new_blocks().await.expect("subscribenewblocks");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(30), sub.next()).await.expect("a block within 30 s");
        seen.push(next.expect("subscription open").expect("a block summary"));
    }
    assert_eq!(seen[1].height.get(), seen[0].height.get() + 1, "{seen:?}");
    // A pushed block is readable at once: the node publishes its tip before it pushes the block.
    for s in &seen {
        assert_eq!(c.get_block_hash(s.height).await.expect("a pushed block is readable"), s.hash);
    }
    sub.unsubscribe().await.expect("unsubscribenewblocks");
    assert!(c.subscribe_new_blocks().await.is_err(), "subscriptions need WebSocket");
    let ws_url = format!("ws://{}", node.rpc_addr);
    assert!(rpc::connect_ws(&ws_url, &ClientAuth::None).await.is_err(), "ws handshake needs auth");

    // --- Bad calls: the documented codes. ---
    let tip = c.get_block_count().await.expect("count").get();
    let unknown = "ab".repeat(32);
    let (p, r, d, n) =
        (errors::INVALID_PARAMS, errors::INVALID_PARAMETER, errors::DESERIALIZATION_ERROR, errors::NOT_FOUND);
    let cases: Vec<(&str, Value, i32)> = vec![
        ("getblockhash", json!([0]), r),
        ("getblockhash", json!([tip + 1000]), r),
        ("getblockhash", json!([u64::MAX]), r),
        ("getblockhash", json!(["one"]), p),
        ("getblockhash", json!([-1]), p),
        ("getblockhash", json!([]), p),
        ("getblock", json!([0]), r),
        ("getblock", json!([tip + 1000]), r),
        ("getblock", json!([unknown]), n),
        ("getblock", json!(["zz"]), p),
        ("getblock", json!([true]), p),
        ("getblock", json!([1, 3]), r),
        ("getblock", json!([1, 256]), p),
        ("getblock", json!([1, "x"]), p),
        ("getblock", json!([]), p),
        ("getcommit", json!([0]), r),
        ("getcommit", json!([tip + 1000]), r),
        ("getcommit", json!(["x"]), p),
        ("gettransaction", json!([unknown]), n),
        ("gettransaction", json!([block_hash.to_string()]), n),
        ("gettransaction", json!([12]), p),
        ("gettransaction", json!(["abcd"]), p),
        ("getaccount", json!(["not-an-account"]), p),
        ("getpeginaddress", json!(["not-an-account"]), p),
        ("getpeginaddress", json!([]), p),
        ("getaccount", json!([]), p),
        ("listtransactions", json!([unknown, 1001]), r),
        ("listtransactions", json!(["not-an-account"]), p),
        ("sendrawtransaction", json!(["zz"]), d),
        ("sendrawtransaction", json!(["00ff"]), d),
        ("sendrawtransaction", json!([5]), p),
        ("sendrawtransaction", json!([tx_hex]), errors::VERIFY_REJECTED),
        ("getpegstatus", json!(["not-an-outpoint"]), r),
        ("getpegstatus", json!([unknown]), r),
        ("getpegstatus", json!([format!("{unknown}:-1")]), r),
        ("getpegstatus", json!([format!("zz{}:0", &unknown[2..])]), r),
        ("getpegstatus", json!([7]), p),
        ("getpegstatus", json!([]), p),
        ("listpegouts", json!([1001]), r),
        ("listpegouts", json!(["x"]), p),
        ("listpegouts", json!([-1]), p),
        ("listpegouts", json!([1, "x"]), p),
        ("getpegoutstatus", json!([format!("{unknown}:0")]), r),
        ("getpegoutstatus", json!(["abcd"]), r),
        ("getpegoutstatus", json!([unknown]), n),
        ("getpegoutstatus", json!([7]), p),
        ("getpegoutstatus", json!([]), p),
        ("claimpegin", json!(["x:0", recipient.to_string(), unknown]), r),
        ("claimpegin", json!([format!("{unknown}:0"), "not-an-account", unknown]), r),
        ("claimpegin", json!([format!("{unknown}:0"), recipient.to_string(), "abcd"]), r),
        ("claimpegin", json!([format!("{unknown}:0"), recipient.to_string()]), p),
        ("claimpegin", json!([]), p),
        ("resumepeg", json!([5, unknown]), errors::VERIFY_REJECTED),
        ("resumepeg", json!([5, "abcd"]), r),
        ("resumepeg", json!(["x", unknown]), p),
        ("resumepeg", json!([]), p),
        ("approvefederationchange", json!([]), p),
        ("approvefederationchange", json!([{"validators": "x"}]), p),
        ("submitfederationchange", json!([{"proposal": 1}]), p),
        ("nosuchmethod", json!([]), errors::METHOD_NOT_FOUND),
    ];
    for (method, params, code) in cases {
        raw.expect_error(method, params, code).await;
    }
    let msg = raw.expect_error("getpegstatus", json!(["not-an-outpoint"]), r).await;
    assert!(msg.contains("txid:vout"), "{msg}");
    let msg = raw.expect_error("getblockhash", json!([tip + 1000]), r).await;
    assert!(msg.contains("out of range"), "{msg}");
    let msg = raw.expect_error("getblock", json!([unknown]), n).await;
    assert!(msg.contains("block not found"), "{msg}");
    let msg = raw.expect_error("sendrawtransaction", json!([tx_hex]), errors::VERIFY_REJECTED).await;
    assert!(msg.contains("nonce"), "replayed committed tx: {msg}");
    let reply = post(node.rpc_addr, "{not json".into(), Some(&raw.auth)).await;
    let v: Value = serde_json::from_str(&reply.body).expect("json error reply");
    assert_eq!(v["error"]["code"], errors::PARSE_ERROR, "{v}");

    // --- Transport: missing or wrong auth (every method), oversized body, oversized batch. ---
    let defaults = rpc::RpcServerConfig::new(&node.datadir);
    let addr = node.rpc_addr;
    let unauthorized = METHODS.into_iter().map(|m| {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": m, "params": [] }).to_string();
        async move { (m, post(addr, body, None).await) }
    });
    for (m, reply) in futures_join(unauthorized).await {
        assert_eq!(reply.status, 401, "{m} without auth: {}", reply.body);
    }
    let wrong = basic_auth_header(&user_name, &"00".repeat(32));
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "getblockcount", "params": [] }).to_string();
    assert_eq!(post(node.rpc_addr, call.clone(), Some(&wrong)).await.status, 401, "wrong cookie password");
    let big = json!({ "jsonrpc": "2.0", "id": 1, "method": "sendrawtransaction",
                      "params": ["00".repeat(defaults.max_request_bytes as usize)] });
    assert_eq!(post_refused_early(node.rpc_addr, big.to_string(), &raw.auth).await, 413, "oversized request");
    let batch = |len: u32| {
        Value::Array((0..len).map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "getblockcount" })).collect())
            .to_string()
    };
    let ok: Value = serde_json::from_str(&post(node.rpc_addr, batch(defaults.max_batch), Some(&raw.auth)).await.body)
        .expect("batch reply");
    assert_eq!(ok.as_array().map(Vec::len), Some(defaults.max_batch as usize), "a batch at the limit works");
    let too_many: Value =
        serde_json::from_str(&post(node.rpc_addr, batch(defaults.max_batch + 1), Some(&raw.auth)).await.body)
            .expect("batch error reply");
    assert_eq!(too_many["error"]["code"], errors::BATCH_TOO_LARGE, "{too_many}");

    // --- Nothing crashed, and the chain goes on. ---
    for n in &mut fed.nodes {
        assert!(n.process.is_running(), "{} stopped: {}", n.name, n.process.log_tail(20));
    }
    let now = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0, 1, 2, 3], now + 2, Duration::from_secs(60)).await.expect("chain keeps growing");
    eprintln!("rpc_methods: done in {:?}", started.elapsed());
}

/// Runs the futures concurrently (the server delays every auth failure) and returns their outputs.
async fn futures_join<F: std::future::Future + Send + 'static>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
