//! Taproot custody end to end with real processes (issue 23): the validators run `sidechaind ceremony`
//! before the genesis, the genesis carries the DKG transcript, every validator loads its FROST key share,
//! a deposit to a `tr()` address bound to its recipient is minted, and a burn is paid by a batch that
//! spends that taproot output in the `multi_a` leaf (the chain does not carry FROST rounds yet), which
//! bitcoind accepts, priced so its fee rate holds; the reserve holds throughout.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taproot_federation_pegs_in_and_out_through_tr_outputs_that_bitcoind_accepts() {
    let scenario = Scenario::begin("taproot_peg");
    let mut fed = Federation::start(FederationConfig {
        genesis_params: Some(serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 })),
        validators: 4,
        full_nodes: 1,
        bitcoind: true,
        initial_accounts: vec![sponsor_account()],
        taproot: true,
        ..Default::default()
    })
    .expect("federation starts");
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
    // Signed in the fallback leaf for now, so the peg-in fee is the leaf's input at 2 sat/vB (135 vB), not
    // the wsh wallet's 132.
    let pegin_fee = info.pegin_fee;
    assert_eq!(pegin_fee, Amount::from_sat(270));

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

    // Peg-out: batched, signed by three validators in the leaf, accepted by bitcoind, paid exactly.
    let payee = BtcWallet::from_seed(51).script_pubkey();
    let amount = Amount::from_sat(300_000);
    let fee = ledger::pegout::pegout_fee(Amount::from_sat(100), 2, info.pegout_batch_share_vbytes, &payee);
    let burn = UserTx {
        signer: user.public(),
        nonce: 1,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: payee.to_bytes(), amount },
    };
    let genesis = c.get_blockchain_info().await.expect("info").genesis_hash;
    let signed = burn.sign(&user, &genesis);
    let txid = c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&signed))).await.expect("burn accepted");
    let s = wait_pegout(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(90)).await;
    let batch = s.batch.clone().expect("batch");
    wait_in_mempool(&fed, &batch.btc_txid);
    let raw: String =
        fed.bitcoinds[0].call("getrawtransaction", &[serde_json::json!(batch.btc_txid)]).expect("raw batch");
    let tx: bitcoin::Transaction =
        bitcoin::consensus::deserialize(&hex::decode(raw).expect("hex")).expect("a transaction");
    for input in &tx.input {
        // The multi_a leaf: one item per peg key (three signatures, one empty), the leaf script, the control
        // block.
        assert_eq!(input.witness.len(), 4 + 2, "{:?}", input.witness);
        assert_eq!(input.witness.iter().filter(|w| w.len() == 64).count(), 3);
    }
    assert!(tx.vsize() as u64 <= batch.vbytes, "the leaf plan bounds the signed size");
    mine(&fed, 1);
    assert_eq!(held_by(&fed, 3, &payee), amount, "the payee holds exactly the burned amount");
    mine(&fed, N);
    wait_pegout(&fed, 4, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    let totals = c.get_federation_info().await.expect("info").peg_totals;
    assert_eq!(totals.unpaid_burns, Amount::ZERO);
    assert_eq!(held_by(&fed, 2, &plain), totals.btc_held, "state's BTC held is the tr() change bitcoind shows");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
