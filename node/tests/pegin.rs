//! Peg-in end to end with real bitcoinds (one per validator, connected as a regtest network) and real
//! sidechaind processes: a user registers a deposit address, pays it from a Rust-built BTC transaction,
//! and is minted exactly `deposit - peg-in fee` once the deposit has N confirmations, on every node; with
//! N-1 nothing is minted; a proposer that leaves the mint out is voted down and the next proposer mints it;
//! a reorg below N drops the deposit and its re-mining mints it once, also across kill -9 of every validator.

use bitcoin::Amount;
use primitives::Keypair;
use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::btc_wallet::{broadcast, BtcWallet};
use testnet::federation::Federation;
use testnet::scenario::{Checks, Scenario};

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_is_minted_once_after_n_confirmations_on_every_node() {
    let scenario = Scenario::begin("pegin_minted_once");
    let mut fed = start(Vec::new());
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let (wallet, utxo) = funded_wallet(&fed, 3).await;

    let user = Keypair::from_secret([7; 32]);
    let recipient = user.public().account_id();
    register(&fed, &user).await;
    let c = fed.nodes[0].client().expect("client");
    let addr = c.get_pegin_address(recipient).await.expect("address");
    let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = addr.address.parse().expect("address");
    let script = address.assume_checked().script_pubkey();
    let deposit = Amount::from_sat(1_000_000);
    let tx = wallet.pay(&utxo, script, deposit, Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &tx).expect("broadcast");
    let deposit_height = mine(&fed, 1);

    // N-1 confirmations: the anchor may not cover the deposit, so nothing is minted.
    mine(&fed, N - 2);
    wait_anchor(&fed, deposit_height - 1, Duration::from_secs(60)).await;
    let h = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0], h + 5, Duration::from_secs(60)).await.expect("blocks");
    assert_eq!(balance(&fed, 0, recipient).await, Amount::ZERO, "minted before N confirmations");
    assert!(anchor_height(&fed, 0).await < deposit_height);

    // The N-th confirmation: minted within a few blocks, deposit minus the peg-in fee, exactly.
    mine(&fed, 1);
    let nth_at = fed.nodes[0].height().await.expect("height");
    let fee = Amount::from_sat(264); // 3-of-4 deposit input, 132 vB at 2 sat/vB
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&fed, 0, recipient).await == Amount::ZERO {
        assert!(Instant::now() < deadline, "not minted: {}", fed.nodes[0].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let minted_at = fed.nodes[0].height().await.expect("height");
    println!("peg-in latency: minted by sidechain height {minted_at}, N-th confirmation seen at {nth_at}");
    for node in 0..5 {
        fed.wait_height(&[node], minted_at, Duration::from_secs(60)).await.expect("all nodes reach it");
        assert_eq!(balance(&fed, node, recipient).await, deposit - fee, "node {node}");
    }
    // Conservation, as the full node's metrics show it and as bitcoind's UTXO set shows it: BTC held is
    // the deposit; supply (the sponsor's genesis balance aside) is minted + fee, which is the deposit.
    let held = wait_metric(&fed, 4, "sidechain_peg_btc_held_sats", deposit.to_sat() as f64).await;
    assert_eq!(held, deposit.to_sat() as f64);
    let supply = (deposit.to_sat() + SPONSOR_SATS) as f64;
    assert_eq!(fed.nodes[4].metric("sidechain_peg_supply_sats").unwrap(), Some(supply));
    assert_eq!(fed.nodes[4].metric("sidechain_peg_minted_sats").unwrap(), Some((deposit - fee).to_sat() as f64));
    assert_eq!(fed.nodes[4].metric("sidechain_peg_pegin_fees_sats").unwrap(), Some(fee.to_sat() as f64));
    assert_eq!(fed.nodes[4].metric("sidechain_pegin_deposits").unwrap(), Some(1.0));
    let desc = format!("raw({})", addr.script_pubkey);
    let scan: serde_json::Value = fed.bitcoinds[1]
        .call("scantxoutset", &[serde_json::json!("start"), serde_json::json!([desc])])
        .expect("scantxoutset");
    let on_chain = Amount::from_btc(scan["total_amount"].as_f64().unwrap_or(0.0)).expect("amount");
    assert_eq!(on_chain, deposit, "federation UTXOs in state match bitcoind's UTXO set");
    // Later anchor moves never mint it again.
    let tip = mine(&fed, 8);
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(60)).await;
    assert_eq!(balance(&fed, 4, recipient).await, deposit - fee);
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_that_leaves_a_mint_out_is_voted_down_and_an_honest_one_mints() {
    // Validators 0, 1 and 2 advance the anchor without its mints; only validator 3 proposes honestly.
    let omit = "[fault]\nomit_mints = true\n".to_string();
    let mut fed = start(vec![(0, omit.clone()), (1, omit.clone()), (2, omit)]);
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let (wallet, utxo) = funded_wallet(&fed, 4).await;
    let user = Keypair::from_secret([8; 32]);
    let recipient = user.public().account_id();
    register(&fed, &user).await;
    let from = fed.nodes[0].height().await.expect("height");
    let deposit = Amount::from_sat(500_000);
    let tx = pay_deposit(&fed, &wallet, &utxo, recipient, deposit).await;
    mine(&fed, N);
    let minted_at = wait_balance(&fed, recipient, deposit - Amount::from_sat(264), Duration::from_secs(120)).await;
    let mints = mints_between(&fed, from, minted_at).await;
    assert_eq!(mints.len(), 1, "exactly one mint: {mints:?}");
    assert_eq!(mints[0].2, bitcoin::OutPoint { txid: tx.compute_txid(), vout: 0 });
    assert_eq!(mints[0].1, 3, "only the honest proposer's anchor move can carry the mint");
    let rejected = (0..4).any(|i| fed.nodes[i].process.log_tail(2000).contains("leaves out the deposit"));
    println!("a validator logged the rejection of a block without its mint: {rejected}");
    for n in &mut fed.nodes {
        assert!(n.process.is_running(), "{} stopped: {}", n.name, n.process.log_tail(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_below_n_drops_the_deposit_and_remining_mints_it_once_across_restarts() {
    let scenario = Scenario::begin("reorg_below_n_during_pegin");
    let mut fed = start(Vec::new());
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let (wallet, utxo) = funded_wallet(&fed, 5).await;
    let user = Keypair::from_secret([9; 32]);
    let recipient = user.public().account_id();
    register(&fed, &user).await;
    let deposit = Amount::from_sat(700_000);
    let tx = pay_deposit(&fed, &wallet, &utxo, recipient, deposit).await;
    let d = mine(&fed, 1);
    let tip = mine(&fed, N - 3); // N-2 confirmations
    let btc0 = &fed.bitcoinds[0];
    let d_hash: String = btc0.call("getblockhash", &[serde_json::json!(d)]).expect("hash");

    // Reorg the deposit out: a longer branch of empty blocks from d-1 (the tx stays in mempools only).
    btc0.call::<serde_json::Value>("invalidateblock", &[serde_json::json!(d_hash)]).expect("invalidate");
    let burn = BtcWallet::from_seed(99).address().to_string();
    for _ in 0..(tip - d + 3) {
        btc0.call::<serde_json::Value>("generateblock", &[serde_json::json!(burn), serde_json::json!([])])
            .expect("empty block");
    }
    let new_tip = btc0.height().expect("height");
    for b in &fed.bitcoinds {
        b.wait_for_height(new_tip, Duration::from_secs(30)).expect("all follow the longer branch");
    }
    // Well past N on the new branch: the anchor covers height d, and nothing was minted.
    mine_empty(&fed, N);
    let t = btc0.height().expect("height");
    wait_anchor(&fed, t - (N - 1), Duration::from_secs(60)).await;
    assert_eq!(balance(&fed, 0, recipient).await, Amount::ZERO, "a reorged-out deposit was minted");

    // kill -9 every validator and restart them: registrations come back from disk.
    for i in 0..4 {
        fed.nodes[i].process.kill9();
    }
    for i in 0..4 {
        fed.nodes[i].process.restart().expect("restart");
    }
    let h = fed.nodes[4].height().await.expect("height");
    fed.wait_height(&[0, 1, 2, 3], h + 2, Duration::from_secs(90)).await.expect("blocks after restart");

    // The same deposit re-mined in the new chain: minted once.
    let raw = bitcoin::consensus::encode::serialize_hex(&tx);
    btc0.call::<serde_json::Value>("generateblock", &[serde_json::json!(burn), serde_json::json!([raw])])
        .expect("re-mine the deposit");
    mine_empty(&fed, N - 1);
    let from = fed.nodes[0].height().await.expect("height");
    let minted_at = wait_balance(&fed, recipient, deposit - Amount::from_sat(264), Duration::from_secs(120)).await;
    let tip = mine(&fed, 12);
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(60)).await;
    let later = fed.nodes[0].height().await.expect("height");
    assert_eq!(balance(&fed, 0, recipient).await, deposit - Amount::from_sat(264), "minted twice");
    assert_eq!(mints_between(&fed, from, later).await.len(), 1);
    assert!(minted_at <= later);
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

/// Waits (bounded) until validator `i` reports `stage` for `outpoint`; returns the status.
async fn wait_stage(
    fed: &Federation,
    i: usize,
    outpoint: &str,
    stage: rpc::types::PegInStage,
) -> rpc::types::PegInStatus {
    let c = fed.nodes[i].client().expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.get_peg_status(outpoint.to_string(), None).await.expect("getpegstatus");
        if s.stage == stage {
            return s;
        }
        assert!(Instant::now() < deadline, "{outpoint}: stage {:?}, wanted {stage:?}: {s:?}", s.stage);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_dust_and_plain_federation_deposits_are_handled_and_reserves_add_up() {
    let scenario = Scenario::begin("pegin_claims_dust_plain");
    use rpc::types::PegInStage;
    let mut fed = start(Vec::new());
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let wallet = BtcWallet::from_seed(6);
    let utxos = wallet.mine_coinbases(&fed.bitcoinds[0], 3).expect("coinbases");
    let tip = mine(&fed, 100);
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(120)).await;
    let c = fed.nodes[0].client().expect("client");
    let fee = Amount::from_sat(264);

    // R registers; U never does. Deposits: U's address (unregistered), dust to R, the plain federation
    // address (bound to nobody).
    let r_key = Keypair::from_secret([31; 32]);
    let (r, u) = (r_key.public().account_id(), Keypair::from_secret([32; 32]).public().account_id());
    register(&fed, &r_key).await;
    let unregistered = pay_deposit(&fed, &wallet, &utxos[0], u, Amount::from_sat(300_000)).await;
    let dust = pay_deposit(&fed, &wallet, &utxos[1], r, Amount::from_sat(5_000)).await;
    let fedinfo = c.get_federation_info().await.expect("getfederationinfo");
    let plain_addr: bitcoin::Address<bitcoin::address::NetworkUnchecked> = fedinfo.address.parse().expect("address");
    let plain_tx = wallet
        .pay(&utxos[2], plain_addr.assume_checked().script_pubkey(), Amount::from_sat(200_000), Amount::from_sat(1_000))
        .expect("pay");
    broadcast(&fed.bitcoinds[0], &plain_tx).expect("broadcast");
    let d = mine(&fed, 1);
    let d_hash: String = fed.bitcoinds[0].call("getblockhash", &[serde_json::json!(d)]).expect("hash");
    mine(&fed, N - 1);
    let op = |tx: &bitcoin::Transaction| format!("{}:0", tx.compute_txid());

    // The dust is recorded, not minted; the plain output goes to the fee pool; U's deposit waits for a claim.
    let s = wait_stage(&fed, 0, &op(&dust), PegInStage::BelowMinimum).await;
    assert_eq!((s.recipient, s.credited), (Some(r), Some(Amount::ZERO)));
    let s = wait_stage(&fed, 0, &op(&plain_tx), PegInStage::Minted).await;
    assert_eq!(s.recipient, Some(ledger::fee_pool_id()));
    assert_eq!(balance(&fed, 0, r).await, Amount::ZERO);
    let h = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0], h + 3, Duration::from_secs(60)).await.expect("blocks");
    assert_eq!(balance(&fed, 0, u).await, Amount::ZERO, "an unregistered deposit is only minted by a claim");

    // Bad claims: another recipient, a block bitcoind does not know. Both refused by every bitcoind, with a
    // reason, and neither keeps the right claim out.
    c.claim_pegin(op(&unregistered), r.to_string(), d_hash.clone()).await.expect("submitted");
    let s = wait_stage(&fed, 0, &op(&unregistered), PegInStage::ClaimRejected).await;
    assert!(s.reason.as_deref().unwrap_or_default().contains("does not pay the deposit address"), "{s:?}");
    c.claim_pegin(op(&unregistered), u.to_string(), "ab".repeat(32)).await.expect("submitted");
    // The right claim: minted once, deposit minus fee.
    c.claim_pegin(op(&unregistered), u.to_string(), d_hash.clone()).await.expect("submitted");
    wait_balance(&fed, u, Amount::from_sat(300_000) - fee, Duration::from_secs(60)).await;
    let again = c.claim_pegin(op(&unregistered), u.to_string(), d_hash).await;
    assert!(again.is_err_and(|e| e.to_string().contains("already minted")), "a second claim is refused");

    // Reserves: BTC held is all three deposits, as bitcoind's UTXO set shows; supply is what was minted.
    let totals = c.get_federation_info().await.expect("getfederationinfo").peg_totals;
    assert_eq!(totals.btc_held, Amount::from_sat(300_000 + 5_000 + 200_000));
    assert_eq!(totals.below_minimum, Amount::from_sat(5_000));
    let sponsor = Amount::from_sat(SPONSOR_SATS);
    assert_eq!(totals.supply, sponsor + totals.minted + totals.pegin_fees);
    assert_eq!(totals.btc_held, totals.supply - sponsor + totals.below_minimum);
    let mut scripts = vec![format!("raw({})", fedinfo.script_pubkey)];
    for who in [r, u] {
        scripts.push(format!("raw({})", c.get_pegin_address(who).await.expect("address").script_pubkey));
    }
    let scan: serde_json::Value = fed.bitcoinds[2]
        .call("scantxoutset", &[serde_json::json!("start"), serde_json::json!(scripts)])
        .expect("scantxoutset");
    let on_chain = Amount::from_btc(scan["total_amount"].as_f64().unwrap_or(0.0)).expect("amount");
    assert_eq!(on_chain, totals.btc_held, "state's BTC held is what bitcoind's UTXO set holds");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
