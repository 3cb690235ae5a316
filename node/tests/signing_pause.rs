//! The operator's signing switch on real processes and real bitcoinds: with `pausesigning` on two of four
//! validators (so the other two cannot reach the 3-of-4 threshold alone) a peg-out batch gets no share from
//! the paused ones while the chain keeps committing; the pause survives a kill -9 and restart; after
//! `resumesigning` the validator's share reaches a block and the batch is paid exactly once.

mod common;

use bitcoin::{Amount, ScriptBuf};
use common::*;
use ledger::{UserTx, UserTxKind};
use primitives::{Keypair, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{BlockTxs, GetBlockResult, PegOutInfo, PegOutStage, TxKindInfo};
use std::time::{Duration, Instant};
use testnet::btc_wallet::BtcWallet;
use testnet::federation::Federation;
use testnet::scenario::{Checks, Scenario};

/// The peg-in fee at 2 sat/vB: one 132 vB deposit input of the 3-of-4 federation.
const PEGIN_FEE: Amount = Amount::from_sat(264);

/// A burn of `amount` to `script`, paying the least fee at 2 sat/vB.
fn burn_tx(user: &Keypair, nonce: u64, script: &ScriptBuf, amount: Amount) -> UserTx {
    // Above the least peg-out fee (min_fee plus a lone batch at twice the agreed rate: under 1,000 sat here).
    let fee = Amount::from_sat(2_000);
    UserTx {
        signer: user.public(),
        nonce,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount },
    }
}

async fn pegout_status(fed: &Federation, i: usize, txid: TxId) -> Option<PegOutInfo> {
    fed.nodes[i].client().expect("client").get_pegout_status(txid.to_string(), None).await.ok()
}

/// Waits (bounded) until node `i` shows the burn at `stage` or later.
async fn wait_stage(fed: &Federation, i: usize, txid: TxId, stage: PegOutStage, bound: Duration) -> PegOutInfo {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(s) = pegout_status(fed, i, txid).await.filter(|s| s.stage >= stage) {
            return s;
        }
        assert!(Instant::now() < deadline, "burn {txid} not {stage:?}: {}", fed.nodes[i].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The signers of every share for `batch` in blocks `from..=to` of node 0.
async fn share_signers(fed: &Federation, batch: u64, from: u64, to: u64) -> Vec<u16> {
    let c = fed.nodes[0].client().expect("client");
    let mut out = Vec::new();
    for h in from..=to {
        let block = c.get_block(rpc::api::BlockRef::Height(primitives::Height(h)), Some(2)).await.expect("block");
        let GetBlockResult::Json(b) = block else { panic!("verbosity 2 gives JSON") };
        // An empty block's list reads back as ids (untagged JSON): nothing to see there.
        let BlockTxs::Full(txs) = &b.tx else { continue };
        for t in txs {
            if let TxKindInfo::Pegoutsignatures { validator, batch: id, .. } = &t.kind {
                if *id == batch {
                    out.push(validator.get());
                }
            }
        }
    }
    out
}

async fn paused(fed: &Federation, i: usize) -> bool {
    fed.nodes[i].client().expect("client").get_blockchain_info().await.expect("info").signing.paused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_validator_releases_no_share_across_a_restart_and_signs_again_once_resumed() {
    let scenario = Scenario::begin("signing_pause");
    let user = Keypair::from_secret([47; 32]);
    let who = user.public().account_id();
    let deposit = Amount::from_sat(1_000_000);
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 });
    let mut fed = start_with(Vec::new(), Some(params));
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let (wallet, utxo) = funded_wallet(&fed, 13).await;
    register(&fed, &user).await;
    pay_deposit(&fed, &wallet, &utxo, who, deposit).await;
    mine(&fed, N);
    wait_balance(&fed, who, deposit - PEGIN_FEE, Duration::from_secs(60)).await;

    // Validators 2 and 3 pause (one through the CLI, one through the RPC): 0 and 1 alone are 2 of 3.
    let (ok, out) = cli(&fed, 3, &["pausesigning"]).await;
    assert!(ok && out.contains("PAUSED"), "{out}");
    let s = fed.nodes[2].client().expect("client").pause_signing().await.expect("pausesigning");
    assert!(s.paused && s.paused_since_ms.is_some(), "{s:?}");
    assert!(paused(&fed, 3).await && paused(&fed, 2).await && !paused(&fed, 0).await);
    assert_eq!(fed.nodes[3].metric("sidechain_peg_signing_paused").expect("metrics"), Some(1.0));
    assert!(fed.nodes[3].process.log_tail(50).contains("peg signing PAUSED"), "the pause is logged");

    let payee = BtcWallet::from_seed(57).script_pubkey();
    let amount = Amount::from_sat(300_000);
    let c = fed.nodes[0].client().expect("client");
    let genesis = c.get_blockchain_info().await.expect("info").genesis_hash;
    let signed = burn_tx(&user, 1, &payee, amount).sign(&user, &genesis);
    let txid = c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&signed))).await.expect("burn");
    let s = wait_stage(&fed, 0, txid, PegOutStage::Signed, Duration::from_secs(90)).await;
    let batch = s.batch.expect("batch").id;
    let batched_at = fed.nodes[0].height().await.expect("height");

    // The chain commits on (every validator votes and proposes), the batch waits at 2 of 3.
    fed.wait_height(&[0, 1, 2, 3], batched_at + 8, Duration::from_secs(60)).await.expect("the chain goes on");
    let s = pegout_status(&fed, 0, txid).await.expect("status");
    assert_eq!((s.stage, s.batch.expect("batch").signatures.as_str()), (PegOutStage::Signed, "2/3"));

    // Validator 3 dies (kill -9) and comes back: still paused, still no share from it.
    fed.nodes[3].process.kill9();
    fed.nodes[3].process.restart().expect("restart");
    let tip = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[3], tip + 3, Duration::from_secs(60)).await.expect("validator 3 catches up");
    assert!(paused(&fed, 3).await, "a restart does not unpause: {}", fed.nodes[3].process.log_tail(20));
    assert!(fed.nodes[3].process.log_tail(200).contains("PAUSED by an operator (kept across restarts)"));
    let tip = fed.nodes[0].height().await.expect("height");
    let signers = share_signers(&fed, batch, 1, tip).await;
    assert!(!signers.contains(&2) && !signers.contains(&3), "a paused validator's share reached a block: {signers:?}");
    assert_eq!(pegout_status(&fed, 0, txid).await.expect("status").stage, PegOutStage::Signed);

    // Validator 3 resumes: its share goes out at once and the batch reaches its threshold.
    let (ok, out) = cli(&fed, 3, &["resumesigning"]).await;
    assert!(ok && out.contains("active"), "{out}");
    let s = wait_stage(&fed, 0, txid, PegOutStage::Broadcast, Duration::from_secs(60)).await;
    assert_eq!(s.batch.as_ref().expect("batch").signatures, "3/3");
    let tip = fed.nodes[0].height().await.expect("height");
    let mut signers = share_signers(&fed, batch, 1, tip).await;
    signers.sort_unstable();
    assert_eq!(signers, vec![0, 1, 3], "validator 3 signed once resumed; validator 2, still paused, did not");

    // Paid exactly once.
    let btc_txid = s.batch.expect("batch").btc_txid;
    testnet::wait::wait_until(&format!("batch {btc_txid} in bitcoind0's mempool"), Duration::from_secs(60), || {
        Ok(fed.bitcoinds[0].call::<Vec<String>>("getrawmempool", &[])?.contains(&btc_txid))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", fed.nodes[0].process.log_tail(40)));
    mine(&fed, 1 + N);
    wait_stage(&fed, 0, txid, PegOutStage::Final, Duration::from_secs(60)).await;
    assert_eq!(held_by(&fed, 0, &payee), amount);
    fed.nodes[2].client().expect("client").resume_signing().await.expect("resumesigning");
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
