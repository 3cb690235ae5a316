//! A new user's peg-in through `sidechain-cli` alone, against four real `sidechaind` validators with their
//! own connected regtest bitcoinds. The new wallet holds nothing, so it cannot pay the registration fee:
//! `pegin --fund` says so, prints the deposit address (bound to the wallet's account) and the claim to make,
//! pays the address from the CLI's own BTC key (mining and maturing coins to it) and prints the deposit's
//! `txid:vout`; after N confirmations `claimpegin` mints it (deposit minus the peg-in fee, credited
//! exactly) and `pegstatus` follows it to `minted`; a second claim is refused with -27; the peg totals
//! count it.

use bitcoin::Amount;
use primitives::AccountId;
use rpc::client::SidechainApiClient;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use testnet::federation::{sidechaind_path, Federation, FederationConfig};

const N: u64 = 6; // Params::default().pegin_confirmations

/// Runs `sidechain-cli` against validator 0 with `wallet`; returns (success, stdout, stderr).
async fn cli(fed: &Federation, wallet: &Path, args: &[&str]) -> (bool, String, String) {
    let node = &fed.nodes[0];
    let mut cmd = tokio::process::Command::new(sidechaind_path().with_file_name("sidechain-cli"));
    cmd.arg("--rpc-url").arg(node.rpc_url()).arg("--rpc-cookie").arg(node.datadir.join(".cookie"));
    cmd.arg("--wallet").arg(wallet).args(args).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("sidechain-cli finished within 120 s")
        .expect("sidechain-cli runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Runs `sidechain-cli <args> --json`, which must succeed, and parses its output.
async fn cli_json(fed: &Federation, wallet: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let (ok, out, err) = cli(fed, wallet, &args).await;
    assert!(ok, "sidechain-cli {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sidechain-cli {args:?} printed no JSON ({e}): {out}"))
}

/// Mines on bitcoind 0 and waits until every bitcoind has the blocks.
fn mine(fed: &Federation, n: u64) {
    fed.bitcoinds[0].mine(n).expect("mine");
    let h = fed.bitcoinds[0].height().expect("height");
    for b in &fed.bitcoinds {
        b.wait_for_height(h, Duration::from_secs(30)).expect("bitcoinds share blocks");
    }
}

/// Polls `pegstatus` until the deposit reaches `stage`; returns its status.
async fn wait_stage(fed: &Federation, wallet: &Path, outpoint: &str, stage: &str, bound: Duration) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let s = cli_json(fed, wallet, &["pegstatus", outpoint]).await;
        if s["stage"] == stage {
            return s;
        }
        assert!(Instant::now() < deadline, "deposit {outpoint} not {stage} after {bound:?}: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pegin_fund_is_followed_by_pegstatus_to_minted() {
    let started = Instant::now();
    let scenario = testnet::scenario::Scenario::begin("cli_pegin");
    let mut fed =
        Federation::start(FederationConfig { validators: 4, full_nodes: 0, bitcoind: true, ..Default::default() })
            .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("height 2 everywhere");
    let dir = tempfile::tempdir().expect("tempdir");
    let wallet = dir.path().join("wallet.json");
    let created = cli_json(&fed, &wallet, &["createwallet"]).await;
    let account: AccountId = serde_json::from_value(created["account"].clone()).expect("account id");

    // pegin --fund: not registered (no balance for the fee), paid from the CLI's BTC key (created next to
    // the wallet), with the claim to make printed.
    let (url, user, password) = fed.bitcoinds[0].rpc_credentials();
    let fund = Amount::from_sat(50_000_000);
    let p = cli_json(
        &fed,
        &wallet,
        &[
            "pegin",
            "--fund",
            "0.5btc",
            "--bitcoind-rpc-url",
            &url,
            "--bitcoind-rpc-user",
            &user,
            "--bitcoind-rpc-password",
            &password,
        ],
    )
    .await;
    assert_eq!(p["registration"]["status"], "claim_needed", "a new wallet cannot pay the registration fee: {p}");
    assert_eq!((p["registration"]["balance_sat"].as_u64(), p["registration_fee_sat"].as_u64()), (Some(0), Some(1_000)));
    assert_eq!(
        (p["confirmations_required"].as_u64(), p["funding"]["amount_sat"].as_u64()),
        (Some(N), Some(50_000_000))
    );
    assert!(dir.path().join(wallet::btc_funding::KEY_FILE_NAME).exists(), "the BTC key is kept next to the wallet");
    let outpoint = p["funding"]["outpoint"].as_str().expect("funding outpoint").to_string();
    let btc_txid = p["funding"]["btc_txid"].as_str().expect("btc txid").to_string();
    assert!(outpoint.starts_with(&format!("{btc_txid}:")), "{p}");
    let c = fed.nodes[0].client().expect("client");
    let address = c.get_pegin_address(account).await.expect("getpeginaddress");
    assert_eq!(p["address"].as_str(), Some(address.address.as_str()));

    // Unconfirmed: nobody knows it yet.
    let s = cli_json(&fed, &wallet, &["pegstatus", &outpoint]).await;
    assert_eq!(s["stage"], "unknown", "{s}");

    // The text says what to do: the claim, with the deposit's outpoint.
    let (ok, out, err) = cli(&fed, &wallet, &["pegin"]).await;
    assert!(ok && out.contains("registration fee") && out.contains("sidechain-cli claimpegin"), "{out}{err}");

    // N confirmations: nobody watches an unregistered address, so it is not minted by itself; the claim
    // (naming the BTC block holding it) mints it, deposit minus the peg-in fee.
    mine(&fed, 1);
    let d = fed.bitcoinds[0].height().expect("height");
    let btc_block: String = fed.bitcoinds[0].call("getblockhash", &[serde_json::json!(d)]).expect("block hash");
    mine(&fed, N - 1);
    let (ok, out, err) = cli(&fed, &wallet, &["claimpegin", &outpoint, &btc_block]).await;
    assert!(ok && out.contains("submitted"), "{out}{err}");
    let s = wait_stage(&fed, &wallet, &outpoint, "minted", Duration::from_secs(120)).await;
    assert_eq!(s["recipient"], account.to_string());
    let fed_info = c.get_federation_info().await.expect("getfederationinfo");
    let credited = fund - fed_info.pegin_fee;
    assert_eq!(
        (s["credited_sat"].as_u64(), s["fee_sat"].as_u64()),
        (Some(credited.to_sat()), Some(fed_info.pegin_fee.to_sat()))
    );
    assert_eq!(s["btc_block_hash"].as_str(), Some(btc_block.as_str()));
    assert!(s["minted_at"].as_u64().is_some() && s["minted_time_ms"].as_u64().is_some(), "{s}");
    let mint_txid: primitives::TxId = s["mint_txid"].as_str().expect("mint txid").parse().expect("hash");
    let mint = c.get_transaction(mint_txid).await.expect("the mint transaction");
    assert_eq!(mint.height.map(|h| h.get()), s["minted_at"].as_u64());
    assert_eq!(c.get_account(account, None).await.expect("getaccount").balance, credited);
    let (ok, out, err) = cli(&fed, &wallet, &["pegstatus", &outpoint]).await;
    assert!(ok && out.contains("minted at height"), "{out}{err}");

    // Claiming it now is refused, with the reason.
    let (ok, _, err) = cli(&fed, &wallet, &["claimpegin", &outpoint, &btc_block]).await;
    assert!(!ok && err.contains("rpc error -27") && err.contains("already minted"), "{err}");

    // The totals count it, and the reserve holds.
    let totals = c.get_federation_info().await.expect("getfederationinfo").peg_totals;
    assert_eq!((totals.btc_held, totals.minted, totals.deposits), (fund, credited, 1), "{totals:?}");
    let peg = c.get_blockchain_info().await.expect("getblockchaininfo").peg;
    assert!(peg.reserve_ok && peg.btc_held == fund, "{peg:?}");
    eprintln!("cli_pegin: done in {:?}", started.elapsed());
    // The runner's closing checks see the mint: once, on one chain, covered by the reserve proof.
    let report = scenario.finish(&mut fed, testnet::scenario::Checks::default()).await.expect("closing checks");
    assert_eq!(report.mints, 1, "{report}");
}
