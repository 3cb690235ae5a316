//! The dashboard's edges, over a real server: the page is served without credentials, its endpoint serves
//! read-only methods only (single calls, batches, WebSocket), and requests another website could make
//! from a visitor's browser (a foreign Origin, a rebound Host, a CORS preflight, a WebSocket handshake)
//! are refused with no CORS headers. The authenticated RPC at `/` is unchanged.

mod common;

use common::{Fixture, HttpReply};
use jsonrpsee::core::client::ClientT;
use rpc::dashboard::{NOT_ALLOWED, READ_ONLY_METHODS, RPC_PATH, WRITE_METHODS};
use rpc::{ClientAuth, SidechainApiClient};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// A reply with the checks these tests make on it.
#[derive(Debug)]
struct Reply(HttpReply);

impl std::ops::Deref for Reply {
    type Target = HttpReply;
    fn deref(&self) -> &HttpReply {
        &self.0
    }
}

impl Reply {
    fn cors_headers(&self) -> Vec<&(String, String)> {
        self.headers.iter().filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control")).collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not json ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection (for a WebSocket handshake, the head only).
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let request = rpc::testkit::request(addr, method, path, headers, body);
    Reply(tokio::time::timeout(Duration::from_secs(20), request).await.expect("http request timed out").expect("http"))
}

fn call(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()
}

const LOCAL: (&str, &str) = ("Host", "127.0.0.1");

#[tokio::test]
async fn the_page_is_served_without_credentials_under_a_strict_policy() {
    let f = Fixture::start().await;
    let addr = f.server.local_addr();
    let page = request(addr, "GET", "/dashboard/", &[LOCAL], "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<title>sidechaind dashboard</title>"), "{}", page.body);
    let csp = page.header("content-security-policy").expect("a content security policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page.cors_headers().is_empty(), "{:?}", page.cors_headers());
    for (path, kind) in [("/dashboard/app.js", "text/javascript"), ("/dashboard/style.css", "text/css")] {
        let r = request(addr, "GET", path, &[LOCAL], "").await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap_or_default().starts_with(kind), "{path}: {:?}", r.headers);
    }
    let root = request(addr, "GET", "/", &[LOCAL], "").await;
    assert_eq!(root.status, 303);
    assert_eq!(root.header("location"), Some("/dashboard/"));
    assert_eq!(request(addr, "GET", "/dashboard/nothing", &[LOCAL], "").await.status, 404);
    // The cookie is not behind any dashboard path.
    assert_eq!(request(addr, "GET", "/dashboard/../.cookie", &[LOCAL], "").await.status, 404);
}

#[tokio::test]
async fn the_read_only_endpoint_serves_reads_and_refuses_every_other_method() {
    let f = Fixture::start().await;
    let addr = f.server.local_addr();
    let r = request(addr, "POST", RPC_PATH, &[LOCAL], &call("getblockcount", json!([]))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], 2);

    // Every registered method that is not on the list is refused there, with a message saying where to go.
    let module = rpc::rpc_module(f.backend.clone()).unwrap();
    let registered: BTreeSet<String> = module.method_names().map(String::from).collect();
    for m in READ_ONLY_METHODS {
        assert!(registered.contains(*m), "{m} on the read-only list is not a method");
    }
    for w in WRITE_METHODS {
        assert!(registered.contains(*w), "{w} is a method");
    }
    let refused: Vec<&String> = registered.iter().filter(|m| !READ_ONLY_METHODS.contains(&m.as_str())).collect();
    assert!(refused.len() >= WRITE_METHODS.len());
    for m in refused {
        let r = request(addr, "POST", RPC_PATH, &[LOCAL], &call(m, json!([]))).await;
        assert_eq!(r.status, 200, "{m}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], NOT_ALLOWED, "{m}: {}", r.body);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("basic auth"), "{}", r.body);
    }
    // A batch cannot smuggle a writer in; its reads still answer.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 1, "method": "getblockcount", "params": [] },
        { "jsonrpc": "2.0", "id": 2, "method": "sendrawtransaction", "params": ["00"] },
        { "jsonrpc": "2.0", "method": "resumepeg", "params": [1, "00"] },
    ]);
    let r = request(addr, "POST", RPC_PATH, &[LOCAL], &batch.to_string()).await;
    let answers = r.json();
    let by_id = |id: i64| answers.as_array().unwrap().iter().find(|a| a["id"] == id).cloned().unwrap();
    assert_eq!(by_id(1)["result"], 2, "{answers}");
    assert_eq!(by_id(2)["error"]["code"], NOT_ALLOWED, "{answers}");
    assert_eq!(answers.as_array().unwrap().len(), 2, "a notification gets no answer: {answers}");

    // The authenticated RPC is unchanged: no credentials, no answer.
    let r = request(addr, "POST", "/", &[LOCAL], &call("getblockcount", json!([]))).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // With credentials at `/`, writers still reach their handler (a parameter error, not NOT_ALLOWED).
    let (code, _) = f.error_code("sendrawtransaction", json!(["zz"])).await;
    assert_ne!(code, i64::from(NOT_ALLOWED));

    // Over WebSocket: reads and the subscription work without credentials, writers are refused.
    let ws = rpc::connect_ws(&format!("ws://{addr}{RPC_PATH}"), &ClientAuth::None).await.expect("ws without auth");
    assert_eq!(ws.get_block_count().await.unwrap().get(), 2);
    let mut sub = ws.subscribe_new_blocks().await.expect("subscribe on the read-only endpoint");
    f.backend.commit_block(Vec::new());
    let b = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("a block").unwrap().unwrap();
    assert_eq!(b.height.get(), 3);
    let err = ws.request::<Value, _>("resumepeg", jsonrpsee::rpc_params![1, "00".repeat(32)]).await.unwrap_err();
    assert!(err.to_string().contains(&NOT_ALLOWED.to_string()), "{err}");
}

#[tokio::test]
async fn other_websites_cannot_use_the_page_or_its_endpoint() {
    let f = Fixture::start().await;
    let addr = f.server.local_addr();
    let body = call("getblockcount", json!([]));
    let evil = ("Origin", "https://evil.example");
    let own = format!("http://127.0.0.1:{}", addr.port());

    // A page on another site posting to the node (CSRF): refused before any method runs.
    let r = request(addr, "POST", RPC_PATH, &[LOCAL, evil], &body).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.cors_headers().is_empty(), "{:?}", r.cors_headers());
    // Its CORS preflight gets nothing that would let the browser go on.
    let preflight =
        [LOCAL, evil, ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "content-type")];
    let r = request(addr, "OPTIONS", RPC_PATH, &preflight, "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.cors_headers().is_empty(), "{:?}", r.cors_headers());
    // DNS rebinding: evil.example now resolves to 127.0.0.1; the browser sends its own Host name.
    for (method, path, b) in
        [("GET", "/dashboard/", ""), ("GET", "/dashboard/app.js", ""), ("POST", RPC_PATH, body.as_str())]
    {
        let r = request(addr, method, path, &[("Host", "evil.example:18443")], b).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
    }
    // Cross-site WebSocket hijacking: the handshake from another origin is refused; from ours it upgrades.
    let ws = |origin: &'static str| {
        [
            LOCAL,
            ("Origin", origin),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ]
    };
    assert_eq!(request(addr, "GET", RPC_PATH, &ws("https://evil.example"), "").await.status, 403);
    let own_static: &'static str = Box::leak(own.clone().into_boxed_str());
    assert_eq!(request(addr, "GET", RPC_PATH, &ws(own_static), "").await.status, 101);
    // The page's own requests (same origin) are served.
    let r = request(addr, "POST", RPC_PATH, &[LOCAL, ("Origin", &own)], &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.cors_headers().is_empty());
}

#[tokio::test]
async fn with_the_dashboard_off_nothing_is_served_without_credentials() {
    let f = Fixture::start_with(|c| c.dashboard = false).await;
    let addr = f.server.local_addr();
    assert_eq!(request(addr, "GET", "/dashboard/", &[LOCAL], "").await.status, 404);
    assert_eq!(request(addr, "POST", RPC_PATH, &[LOCAL], &call("getblockcount", json!([]))).await.status, 404);
    assert_eq!(request(addr, "POST", "/", &[LOCAL], &call("getblockcount", json!([]))).await.status, 401);
    assert_eq!(f.call("getblockcount", json!([])).await["result"], 2);
}
