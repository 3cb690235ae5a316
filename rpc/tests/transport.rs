//! The server's edges: authentication, Host/Origin checks, no CORS, size and batch limits, the
//! WebSocket subscription, the cookie's lifetime, and `rpc.discover` against the real method list.

mod common;

use common::{raw_post, Fixture};
use jsonrpsee::core::client::ClientT;
use rpc::auth::{basic_auth_header, RpcAuth};
use rpc::types::BlockSummary;
use rpc::{errors, openrpc, ClientAuth, SidechainApiClient};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}"#;

#[tokio::test]
async fn requests_without_valid_credentials_get_401() {
    let f = Fixture::start_with(|c| c.users = vec![RpcAuth::generate("alice", "s3cret")]).await;
    let addr = f.server.local_addr();
    let started = std::time::Instant::now();
    let r = raw_post(addr, CALL, &[("Host", "127.0.0.1")]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(started.elapsed() >= rpc::auth::AUTH_FAILURE_DELAY, "failed auth is slowed down");
    assert!(r.body.contains("authorization required"), "{}", r.body);
    assert!(r.header("www-authenticate").is_some());
    let wrong = basic_auth_header("__cookie__", "00");
    assert_eq!(raw_post(addr, CALL, &[("Host", "127.0.0.1"), ("Authorization", &wrong)]).await.status, 401);
    let bad_user = basic_auth_header("alice", "wrong");
    assert_eq!(raw_post(addr, CALL, &[("Host", "127.0.0.1"), ("Authorization", &bad_user)]).await.status, 401);

    // The typed client without credentials fails; with the rpcauth user or the cookie it works.
    let anon = rpc::connect(&f.http_url(), &ClientAuth::None).unwrap();
    assert!(anon.get_block_count().await.is_err());
    let alice = ClientAuth::UserPass { user: "alice".into(), password: "s3cret".into() };
    assert_eq!(rpc::connect(&f.http_url(), &alice).unwrap().get_block_count().await.unwrap().get(), 2);
    assert_eq!(f.client().get_block_count().await.unwrap().get(), 2);
    // WebSocket handshakes are checked too.
    assert!(rpc::connect_ws(&f.ws_url(), &ClientAuth::None).await.is_err());
}

#[tokio::test]
async fn foreign_host_and_origin_are_refused_and_no_cors_headers_are_sent() {
    let f = Fixture::start_with(|c| c.allowed_hosts = vec!["node.internal".into()]).await;
    let addr = f.server.local_addr();
    let auth = f.cookie_header();
    let r = raw_post(addr, CALL, &[("Host", "attacker.example:18443"), ("Authorization", &auth)]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("not allowed"), "{}", r.body);
    let r = raw_post(
        addr,
        CALL,
        &[("Host", "localhost"), ("Origin", "https://attacker.example"), ("Authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    for host in ["localhost:1", "127.0.0.1", "[::1]:18443", "node.internal:80"] {
        let r = raw_post(addr, CALL, &[("Host", host), ("Authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        let cors: Vec<_> =
            r.headers.iter().filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control")).collect();
        assert!(cors.is_empty(), "no CORS headers: {cors:?}");
    }
}

#[tokio::test]
async fn oversized_request_is_refused() {
    let f = Fixture::start_with(|c| c.max_request_bytes = 4096).await;
    let big = json!({ "jsonrpc": "2.0", "id": 1, "method": "sendrawtransaction", "params": ["00".repeat(4096)] });
    let r = f.post(&big.to_string()).await;
    assert_eq!(r.status, 413, "{}", r.body);
    // A request under the limit on the same server still works.
    assert_eq!(f.call("getblockcount", json!([])).await["result"], 2);
}

#[tokio::test]
async fn batch_over_the_limit_is_an_error() {
    let f = Fixture::start_with(|c| c.max_batch = 3).await;
    let batch = |n: usize| {
        Value::Array((0..n).map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "getblockcount" })).collect())
            .to_string()
    };
    let ok: Value = serde_json::from_str(&f.post(&batch(3)).await.body).unwrap();
    assert_eq!(ok.as_array().map(Vec::len), Some(3));
    let too_many: Value = serde_json::from_str(&f.post(&batch(4)).await.body).unwrap();
    assert_eq!(too_many["error"]["code"], errors::BATCH_TOO_LARGE, "{too_many}");
}

#[tokio::test]
async fn subscription_receives_pushed_blocks() {
    let f = Fixture::start().await;
    let ws = rpc::connect_ws(&f.ws_url(), &f.cookie_auth()).await.unwrap();
    let mut sub = ws.subscribe_new_blocks().await.unwrap();
    let block = f.backend.commit_block(vec![]);
    let got: BlockSummary = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a block within 10 s")
        .expect("subscription open")
        .unwrap();
    assert_eq!(got, BlockSummary::from(&block));
    assert_eq!(got.height.get(), 3);
    // Calls work on the same WebSocket connection.
    assert_eq!(ws.get_block_count().await.unwrap().get(), 3);
    // Unsubscribing works through the generated method.
    sub.unsubscribe().await.unwrap();
    // Subscriptions need WebSocket: over HTTP the typed client says so instead of hanging.
    assert!(f.client().subscribe_new_blocks().await.is_err());
}

#[tokio::test]
async fn cookie_is_private_and_removed_at_stop() {
    let f = Fixture::start().await;
    let path = f.server.cookie_path().to_path_buf();
    assert_eq!(path, f.dir.path().join(rpc::server::COOKIE_FILE));
    let text = std::fs::read_to_string(&path).unwrap();
    let (user, secret) = text.split_once(':').unwrap();
    assert_eq!(user, "__cookie__");
    assert_eq!(secret.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let client = f.client();
    assert!(client.get_block_count().await.is_ok());
    f.server.stop().await;
    assert!(!path.exists(), "cookie removed at stop");
    // Calls fail after stop. (Not "the port is closed": a parallel test may bind the same port.)
    assert!(client.get_block_count().await.is_err(), "server answers after stop");
}

#[tokio::test]
async fn discover_lists_exactly_the_registered_methods_and_real_result_shapes() {
    let f = Fixture::start().await;
    let module = rpc::rpc_module(f.backend.clone()).unwrap();
    let registered: BTreeSet<String> = module.method_names().map(String::from).collect();
    let doc: Value = f.client().request("rpc.discover", jsonrpsee::rpc_params![]).await.unwrap();
    assert_eq!(doc, openrpc::document());
    let listed: BTreeSet<String> = openrpc::method_names(&doc).into_iter().collect();
    assert_eq!(listed, registered, "rpc.discover must list exactly the registered methods");
    assert_eq!(listed.len(), openrpc::method_names(&doc).len(), "no method listed twice");

    // Every object result: the schema's properties are exactly the keys the server returns.
    let schemas = &doc["components"]["schemas"];
    let resolve = |v: &Value| -> Value {
        match v["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => v.clone(),
        }
    };
    let check = |name: &str, actual: &Value| {
        let schema = resolve(&schemas[name]);
        let props: BTreeSet<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let keys: BTreeSet<&str> = actual.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(props, keys, "schema {name} vs actual {actual}");
    };
    let hash = f.backend.tip_block().block.txs[0].txid().to_string();
    let block = f.call("getblock", json!([2, 2])).await["result"].clone();
    check("BlockInfo", &block);
    check("TxInfo", &block["tx"][0]);
    check("CommitInfo", &block["commit"]);
    check("BtcAnchorInfo", &block["btc_anchor"]);
    check("ChainInfo", &f.call("getblockchaininfo", json!([])).await["result"]);
    check("CommitInfo", &f.call("getcommit", json!([1])).await["result"]);
    check("TransactionInfo", &f.call("gettransaction", json!([hash])).await["result"]);
    check("AccountInfo", &f.call("getaccount", json!([hash])).await["result"]);
    check("MempoolInfo", &f.call("getmempoolinfo", json!([])).await["result"]);
    check("PeerInfo", &f.call("getpeerinfo", json!([])).await["result"][0]);
    check("NetworkInfo", &f.call("getnetworkinfo", json!([])).await["result"]);
    check("ValidatorInfo", &f.call("getvalidators", json!([])).await["result"][0]);
    check("EvidenceInfo", &f.call("getevidence", json!([])).await["result"][0]);
    let chain_info = f.call("getblockchaininfo", json!([])).await["result"].clone();
    check("ChainPegInfo", &chain_info["peg"]);
    let federation = f.call("getfederationinfo", json!([])).await["result"].clone();
    check("FederationInfo", &federation);
    check("PegTotalsInfo", &federation["peg_totals"]);
    let outpoint = format!("{hash}:0");
    check("PegInStatus", &f.call("getpegstatus", json!([outpoint])).await["result"]);
    let account = common::acct(1).to_string();
    check("ClaimPegInResult", &f.call("claimpegin", json!([outpoint, account, hash])).await["result"]);
    check("PegInStatus", &f.call("getpegstatus", json!([outpoint])).await["result"]);
    check("PegInAddressInfo", &f.call("getpeginaddress", json!([hash])).await["result"]);
    check("ConsensusStateInfo", &f.call("getconsensusstate", json!([])).await["result"]);
    check("BlockSummary", &serde_json::to_value(BlockSummary::from(&f.backend.tip_block().block)).unwrap());
    // Every method's result schema and params resolve.
    for m in doc["methods"].as_array().unwrap() {
        assert!(m["result"]["schema"].is_object(), "{}", m["name"]);
        for p in m["params"].as_array().unwrap() {
            assert!(p["name"].is_string() && p["schema"].is_object(), "{}", m["name"]);
        }
    }
}
