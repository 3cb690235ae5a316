//! `sidechain-cli` against a real server over a mock backend: creating a wallet, sending, registering a
//! deposit address, showing and claiming deposits. The fixture is the rpc crate's own (shared by path, so
//! there is one mock backend); e2e runs against real `sidechaind` processes are in `node/tests/cli_pegin.rs`.

#[path = "../../rpc/tests/common/mod.rs"]
mod common;

use common::Fixture;
use rpc::SidechainApiClient;
use serde_json::Value;
use std::time::Duration;

async fn run_cli(f: &Fixture, wallet: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidechain-cli"));
    cmd.arg("--rpc-url").arg(f.http_url()).arg("--rpc-cookie").arg(f.server.cookie_path());
    cmd.arg("--wallet").arg(wallet).args(args).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("cli finished").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn cli_creates_a_wallet_and_sends() {
    use ledger::testkit::{transfer, user_key};
    let f = Fixture::start().await;
    let wallet = f.dir.path().join("wallet.json");
    let (ok, out, err) = run_cli(&f, &wallet, &["createwallet"]).await;
    assert!(ok && out.contains("created wallet"), "{out}{err}");
    let (ok, _, err) = run_cli(&f, &wallet, &["createwallet"]).await;
    assert!(!ok && err.contains("refusing to overwrite"), "{err}");

    let (ok, out, err) = run_cli(&f, &wallet, &["getaddress", "--json"]).await;
    assert!(ok, "{err}");
    let account: primitives::AccountId =
        serde_json::from_value(serde_json::from_str::<Value>(&out).unwrap()["account"].clone()).unwrap();
    let fund =
        transfer(&f.backend.chain, &user_key(0), 1, account, bitcoin::Amount::from_sat(100_000_000), common::FEE);
    f.backend.commit_block(vec![fund]);
    let (ok, out, err) = run_cli(&f, &wallet, &["getbalance"]).await;
    assert!(ok && out.contains("1.00000000 BTC"), "{out}{err}");
    let (ok, out, err) = run_cli(&f, &wallet, &["history"]).await;
    let funder = common::acct(0).to_string();
    assert!(ok && out.contains(&format!("received  +100000000 sat from {funder}")), "{out}{err}");
    let (ok, out, err) = run_cli(&f, &wallet, &["history", "--json", "--skip", "1"]).await;
    assert!(ok && out.trim() == "[]", "one entry only: {out}{err}");

    let to = common::acct(2).to_string();
    let (ok, _, err) = run_cli(&f, &wallet, &["send", &to, "100"]).await;
    assert!(!ok && err.contains("no unit"), "{err}");
    let (ok, _, err) = run_cli(&f, &wallet, &["send", &to, "2btc"]).await;
    assert!(!ok && err.contains("insufficient balance"), "{err}");
    let (ok, out, err) = run_cli(&f, &wallet, &["send", &to, "0.5btc", "--json"]).await;
    assert!(ok, "{err}");
    let sent: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sent["amount_sat"], 50_000_000);
    assert_eq!(sent["fee_sat"], 100);
    let mempool = f.client().get_raw_mempool().await.unwrap();
    assert_eq!(mempool.len(), 1);
    assert_eq!(sent["txid"], mempool[0].to_string());
    // The node's reason reaches the user (same nonce again: a duplicate).
    let (ok, _, err) = run_cli(&f, &wallet, &["send", &to, "0.5btc"]).await;
    assert!(!ok && err.contains("rpc error -26"), "{err}");

    let (ok, out, err) = run_cli(&f, &wallet, &["getblock", "1"]).await;
    assert!(ok && out.contains("at height 1"), "{out}{err}");
    let (ok, out, err) = run_cli(&f, &wallet, &["getblockchaininfo", "--json"]).await;
    assert!(ok && serde_json::from_str::<Value>(&out).unwrap()["height"] == 3, "{out}{err}");
    let (ok, _, err) = run_cli(&f, &wallet, &["getblock", "99"]).await;
    assert!(!ok && err.contains("out of range"), "{err}");
}

/// The wallet's account, as `getaddress` prints it.
async fn wallet_account(f: &Fixture, wallet: &std::path::Path) -> primitives::AccountId {
    let (ok, out, err) = run_cli(f, wallet, &["getaddress", "--json"]).await;
    assert!(ok, "{err}");
    serde_json::from_value(serde_json::from_str::<Value>(&out).unwrap()["account"].clone()).unwrap()
}

#[tokio::test]
async fn cli_registers_a_deposit_address_shows_and_claims_deposits() {
    let f = Fixture::start().await;
    let wallet = f.dir.path().join("wallet.json");
    let (ok, _, err) = run_cli(&f, &wallet, &["createwallet"]).await;
    assert!(ok, "{err}");

    // pegin with nothing to pay the registration fee: nothing is submitted; the address and the claim to
    // make are printed instead.
    let (ok, out, err) = run_cli(&f, &wallet, &["pegin", "--json"]).await;
    assert!(ok, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["registration"]["status"], "claim_needed", "{v}");
    assert_eq!((v["registration"]["balance_sat"].as_u64(), v["registration_fee_sat"].as_u64()), (Some(0), Some(1_000)));
    assert_eq!(v["address"].as_str(), Some("bcrt1qdeposit"));
    assert!(f.client().get_raw_mempool().await.unwrap().is_empty(), "no registration it cannot pay for");
    let (ok, out, err) = run_cli(&f, &wallet, &["pegin"]).await;
    assert!(ok && out.contains("sidechain-cli claimpegin <txid:vout> <BTC block hash>"), "{out}{err}");
    assert!(out.contains("less than the registration fee of 1000 sat") && out.contains("bcrt1qdeposit"), "{out}");

    // With a balance: a RegisterDeposit signed by the wallet paying the registration fee, then the address
    // and N.
    let account = wallet_account(&f, &wallet).await;
    let fund = ledger::testkit::transfer(
        &f.backend.chain,
        &ledger::testkit::user_key(0),
        1,
        account,
        bitcoin::Amount::from_sat(5_000),
        common::FEE,
    );
    f.backend.commit_block(vec![fund]);
    let (ok, out, err) = run_cli(&f, &wallet, &["pegin", "--json"]).await;
    assert!(ok, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["registration"]["status"], "submitted", "{v}");
    assert_eq!((v["address"].as_str(), v["confirmations_required"].as_u64()), (Some("bcrt1qdeposit"), Some(6)));
    assert!(v["funding"].is_null(), "{v}");
    let txid: primitives::TxId = v["registration"]["txid"].as_str().unwrap().parse().unwrap();
    let t = f.client().get_transaction(txid).await.unwrap();
    assert_eq!(t.tx.fee, bitcoin::Amount::from_sat(1_000), "registration pays the registration fee");
    let tx: ledger::SignedUserTx = borsh::from_slice(&hex::decode(&t.tx.hex).unwrap()).unwrap();
    f.backend.commit_block(vec![tx]);
    // Again while the registration is live: the node refuses it, and that is fine.
    let (ok, out, err) = run_cli(&f, &wallet, &["pegin"]).await;
    assert!(ok && out.contains("already registered") && out.contains("bcrt1qdeposit"), "{out}{err}");
    // --fund needs a bitcoind, checked before anything is submitted.
    let (ok, _, err) = run_cli(&f, &wallet, &["pegin", "--fund", "0.1btc"]).await;
    assert!(!ok && err.contains("--bitcoind-rpc-url"), "{err}");
    let (ok, _, err) = run_cli(&f, &wallet, &["pegin", "--fund", "0.1"]).await;
    assert!(!ok && err.contains("no unit"), "{err}");

    // pegstatus and claimpegin.
    let outpoint = format!("{}:1", "ab".repeat(32));
    let block = "cd".repeat(32);
    let (ok, out, err) = run_cli(&f, &wallet, &["pegstatus", &outpoint]).await;
    assert!(ok && out.contains("unknown to this node"), "{out}{err}");
    let (ok, _, err) = run_cli(&f, &wallet, &["pegstatus", "nope"]).await;
    assert!(!ok && err.contains("txid:vout"), "{err}");
    let (ok, out, err) = run_cli(&f, &wallet, &["claimpegin", &outpoint, &block]).await;
    assert!(ok && out.contains("submitted"), "{out}{err}");
    let (ok, _, err) = run_cli(&f, &wallet, &["claimpegin", &outpoint, &block]).await;
    assert!(!ok && err.contains("already pending") && err.contains("rpc error -27"), "{err}");
    let (ok, out, err) = run_cli(&f, &wallet, &["pegstatus", &outpoint, "--json"]).await;
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stage"], "claim_pending", "{v}");
    let (ok, out, err) = run_cli(&f, &wallet, &["pegstatus", &outpoint]).await;
    assert!(ok && out.contains("claim pending") && out.contains("3 of 6 confirmations"), "{out}{err}");

    let (ok, out, err) = run_cli(&f, &wallet, &["help", "pegin"]).await;
    assert!(ok && out.contains("--fund") && out.contains("--btc-key-file"), "{out}{err}");
}
