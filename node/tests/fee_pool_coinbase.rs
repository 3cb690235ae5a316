//! Finding 2 of the adversarial review, end to end on real processes and real bitcoinds: anyone can pay
//! the deposit address bound to the fee pool's id, and anyone can claim that deposit for the fee pool.
//! Before the fix the fee pool's id doubled as "untweaked": the claim recorded a coin sitting in a tweaked
//! script as if it sat in the plain federation script, so every batch spending it was signed for the wrong
//! script and refused by bitcoind, version after version, and the peg-out it carried was never paid. Here a
//! coinbase is mined to that address, matured and claimed with `claimpegin`; it is then the federation's
//! only coin, so the next ordinary peg-out's batch must spend it. The batch is accepted by bitcoind,
//! confirms, and Bob is paid exactly once; the runner's closing checks hold every batch against what
//! bitcoind accepted and the anchor against bitcoind.

mod common;

use bitcoin::{Amount, ScriptBuf};
use common::*;
use primitives::{AccountId, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{PegInStage, PegOutStage};
use std::time::{Duration, Instant};
use testnet::btc_wallet::BtcWallet;
use testnet::scenario::{Checks, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coinbase_claimed_for_the_fee_pool_is_spent_by_a_batch_bitcoind_accepts() {
    let scenario = Scenario::begin("fee_pool_coinbase_claim");
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 });
    let mut fed = start_with(Vec::new(), Some(params));
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let c = fed.nodes[0].client().expect("client");
    let pool = ledger::fee_pool_id();

    // A coinbase to the deposit address bound to the fee pool's id (nobody registers it: it needs a claim).
    let pool_address = c.get_pegin_address(pool).await.expect("getpeginaddress");
    let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = pool_address.address.parse().expect("address");
    let block = fed.bitcoinds[0].mine_to(1, &address.assume_checked()).expect("coinbase").remove(0);
    let raw: String = fed.bitcoinds[0]
        .call("getblock", &[serde_json::json!(block.to_string()), serde_json::json!(0)])
        .expect("block");
    let raw: bitcoin::Block = bitcoin::consensus::encode::deserialize_hex(&raw).expect("block");
    let coinbase = &raw.txdata[0];
    let script = ScriptBuf::from_hex(&pool_address.script_pubkey).expect("script");
    let vout = coinbase.output.iter().position(|o| o.script_pubkey == script).expect("the coinbase pays the pool");
    let subsidy = coinbase.output[vout].value;
    let outpoint = bitcoin::OutPoint { txid: coinbase.compute_txid(), vout: vout as u32 };

    // Matured (101 blocks), then claimed for the fee pool: minted to it like any deposit.
    mine(&fed, 100);
    let claim = c.claim_pegin(outpoint.to_string(), pool.to_string(), block.to_string()).await.expect("claimpegin");
    assert_eq!(claim.recipient, pool);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.get_peg_status(outpoint.to_string(), None).await.expect("getpegstatus");
        if s.stage == PegInStage::Minted {
            let fee = c.get_federation_info().await.expect("info").pegin_fee;
            assert_eq!((s.recipient, s.credited), (Some(pool), Some(subsidy - fee)), "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the claim was not minted: {s:?}: {}", fed.nodes[0].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let proof = c.get_reserve_proof().await.expect("getreserveproof");
    let held: Vec<_> = proof.utxos.iter().map(|u| (u.outpoint, u.tweak)).collect();
    assert_eq!(held, vec![(outpoint, Some(pool))], "the federation's only coin, recorded in the pool's tweaked script");
    // The anchor 100 blocks past the coinbase: the batch may spend it.
    let tip = mine(&fed, N);
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(60)).await;

    // An ordinary peg-out: Bob (paid by the sponsor) burns to his own Bitcoin key.
    let dir = tempfile::tempdir().expect("tempdir");
    let wallet = dir.path().join("bob.json");
    let wallet = wallet.to_str().expect("utf-8 path");
    let created = cli_json(&fed, 0, &["--wallet", wallet, "createwallet"]).await;
    let bob: AccountId = serde_json::from_value(created["account"].clone()).expect("account id");
    sponsor_pays(&fed, bob, Amount::from_sat(600_000)).await;
    let payee = BtcWallet::from_seed(61).script_pubkey();
    let payee_address = bitcoin::Address::from_script(&payee, bitcoin::Network::Regtest).expect("address").to_string();
    let amount = Amount::from_sat(300_000);
    let burn = cli_json(&fed, 0, &["--wallet", wallet, "pegout", &payee_address, "300000sat"]).await;
    let burn_txid: TxId = burn["burn_txid"].as_str().expect("burn txid").parse().expect("txid");

    // Its batch spends the pool's coin, signed for the tweaked script: bitcoind takes it and it confirms.
    let batch = wait_pegout(&fed, 0, burn_txid, PegOutStage::Broadcast, Duration::from_secs(90)).await.batch;
    let batch = batch.expect("batch");
    wait_in_mempool(&fed, &batch.btc_txid);
    let tx: serde_json::Value = fed.bitcoinds[0]
        .call("getrawtransaction", &[serde_json::json!(batch.btc_txid), serde_json::json!(true)])
        .expect("the batch");
    let input = (tx["vin"][0]["txid"].as_str(), tx["vin"][0]["vout"].as_u64());
    assert_eq!(input, (Some(outpoint.txid.to_string().as_str()), Some(u64::from(outpoint.vout))), "{tx}");
    let confirmed_at = mine(&fed, 1);
    assert_eq!(held_by(&fed, 1, &payee), amount, "Bob is paid");
    mine(&fed, N);
    let s = wait_pegout(&fed, 0, burn_txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(s.paid_in.map(|p| u64::from(p.btc_height)), Some(confirmed_at));
    assert_eq!(s.batch.map(|b| b.version), Some(1), "the first version was accepted: no bump needed");
    assert_eq!(held_by(&fed, 2, &payee), amount, "paid exactly once");

    let report = scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
    assert_eq!(report.batches, 1, "{report}");
}
