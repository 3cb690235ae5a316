//! Peg-out end to end with real bitcoinds (one per validator) and real sidechaind processes: a burn is
//! batched by execution, threshold-signed, broadcast and paid exactly; a hundred burns share one standard
//! transaction; a validator killed while the batch is being signed does not stop it; a fee spike keeps the
//! first version out of blocks and a bumped version (priced at the new agreed rate) confirms, exactly once;
//! bad burns get clear errors; and the reserve holds throughout.

mod common;

use bitcoin::{Amount, ScriptBuf};
use common::*;
use ledger::{UserTx, UserTxKind};
use primitives::{Keypair, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{HistoryKindInfo, PegOutStage};
use std::time::{Duration, Instant};
use testnet::btc_wallet::BtcWallet;
use testnet::federation::Federation;
use testnet::scenario::{Checks, Scenario};

/// A federation with peg-outs on, `user` holding `deposit - peg-in fee` on the sidechain, and the fee
/// pool (which pays Bitcoin fees of batches and bumps) funded with `fee_pool` by a payment to the plain
/// federation address, as operators fund it.
async fn pegged_in(
    params: serde_json::Value,
    user: &Keypair,
    deposit: Amount,
    fee_pool: Amount,
    seed: u8,
) -> Federation {
    pegged_in_with(Vec::new(), params, user, deposit, fee_pool, seed).await
}

/// [`pegged_in`] with per-node config additions.
async fn pegged_in_with(
    node_toml: Vec<(usize, String)>,
    params: serde_json::Value,
    user: &Keypair,
    deposit: Amount,
    fee_pool: Amount,
    seed: u8,
) -> Federation {
    let fed = start_with(node_toml, Some(params));
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let (wallet, utxo) = funded_wallet(&fed, seed).await;
    let who = user.public().account_id();
    register(&fed, user).await;
    let tx = pay_deposit(&fed, &wallet, &utxo, who, deposit).await;
    if fee_pool > Amount::ZERO {
        let change = wallet.key().owned_outputs(&tx).into_iter().next().expect("change of the deposit");
        let info = fed.nodes[0].client().expect("client").get_federation_info().await.expect("info");
        let plain = ScriptBuf::from_hex(&info.script_pubkey).expect("script");
        let funding = wallet.pay(&change, plain, fee_pool, Amount::from_sat(1_000)).expect("pay");
        testnet::btc_wallet::broadcast(&fed.bitcoinds[0], &funding).expect("broadcast");
    }
    mine(&fed, N);
    wait_balance(&fed, who, deposit - PEGIN_FEE, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&fed, 0, ledger::fee_pool_id()).await < fee_pool {
        assert!(Instant::now() < deadline, "fee pool not funded: {}", fed.nodes[0].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fed
}

/// The peg-in fee at 2 sat/vB: one 132 vB deposit input of the 3-of-4 federation.
const PEGIN_FEE: Amount = Amount::from_sat(264);

/// The vbytes of a lone batch of the 3-of-4 federation (no emergency path) besides its payout output: the
/// fixed part, one input and the change (`getfederationinfo.pegout_batch_share_vbytes`).
const SHARE_VBYTES: u64 = 185;

/// A burn of `amount` to `script` with nonce `nonce`, paying the least fee at `rate` sat/vB (min_fee 100
/// plus its lone batch at twice the rate).
fn burn_tx(user: &Keypair, nonce: u64, script: &ScriptBuf, amount: Amount, rate: u64) -> UserTx {
    let fee = ledger::pegout::pegout_fee(Amount::from_sat(100), rate, SHARE_VBYTES, script);
    UserTx {
        signer: user.public(),
        nonce,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount },
    }
}

async fn send(fed: &Federation, node: usize, tx: UserTx, user: &Keypair) -> Result<TxId, String> {
    let c = fed.nodes[node].client().expect("client");
    let genesis = c.get_blockchain_info().await.expect("info").genesis_hash;
    let signed = tx.sign(user, &genesis);
    c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&signed))).await.map_err(|e| e.to_string())
}

/// Runs `sidechain-cli --wallet <wallet> <args>` against node 0; returns (success, stdout + stderr).
async fn cli_wallet(fed: &Federation, wallet: &std::path::Path, args: &[&str]) -> (bool, String) {
    let wallet = wallet.to_str().expect("utf-8 path");
    cli(fed, 0, &[&["--wallet", wallet][..], args].concat()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burn_is_batched_by_execution_signed_by_a_threshold_and_paid_on_bitcoin() {
    let scenario = Scenario::begin("pegout_one_burn");
    let user = Keypair::from_secret([41; 32]);
    let who = user.public().account_id();
    let deposit = Amount::from_sat(1_000_000);
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 });
    let mut fed = pegged_in(params, &user, deposit, Amount::ZERO, 7).await;
    let c = fed.nodes[1].client().expect("client");

    // Bad burns: clear errors at the mempool, nothing burned.
    let amount = Amount::from_sat(300_000);
    let payee = BtcWallet::from_seed(50).script_pubkey();
    let cases: [(ScriptBuf, Amount, &str); 4] = [
        (ScriptBuf::new_op_return([1u8; 8]), amount, "unsupported payout script"),
        (payee.clone(), Amount::from_sat(200), "below the minimum"),
        (payee.clone(), deposit, "balance"),
        (ScriptBuf::from_bytes(vec![0x51]), amount, "unsupported payout script"),
    ];
    for (script, amt, why) in cases {
        let err = send(&fed, 1, burn_tx(&user, 1, &script, amt, 2), &user).await.expect_err("refused");
        assert!(err.contains(why), "{why:?} not in {err:?}");
    }
    // Through the CLI: a mainnet address, a non-address, more than the wallet holds: refused before anything
    // is signed, each with a reason.
    let dir = tempfile::tempdir().expect("tempdir");
    let wallet = dir.path().join("user.key");
    assert!(cli_wallet(&fed, &wallet, &["createwallet"]).await.0);
    let mainnet = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
    let (ok, out) = cli_wallet(&fed, &wallet, &["pegout", mainnet, "0.001btc"]).await;
    assert!(!ok && out.contains("not an address on the node's Bitcoin network"), "{out}");
    let (ok, out) = cli_wallet(&fed, &wallet, &["pegout", "6a0401020304", "0.001btc"]).await;
    assert!(!ok && out.contains("is not a Bitcoin address"), "{out}");
    let regtest = bitcoin::Address::from_script(&payee, bitcoin::Network::Regtest).expect("address").to_string();
    let (ok, out) = cli_wallet(&fed, &wallet, &["pegout", &regtest, "0.001btc"]).await;
    assert!(!ok && out.contains("insufficient balance"), "an empty wallet cannot burn: {out}");
    let low_fee = UserTx { fee: Amount::from_sat(100), ..burn_tx(&user, 1, &payee, amount, 2) };
    let err = send(&fed, 1, low_fee, &user).await.expect_err("refused");
    assert!(err.contains("fee"), "{err}");
    assert_eq!(balance(&fed, 0, who).await, deposit - PEGIN_FEE, "refused burns burn nothing");

    // The burn: supply falls by amount + fee into unpaid burns and the fee pool.
    let info = c.get_federation_info().await.expect("info");
    assert_eq!(info.pegout_batch_share_vbytes, SHARE_VBYTES, "the lone batch the burn fee pays for");
    let before = info.peg_totals;
    let tx = burn_tx(&user, 1, &payee, amount, 2);
    let fee = tx.fee;
    let txid = send(&fed, 1, tx, &user).await.expect("burn accepted");
    let burned_at = wait_pegout(&fed, 0, txid, PegOutStage::Burned, Duration::from_secs(60)).await.burned_at;
    assert_eq!(balance(&fed, 0, who).await, deposit - PEGIN_FEE - amount - fee);

    // Batched at the next interval, signed by a threshold, broadcast: it reaches bitcoind's mempool.
    let s = wait_pegout(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(90)).await;
    let batch = s.batch.clone().expect("batch");
    assert_eq!((batch.version, batch.signatures.split('/').nth(1)), (1, Some("3")));
    let signed_at = fed.nodes[0].height().await.expect("height");
    println!("burn to broadcast: burned at {burned_at}, threshold-signed by {signed_at} (interval 5)");
    let btc0 = &fed.bitcoinds[0];
    wait_in_mempool(&fed, &batch.btc_txid);
    let mined_at = mine(&fed, 1);
    assert_eq!(held_by(&fed, 3, &payee), amount, "the payee holds exactly the burned amount");
    // A validator's bitcoind shows it confirmed before the anchor covers it.
    let s = wait_pegout(&fed, 0, txid, PegOutStage::Confirmed, Duration::from_secs(30)).await;
    assert_eq!(s.confirmed_btc_height, Some(mined_at as u32));
    let held_before = c.get_federation_info().await.expect("info").peg_totals.btc_held;
    assert_eq!(held_before, deposit, "held until the anchor shows the batch confirmed");

    // N confirmations later the batch settles: nothing owed, BTC held = the change, supply = BTC held.
    mine(&fed, N);
    let s = wait_pegout(&fed, 4, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(s.paid_in.map(|p| p.btc_height), Some(mined_at as u32));
    let totals = fed.nodes[4].client().expect("client").get_federation_info().await.expect("info").peg_totals;
    let payout: serde_json::Value =
        btc0.call("getrawtransaction", &[serde_json::json!(batch.btc_txid), serde_json::json!(true)]).expect("tx");
    let outputs: Amount = payout["vout"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| Amount::from_btc(o["value"].as_f64().unwrap_or(0.0)).expect("amount"))
        .sum();
    let btc_fee = deposit - outputs;
    assert_eq!(btc_fee, batch.fee);
    assert_eq!(totals.unpaid_burns, Amount::ZERO);
    assert_eq!(totals.btc_held, deposit - amount - btc_fee, "held = the batch's change");
    let sponsor = Amount::from_sat(SPONSOR_SATS);
    assert_eq!(
        totals.supply,
        totals.btc_held + sponsor,
        "supply (beyond the genesis) equals BTC held once all is paid"
    );
    assert_eq!(before.supply - totals.supply, amount + btc_fee, "supply fell by the payout and its Bitcoin fee");
    let fedinfo = c.get_federation_info().await.expect("info");
    let fed_script = ScriptBuf::from_hex(&fedinfo.script_pubkey).expect("script");
    assert_eq!(held_by(&fed, 2, &fed_script), totals.btc_held, "state's BTC held is the change bitcoind shows");
    let proof = c.get_reserve_proof().await.expect("getreserveproof");
    assert_eq!(proof.utxos.iter().map(|u| u.amount).sum::<Amount>(), proof.btc_held, "{proof:?}");
    // The user's history on the full node: everything the peg did to the account, newest first.
    let history =
        fed.nodes[4].client().expect("client").list_transactions(who, None, None, None).await.expect("history");
    let kinds: Vec<&HistoryKindInfo> = history.iter().map(|e| &e.kind).collect();
    match kinds.as_slice() {
        [HistoryKindInfo::PaidOut { amount: paid, btc_txid, .. }, HistoryKindInfo::Burned { amount: burned, fee: burn_fee, btc_address, .. }, HistoryKindInfo::Minted { amount: deposited, credited, fee: pegin_fee, .. }, HistoryKindInfo::Registered { .. }, HistoryKindInfo::Received { .. }] =>
        {
            assert_eq!((*paid, *burned, *burn_fee), (amount, amount, fee));
            assert_eq!(btc_txid.to_string(), batch.btc_txid, "paid by the batch bitcoind mined");
            assert_eq!(btc_address.as_deref(), Some(regtest.as_str()));
            assert_eq!((*deposited, *credited, *pegin_fee), (deposit, deposit - PEGIN_FEE, PEGIN_FEE));
        }
        other => panic!("not the peg's history: {other:?}"),
    }
    assert_eq!(history[1].txid, txid, "the burn's entry names the burn");
    // A healthy peg raises no alert on any node.
    for n in &fed.nodes {
        let alerts = n.client().expect("client").get_blockchain_info().await.expect("info").alerts;
        assert!(alerts.is_empty(), "{alerts:?}");
    }
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_burns_in_one_interval_are_paid_by_one_standard_transaction() {
    let scenario = Scenario::begin("pegout_hundred_payouts");
    let user = Keypair::from_secret([42; 32]);
    let deposit = Amount::from_sat(5_000_000);
    let interval = 100;
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": interval });
    let mut fed = pegged_in(params, &user, deposit, Amount::ZERO, 8).await;
    let c = fed.nodes[0].client().expect("client");
    // Start right after an interval height so all hundred burns land before the next one.
    let deadline = Instant::now() + Duration::from_secs(120);
    while fed.nodes[0].height().await.expect("height") % interval > 20 {
        assert!(Instant::now() < deadline, "no interval start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let amount = Amount::from_sat(20_000);
    let payees: Vec<ScriptBuf> = (100..200u8).map(|s| BtcWallet::from_seed(s).script_pubkey()).collect();
    let mut txids = Vec::new();
    for (i, p) in payees.iter().enumerate() {
        txids.push(send(&fed, 0, burn_tx(&user, 1 + i as u64, p, amount, 2), &user).await.expect("burn"));
    }
    // Until the interval height, each says why it waits: the next batch, at that height.
    let last = wait_pegout(&fed, 0, txids[99], PegOutStage::Burned, Duration::from_secs(60)).await;
    if last.stage == PegOutStage::Burned {
        let wait = last.wait.expect("a burned burn says why it waits");
        assert_eq!(wait.reason, rpc::types::PegOutWaitReason::NextBatch, "{wait:?}");
        assert_eq!(wait.until_height.map(|h| h.get() % interval), Some(0), "{wait:?}");
    }
    let first = wait_pegout(&fed, 0, txids[0], PegOutStage::Broadcast, Duration::from_secs(120)).await;
    let batch = first.batch.expect("batch");
    for t in &txids {
        let s = c.get_pegout_status(t.to_string(), None).await.expect("status");
        assert_eq!(s.batch.map(|b| b.id), Some(batch.id), "every burn in the one batch");
    }
    // Bitcoind took it into its mempool: it is standard (policy checked at acceptance).
    wait_in_mempool(&fed, &batch.btc_txid);
    let entry: serde_json::Value =
        fed.bitcoinds[0].call("getmempoolentry", &[serde_json::json!(batch.btc_txid)]).expect("entry");
    let vsize = entry["vsize"].as_u64().expect("vsize");
    assert!(vsize <= batch.vbytes, "priced on an upper bound: {vsize} <= {}", batch.vbytes);
    println!("100 payouts in one transaction: {vsize} vB (bound {}), fee {}", batch.vbytes, batch.fee);
    mine(&fed, 1);
    for p in &payees {
        assert_eq!(held_by(&fed, 1, p), amount);
    }
    mine(&fed, N);
    wait_pegout(&fed, 4, txids[99], PegOutStage::Final, Duration::from_secs(60)).await;
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_dies_mid_signing_does_not_stop_the_batch_and_restarts_safely() {
    let scenario = Scenario::begin("pegout_validator_dies_mid_signing");
    let user = Keypair::from_secret([43; 32]);
    let deposit = Amount::from_sat(1_000_000);
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 });
    // Validator 3 dies (abort, as kill -9) right after it has durably recorded the batch version it is about
    // to sign and before its share exists or leaves.
    let crash = "[fault]\ncrash_point = \"batch_signature_recorded\"\n";
    let mut fed = pegged_in_with(vec![(3, crash.to_string())], params, &user, deposit, Amount::ZERO, 9).await;
    // Validator 2 is frozen, so validator 3 must be one of the three signers: its signing attempt is certain.
    fed.nodes[2].process.pause();
    let payee = BtcWallet::from_seed(52).script_pubkey();
    let amount = Amount::from_sat(250_000);
    let txid = send(&fed, 0, burn_tx(&user, 1, &payee, amount, 2), &user).await.expect("burn");
    let deadline = Instant::now() + Duration::from_secs(90);
    while fed.nodes[3].process.is_running() {
        assert!(Instant::now() < deadline, "validator 3 never tried to sign: {}", fed.nodes[3].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fed.nodes[3].process.log_tail(50).contains("crash point reached"), "{}", fed.nodes[3].process.log_tail(30));
    // Validator 2 thaws: with validators 0, 1 and 2 the batch gets its threshold and goes out.
    fed.nodes[2].process.resume();
    let batch = wait_pegout(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(90)).await.batch.expect("batch");
    wait_in_mempool(&fed, &batch.btc_txid);
    mine(&fed, 1 + N);
    wait_pegout(&fed, 0, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(held_by(&fed, 0, &payee), amount, "paid once, exactly");
    // Validator 3 comes back (fault switched off): it finds its record, catches up, and the chain agrees.
    let datadir = fed.nodes[3].datadir.clone();
    fed.write_config(&datadir, "").expect("config");
    fed.nodes[3].process.restart().expect("restart");
    let tip = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[3], tip, Duration::from_secs(60)).await.expect("validator 3 catches up");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_spike_strands_the_first_version_and_a_bumped_one_confirms_exactly_once() {
    let scenario = Scenario::begin("pegout_fee_spike_bump");
    let user = Keypair::from_secret([44; 32]);
    let deposit = Amount::from_sat(2_000_000);
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5, "pegout_bump_after": 2 });
    let mut fed = pegged_in(params, &user, deposit, Amount::from_sat(100_000), 10).await;
    let c = fed.nodes[0].client().expect("client");
    let payee = BtcWallet::from_seed(53).script_pubkey();
    let amount = Amount::from_sat(400_000);
    let txid = send(&fed, 0, burn_tx(&user, 1, &payee, amount, 2), &user).await.expect("burn");
    let v1 = wait_pegout(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(90)).await.batch.expect("batch");
    assert_eq!(c.get_federation_info().await.expect("info").pegout_fee_rate_sat_vb, 2);

    // The spike: every bitcoind restarts with a 20 sat/vB relay floor. The 2 sat/vB first version leaves
    // their mempools and can never get back in; each validator sees the new floor and votes for it.
    for b in &mut fed.bitcoinds {
        b.restart_with(&["-minrelaytxfee=0.0002".to_string()]).expect("bitcoind restarts");
    }
    for i in 1..fed.bitcoinds.len() {
        fed.bitcoinds[0].connect(&fed.bitcoinds[i]).expect("reconnect");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let info = c.get_federation_info().await.expect("info");
        if info.pegout_fee_rate_sat_vb >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "agreed rate {}: {:?}", info.pegout_fee_rate_sat_vb, info.fee_rate_votes);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mempool: Vec<String> = fed.bitcoinds[0].call("getrawmempool", &[]).expect("mempool");
    assert!(!mempool.contains(&v1.btc_txid), "the first version is below the new floor");

    // bump_after BTC blocks pass without it (the anchor shows them N - 1 blocks later): the next version is
    // built at the agreed rate, signed, broadcast.
    mine(&fed, N - 1 + 2);
    let s = wait_pegout(&fed, 0, txid, PegOutStage::Bumped, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let v2 = loop {
        let s = c.get_pegout_status(txid.to_string(), None).await.expect("status");
        let b = s.batch.clone().expect("batch");
        let mempool: Vec<String> = fed.bitcoinds[0].call("getrawmempool", &[]).expect("mempool");
        if b.version >= 2 && mempool.contains(&b.btc_txid) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "bumped version not broadcast: {s:?}: {}",
            fed.nodes[0].process.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(s.batch.is_some());
    assert_eq!(v2.earlier_btc_txids[0], v1.btc_txid);
    assert!(v2.fee >= Amount::from_sat(20 * v2.vbytes), "priced at the spiked rate: {v2:?}");
    let entry: serde_json::Value =
        fed.bitcoinds[0].call("getmempoolentry", &[serde_json::json!(v2.btc_txid)]).expect("entry");
    let fee_rate = entry["fees"]["base"].as_f64().unwrap_or(0.0) * 1e8 / entry["vsize"].as_f64().unwrap_or(1.0);
    assert!(fee_rate >= 20.0, "bumped version pays {fee_rate} sat/vB");

    // It confirms; the anchor settles the batch with it; the first version never confirms; paid once.
    let mined_at = mine(&fed, 1);
    mine(&fed, N);
    let s = wait_pegout(&fed, 4, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(s.paid_in.map(|p| p.btc_height), Some(mined_at as u32));
    assert_eq!(held_by(&fed, 1, &payee), amount, "paid exactly once");
    let v1_on_chain = fed.bitcoinds[0]
        .call::<serde_json::Value>("getrawtransaction", &[serde_json::json!(v1.btc_txid), serde_json::json!(true)]);
    assert!(v1_on_chain.is_err(), "the first version must never confirm: {v1_on_chain:?}");
    let v2_tx: serde_json::Value = fed.bitcoinds[0]
        .call("getrawtransaction", &[serde_json::json!(v2.btc_txid), serde_json::json!(true)])
        .expect("v2");
    assert!(v2_tx["confirmations"].as_u64().unwrap_or(0) > N);
    let totals = c.get_federation_info().await.expect("info").peg_totals;
    assert_eq!(totals.unpaid_burns, Amount::ZERO);
    let sponsor = Amount::from_sat(SPONSOR_SATS);
    assert_eq!(totals.supply, totals.btc_held + sponsor, "the unspent part of the bump's fee went back to the pool");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
