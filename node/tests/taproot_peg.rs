//! Taproot custody end to end with real processes (issue 23): the validators run `sidechaind ceremony`
//! before the genesis, the genesis carries the DKG transcript, every validator loads its FROST key share,
//! a deposit to a `tr()` address bound to its recipient is minted at the key path's peg-in fee, and a burn
//! is paid by a batch the validators sign with FROST rounds carried in blocks: one 64-byte signature an
//! input, which bitcoind accepts at exactly its planned size. A validator killed between the rounds (its
//! commitment out, its share never made) does not stop the signing, and on restart destroys its nonces
//! rather than use them. The reserve holds throughout.

mod common;

use bitcoin::{Amount, ScriptBuf};
use common::*;
use ledger::{UserTx, UserTxKind};
use primitives::Keypair;
use rpc::client::SidechainApiClient;
use rpc::types::PegOutStage;
use std::time::Duration;
use testnet::btc_wallet::BtcWallet;
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

fn start_taproot(node_toml: Vec<(usize, String)>) -> Federation {
    Federation::start(FederationConfig {
        genesis_params: Some(serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 })),
        validators: 4,
        full_nodes: 1,
        bitcoind: true,
        initial_accounts: vec![sponsor_account()],
        taproot: true,
        node_toml,
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into()), ("SIDECHAIND_ALLOW_FAULTS".into(), "1".into())],
        ..Default::default()
    })
    .expect("federation starts")
}

/// A burn of `amount` to `payee` by `user` (nonce 1), paying the least fee at 2 sat/vB.
async fn burn(fed: &Federation, user: &Keypair, payee: &ScriptBuf, amount: Amount) -> primitives::TxId {
    let c = fed.nodes[4].client().expect("client");
    let info = c.get_federation_info().await.expect("info");
    let fee = ledger::pegout::pegout_fee(Amount::from_sat(100), 2, info.pegout_batch_share_vbytes, payee);
    let burn = UserTx {
        signer: user.public(),
        nonce: 1,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: payee.to_bytes(), amount },
    };
    let genesis = c.get_blockchain_info().await.expect("info").genesis_hash;
    let signed = burn.sign(user, &genesis);
    c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&signed))).await.expect("burn accepted")
}

/// The batch `raw` (hex) as bitcoind has it; every input spent by key path: one 64-byte signature.
fn key_path_batch(fed: &Federation, btc_txid: &str) -> bitcoin::Transaction {
    let raw: String = fed.bitcoinds[0].call("getrawtransaction", &[serde_json::json!(btc_txid)]).expect("raw batch");
    let tx: bitcoin::Transaction =
        bitcoin::consensus::deserialize(&hex::decode(raw).expect("hex")).expect("a transaction");
    for input in &tx.input {
        assert_eq!(input.witness.len(), 1, "a key-path witness: {:?}", input.witness);
        assert_eq!(input.witness.iter().next().map(<[u8]>::len), Some(64));
    }
    tx
}

/// Every FROST message in blocks `from..=to` of node `i`: (validator, attempt, round).
async fn frost_messages(fed: &Federation, i: usize, from: u64, to: u64) -> Vec<(u16, u32, String)> {
    let txs = txs_between(fed, i, from, to).await;
    txs.into_iter()
        .filter_map(|(_, _, t)| match t.kind {
            rpc::types::TxKindInfo::Frostsigning { validator, attempt, round, .. } => {
                Some((validator.0, attempt, round))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taproot_federation_pegs_in_and_out_by_key_path_spends_that_bitcoind_accepts() {
    let scenario = Scenario::begin("taproot_peg");
    let mut fed = start_taproot(Vec::new());
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    for i in 0..4 {
        let log = fed.nodes[i].process.log_tail(400);
        assert!(log.contains("FROST key share of the genesis group loaded"), "validator {i}: {log}");
    }
    let c = fed.nodes[4].client().expect("client");
    let info = c.get_federation_info().await.expect("info");
    assert!(info.descriptor.starts_with("tr("), "{}", info.descriptor);
    let plain = ScriptBuf::from_hex(&info.script_pubkey).expect("script");
    assert!(plain.is_p2tr());
    // The peg-in fee is one key-path input at 2 sat/vB (58 vB), not the wsh wallet's 132.
    let pegin_fee = info.pegin_fee;
    assert_eq!(pegin_fee, Amount::from_sat(116));

    // Peg-in to the user's taproot deposit address.
    let user = Keypair::from_secret([43; 32]);
    let who = user.public().account_id();
    let deposit = Amount::from_sat(1_000_000);
    let (wallet, utxo) = funded_wallet(&fed, 9).await;
    register(&fed, &user).await;
    let paid = pay_deposit(&fed, &wallet, &utxo, who, deposit).await;
    assert!(paid.output.iter().any(|o| o.value == deposit && o.script_pubkey.is_p2tr()), "a tr() deposit");
    mine(&fed, N);
    wait_balance(&fed, who, deposit - pegin_fee, Duration::from_secs(60)).await;

    // Peg-out: batched, signed by key path through FROST rounds in blocks, accepted by bitcoind, paid exactly.
    let payee = BtcWallet::from_seed(51).script_pubkey();
    let amount = Amount::from_sat(300_000);
    let txid = burn(&fed, &user, &payee, amount).await;
    let s = wait_pegout(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(90)).await;
    let batch = s.batch.clone().expect("batch");
    assert_eq!(batch.signatures, "key path");
    let frost = batch.frost.clone().expect("the key-path signing shows");
    assert_eq!((frost.stage.as_str(), frost.needed), ("signed", 3), "{frost:?}");
    wait_in_mempool(&fed, &batch.btc_txid);
    let tx = key_path_batch(&fed, &batch.btc_txid);
    assert_eq!(tx.vsize() as u64, batch.vbytes, "the key path meets its plan exactly");
    mine(&fed, 1);
    assert_eq!(held_by(&fed, 3, &payee), amount, "the payee holds exactly the burned amount");
    mine(&fed, N);
    wait_pegout(&fed, 4, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    let totals = c.get_federation_info().await.expect("info").peg_totals;
    assert_eq!(totals.unpaid_burns, Amount::ZERO);
    assert_eq!(held_by(&fed, 2, &plain), totals.btc_held, "state's BTC held is the tr() change bitcoind shows");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_killed_between_the_rounds_never_uses_its_nonce_and_the_others_sign() {
    let scenario = Scenario::begin("taproot_signer_killed_between_rounds");
    // Validator 1 dies (abort, as kill -9) 50 ms after its first FROST commitment went out.
    let crash = "[fault]\ncrash_point = \"frost_commitment_sent\"\n";
    let mut fed = start_taproot(vec![(1, crash.to_string())]);
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let user = Keypair::from_secret([44; 32]);
    let who = user.public().account_id();
    let deposit = Amount::from_sat(1_000_000);
    let (wallet, utxo) = funded_wallet(&fed, 10).await;
    register(&fed, &user).await;
    pay_deposit(&fed, &wallet, &utxo, who, deposit).await;
    mine(&fed, N);
    wait_balance(&fed, who, deposit - Amount::from_sat(116), Duration::from_secs(60)).await;
    let from = fed.nodes[0].height().await.expect("height");
    let payee = BtcWallet::from_seed(53).script_pubkey();
    let amount = Amount::from_sat(200_000);
    // Validator 2 is frozen until validator 1 has died, so validator 1's commitment is likely among the
    // first three (the chain then waits out its share and excludes it); either way it never shares.
    fed.nodes[2].process.pause();
    let txid = burn(&fed, &user, &payee, amount).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while fed.nodes[1].process.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "validator 1 never committed: {}",
            fed.nodes[1].process.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fed.nodes[1].process.log_tail(50).contains("crash point reached"), "{}", fed.nodes[1].process.log_tail(30));
    fed.nodes[2].process.resume();
    // With validator 1 silent (f = 1) the other three sign by key path, in a later attempt if validator 1 was
    // among the first three committers.
    let s = wait_pegout(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(120)).await;
    let batch = s.batch.clone().expect("batch");
    assert_eq!(batch.signatures, "key path");
    let frost = batch.frost.clone().expect("the key-path signing shows");
    // If validator 1 was chosen in attempt 0, it was excluded and attempt 1 signed.
    assert!(frost.attempt == 0 || frost.excluded == vec![1], "{frost:?}");
    wait_in_mempool(&fed, &batch.btc_txid);
    key_path_batch(&fed, &batch.btc_txid);
    mine(&fed, 1 + N);
    wait_pegout(&fed, 0, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(held_by(&fed, 0, &payee), amount, "paid once, exactly");
    // Validator 1 comes back (fault switched off): its nonces are destroyed, never used.
    let datadir = fed.nodes[1].datadir.clone();
    fed.write_config(&datadir, "").expect("config");
    fed.nodes[1].process.restart().expect("restart");
    let tip = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[1], tip, Duration::from_secs(60)).await.expect("validator 1 catches up");
    let log = fed.nodes[1].process.log_tail(400);
    assert!(log.contains("destroyed unused FROST nonces of an earlier run"), "{log}");
    // On chain: validator 1 never shared; the batch was signed by the three others.
    let messages = frost_messages(&fed, 0, from, tip).await;
    println!("FROST messages: {messages:?}");
    assert!(!messages.iter().any(|(v, _, r)| *v == 1 && r == "share"), "{messages:?}");
    let last = messages.iter().filter(|(_, _, r)| r == "share").map(|(_, a, _)| *a).max().expect("shares");
    let signers: std::collections::BTreeSet<u16> =
        messages.iter().filter(|(_, a, r)| *a == last && r == "share").map(|(v, _, _)| *v).collect();
    assert_eq!(signers, [0, 2, 3].into(), "the attempt that signed: {messages:?}");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
