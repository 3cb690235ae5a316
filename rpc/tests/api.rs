//! Every method against the real jsonrpsee server over an in-memory backend: one good call each through
//! the typed client, and bad calls with the documented error codes over raw JSON.

mod common;

use bitcoin::Amount;
use common::{acct, Fixture, FEE};
use consensus::{CommitCertificate, ValidatorSet};
use ledger::testkit::{transfer, user_key};
use primitives::{Hash32, Height};
use rpc::errors;
use rpc::types::*;
use rpc::{BlockRef, SidechainApiClient};
use serde_json::json;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn typed_client_round_trips_every_method() {
    let f = Fixture::start().await;
    let c = f.client();
    let tip = f.backend.tip_block();

    let info = c.get_blockchain_info().await.unwrap();
    assert_eq!(info.chain_id, "fedpeg-test");
    assert_eq!(info.height, Height(2));
    assert_eq!(info.best_block_hash, tip.block.hash());
    assert_eq!(info.genesis_hash, *f.backend.chain.genesis_hash());
    assert_eq!(info.state_root, tip.block.header.state_root);
    assert_eq!(info.min_fee, FEE);
    assert_eq!(info.peg_status, PegStatus::Active);

    assert_eq!(c.get_block_count().await.unwrap(), Height(2));
    assert_eq!(c.get_block_hash(Height(2)).await.unwrap(), tip.block.hash());

    // getblock: by height and by hash, three verbosities.
    let GetBlockResult::Hex(hex) = c.get_block(BlockRef::Height(Height(2)), Some(0)).await.unwrap() else {
        panic!("verbosity 0 is hex");
    };
    let decoded: ledger::Block = borsh::from_slice(&hex::decode(hex).unwrap()).unwrap();
    assert_eq!(decoded, tip.block);
    let GetBlockResult::Json(b1) = c.get_block(BlockRef::Hash(tip.block.hash()), None).await.unwrap() else {
        panic!("default verbosity is json");
    };
    assert_eq!(b1.height, Height(2));
    assert_eq!(b1.confirmations, 1);
    assert_eq!(b1.tx, BlockTxs::Ids(vec![tip.block.txs[0].txid()]));
    assert_eq!(b1.commit.block_hash, tip.block.hash());
    let GetBlockResult::Json(b2) = c.get_block(BlockRef::Height(Height(1)), Some(2)).await.unwrap() else {
        panic!("verbosity 2 is json");
    };
    assert_eq!(b2.confirmations, 2);
    let BlockTxs::Full(txs) = &b2.tx else { panic!("verbosity 2 has full txs") };
    assert_eq!(txs[0].kind, TxKindInfo::Transfer { to: acct(1), amount: Amount::from_sat(5_000) });
    assert_eq!(txs[0].fee, FEE);

    // getcommit: the certificate verifies alone against the validator set.
    let commit = c.get_commit(Height(2)).await.unwrap();
    let cert: CommitCertificate = borsh::from_slice(&hex::decode(&commit.hex).unwrap()).unwrap();
    let set =
        ValidatorSet::new(f.backend.chain.genesis().validators.iter().map(|v| (v.consensus_key, v.power)).collect())
            .unwrap();
    cert.verify(&set, f.backend.chain.genesis_hash(), Height(2)).unwrap();
    assert_eq!(commit.signatures.len(), 4);

    // gettransaction: committed.
    let txid = tip.block.txs[0].txid();
    let t = c.get_transaction(txid).await.unwrap();
    assert_eq!((t.status, t.height, t.index, t.confirmations), (TxStatus::Committed, Some(Height(2)), Some(0), 1));

    // getaccount: known and unknown.
    let a = c.get_account(acct(2)).await.unwrap();
    assert_eq!(a.balance, Amount::from_sat(1_000_007_000));
    assert_eq!(a.balance_btc, "10.00007000");
    let nobody = primitives::AccountId(Hash32([9; 32]));
    let z = c.get_account(nobody).await.unwrap();
    assert_eq!((z.balance, z.nonce), (Amount::ZERO, 0));

    // sendrawtransaction, then the mempool methods and gettransaction from the mempool see it.
    let tx = transfer(&f.backend.chain, &user_key(0), 1, acct(2), Amount::from_sat(1), FEE);
    let sent = c.send_raw_transaction(hex::encode(borsh::to_vec(&tx).unwrap())).await.unwrap();
    assert_eq!(sent, tx.txid());
    let m = c.get_mempool_info().await.unwrap();
    assert_eq!(m.size, 1);
    assert!(m.bytes > 0);
    assert_eq!(c.get_raw_mempool().await.unwrap(), vec![sent]);
    let pending = c.get_transaction(sent).await.unwrap();
    assert_eq!((pending.status, pending.confirmations, pending.height), (TxStatus::Mempool, 0, None));
    assert_eq!(pending.tx.hex, hex::encode(borsh::to_vec(&tx).unwrap()));

    assert_eq!(c.get_peer_info().await.unwrap().len(), 1);
    assert_eq!(c.get_network_info().await.unwrap().connections, 1);
    let vals = c.get_validators().await.unwrap();
    assert_eq!(vals.len(), 4);
    assert_eq!(vals[3].index.0, 3);
    let ev = c.get_evidence().await.unwrap();
    assert_eq!((ev[0].offender.0, ev[0].kind), (3, EquivocationKind::Votes));
}

#[tokio::test]
async fn bad_calls_have_the_documented_codes() {
    let f = Fixture::start().await;
    let unknown = "ab".repeat(32);
    let cases: Vec<(&str, serde_json::Value, i32)> = vec![
        ("getblockhash", json!([0]), errors::INVALID_PARAMETER),
        ("getblockhash", json!([3]), errors::INVALID_PARAMETER),
        ("getblockhash", json!(["one"]), errors::INVALID_PARAMS),
        ("getblockhash", json!([-1]), errors::INVALID_PARAMS),
        ("getblock", json!([99]), errors::INVALID_PARAMETER),
        ("getblock", json!([unknown]), errors::NOT_FOUND),
        ("getblock", json!(["zz"]), errors::INVALID_PARAMS),
        ("getblock", json!([1, 3]), errors::INVALID_PARAMETER),
        ("getblock", json!([]), errors::INVALID_PARAMS),
        ("getcommit", json!([99]), errors::INVALID_PARAMETER),
        ("getcommit", json!(["x"]), errors::INVALID_PARAMS),
        ("gettransaction", json!([unknown]), errors::NOT_FOUND),
        ("gettransaction", json!([12]), errors::INVALID_PARAMS),
        ("getaccount", json!(["not-an-account"]), errors::INVALID_PARAMS),
        ("getaccount", json!([]), errors::INVALID_PARAMS),
        ("sendrawtransaction", json!(["zz"]), errors::DESERIALIZATION_ERROR),
        ("sendrawtransaction", json!(["00ff"]), errors::DESERIALIZATION_ERROR),
        ("sendrawtransaction", json!([5]), errors::INVALID_PARAMS),
        ("nosuchmethod", json!([]), errors::METHOD_NOT_FOUND),
    ];
    for (method, params, code) in cases {
        let (got, msg) = f.error_code(method, params.clone()).await;
        assert_eq!(got, i64::from(code), "{method} {params}: {msg}");
    }
    let (_, msg) = f.error_code("getblockhash", json!([3])).await;
    assert!(msg.contains("out of range") && msg.contains("1..=2"), "{msg}");
    let (_, msg) = f.error_code("getblock", json!([unknown])).await;
    assert!(msg.contains("block not found"), "{msg}");

    // The mempool's reason reaches the user: a nonce gap.
    let tx = transfer(&f.backend.chain, &user_key(0), 5, acct(2), Amount::from_sat(1), FEE);
    let (code, msg) = f.error_code("sendrawtransaction", json!([hex::encode(borsh::to_vec(&tx).unwrap())])).await;
    assert_eq!(code, i64::from(errors::VERIFY_REJECTED));
    assert!(msg.contains("expected nonce 1, got 5"), "{msg}");
    // Fee below the minimum.
    let tx = transfer(&f.backend.chain, &user_key(0), 1, acct(2), Amount::from_sat(1), Amount::from_sat(1));
    let (code, msg) = f.error_code("sendrawtransaction", json!([hex::encode(borsh::to_vec(&tx).unwrap())])).await;
    assert_eq!(code, i64::from(errors::VERIFY_REJECTED));
    assert!(msg.contains("below the minimum"), "{msg}");

    // Malformed requests: jsonrpsee's codes.
    let r = f.post("{not json").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], errors::PARSE_ERROR);
    // jsonrpsee treats JSON that is not a request object as unparseable.
    let r = f.post(r#"{"hello":"world"}"#).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], errors::PARSE_ERROR);
    let r = f.post("[]").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], errors::INVALID_REQUEST);
}

#[tokio::test]
async fn backend_failure_is_an_internal_error_for_every_method() {
    let f = Fixture::start().await;
    f.backend.fail.store(true, Ordering::SeqCst);
    let hash = "ab".repeat(32);
    let tx = transfer(&f.backend.chain, &user_key(0), 1, acct(2), Amount::from_sat(1), FEE);
    let calls: Vec<(&str, serde_json::Value)> = vec![
        ("getblockchaininfo", json!([])),
        ("getblockcount", json!([])),
        ("getblockhash", json!([1])),
        ("getblock", json!([1])),
        ("getcommit", json!([1])),
        ("gettransaction", json!([hash])),
        ("getaccount", json!([hash])),
        ("sendrawtransaction", json!([hex::encode(borsh::to_vec(&tx).unwrap())])),
        ("getmempoolinfo", json!([])),
        ("getrawmempool", json!([])),
        ("getpeerinfo", json!([])),
        ("getnetworkinfo", json!([])),
        ("getvalidators", json!([])),
        ("getevidence", json!([])),
        ("getconsensusstate", json!([])),
        ("getfederationinfo", json!([])),
        ("getpeginaddress", json!([hash])),
    ];
    for (method, params) in calls {
        let (code, msg) = f.error_code(method, params).await;
        assert_eq!(code, i64::from(errors::INTERNAL_ERROR), "{method}: {msg}");
        assert!(msg.contains("node storage read failed"), "{method}: {msg}");
    }
}
