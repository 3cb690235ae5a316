//! Helpers shared by the peg e2e tests: a federation of 4 validators (each with its own regtest bitcoind)
//! and a full node, funding BTC wallets, registering and paying deposits, mining, and bounded waits.
#![allow(dead_code)]

use bitcoin::Amount;
use ledger::{UserTx, UserTxKind};
use primitives::{AccountId, Keypair};
use rpc::client::SidechainApiClient;
use rpc::types::{BlockTxs, GetBlockResult, TxKindInfo};
use std::time::{Duration, Instant};
use testnet::btc_wallet::{broadcast, BtcWallet};
use testnet::federation::{Federation, FederationConfig};

/// Confirmations a deposit needs (`Params::default().pegin_confirmations`).
pub const N: u64 = 6;

pub async fn balance(fed: &Federation, node: usize, who: AccountId) -> Amount {
    fed.nodes[node].client().expect("client").get_account(who, None).await.expect("getaccount").balance
}

/// The genesis account that pays test users their registration fee (registrations are not free; the users
/// of these tests start with nothing).
pub fn sponsor() -> Keypair {
    Keypair::from_secret([0x5b; 32])
}

/// The sponsor's genesis balance: the whole genesis supply of a federation with [`sponsor_account`].
pub const SPONSOR_SATS: u64 = 1_000_000;

/// The sponsor as an `initial_accounts` entry of a [`FederationConfig`].
pub fn sponsor_account() -> (String, u64) {
    (sponsor().public().account_id().to_string(), SPONSOR_SATS)
}

/// Waits (bounded) until `txid` is in a committed block.
async fn wait_committed(fed: &Federation, txid: primitives::TxId, what: &str) {
    let c = fed.nodes[0].client().expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.get_transaction(txid).await.map(|t| t.height.is_none()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "{what} {txid} not committed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sponsor (in the genesis of federations started here) pays `who` `amount`; waits until it is in a
/// block.
pub async fn sponsor_pays(fed: &Federation, who: AccountId, amount: Amount) {
    let c = fed.nodes[0].client().expect("client");
    let info = c.get_blockchain_info().await.expect("info");
    let sponsor = sponsor();
    let nonce = c.get_account(sponsor.public().account_id(), None).await.expect("sponsor").nonce;
    let pay =
        UserTx { signer: sponsor.public(), nonce, fee: info.min_fee, kind: UserTxKind::Transfer { to: who, amount } }
            .sign(&sponsor, &info.genesis_hash);
    let paid = c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&pay))).await.expect("sponsor pays");
    wait_committed(fed, paid, "the sponsor's payment").await;
}

/// Registers `key`'s deposit address and waits until the registration is in a block: the sponsor (in the
/// genesis of federations started here) pays `key` the registration fee first, which the registration then
/// pays to the fee pool.
pub async fn register(fed: &Federation, key: &Keypair) {
    let c = fed.nodes[0].client().expect("client");
    let info = c.get_blockchain_info().await.expect("info");
    let who = key.public().account_id();
    let fee = c.get_pegin_address(who).await.expect("getpeginaddress").registration_fee;
    sponsor_pays(fed, who, fee).await;
    let nonce = c.get_account(who, None).await.expect("getaccount").nonce;
    let tx =
        UserTx { signer: key.public(), nonce, fee, kind: UserTxKind::RegisterDeposit }.sign(key, &info.genesis_hash);
    let txid = c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&tx))).await.expect("register");
    wait_committed(fed, txid, "registration").await;
}

/// Mines on bitcoind 0 and waits until every bitcoind has the block.
pub fn mine(fed: &Federation, n: u64) -> u64 {
    fed.bitcoinds[0].mine(n).expect("mine");
    let h = fed.bitcoinds[0].height().expect("height");
    for b in &fed.bitcoinds {
        b.wait_for_height(h, Duration::from_secs(30)).expect("bitcoinds share blocks");
    }
    h
}

pub async fn anchor_height(fed: &Federation, node: usize) -> u64 {
    let info = fed.nodes[node].client().expect("client").get_blockchain_info().await.expect("info");
    u64::from(info.btc_anchor.height.get())
}

pub async fn wait_anchor(fed: &Federation, at_least: u64, bound: Duration) {
    let deadline = Instant::now() + bound;
    while anchor_height(fed, 0).await < at_least {
        assert!(Instant::now() < deadline, "anchor below {at_least} after {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn start(node_toml: Vec<(usize, String)>) -> Federation {
    start_with(node_toml, None)
}

pub fn start_with(node_toml: Vec<(usize, String)>, genesis_params: Option<serde_json::Value>) -> Federation {
    Federation::start(FederationConfig {
        genesis_params,
        validators: 4,
        full_nodes: 1,
        bitcoind: true,
        node_toml,
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into()), ("SIDECHAIND_ALLOW_FAULTS".into(), "1".into())],
        initial_accounts: vec![sponsor_account()],
        ..Default::default()
    })
    .expect("federation starts")
}

/// Funds a BTC wallet on bitcoind 0 (one mature coinbase) and lets the anchor catch up.
pub async fn funded_wallet(fed: &Federation, seed: u8) -> (BtcWallet, testnet::btc_wallet::Utxo) {
    let wallet = BtcWallet::from_seed(seed);
    let utxo = wallet.mine_coinbases(&fed.bitcoinds[0], 1).expect("coinbase").remove(0);
    let tip = mine(fed, 100);
    wait_anchor(fed, tip - (N - 1), Duration::from_secs(120)).await;
    (wallet, utxo)
}

/// Waits (bounded) until node `i`'s metric `name` equals `want`; returns the last value read.
pub async fn wait_metric(fed: &Federation, i: usize, name: &str, want: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = fed.nodes[i].metric(name).expect("metrics").unwrap_or(f64::NAN);
        if v == want || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pays `amount` from `utxo` to `recipient`'s deposit address (not mined); returns the transaction.
pub async fn pay_deposit(
    fed: &Federation,
    wallet: &BtcWallet,
    utxo: &testnet::btc_wallet::Utxo,
    recipient: AccountId,
    amount: Amount,
) -> bitcoin::Transaction {
    let c = fed.nodes[0].client().expect("client");
    let addr = c.get_pegin_address(recipient).await.expect("address");
    let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = addr.address.parse().expect("address");
    let tx = wallet.pay(utxo, address.assume_checked().script_pubkey(), amount, Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &tx).expect("broadcast");
    tx
}

/// Waits until `who` holds exactly `want` on node 0 (bounded), then checks it stays so on every node.
pub async fn wait_balance(fed: &Federation, who: AccountId, want: Amount, bound: Duration) -> u64 {
    let deadline = Instant::now() + bound;
    loop {
        let b = balance(fed, 0, who).await;
        if b == want {
            break;
        }
        assert!(b < want, "balance {b} above the expected {want}: minted twice?");
        assert!(Instant::now() < deadline, "balance {b}, want {want}: {}", fed.nodes[0].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fed.nodes[0].height().await.expect("height")
}

/// Every transaction in blocks `from..=to` of node `i`: (height, proposer, transaction).
pub async fn txs_between(fed: &Federation, i: usize, from: u64, to: u64) -> Vec<(u64, u16, rpc::types::TxInfo)> {
    let c = fed.nodes[i].client().expect("client");
    let mut out = Vec::new();
    for h in from..=to {
        let block = c.get_block(rpc::api::BlockRef::Height(primitives::Height(h)), Some(2)).await.expect("block");
        let GetBlockResult::Json(b) = block else { panic!("verbosity 2 gives JSON") };
        if let BlockTxs::Full(txs) = b.tx {
            out.extend(txs.into_iter().map(|t| (h, b.proposer.0, t)));
        }
    }
    out
}

/// Every mint in blocks `from..=to` of node 0: (height, proposer, outpoint).
pub async fn mints_between(fed: &Federation, from: u64, to: u64) -> Vec<(u64, u16, bitcoin::OutPoint)> {
    let txs = txs_between(fed, 0, from, to).await;
    txs.into_iter()
        .filter_map(|(h, proposer, t)| match t.kind {
            TxKindInfo::Mint { btc_outpoint, .. } => Some((h, proposer, btc_outpoint)),
            _ => None,
        })
        .collect()
}

/// Mines `n` empty blocks on bitcoind 0 (mempool transactions stay unconfirmed) and waits for all bitcoinds.
pub fn mine_empty(fed: &Federation, n: u64) -> u64 {
    let burn = BtcWallet::from_seed(99).address().to_string();
    for _ in 0..n {
        fed.bitcoinds[0]
            .call::<serde_json::Value>("generateblock", &[serde_json::json!(burn), serde_json::json!([])])
            .expect("empty block");
    }
    let h = fed.bitcoinds[0].height().expect("height");
    for b in &fed.bitcoinds {
        b.wait_for_height(h, Duration::from_secs(30)).expect("bitcoinds share blocks");
    }
    h
}

/// Runs `sidechain-cli <args>` against node `i`'s RPC (its cookie); returns (success, stdout + stderr).
pub async fn cli(fed: &Federation, i: usize, args: &[&str]) -> (bool, String) {
    let node = &fed.nodes[i];
    let mut cmd = tokio::process::Command::new(testnet::federation::sidechaind_path().with_file_name("sidechain-cli"));
    cmd.arg("--rpc-url").arg(node.rpc_url()).arg("--rpc-cookie").arg(node.datadir.join(".cookie"));
    cmd.args(args).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("sidechain-cli finished within 60 s")
        .expect("sidechain-cli runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// What `script` holds on Bitcoin, per bitcoind `b`'s UTXO set.
pub fn held_by(fed: &Federation, b: usize, script: &bitcoin::ScriptBuf) -> Amount {
    let desc = format!("raw({})", script.to_hex_string());
    let scan: serde_json::Value = fed.bitcoinds[b]
        .call("scantxoutset", &[serde_json::json!("start"), serde_json::json!([desc])])
        .expect("scantxoutset");
    Amount::from_btc(scan["total_amount"].as_f64().unwrap_or(0.0)).expect("amount")
}

/// Waits (bounded) until node `i` shows the burn `txid` at `stage` or later; returns its status.
pub async fn wait_pegout(
    fed: &Federation,
    i: usize,
    txid: primitives::TxId,
    stage: rpc::types::PegOutStage,
    bound: Duration,
) -> rpc::types::PegOutInfo {
    let c = fed.nodes[i].client().expect("client");
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(s) = c.get_pegout_status(txid.to_string(), None).await {
            if s.stage >= stage {
                return s;
            }
            assert!(Instant::now() < deadline, "burn {txid}: {:?}, wanted {stage:?}: {s:?}", s.stage);
        }
        assert!(Instant::now() < deadline, "burn {txid} unknown: {}", fed.nodes[i].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until bitcoind 0's mempool holds `txid`: bitcoind took the batch as standard.
pub fn wait_in_mempool(fed: &Federation, txid: &str) {
    let what = format!("batch {txid} in bitcoind0's mempool");
    testnet::wait::wait_until(&what, Duration::from_secs(60), || {
        Ok(fed.bitcoinds[0].call::<Vec<String>>("getrawmempool", &[])?.contains(&txid.to_string()))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", fed.nodes[0].process.log_tail(30)));
}

/// Runs `sidechain-cli <args> --json` against node `i`, which must succeed; parses what it prints on stdout.
pub async fn cli_json(fed: &Federation, i: usize, args: &[&str]) -> serde_json::Value {
    let node = &fed.nodes[i];
    let mut cmd = tokio::process::Command::new(testnet::federation::sidechaind_path().with_file_name("sidechain-cli"));
    cmd.arg("--rpc-url").arg(node.rpc_url()).arg("--rpc-cookie").arg(node.datadir.join(".cookie"));
    cmd.args(args).arg("--json").kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("sidechain-cli finished within 120 s")
        .expect("sidechain-cli runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sidechain-cli {args:?} failed: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("sidechain-cli {args:?} printed no JSON ({e}): {stdout}"))
}

/// The `--bitcoind-rpc-*` arguments of `sidechain-cli pegin --fund` for bitcoind `b`.
pub fn bitcoind_args(fed: &Federation, b: usize) -> Vec<String> {
    let (url, user, password) = fed.bitcoinds[b].rpc_credentials();
    vec![
        "--bitcoind-rpc-url".into(),
        url,
        "--bitcoind-rpc-user".into(),
        user,
        "--bitcoind-rpc-password".into(),
        password,
    ]
}
