//! Federation changes end to end, with real sidechaind processes and a regtest bitcoind per validator:
//! one validator of four is replaced (new keys, new process) while transfers and a peg-out are in flight,
//! the old wallet is swept to the new one by the old keys (the validator that left signs, as a staying one
//! is down), deposits to the old address are minted during
//! the window and claimable after it, and a full node started from genesis afterwards verifies every
//! certificate. Without Bitcoin: the federation grows from 4 to 7 validators and shrinks back to 4, and
//! bad changes are refused with clear errors.

mod common;

use bitcoin::secp256k1::SecretKey;
use bitcoin::{Amount, ScriptBuf};
use common::*;
use ledger::{UserTx, UserTxKind};
use primitives::{Keypair, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{FederationInfo, PegOutStage};
use std::time::{Duration, Instant};
use testnet::btc_wallet::{broadcast, BtcWallet};
use testnet::federation::{Federation, FederationConfig};
use testnet::reconfigure::{approvals, change_federation, proposal};
use testnet::scenario::{Checks, Scenario};

/// Emergency keys every wallet of these federations carries (2 of 3, after 200 BTC blocks).
fn emergency() -> (u32, u32, Vec<SecretKey>) {
    let secrets = (0..3u8).map(|i| SecretKey::from_slice(&[0x71 + i; 32]).expect("valid scalar")).collect();
    (2, 200, secrets)
}

fn config(
    validators: usize,
    spares: usize,
    full: usize,
    bitcoind: bool,
    params: serde_json::Value,
) -> FederationConfig {
    FederationConfig {
        validators,
        spare_validators: spares,
        full_nodes: full,
        bitcoind,
        emergency: Some(emergency()),
        genesis_params: Some(params),
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into())],
        initial_accounts: vec![sponsor_account()],
        ..Default::default()
    }
}

async fn info(fed: &Federation, i: usize) -> FederationInfo {
    fed.nodes[i].client().expect("client").get_federation_info().await.expect("getfederationinfo")
}

async fn send(fed: &Federation, node: usize, tx: UserTx, user: &Keypair) -> TxId {
    let c = fed.nodes[node].client().expect("client");
    let genesis = c.get_blockchain_info().await.expect("info").genesis_hash;
    let signed = tx.sign(user, &genesis);
    c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&signed))).await.expect("accepted")
}

fn transfer(user: &Keypair, nonce: u64, to: primitives::AccountId, sats: u64) -> UserTx {
    UserTx {
        signer: user.public(),
        nonce,
        fee: Amount::from_sat(100),
        kind: UserTxKind::Transfer { to, amount: Amount::from_sat(sats) },
    }
}

/// Batches signer `signer` (of a batch's wallet epoch) signed in blocks `from..=to` of node 0.
async fn shares_by(fed: &Federation, signer: u16, from: u64, to: u64) -> Vec<u64> {
    let c = fed.nodes[0].client().expect("client");
    let mut out = Vec::new();
    for h in from..=to {
        let block = c.get_block(rpc::BlockRef::Height(primitives::Height(h)), Some(2)).await.expect("block");
        let rpc::types::GetBlockResult::Json(b) = block else { panic!("verbosity 2 gives JSON") };
        if let rpc::types::BlockTxs::Full(txs) = &b.tx {
            for t in txs {
                if let rpc::types::TxKindInfo::Pegoutsignatures { validator, batch, .. } = &t.kind {
                    if validator.get() == signer {
                        out.push(*batch);
                    }
                }
            }
        }
    }
    out
}

/// Mines a block every half second until `done` holds on node `i` (bounded); returns the blocks mined.
async fn mine_until(
    fed: &Federation,
    i: usize,
    bound: Duration,
    what: &str,
    mut done: impl FnMut(&FederationInfo) -> bool,
) -> u64 {
    let deadline = Instant::now() + bound;
    let mut mined = 0;
    loop {
        let now = info(fed, i).await;
        if done(&now) {
            return mined;
        }
        assert!(Instant::now() < deadline, "{what} after {bound:?}: {now:#?}\n{}", fed.nodes[i].process.log_tail(30));
        mine(fed, 1);
        mined += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Everything is in the wallet in force and no sweep is in flight.
fn swept(i: &FederationInfo) -> bool {
    i.changes.sweep_complete && i.changes.wallets.iter().all(|w| w.in_force)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_validator_is_replaced_while_transfers_and_a_pegout_are_in_flight() {
    let scenario = Scenario::begin("federation_replace_one");
    // Nodes: validators 0..=3, spare0 (4, its own bitcoind), full0 (5, started at the end).
    let params = serde_json::json!({
        "pegout_interval": 5,
        "federation_change_min_lead": 5,
        "deposit_window": 25,
        "refresh_margin": 100,
    });
    let mut cfg = config(4, 1, 1, true, params);
    cfg.deferred = vec![5];
    let mut fed = Federation::start(cfg).expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3, 4], 2, Duration::from_secs(90)).await.expect("blocks");
    let c = fed.nodes[0].client().expect("client");

    // A holds 1 BTC on the sidechain; the fee pool holds 0.01 BTC (it pays sweep and batch fees).
    let (wallet, utxo) = funded_wallet(&fed, 61).await;
    let (a, b_key) = (Keypair::from_secret([61; 32]), Keypair::from_secret([62; 32]));
    let (who_a, who_b, who_c) =
        (a.public().account_id(), b_key.public().account_id(), Keypair::from_secret([63; 32]).public().account_id());
    register(&fed, &a).await;
    register(&fed, &b_key).await;
    let deposit = pay_deposit(&fed, &wallet, &utxo, who_a, Amount::from_sat(100_000_000)).await;
    let change = wallet.key().owned_outputs(&deposit).into_iter().next().expect("change");
    let old = info(&fed, 0).await;
    let old_plain = ScriptBuf::from_hex(&old.script_pubkey).expect("script");
    let funding =
        wallet.pay(&change, old_plain.clone(), Amount::from_sat(1_000_000), Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &funding).expect("broadcast");
    let mut spend = wallet.key().owned_outputs(&funding).into_iter().next().expect("change");
    mine(&fed, N);
    let fee_in = old.pegin_fee;
    wait_balance(&fed, who_a, Amount::from_sat(100_000_000) - fee_in, Duration::from_secs(90)).await;
    assert!(old.descriptor.starts_with("wsh(or_d(multi(3,"), "emergency path from genesis: {}", old.descriptor);
    let old_b_addr = c.get_pegin_address(who_b).await.expect("address").address;

    // In flight: a peg-out of 0.2 BTC (batched at the next interval) and transfers to C.
    let payee = BtcWallet::from_seed(64).script_pubkey();
    let burn = UserTx {
        signer: a.public(),
        nonce: 1,
        fee: ledger::pegout::pegout_fee(Amount::from_sat(100), 4, old.pegout_batch_share_vbytes, &payee),
        kind: UserTxKind::PegOut { btc_script_pubkey: payee.to_bytes(), amount: Amount::from_sat(20_000_000) },
    };
    let burn_txid = send(&fed, 1, burn, &a).await;
    // Every transaction of A goes through validator 1 (a member throughout), so its mempool sees A's nonces
    // in order.
    let mut nonce = 2;
    for _ in 0..3 {
        send(&fed, 1, transfer(&a, nonce, who_c, 1_000), &a).await;
        nonce += 1;
    }

    // The change: validator 3 out, spare0 in, 15 blocks on; approved by validators 0, 1 and 2.
    let proposed_at = fed.nodes[0].height().await.expect("height");
    let activation = proposed_at + 15;
    let p = proposal(&fed, &[0, 1, 2, 4], 3, activation).expect("proposal");
    change_federation(&fed, &p, &[0, 1, 2], 0).await.expect("change accepted");
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        if let Some(p) = info(&fed, 3).await.changes.pending {
            break p;
        }
        assert!(Instant::now() < deadline, "the change never reached a block");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((pending.epoch, pending.activation_height.get(), pending.validators.len()), (1, activation, 4));
    // Transfers keep landing while the change waits, and across it.
    for _ in 0..3 {
        send(&fed, 1, transfer(&a, nonce, who_c, 1_000), &a).await;
        nonce += 1;
    }
    fed.wait_height(&[0, 1, 2, 4], activation + 1, Duration::from_secs(90)).await.expect("past the activation");
    let now = info(&fed, 4).await;
    assert_eq!((now.changes.epoch, now.changes.epoch_from_height.get()), (1, activation));
    assert_eq!(now.changes.validators[3].consensus_key.to_string(), fed.nodes[4].consensus_key);
    assert!(now.address != old.address, "a new wallet");
    let blockchain = fed.nodes[4].client().expect("client").get_blockchain_info().await.expect("info");
    assert!(blockchain.validator, "spare0 validates without a restart");

    // Validator 2, which stays, goes down for a while: the new set decides with 0, 1 and 4. The old wallet
    // needs three of its four keys, so validator 3, which left the federation, signs its sweep.
    fed.nodes[2].process.terminate(Duration::from_secs(10));
    let h = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0, 1, 4], h + 5, Duration::from_secs(60)).await.expect("the new set decides");
    for _ in 0..3 {
        send(&fed, 1, transfer(&a, nonce, who_c, 1_000), &a).await;
        nonce += 1;
    }

    // During the window a deposit to B's old address is still minted, without a claim.
    let old_addr: bitcoin::Address<bitcoin::address::NetworkUnchecked> = old_b_addr.parse().expect("address");
    let old_b_script = old_addr.assume_checked().script_pubkey();
    let to_old =
        wallet.pay(&spend, old_b_script.clone(), Amount::from_sat(30_000_000), Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &to_old).expect("broadcast");
    spend = wallet.key().owned_outputs(&to_old).into_iter().next().expect("change");
    mine(&fed, N);
    let credited_b = Amount::from_sat(30_000_000) - info(&fed, 0).await.pegin_fee;
    wait_balance(&fed, who_b, credited_b, Duration::from_secs(90)).await;

    // The peg-out, signed and paid once; then every coin of the old wallet moves to the new one.
    let btc_before = fed.bitcoinds[0].height().expect("height");
    let mut sweep_fees = std::collections::BTreeMap::new();
    let _ = mine_until(&fed, 0, Duration::from_secs(240), "peg-out paid and old wallet swept", |i| {
        for w in &i.changes.wallets {
            for b in &w.batches {
                sweep_fees.insert(b.id, b.fee);
            }
        }
        swept(i) && i.peg_totals.unpaid_burns == Amount::ZERO
    })
    .await;
    let s = c.get_pegout_status(burn_txid.to_string(), None).await.expect("status");
    assert_eq!(s.stage, PegOutStage::Final, "{s:?}");
    assert_eq!(held_by(&fed, 0, &payee), Amount::from_sat(20_000_000), "paid exactly once");
    let btc_rotation = fed.bitcoinds[0].height().expect("height") - btc_before;
    let tip = fed.nodes[0].height().await.expect("height");
    let leaver_signed = shares_by(&fed, 3, activation, tip).await;
    assert!(
        sweep_fees.keys().any(|id| leaver_signed.contains(id)),
        "the leaver signed a sweep: {leaver_signed:?} of {sweep_fees:?}"
    );
    // Validator 2 comes back and catches up; the leaver's process goes away for good.
    fed.nodes[2].process.restart().expect("restart");
    fed.nodes[3].process.terminate(Duration::from_secs(10));
    fed.wait_height(&[2], tip, Duration::from_secs(60)).await.expect("validator 2 catches up");

    // After the window: a deposit to the old address is not minted by itself, and is claimable once.
    let window_end = activation + 25;
    fed.wait_height(&[0], window_end + 1, Duration::from_secs(60)).await.expect("past the window");
    let late =
        wallet.pay(&spend, old_b_script.clone(), Amount::from_sat(25_000_000), Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &late).expect("broadcast");
    let late_block = mine(&fed, 1);
    let late_hash: String = fed.bitcoinds[0].call("getblockhash", &[serde_json::json!(late_block)]).expect("hash");
    mine(&fed, N);
    wait_anchor(&fed, late_block + 1, Duration::from_secs(60)).await;
    let h = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0], h + 3, Duration::from_secs(30)).await.expect("blocks");
    assert_eq!(balance(&fed, 0, who_b).await, credited_b, "after the window only a claim mints an old-address deposit");
    let outpoint = format!("{}:0", late.compute_txid());
    c.claim_pegin(outpoint.clone(), who_b.to_string(), late_hash.clone()).await.expect("claim submitted");
    let credited_late = Amount::from_sat(25_000_000) - info(&fed, 0).await.pegin_fee;
    wait_balance(&fed, who_b, credited_b + credited_late, Duration::from_secs(90)).await;
    let again = c.claim_pegin(outpoint, who_b.to_string(), late_hash).await.expect_err("minted already");
    assert!(again.to_string().contains("already"), "{again}");
    // ... and swept like the rest, by the old keys (validator 3's process is gone now: 0, 1, 2 sign).
    mine_until(&fed, 0, Duration::from_secs(180), "late deposit swept", swept).await;
    let end = info(&fed, 0).await;
    assert_eq!(held_by(&fed, 0, &old_plain), Amount::ZERO, "the old wallet's plain address is empty");
    let new_plain = ScriptBuf::from_hex(&end.script_pubkey).expect("script");
    assert_eq!(held_by(&fed, 0, &new_plain), end.peg_totals.btc_held, "every coin is in the new wallet");

    // Transfers: all nine landed, once each.
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&fed, 0, who_c).await != Amount::from_sat(9_000) {
        assert!(Instant::now() < deadline, "transfers to C: {}", balance(&fed, 0, who_c).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A full node started from genesis now follows every change and verifies every certificate.
    fed.nodes[5].process.restart().expect("full node starts");
    let tip = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[5], tip, Duration::from_secs(120)).await.expect("the full node syncs from genesis");
    assert_eq!(info(&fed, 5).await.changes.epoch, 1);
    let fees: Amount = sweep_fees.values().copied().sum();
    println!(
        "rotation: change accepted at height {proposed_at}, in force at {activation}; old wallet swept within \
         {btc_rotation} BTC blocks (N = {N}); {} sweep batches, {} sat in BTC fees",
        sweep_fees.len(),
        fees.to_sat()
    );
    scenario
        .finish(&mut fed, Checks { nodes: Some(vec![0, 1, 2, 4, 5]), ..Checks::default() })
        .await
        .expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_grows_from_four_to_seven_and_shrinks_back_to_four() {
    let scenario = Scenario::begin("federation_grow_shrink");
    let params = serde_json::json!({ "federation_change_min_lead": 4 });
    let mut fed = Federation::start(config(4, 3, 0, false, params)).expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let all: Vec<usize> = (0..7).collect();

    // Bad changes first, each refused with its reason and nothing pending.
    let h = fed.nodes[0].height().await.expect("height");
    let c = fed.nodes[0].client().expect("client");
    let good = proposal(&fed, &all, 5, h + 10).expect("proposal");
    let two = ledger::ReconfigureTx {
        proposal: good.clone(),
        approvals: approvals(&fed, &good, &[0, 1]).await.expect("approve"),
    };
    let e = c.submit_federation_change(two).await.expect_err("2 of 4 is not 2f+1");
    assert!(e.to_string().contains("2f+1"), "{e}");
    let mut dup = good.clone();
    dup.validators[6].peg_key = dup.validators[5].peg_key;
    let e = c.approve_federation_change(dup).await.expect_err("duplicate keys");
    assert!(e.to_string().contains("share peg key"), "{e}");
    let low = ledger::FederationProposal { peg_threshold: 4, ..good.clone() };
    let e = c.approve_federation_change(low).await.expect_err("4 of 7 breaks 2f+1");
    assert!(e.to_string().contains("breaks the 2f+1 rule"), "{e}");
    let mut emergency_key = good.clone();
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    emergency_key.validators[6].peg_key = bitcoin::PublicKey::new(emergency().2[0].public_key(&secp));
    let e = c.approve_federation_change(emergency_key).await.expect_err("an emergency key as a peg key");
    assert!(e.to_string().contains("emergency key"), "{e}");
    let spare = fed.nodes[4].client().expect("client").approve_federation_change(good.clone()).await;
    assert!(spare.expect_err("not a validator").to_string().contains("not a validator"));
    assert!(info(&fed, 0).await.changes.pending.is_none());

    // Grow: 4 -> 7, approved by 3 of the 4.
    let h = fed.nodes[0].height().await.expect("height");
    let grow = proposal(&fed, &all, 5, h + 10).expect("proposal");
    change_federation(&fed, &grow, &[0, 1, 3], 2).await.expect("grow accepted");
    fed.wait_height(&all, h + 14, Duration::from_secs(90)).await.expect("seven validate");
    let now = info(&fed, 6).await;
    assert_eq!((now.changes.epoch, now.changes.validators.len(), now.threshold), (1, 7, 5));
    // Blocks after the change carry certificates the new members signed.
    let tip = fed.nodes[0].height().await.expect("height");
    let commit = c.get_commit(primitives::Height(tip - 1)).await.expect("getcommit");
    assert!(commit.signatures.iter().any(|s| s.validator.get() >= 4), "new members precommit: {commit:?}");

    // Shrink: 7 -> 4 (the three newcomers and validator 3 stay), approved by 5 of the 7, as operators do it:
    // a proposal file, each approver's `sidechain-cli approvefederationchange`, one `submitfederationchange`.
    let h = fed.nodes[0].height().await.expect("height");
    let shrink = proposal(&fed, &[3, 4, 5, 6], 3, h + 10).expect("proposal");
    let dir = tempfile::tempdir().expect("tempdir");
    let proposal_file = dir.path().join("proposal.json");
    std::fs::write(&proposal_file, serde_json::to_string_pretty(&shrink).expect("json")).expect("write");
    let mut approval_files = Vec::new();
    for i in [0, 2, 4, 5, 6] {
        let (ok, out) = cli(&fed, i, &["approvefederationchange", proposal_file.to_str().expect("utf-8")]).await;
        assert!(ok, "{out}");
        let file = dir.path().join(format!("approval{i}.json"));
        std::fs::write(&file, out).expect("write");
        approval_files.push(file.display().to_string());
    }
    let mut args = vec!["submitfederationchange", proposal_file.to_str().expect("utf-8")];
    args.extend(approval_files.iter().map(String::as_str));
    let (ok, out) = cli(&fed, 6, &args[..3]).await;
    assert!(!ok && out.contains("2f+1"), "two approvals of seven are refused: {out}");
    let (ok, out) = cli(&fed, 6, &args).await;
    assert!(ok && out.contains("takes over at height"), "{out}");
    fed.wait_height(&all, h + 11, Duration::from_secs(90)).await.expect("past the shrink");
    for i in 0..3 {
        fed.nodes[i].process.terminate(Duration::from_secs(10));
    }
    let h = fed.nodes[3].height().await.expect("height");
    fed.wait_height(&[3, 4, 5, 6], h + 5, Duration::from_secs(60)).await.expect("the four remaining decide alone");
    let now = info(&fed, 3).await;
    assert_eq!((now.changes.epoch, now.changes.validators.len(), now.threshold), (2, 4, 3));

    // A light client follows the chain from the genesis file alone, across both changes: each certificate
    // checked against the set of its height, each set taken from the proved federation entry.
    let genesis: ledger::Genesis =
        serde_json::from_str(&std::fs::read_to_string(&fed.genesis_path).expect("genesis file")).expect("genesis");
    let chain = ledger::Chain::new(genesis).expect("chain");
    let mut light = light::LightClient::from_genesis(&chain);
    let c3 = fed.nodes[3].client().expect("client");
    loop {
        let range = c3.get_headers(light.tip().next(), None).await.expect("getheaders");
        if range.headers.is_empty() {
            break;
        }
        light.extend(&range.decode().expect("decodes")).expect("the served chain verifies");
    }
    assert!(light.tip().get() >= h + 5, "followed to {}", light.tip());
    let epochs: Vec<usize> = light.federation().epochs.iter().map(|e| e.validators.len()).collect();
    assert_eq!(epochs, vec![4, 7, 4], "the light client saw 4 -> 7 -> 4");
    // The same from the wallet: `sidechain-cli --verify` checks a balance from the genesis through both.
    let account = primitives::AccountId(primitives::Hash32([9; 32])).to_string();
    let genesis_file = fed.genesis_path.display().to_string();
    let v = cli_json(&fed, 3, &["--verify", "--genesis", &genesis_file, "getaccount", &account]).await;
    assert_eq!((v["balance_sat"].as_u64(), v["verified"]["trusted_from"].as_str()), (Some(0), Some("genesis")));
    assert!(v["verified"]["height"].as_u64() >= Some(h + 5), "{v}");

    scenario
        .finish(&mut fed, Checks { nodes: Some(vec![3, 4, 5, 6]), ..Checks::default() })
        .await
        .expect("closing checks");
}

/// An unsigned spend of the federation output `outpoint` (worth `value`, paying `wallet`'s plain script)
/// to `to`, with input sequence `sequence`.
fn spend_psbt(
    wallet: &peg::Federation,
    outpoint: bitcoin::OutPoint,
    value: Amount,
    sequence: bitcoin::Sequence,
    to: ScriptBuf,
) -> bitcoin::psbt::Psbt {
    let unsigned = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: bitcoin::Witness::new(),
        }],
        output: vec![bitcoin::TxOut { value: value - Amount::from_sat(5_000), script_pubkey: to }],
    };
    let mut psbt = bitcoin::psbt::Psbt::from_unsigned_tx(unsigned).expect("unsigned tx");
    psbt.inputs[0].witness_utxo = Some(bitcoin::TxOut { value, script_pubkey: wallet.script_pubkey() });
    psbt.inputs[0].witness_script = wallet.witness_script();
    psbt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_keep_coins_from_the_emergency_delay_and_the_emergency_keys_spend_only_after_it() {
    let scenario = Scenario::begin("federation_refresh_emergency");
    // Emergency delay 40 blocks (this test's own), refresh 20 blocks before it.
    let (threshold, _, secrets) = emergency();
    let delay = 40u32;
    let params = serde_json::json!({ "pegout_interval": 5, "refresh_margin": 20 });
    let mut cfg = config(4, 0, 0, true, params);
    cfg.emergency = Some((threshold, delay, secrets.clone()));
    let mut fed = Federation::start(cfg).expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let (wallet, utxo) = funded_wallet(&fed, 71).await;
    let a = Keypair::from_secret([71; 32]);
    register(&fed, &a).await;
    let deposit = pay_deposit(&fed, &wallet, &utxo, a.public().account_id(), Amount::from_sat(50_000_000)).await;
    let change = wallet.key().owned_outputs(&deposit).into_iter().next().expect("change");
    let plain = ScriptBuf::from_hex(&info(&fed, 0).await.script_pubkey).expect("script");
    let funding =
        wallet.pay(&change, plain.clone(), Amount::from_sat(1_000_000), Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &funding).expect("broadcast");
    let confirmed_at = mine(&fed, 1);
    mine(&fed, N - 1);
    wait_balance(
        &fed,
        a.public().account_id(),
        Amount::from_sat(50_000_000) - info(&fed, 0).await.pegin_fee,
        Duration::from_secs(90),
    )
    .await;

    // Mine on: before the coins are 20 blocks deep nothing happens; then a refresh moves both to the
    // federation again, long before the emergency keys could touch them.
    let deposit_out = bitcoin::OutPoint { txid: deposit.compute_txid(), vout: 0 };
    let spent = |b: &testnet::Bitcoind| {
        b.call::<serde_json::Value>(
            "gettxout",
            &[serde_json::json!(deposit_out.txid.to_string()), serde_json::json!(0)],
        )
        .expect("gettxout")
        .is_null()
    };
    let mut refresh = None;
    loop {
        let depth = fed.bitcoinds[0].height().expect("height") + 1 - confirmed_at;
        assert!(depth < u64::from(delay - 5), "the deposit reached depth {depth} without a refresh");
        for w in info(&fed, 0).await.changes.wallets {
            if let Some(b) = w.batches.iter().find(|b| b.kind == "refresh") {
                assert!(depth > 20 - 1, "refreshed at depth {depth}, before it was due");
                refresh = Some(b.btc_txid.clone());
            }
        }
        // Spent (in bitcoind's mempool or a block) by the refresh, which stays in flight until settled.
        if refresh.is_some() && spent(&fed.bitcoinds[0]) {
            break;
        }
        mine(&fed, 1);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let refresh: bitcoin::Txid = refresh.expect("a refresh batch was seen").parse().expect("txid");
    mine_until(&fed, 0, Duration::from_secs(60), "refresh settled", |i| {
        i.changes.wallets.iter().all(|w| w.batches.is_empty() && w.refresh_due == 0) && i.changes.wallets[0].utxos == 1
    })
    .await;
    let tip = fed.bitcoinds[0].height().expect("height");
    let refreshed_at = tip + 1 - testnet::btc_wallet::confirmations(&fed.bitcoinds[0], &refresh).expect("confirmed");
    let depth = refreshed_at + 1 - confirmed_at;
    assert!(depth < u64::from(delay), "refreshed at depth {depth}");
    println!("refresh confirmed at depth {depth} of the emergency delay {delay}");
    let held = info(&fed, 0).await.peg_totals.btc_held;
    assert_eq!(held_by(&fed, 0, &plain), held, "both coins now sit in one fresh federation output");

    // What the emergency keys' holders start from: the proved list of outputs, each with its epoch and tweak.
    let proof = fed.nodes[0].client().expect("client").get_reserve_proof().await.expect("getreserveproof");
    proof.verify().expect("proved against the final state root");
    let listed: Vec<_> = proof.utxos.iter().map(|u| (u.outpoint, u.epoch, u.tweak)).collect();
    assert_eq!(listed, vec![(bitcoin::OutPoint { txid: refresh, vout: 0 }, 0, None)]);

    // The federation goes away. The emergency keys cannot spend the fresh output before it is 40 deep.
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
    for n in &mut fed.nodes {
        n.process.terminate(Duration::from_secs(10));
    }
    let text = std::fs::read_to_string(&fed.genesis_path).expect("genesis");
    let chain = ledger::Chain::new(serde_json::from_str(&text).expect("genesis json")).expect("valid genesis");
    let federation_wallet = chain.genesis_wallet();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let out = bitcoin::OutPoint { txid: refresh, vout: 0 };
    let recovery = federation_wallet.recovery().expect("emergency path");
    let rescue = BtcWallet::from_seed(72).script_pubkey();
    let mut psbt = spend_psbt(federation_wallet, out, held, recovery.emergency_sequence(), rescue.clone());
    for s in &secrets[..2] {
        peg::sign_input(&secp, &mut psbt, 0, s).expect("emergency key signs");
    }
    let emergency_spend = peg::finalize(&secp, psbt).expect("2 emergency signatures and the lock finalize");
    let btc = &fed.bitcoinds[0];
    while btc.height().expect("height") + 1 < refreshed_at + u64::from(delay) {
        let refused = broadcast(btc, &emergency_spend).expect_err("too early");
        assert!(refused.to_string().contains("non-BIP68-final"), "{refused}");
        btc.mine(5.min(refreshed_at + u64::from(delay) - 1 - btc.height().expect("height"))).expect("mine");
    }
    broadcast(btc, &emergency_spend).expect("the emergency keys spend once the output is 40 blocks deep");
    btc.mine(1).expect("mine");
    assert_eq!(held_by(&fed, 0, &rescue), held - Amount::from_sat(5_000), "every BTC recovered");
}
