//! Every method against the real jsonrpsee server over an in-memory backend: one good call each through
//! the typed client, and bad calls with the documented error codes over raw JSON.

mod common;

use bitcoin::Amount;
use common::{acct, Fixture, CLAIM_AMOUNT, CLAIM_BTC_HEIGHT, FEE, MOCK_BTC_BEST};
use consensus::{CommitCertificate, ValidatorSet};
use ledger::testkit::{transfer, user_key};
use primitives::{AccountId, Hash32, Height};
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
    let a = c.get_account(acct(2), None).await.unwrap();
    assert_eq!(a.balance, Amount::from_sat(1_000_007_000));
    assert_eq!(a.balance_btc, "10.00007000");
    let nobody = primitives::AccountId(Hash32([9; 32]));
    let z = c.get_account(nobody, None).await.unwrap();
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

    // The peg: genesis balances only, none of them backed, and the reserve is fine.
    let genesis_supply = Amount::from_sat(3 * 1_000_000_000);
    assert_eq!(
        (info.peg.supply, info.peg.genesis_supply, info.peg.btc_held),
        (genesis_supply, genesis_supply, Amount::ZERO)
    );
    assert!(info.peg.reserve_ok);
    let fed = c.get_federation_info().await.unwrap();
    assert_eq!(fed.pegin_fee, f.backend.chain.pegin_fee());
    assert_eq!(
        (fed.peg_totals.supply, fed.peg_totals.deposits, fed.peg_totals.minted),
        (genesis_supply, 0, Amount::ZERO)
    );

    // getpegstatus and claimpegin: nothing known, a claim, then the claim pending (the mock's bitcoind
    // confirms every claim).
    let outpoint = format!("{}:1", "ab".repeat(32));
    let block = "cd".repeat(32);
    let s = c.get_peg_status(outpoint.clone(), None).await.unwrap();
    assert_eq!((s.stage, s.recipient, s.confirmations_required), (PegInStage::Unknown, None, 6));
    assert_eq!(s.outpoint.to_string(), outpoint);
    let r = c.claim_pegin(outpoint.clone(), acct(1).to_string(), block.clone()).await.unwrap();
    assert_eq!((r.status, r.recipient), (ClaimStatus::Submitted, acct(1)));
    assert_eq!((r.outpoint.to_string(), r.btc_block_hash.to_string()), (outpoint.clone(), block.clone()));
    let s = c.get_peg_status(outpoint.clone(), None).await.unwrap();
    assert_eq!((s.stage, s.recipient, s.amount), (PegInStage::ClaimPending, Some(acct(1)), Some(CLAIM_AMOUNT)));
    assert_eq!((s.btc_height, s.confirmations), (Some(CLAIM_BTC_HEIGHT), Some(MOCK_BTC_BEST - CLAIM_BTC_HEIGHT + 1)));
    assert_eq!((s.btc_block_hash.map(|h| h.to_string()), s.registration_live), (Some(block), Some(false)));
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
        ("listtransactions", json!([unknown, 1001]), errors::INVALID_PARAMETER),
        ("listtransactions", json!([unknown, 101, 0, true]), errors::INVALID_PARAMETER),
        ("listtransactions", json!(["not-an-account"]), errors::INVALID_PARAMS),
        ("listtransactions", json!([unknown, -1]), errors::INVALID_PARAMS),
        ("getaccount", json!([]), errors::INVALID_PARAMS),
        ("getaccount", json!([unknown, "yes"]), errors::INVALID_PARAMS),
        ("getheaders", json!([0]), errors::INVALID_PARAMETER),
        ("getheaders", json!([1, -1]), errors::INVALID_PARAMS),
        ("getheaders", json!([]), errors::INVALID_PARAMS),
        ("sendrawtransaction", json!(["zz"]), errors::DESERIALIZATION_ERROR),
        ("sendrawtransaction", json!(["00ff"]), errors::DESERIALIZATION_ERROR),
        ("sendrawtransaction", json!([5]), errors::INVALID_PARAMS),
        ("nosuchmethod", json!([]), errors::METHOD_NOT_FOUND),
    ];
    let txid = "ab".repeat(32);
    let (op, hash, account) = (format!("{txid}:0"), "cd".repeat(32), acct(1).to_string());
    let peg_cases: Vec<(&str, serde_json::Value, i32)> = vec![
        ("getpegstatus", json!(["nope"]), errors::INVALID_PARAMETER),
        ("getpegstatus", json!([txid]), errors::INVALID_PARAMETER),
        ("getpegstatus", json!([format!("{txid}:x")]), errors::INVALID_PARAMETER),
        ("getpegstatus", json!([format!("{txid}:4294967296")]), errors::INVALID_PARAMETER),
        ("getpegstatus", json!([":0"]), errors::INVALID_PARAMETER),
        ("getpegstatus", json!([5]), errors::INVALID_PARAMS),
        ("getpegstatus", json!([]), errors::INVALID_PARAMS),
        ("claimpegin", json!(["nope", account, hash]), errors::INVALID_PARAMETER),
        ("claimpegin", json!([op, "not-an-account", hash]), errors::INVALID_PARAMETER),
        ("claimpegin", json!([op, account, "00"]), errors::INVALID_PARAMETER),
        ("claimpegin", json!([op, account]), errors::INVALID_PARAMS),
        ("claimpegin", json!([op, account, 7]), errors::INVALID_PARAMS),
    ];
    for (method, params, code) in cases.into_iter().chain(peg_cases) {
        let (got, msg) = f.error_code(method, params.clone()).await;
        assert_eq!(got, i64::from(code), "{method} {params}: {msg}");
    }
    let (_, msg) = f.error_code("getblockhash", json!([3])).await;
    assert!(msg.contains("out of range") && msg.contains("1..=2"), "{msg}");
    let (_, msg) = f.error_code("getblock", json!([unknown])).await;
    assert!(msg.contains("block not found"), "{msg}");
    let (_, msg) = f.error_code("getpegstatus", json!(["nope"])).await;
    assert!(msg.contains("txid:vout") && msg.contains("\"nope\""), "{msg}");
    let (_, msg) = f.error_code("claimpegin", json!([op, account, "00"])).await;
    assert!(msg.contains("block hash"), "{msg}");
    // A second claim of the same deposit: -27 with the reason.
    let first = f.call("claimpegin", json!([op, account, hash])).await;
    assert_eq!(first["result"]["status"], "submitted", "{first}");
    let (code, msg) = f.error_code("claimpegin", json!([op, account, hash])).await;
    assert_eq!(code, i64::from(errors::ALREADY_IN_CHAIN));
    assert!(msg.contains("already pending"), "{msg}");

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
        ("listtransactions", json!([hash])),
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
        ("getpegstatus", json!([format!("{hash}:0")])),
        ("claimpegin", json!([format!("{hash}:0"), hash, hash])),
    ];
    for (method, params) in calls {
        let (code, msg) = f.error_code(method, params).await;
        assert_eq!(code, i64::from(errors::INTERNAL_ERROR), "{method}: {msg}");
        assert!(msg.contains("node storage read failed"), "{method}: {msg}");
    }
}

/// `listtransactions`: what each block did to the account, newest first, paged; an account that did
/// nothing has an empty history; a node without the index says so with -1.
#[tokio::test]
async fn listtransactions_lists_an_accounts_history_newest_first_in_pages() {
    let f = Fixture::start().await;
    let c = f.client();
    // User 1 received 5,000 from user 0 in block 1, then sent 7,000 to user 2 in block 2.
    let all = c.list_transactions(acct(1), None, None, None).await.unwrap();
    let shown: Vec<(Height, HistoryKindInfo)> = all.iter().map(|e| (e.height, e.kind.clone())).collect();
    assert_eq!(
        shown,
        vec![
            (Height(2), HistoryKindInfo::Sent { to: acct(2), amount: Amount::from_sat(7_000), fee: FEE }),
            (Height(1), HistoryKindInfo::Received { from: acct(0), amount: Amount::from_sat(5_000) }),
        ]
    );
    let tip = f.backend.tip_block();
    assert_eq!((all[0].txid, all[0].index), (tip.block.txs[0].txid(), 0));
    assert_eq!(c.list_transactions(acct(1), Some(1), Some(1), None).await.unwrap(), all[1..].to_vec());
    assert_eq!(c.list_transactions(acct(1), Some(1), None, None).await.unwrap(), all[..1].to_vec());
    assert!(c.list_transactions(acct(1), None, Some(2), None).await.unwrap().is_empty());
    // The sender of block 1 and the recipient of block 2 see their side only.
    let sent = c.list_transactions(acct(0), None, None, None).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(matches!(sent[0].kind, HistoryKindInfo::Sent { to, .. } if to == acct(1)));
    assert!(c.list_transactions(AccountId(Hash32([0xee; 32])), None, None, None).await.unwrap().is_empty());

    f.backend.history_off.store(true, Ordering::SeqCst);
    let (code, msg) = f.error_code("listtransactions", json!([acct(1)])).await;
    assert_eq!(code, i64::from(errors::MISC_ERROR), "{msg}");
    assert!(msg.contains("history"), "{msg}");
}
