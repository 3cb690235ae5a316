//! Issue 9, scenario 7: garbage on every port of every node (p2p, JSON-RPC over HTTP, metrics over HTTP):
//! random bytes, half-open connections left hanging, oversized and malformed requests. Each port refuses
//! with a clear answer where its protocol has one (HTTP status, JSON-RPC error) or drops the connection,
//! the logs say what was refused, no node stops, and the chain goes on; then the runner's closing checks.
//! (The hostile libp2p peer that gets through the handshake is `bad_input`'s test.)

use rand::{RngCore, SeedableRng};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

const SEED: u64 = 9;

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    s
}

/// What the server did with one request.
#[derive(Debug)]
struct Answer {
    /// What it sent back (up to 64 KiB).
    text: String,
    /// Whether it closed the connection within the bound.
    closed: bool,
}

/// Sends `bytes` (a write cut short by the server closing is fine) and reads until the server closes the
/// connection or `bound` passes.
fn exchange(addr: SocketAddr, bytes: &[u8], bound: Duration) -> Answer {
    let mut s = connect(addr);
    let _ = s.write_all(bytes);
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) if got.len() < 64 * 1024 => got.extend_from_slice(&buf[..n]),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break true, // reset by the server
        }
        if Instant::now() >= deadline {
            break false;
        }
    };
    Answer { text: String::from_utf8_lossy(&got).to_string(), closed }
}

fn status(a: &Answer) -> u16 {
    a.text.strip_prefix("HTTP/1.1 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn post(auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The p2p port: the handshake fails and the connection is dropped.
fn attack_p2p(addr: SocketAddr, seed: u64) {
    let mut multistream_then_junk = b"\x13/multistream/1.0.0\n".to_vec();
    multistream_then_junk.extend(random(4096, seed + 1));
    for (what, bytes) in [
        ("random bytes", random(64 * 1024, seed)),
        ("8 MiB of random bytes", random(8 * 1024 * 1024, seed + 2)),
        ("a multistream header, then garbage", multistream_then_junk),
        ("a huge declared length", vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
    ] {
        let a = exchange(addr, &bytes, Duration::from_secs(20));
        assert!(a.closed, "p2p {addr}: {what} left the connection open: {:?}", a.text);
    }
}

/// The JSON-RPC port: HTTP errors or JSON-RPC errors, each saying what was wrong.
fn attack_rpc(addr: SocketAddr, auth: &str, seed: u64) {
    let bound = Duration::from_secs(15);
    let a = exchange(addr, &random(64 * 1024, seed), bound);
    assert!(a.closed && (a.text.is_empty() || (400..500).contains(&status(&a))), "rpc random bytes: {a:?}");

    // A JSON-RPC call without credentials (a plain `GET /` is the dashboard's redirect, not a call).
    let body = "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"getblockcount\"}";
    let call = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let a = exchange(addr, call.as_bytes(), bound);
    assert_eq!(status(&a), 401, "rpc without credentials: {a:?}");

    let a = exchange(addr, &post(auth, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": "), bound);
    assert!(a.text.contains("-32700"), "rpc malformed JSON is a parse error: {a:?}");

    let a = exchange(addr, &post(auth, r#"{"jsonrpc":"2.0","id":1,"method":"getblock","params":["xyz",9]}"#), bound);
    assert!(a.text.contains("\"error\"") && a.text.contains("block"), "rpc bad params: {a:?}");

    let a = exchange(addr, &post(auth, r#"{"jsonrpc":"2.0","id":1,"method":"nosuchmethod"}"#), bound);
    assert!(a.text.contains("-32601"), "rpc unknown method: {a:?}");

    let batch: Vec<String> =
        (0..101).map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"getblockcount"}}"#)).collect();
    let a = exchange(addr, &post(auth, &format!("[{}]", batch.join(","))), bound);
    assert!(a.text.contains("\"error\""), "rpc batch over the limit: {a:?}");

    let huge = format!("\"{}\"", "a".repeat(2 * 1024 * 1024));
    let a = exchange(
        addr,
        &post(auth, &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"sendrawtransaction","params":[{huge}]}}"#)),
        bound,
    );
    assert!(a.closed && (a.text.is_empty() || status(&a) == 413), "rpc 2 MiB body over the 1 MiB cap: {a:?}");

    let long_header = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: {}\r\n\r\n", "b".repeat(512 * 1024));
    let a = exchange(addr, long_header.as_bytes(), bound);
    assert!(a.closed && (a.text.is_empty() || (400..500).contains(&status(&a))), "rpc 512 KiB header: {a:?}");
}

/// The metrics port (hyper's HTTP/1.1 server): a 4xx for a head that is not `GET /metrics` (400 for junk,
/// 431 for a head over its size cap, 405 for another method), and a head that never ends is closed
/// within its 5 s read bound.
fn attack_metrics(addr: SocketAddr, seed: u64) {
    let bound = Duration::from_secs(15);
    let refused = |a: &Answer| a.closed && (400..500).contains(&status(a));
    let a = exchange(addr, &random(64 * 1024, seed), bound);
    assert!(refused(&a) && status(&a) == 400, "metrics random bytes: {a:?}");
    let a = exchange(addr, &vec![b'A'; 1024 * 1024], bound);
    assert!(refused(&a), "metrics 1 MiB without a line end: {a:?}");
    let a = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", bound);
    assert!(refused(&a) && status(&a) == 405, "metrics not a GET: {a:?}");
    let a = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x", bound);
    assert!(a.closed && (a.text.is_empty() || refused(&a)), "metrics request line without its end: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_port_is_refused_clearly_and_the_chain_goes_on() {
    let scenario = Scenario::begin("garbage_ports");
    let mut fed = Federation::start(FederationConfig { validators: 4, full_nodes: 0, ..Default::default() })
        .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(60)).await.expect("blocks");

    // Half-open connections on every port, held through the whole attack: node 0 gets 150 per port, more
    // than its RPC server's 100 connections and its transport's 64 pending handshakes.
    let mut hanging = Vec::new();
    for (i, n) in fed.nodes.iter().enumerate() {
        let p2p: SocketAddr = ([127, 0, 0, 1], n.p2p_port).into();
        for addr in [p2p, n.rpc_addr, n.metrics_addr] {
            for _ in 0..if i == 0 { 150 } else { 10 } {
                hanging.push(connect(addr));
            }
        }
    }
    let mut attacks = Vec::new();
    for (i, n) in fed.nodes.iter().enumerate() {
        let (user, password) = rpc::auth::Cookie::read(&n.datadir.join(".cookie")).expect("cookie");
        let auth = rpc::auth::basic_auth_header(&user, &password);
        let p2p: SocketAddr = ([127, 0, 0, 1], n.p2p_port).into();
        let (rpc_addr, metrics_addr) = (n.rpc_addr, n.metrics_addr);
        let seed = SEED + 100 * i as u64;
        attacks.push(std::thread::spawn(move || attack_p2p(p2p, seed)));
        attacks.push(std::thread::spawn(move || attack_rpc(rpc_addr, &auth, seed + 10)));
        attacks.push(std::thread::spawn(move || attack_metrics(metrics_addr, seed + 20)));
    }
    let during = tokio::time::timeout(Duration::from_secs(5), fed.nodes[0].height())
        .await
        .expect("rpc answers at once, half-open connections or not")
        .expect("rpc answers during the attack");
    for a in attacks {
        a.join().expect("every port answered as expected");
    }
    // The metrics port gave up on its half-open connections (5 s read bound): closed, nothing served.
    for s in hanging.iter_mut() {
        if s.peer_addr().ok() == Some(fed.nodes[0].metrics_addr) {
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let mut text = String::new();
            // Closed (or reset) by the server, not our 10 s read timeout.
            let closed = match s.read_to_string(&mut text) {
                Ok(_) => true,
                Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            };
            assert!(closed && !text.contains("200 OK"), "half-open metrics connection: {closed} {text:?}");
        }
    }

    // The chain went on during and after it, on every node.
    fed.wait_height(&[0, 1, 2, 3], during + 3, Duration::from_secs(60)).await.expect("the chain goes on");
    drop(hanging);
    // The logs say what was refused.
    let log = std::fs::read_to_string(fed.nodes[0].process.log_path()).expect("log");
    for clear in ["incoming connection failed", "malformed metrics request"] {
        assert!(log.contains(clear), "node 0's log does not mention {clear:?}");
    }
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
