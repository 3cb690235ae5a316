//! Finding 1 of the adversarial review, end to end on real processes and real bitcoinds: Bob registers
//! with `sidechain-cli pegin`, pegs in, then pegs out to his *own* deposit address. Before the fix, the
//! batch's output to a registered deposit script was a required mint that execution refused (it was the
//! output of a batch in flight), so once the batch confirmed no honest proposer could move the anchor: it
//! froze while bitcoind went on, and the federation kept bumping a confirmed batch. Now the block that
//! covers the batch settles it and then re-pegs Bob's output, exactly once (docs/PROTOCOL.md: a burn to a
//! deposit script is "minted exactly once to the account the script is bound to"); the anchor keeps
//! following bitcoind, and a deposit made afterwards is minted as usual. The runner's closing checks hold
//! the anchor against bitcoind and every batch against what bitcoind accepted.

mod common;

use bitcoin::{Amount, ScriptBuf};
use common::*;
use primitives::{AccountId, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{PegInStage, PegOutStage};
use std::time::Duration;
use testnet::scenario::{Checks, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peg_out_to_ones_own_deposit_address_is_re_pegged_once_and_the_anchor_keeps_following() {
    let scenario = Scenario::begin("repeg_own_deposit");
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 });
    let mut fed = start_with(Vec::new(), Some(params));
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let c = fed.nodes[0].client().expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let wallet = dir.path().join("bob.json");
    let wallet = wallet.to_str().expect("utf-8 path");
    let created = cli_json(&fed, 0, &["--wallet", wallet, "createwallet"]).await;
    let bob: AccountId = serde_json::from_value(created["account"].clone()).expect("account id");

    // Bob holds nothing; the sponsor pays his registration fee, then `pegin --fund` registers his deposit
    // address (waiting for the registration to be in a block) and pays it 0.5 BTC on regtest.
    let address = c.get_pegin_address(bob).await.expect("getpeginaddress");
    sponsor_pays(&fed, bob, address.registration_fee).await;
    let btc_args = bitcoind_args(&fed, 0);
    let btc_args: Vec<&str> = btc_args.iter().map(String::as_str).collect();
    let pegin = [&["--wallet", wallet, "pegin", "--fund", "0.5btc"][..], &btc_args].concat();
    let p = cli_json(&fed, 0, &pegin).await;
    assert_eq!(p["registration"]["status"], "submitted", "Bob can pay the registration fee: {p}");
    mine(&fed, N);
    let pegin_fee = c.get_federation_info().await.expect("info").pegin_fee;
    let fund = Amount::from_sat(50_000_000);
    wait_balance(&fed, bob, fund - pegin_fee, Duration::from_secs(120)).await;

    // The peg-out to his own deposit address (a P2WSH: nothing shows it is a federation script).
    let amount = Amount::from_sat(1_000_000);
    let burn = cli_json(&fed, 0, &["--wallet", wallet, "pegout", &address.address, "0.01btc"]).await;
    let burn_txid: TxId = burn["burn_txid"].as_str().expect("burn txid").parse().expect("txid");
    let burn_fee = Amount::from_sat(burn["fee_sat"].as_u64().expect("fee"));
    let batch = wait_pegout(&fed, 0, burn_txid, PegOutStage::Broadcast, Duration::from_secs(90)).await.batch;
    let batch = batch.expect("batch");
    wait_in_mempool(&fed, &batch.btc_txid);
    let confirmed_at = mine(&fed, 1);
    let paid: serde_json::Value = fed.bitcoinds[0]
        .call("getrawtransaction", &[serde_json::json!(batch.btc_txid), serde_json::json!(true)])
        .expect("the batch");
    let own_script = ScriptBuf::from_hex(&address.script_pubkey).expect("script");
    assert_eq!(
        paid["vout"][0]["scriptPubKey"]["hex"].as_str(),
        Some(own_script.to_hex_string().as_str()),
        "output 0 pays Bob's own deposit script"
    );

    // N confirmations: the block that covers the batch settles it and re-pegs Bob's output. Before the fix
    // the anchor stopped right below the batch's BTC block, for good.
    let tip = mine(&fed, N);
    let s = wait_pegout(&fed, 0, burn_txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(s.paid_in.map(|p| u64::from(p.btc_height)), Some(confirmed_at));
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(60)).await;
    let repeg = format!("{}:0", batch.btc_txid);
    let status = c.get_peg_status(repeg.clone(), None).await.expect("getpegstatus");
    assert_eq!((status.stage, status.recipient), (PegInStage::Minted, Some(bob)), "{status:?}");
    assert_eq!(status.credited, Some(amount - pegin_fee), "{status:?}");
    let after_repeg = fund - pegin_fee - amount - burn_fee + (amount - pegin_fee);
    assert_eq!(balance(&fed, 0, bob).await, after_repeg, "Bob got his burn back once, less the peg-in fee");

    // Bitcoin goes on: the anchor follows (at most max_anchor_step per block) and nothing is minted twice.
    let tip = mine(&fed, 3 * N);
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(60)).await;
    let s = c.get_pegout_status(burn_txid.to_string(), None).await.expect("status");
    assert_eq!(s.batch.map(|b| b.version), Some(1), "a confirmed batch is never bumped");

    // An ordinary deposit made afterwards is minted (his registration is still live: `pegin` says so and
    // pays again).
    let again = [&["--wallet", wallet, "pegin", "--fund", "0.2btc"][..], &btc_args].concat();
    let p = cli_json(&fed, 0, &again).await;
    assert_eq!(p["registration"]["status"], "already_registered", "{p}");
    let outpoint = p["funding"]["outpoint"].as_str().expect("outpoint").to_string();
    mine(&fed, N);
    let second = Amount::from_sat(20_000_000);
    let minted_at = wait_balance(&fed, bob, after_repeg + second - pegin_fee, Duration::from_secs(120)).await;
    assert_eq!(c.get_peg_status(outpoint, None).await.expect("status").stage, PegInStage::Minted);
    let repeg_mints = mints_between(&fed, 1, minted_at).await;
    let repeg_mints = repeg_mints.iter().filter(|(_, _, o)| o.to_string() == repeg).count();
    assert_eq!(repeg_mints, 1, "the re-pegged output is minted exactly once");

    let report = scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
    assert!(report.batches >= 1, "{report}");
}
