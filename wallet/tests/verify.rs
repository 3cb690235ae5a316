//! `sidechain-cli --verify` against a lying node: a proxy in front of a real server (over the rpc crate's
//! mock backend, which builds and certifies real blocks) alters one thing in its answers, and the CLI must
//! refuse each lie with an error naming it, while the honest path passes.

#[path = "../../rpc/tests/common/mod.rs"]
mod common;

use common::Fixture;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the proxy changes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lie {
    Nothing,
    /// `getaccount`: a higher balance in the answer.
    Balance,
    /// `getaccount`: a higher balance in the answer and in the proved entry.
    Proof,
    /// `getheaders`: one byte of the first header.
    Header,
    /// `getheaders`: one byte of the first certificate's last signature.
    Certificate,
    /// `getaccount`: the first answer it saw, again (an old state).
    OldState,
    /// `getaccount`: the proved answer about another (richer) account.
    OtherAccount,
    /// `listtransactions`: a larger amount in the newest entry.
    HistoryAmount,
    /// `listtransactions`: the newest entry twice (one payment shown as two).
    HistoryTwice,
}

struct Proxy {
    addr: std::net::SocketAddr,
    lie: Arc<Mutex<Lie>>,
}

async fn read_request(s: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return Some(body[..len].to_string());
            }
        }
    }
}

fn flip_hex_byte(hex_str: &str, index_from_end: usize) -> String {
    let mut bytes = hex::decode(hex_str).expect("hex");
    let i = bytes.len() - 1 - index_from_end;
    bytes[i] ^= 1;
    hex::encode(bytes)
}

fn alter(lie: Lie, method: &str, result: &mut Value, first_account: &mut Option<Value>) {
    match (lie, method) {
        (Lie::Balance, "getaccount") => {
            result["balance_sat"] = Value::from(result["balance_sat"].as_u64().unwrap() + 1);
        }
        (Lie::Proof, "getaccount") => {
            let balance = result["balance_sat"].as_u64().unwrap() + 1_000;
            let nonce = result["nonce"].as_u64().unwrap();
            let forged = ledger::Account { balance: bitcoin::Amount::from_sat(balance), nonce };
            result["proof"]["entries"][0]["value"] = Value::from(hex::encode(borsh::to_vec(&forged).unwrap()));
            result["balance_sat"] = Value::from(balance);
        }
        (Lie::Header, "getheaders") => {
            // The last bytes of a header are its last_commit_hash.
            let h = result["headers"][0]["header"].as_str().unwrap().to_string();
            result["headers"][0]["header"] = Value::from(flip_hex_byte(&h, 3));
        }
        (Lie::Certificate, "getheaders") => {
            let c = result["headers"][0]["commit"].as_str().unwrap().to_string();
            result["headers"][0]["commit"] = Value::from(flip_hex_byte(&c, 5));
        }
        (Lie::HistoryAmount, "listtransactions") => {
            result[0]["amount_sat"] = Value::from(result[0]["amount_sat"].as_u64().unwrap() + 1);
        }
        (Lie::HistoryTwice, "listtransactions") => {
            let first = result[0].clone();
            result.as_array_mut().unwrap().insert(0, first);
        }
        (Lie::OldState, "getaccount") => {
            if let Some(old) = first_account {
                *result = old.clone();
            }
        }
        (_, "getaccount") if first_account.is_none() => *first_account = Some(result.clone()),
        _ => {}
    }
}

impl Proxy {
    async fn start(f: Arc<Fixture>) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lie = Arc::new(Mutex::new(Lie::Nothing));
        let first_account = Arc::new(Mutex::new(None));
        let state = lie.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (f, lie, first_account) = (f.clone(), state.clone(), first_account.clone());
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut s).await else { return };
                    let method = serde_json::from_str::<Value>(&body)
                        .ok()
                        .and_then(|v| v["method"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let reply = f.post(&body).await;
                    let mut json: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
                    let lie = *lie.lock().unwrap();
                    if lie == Lie::OtherAccount && method == "getaccount" {
                        let other = f.call("getaccount", serde_json::json!([common::acct(0).to_string(), true])).await;
                        json["result"] = other["result"].clone();
                    }
                    if let Some(result) = json.get_mut("result") {
                        alter(lie, &method, result, &mut first_account.lock().unwrap());
                    }
                    let out = json.to_string();
                    let head = format!(
                        "HTTP/1.1 {} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.status,
                        out.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(out.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Proxy { addr, lie }
    }

    fn set(&self, lie: Lie) {
        *self.lie.lock().unwrap() = lie;
    }
}

/// A fixture with a few more blocks, its genesis file, a proxy and a wallet file.
struct Setup {
    f: Arc<Fixture>,
    proxy: Proxy,
    genesis: std::path::PathBuf,
}

async fn setup() -> Setup {
    let f = Arc::new(Fixture::start().await);
    for _ in 0..6 {
        f.backend.commit_block(Vec::new());
    }
    let genesis = f.dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(f.backend.chain.genesis()).unwrap()).unwrap();
    let proxy = Proxy::start(f.clone()).await;
    Setup { f, proxy, genesis }
}

impl Setup {
    /// `sidechain-cli --verify getaccount <acct(2)>` through the proxy; the fixture's block times are from
    /// 2023, so the clock rule is relaxed unless `max_age` says otherwise.
    async fn verify_account(&self, max_age: &str, genesis: &std::path::Path) -> (bool, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidechain-cli"));
        cmd.arg("--rpc-url").arg(format!("http://{}", self.proxy.addr));
        cmd.arg("--rpc-cookie").arg(self.f.server.cookie_path());
        cmd.args(["--verify", "--max-age", max_age, "--json", "--genesis"]).arg(genesis);
        cmd.args(["getaccount", &common::acct(2).to_string()]).kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("cli finished").unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// `verify_account` with `--light-tip <file>`.
    async fn verify_account_saving(&self, tip_file: &std::path::Path) -> (bool, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidechain-cli"));
        cmd.arg("--rpc-url").arg(format!("http://{}", self.proxy.addr));
        cmd.arg("--rpc-cookie").arg(self.f.server.cookie_path());
        cmd.args(["--verify", "--max-age", RELAXED, "--json", "--genesis"]).arg(&self.genesis);
        cmd.arg("--light-tip").arg(tip_file);
        cmd.args(["getaccount", &common::acct(2).to_string()]).kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("cli finished").unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    async fn refused(&self, lie: Lie) -> String {
        self.proxy.set(lie);
        let (ok, out, err) = self.verify_account(RELAXED, &self.genesis).await;
        assert!(!ok, "{lie:?} was believed: {out}");
        err
    }
}

const RELAXED: &str = "100000000000";

#[tokio::test]
async fn the_honest_answer_verifies_from_the_genesis() {
    let s = setup().await;
    let (ok, out, err) = s.verify_account(RELAXED, &s.genesis).await;
    assert!(ok, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["balance_sat"], 1_000_007_000u64);
    let tip = s.f.backend.tip_block().block.header.height;
    assert_eq!(v["verified"]["height"], tip.get());
    assert_eq!(v["verified"]["followed_to"], tip.get());
    assert_eq!(v["verified"]["trusted_from"], "genesis");
    assert!(v.get("proof").is_none(), "the proof was checked, not printed");
}

#[tokio::test]
async fn a_proved_history_verifies_and_an_altered_entry_is_caught() {
    let s = setup().await;
    let history = |s: &Setup| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidechain-cli"));
        cmd.arg("--rpc-url").arg(format!("http://{}", s.proxy.addr));
        cmd.arg("--rpc-cookie").arg(s.f.server.cookie_path());
        cmd.args(["--verify", "--json", "--genesis"]).arg(&s.genesis);
        cmd.args(["history", "--account", &common::acct(2).to_string()]).kill_on_drop(true);
        cmd
    };
    let out = tokio::time::timeout(Duration::from_secs(30), history(&s).output()).await.unwrap().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert!(!v["entries"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["verified"]["followed_to"].as_u64().unwrap() >= 1);
    assert!(v["entries"].as_array().unwrap().iter().all(|e| e["unproved"].is_array()), "{v}");
    s.proxy.set(Lie::HistoryAmount);
    let out = tokio::time::timeout(Duration::from_secs(30), history(&s).output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("says amount_sat is"), "{stderr}");
    s.proxy.set(Lie::HistoryTwice);
    let out = tokio::time::timeout(Duration::from_secs(30), history(&s).output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("out of order or twice"), "{stderr}");
}

#[tokio::test]
async fn an_altered_balance_is_caught() {
    let err = setup().await.refused(Lie::Balance).await;
    assert!(err.contains("says balance_sat is") && err.contains("the proved state says"), "{err}");
}

#[tokio::test]
async fn an_altered_proof_is_caught() {
    let err = setup().await.refused(Lie::Proof).await;
    assert!(err.contains("does not verify against root"), "{err}");
}

#[tokio::test]
async fn an_altered_header_is_caught() {
    let err = setup().await.refused(Lie::Header).await;
    assert!(err.contains("header 1: its commit certificate is for height 1, block"), "{err}");
}

#[tokio::test]
async fn an_altered_certificate_is_caught() {
    let err = setup().await.refused(Lie::Certificate).await;
    assert!(err.contains("header 1: commit certificate: bad precommit signatures"), "{err}");
}

#[tokio::test]
async fn an_answer_about_another_account_is_caught() {
    let err = setup().await.refused(Lie::OtherAccount).await;
    assert!(err.contains("says account is"), "{err}");
}

#[tokio::test]
async fn an_old_state_is_caught() {
    let s = setup().await;
    let (ok, _, err) = s.verify_account(RELAXED, &s.genesis).await;
    assert!(ok, "{err}");
    for _ in 0..12 {
        s.f.backend.commit_block(Vec::new());
    }
    let err = s.refused(Lie::OldState).await;
    assert!(err.contains("stale") && err.contains("blocks behind the node's own tip"), "{err}");
    // A node that hides its newer blocks too is caught by the clock: these blocks are from 2023.
    s.proxy.set(Lie::Nothing);
    let (ok, _, err) = s.verify_account("60", &s.genesis).await;
    assert!(!ok && err.contains("stale") && err.contains("--max-age 60"), "{err}");
}

#[tokio::test]
async fn another_chain_is_caught() {
    let s = setup().await;
    let mut other = s.f.backend.chain.genesis().clone();
    other.chain_id = "another-chain".into();
    let path = s.f.dir.path().join("other-genesis.json");
    std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
    let (ok, out, err) = s.verify_account(RELAXED, &path).await;
    assert!(!ok, "{out}");
    assert!(err.contains("header 1: belongs to chain"), "{err}");
}

#[tokio::test]
async fn a_saved_tip_starts_the_next_run_where_the_last_one_checked() {
    let s = setup().await;
    let tip_file = s.f.dir.path().join("light-tip.json");
    let (ok, out, err) = s.verify_account_saving(&tip_file).await;
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["verified"]["trusted_from"], "genesis");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&tip_file).unwrap()).unwrap();
    assert_eq!(saved["height"], first["verified"]["followed_to"]);
    for _ in 0..3 {
        s.f.backend.commit_block(Vec::new());
    }
    let (ok, out, err) = s.verify_account_saving(&tip_file).await;
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second["verified"]["trusted_from"], "saved tip");
    assert_eq!(second["verified"]["followed_to"].as_u64(), first["verified"]["followed_to"].as_u64().map(|h| h + 3));
    // A saved tip the node's chain does not have at that height is refused, not followed.
    let mut wrong = saved.clone();
    wrong["hash"] = Value::from("ab".repeat(32));
    std::fs::write(&tip_file, wrong.to_string()).unwrap();
    let (ok, _, err) = s.verify_account_saving(&tip_file).await;
    assert!(!ok && err.contains("the saved tip") && err.contains("trusted hash"), "{err}");
}
