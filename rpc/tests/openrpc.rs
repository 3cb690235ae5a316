//! The `rpc.discover` document against the code: it lists exactly the methods the server registers, every
//! `$ref` in it resolves, and real values of every result type (from the test server, and built with the
//! types' constructors for the shapes the test chain never produces) validate against the derived schemas.

mod common;

use bitcoin::hashes::Hash;
use bitcoin::Amount;
use common::{Fixture, MemBackend};
use primitives::{AccountId, BtcHeight, Hash32, Height, Round, TxId, ValidatorIndex};
use rpc::openrpc;
use rpc::types::{
    BitcoinViewInfo, BitcoindState, BlockSummary, DepositInFlight, EmergencyInfo, EpochHoldingsInfo, HistoryEntryInfo,
    PegInFacts, PegInStatus, PegOutInfo, PegOutWaitInfo, PendingChangeInfo, SweepBatchInfo, TxInfo, TxKindInfo,
};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The document's method entry called `name`.
fn method<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["methods"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

/// A validator for `schema` (which may `$ref` the document's components), as a draft-07 root schema.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "allOf": [schema],
        "components": doc["components"],
    });
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

/// Asserts `value` is valid against `schema`, listing every violation if not.
fn assert_valid(doc: &Value, schema: &Value, value: &Value, what: &str) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: {value}\nviolates {schema}:\n{}", errors.join("\n"));
}

/// Asserts the serialization of `value` is valid against the result schema of `method`.
fn assert_result<T: Serialize>(doc: &Value, name: &str, value: &T) {
    let json = serde_json::to_value(value).unwrap();
    assert_valid(doc, &method(doc, name)["result"]["schema"], &json, name);
}

/// Every `$ref` in `v`, with where it is.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push((at.clone(), r)),
                    _ => refs(x, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| refs(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn the_document_lists_exactly_the_methods_the_server_registers() {
    let module = rpc::rpc_module(MemBackend::new()).unwrap();
    let registered: BTreeSet<String> = module.method_names().map(String::from).collect();
    let doc = openrpc::document();
    let listed = openrpc::method_names(&doc);
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "a method listed twice: {listed:?}");
    assert_eq!(unique, registered, "rpc.discover must list exactly the registered methods");
    assert!(registered.contains("unsubscribenewblocks") && registered.contains(openrpc::DISCOVER));
}

#[test]
fn the_document_is_json_and_every_ref_resolves() {
    let doc: Value = serde_json::from_str(&openrpc::document().to_string()).expect("the document parses");
    assert_eq!(doc, openrpc::document(), "the document is the same every time");
    assert!(doc["openrpc"].as_str().is_some_and(|v| v.starts_with("1.")), "OpenRPC 1.x");
    let schemas = doc["components"]["schemas"].as_object().expect("components/schemas");
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(found.len() > 50, "schemas are shared by $ref ({} refs)", found.len());
    let mut used = BTreeSet::new();
    for (at, r) in &found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{at}: {r} is not local"));
        assert!(doc.pointer(&r[1..]).is_some_and(Value::is_object), "{at}: {r} does not resolve");
        used.insert(name);
    }
    // Nothing generated for nothing: every component is used.
    let defined: BTreeSet<&str> = schemas.keys().map(String::as_str).collect();
    assert_eq!(defined, used);
    // Every schema compiles as draft 07, and every method has the parts OpenRPC requires.
    for schema in schemas.values() {
        validator(&doc, schema);
    }
    for m in doc["methods"].as_array().unwrap() {
        let name = m["name"].as_str().expect("a name");
        assert!(m["result"]["name"].is_string() && m["result"]["schema"].is_object(), "{name}");
        for p in m["params"].as_array().expect("params") {
            assert!(p["name"].is_string() && p["schema"].is_object() && p["required"].is_boolean(), "{name}: {p}");
            validator(&doc, &p["schema"]);
        }
        for e in m["errors"].as_array().expect("errors") {
            assert!(e["code"].is_i64() && e["message"].is_string(), "{name}: {e}");
        }
    }
}

#[test]
fn hashes_and_amounts_are_described_as_serde_writes_them() {
    let doc = openrpc::document();
    let s = &doc["components"]["schemas"];
    assert_eq!(s["Hash32"]["type"], "string");
    assert_eq!(s["Hash32"]["pattern"], "^[0-9a-f]{64}$");
    assert_eq!(s["Signature"]["pattern"], "^[0-9a-f]{128}$");
    assert_eq!(s["AccountInfo"]["properties"]["balance_sat"]["type"], "integer");
    // Optional parameters are the ones that take null; `getblock`'s block is a height or a hash.
    let params = &method(&doc, "getblock")["params"];
    assert_eq!((params[0]["required"].as_bool(), params[1]["required"].as_bool()), (Some(true), Some(false)));
    assert_valid(&doc, &params[0]["schema"], &json!(7), "a height");
    assert_valid(&doc, &params[0]["schema"], &json!("ab".repeat(32)), "a hash");
    let block_param = validator(&doc, &params[0]["schema"]);
    assert!(!block_param.is_valid(&json!("ab")) && !block_param.is_valid(&json!(-1)));
    // A wrong value fails: the schemas are not vacuous.
    let account = validator(&doc, &method(&doc, "getaccount")["result"]["schema"]);
    let good = serde_json::to_value(rpc::types::AccountInfo::new(AccountId(Hash32([1; 32])), None)).unwrap();
    assert!(account.is_valid(&good));
    for (key, bad) in [("balance_sat", json!("1")), ("account", json!([1, 2])), ("nonce", json!(-1))] {
        let mut v = good.clone();
        v[key] = bad;
        assert!(!account.is_valid(&v), "{key}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("balance_btc");
    assert!(!account.is_valid(&missing), "every field a result carries is required");
}

#[tokio::test]
async fn every_result_the_test_server_returns_validates() {
    let f = Fixture::start().await;
    let doc: Value = f.call(openrpc::DISCOVER, json!([])).await["result"].clone();
    assert_eq!(doc, openrpc::document());
    let tip = f.backend.tip_block();
    let txid = tip.block.txs[0].txid().to_string();
    let outpoint = format!("{txid}:0");
    let account = common::acct(1).to_string();
    let calls: Vec<(&str, Value)> = vec![
        ("getblockchaininfo", json!([])),
        ("getblockcount", json!([])),
        ("getblockhash", json!([1])),
        ("getblock", json!([2, 0])),
        ("getblock", json!([2])),
        ("getblock", json!([tip.block.hash().to_string(), 2])),
        ("getcommit", json!([1])),
        ("gettransaction", json!([txid])),
        ("getaccount", json!([account])),
        ("getaccount", json!([account, true])),
        ("getheaders", json!([1])),
        ("getheaders", json!([2, 2])),
        ("getmempoolinfo", json!([])),
        ("getrawmempool", json!([])),
        ("getpeerinfo", json!([])),
        ("getnetworkinfo", json!([])),
        ("getvalidators", json!([])),
        ("getevidence", json!([])),
        ("getfederationinfo", json!([])),
        ("getpeginaddress", json!([account])),
        ("getpegstatus", json!([outpoint])),
        ("claimpegin", json!([outpoint, account, txid])),
        ("getpegstatus", json!([outpoint, true])),
        ("getreserveproof", json!([])),
        ("listpegouts", json!([10, 0])),
        ("listtransactions", json!([account, 10, 0])),
        ("pausesigning", json!([])),
        ("resumesigning", json!([])),
        ("getconsensusstate", json!([])),
        ("getbitcoinview", json!([])),
    ];
    let mut answered = BTreeSet::new();
    for (name, params) in calls {
        let m = method(&doc, name);
        for (p, value) in m["params"].as_array().unwrap().iter().zip(params.as_array().unwrap()) {
            assert_valid(&doc, &p["schema"], value, &format!("{name} param {}", p["name"]));
        }
        let reply = f.call(name, params.clone()).await;
        let result = reply.get("result").unwrap_or_else(|| panic!("{name} {params}: {reply}"));
        assert_valid(&doc, &m["result"]["schema"], result, name);
        answered.insert(name);
    }
    // A pushed block validates against the notification schema.
    let summary = serde_json::to_value(BlockSummary::from(&tip.block)).unwrap();
    assert_valid(&doc, &method(&doc, "subscribenewblocks")["x-notification"]["schema"], &summary, "notification");
    // Methods left out above need state the test chain lacks (a burn, a halted peg, a federation
    // change); the values below and in `rare_shapes_validate` cover their result types.
    let names = openrpc::method_names(&doc);
    let rest: BTreeSet<&str> = names.iter().map(String::as_str).filter(|n| !answered.contains(n)).collect();
    assert_eq!(
        rest,
        BTreeSet::from([
            "sendrawtransaction",
            "getpegoutstatus",
            "approvefederationchange",
            "submitfederationchange",
            "resumepeg",
            "subscribenewblocks",
            "unsubscribenewblocks",
            openrpc::DISCOVER,
        ])
    );
}

fn pegout_wait() -> PegOutWaitInfo {
    PegOutWaitInfo::from(&ledger::pegout_wait::PegOutWait::NoSpendableCoin {
        have: Amount::ZERO,
        need: Amount::from_sat(50_500),
        reserved_by: vec![3],
        immature: Amount::ZERO,
    })
}

/// A burn in each stage the records give, with a batch, a payment and a wait.
fn pegouts() -> Vec<PegOutInfo> {
    let mut spk = vec![0x00, 0x14];
    spk.extend([7u8; 20]);
    let burn = ledger::pegout::BurnRecord {
        id: 4,
        owner: AccountId(Hash32([1; 32])),
        script_pubkey: spk,
        amount: Amount::from_sat(50_000),
        fee: Amount::from_sat(200),
        burned_at: Height(9),
        txid: TxId(Hash32([2; 32])),
        batch: Some(1),
        paid_in: None,
    };
    let batch = ledger::batching::BatchRecord {
        id: 1,
        kind: ledger::batching::BatchKind::Payout,
        epoch: 0,
        signers_needed: 3,
        change_epoch: 0,
        created_at: Height(10),
        burns: vec![4],
        inputs: vec![],
        change: None,
        fee: Amount::from_sat(300),
        vbytes: 150,
        unsigned_tx: vec![],
        txid: bitcoin::Txid::from_byte_array([3; 32]),
        shares: vec![(ValidatorIndex(0), vec![])],
        signed_at_anchor: None,
        earlier: vec![],
        priced_at_sat_vb: 2,
    };
    let mut bumped = batch.clone();
    bumped.earlier.push(batch.current_version());
    bumped.txid = bitcoin::Txid::from_byte_array([6; 32]);
    let net = bitcoin::Network::Regtest;
    let confirmed = BTreeMap::from([(bitcoin::Txid::from_byte_array([3; 32]), 130)]);
    let mut queued =
        PegOutInfo::new(&ledger::pegout::BurnRecord { batch: None, ..burn.clone() }, None, net, &confirmed);
    queued.wait = Some(pegout_wait());
    queued.waiting = Some("waiting: no spendable coin".into());
    let paid = ledger::pegout::BurnRecord {
        paid_in: Some(ledger::BtcAnchor { height: BtcHeight(120), hash: bitcoin::BlockHash::from_byte_array([5; 32]) }),
        ..burn.clone()
    };
    vec![
        queued,
        PegOutInfo::new(&burn, Some(&batch), net, &BTreeMap::new()),
        PegOutInfo::new(&burn, Some(&bumped), net, &confirmed),
        PegOutInfo::new(&paid, Some(&batch), net, &confirmed),
    ]
}

/// Every kind of transaction as `gettransaction` shows it.
/// One `listtransactions` entry of every kind.
fn history_kinds() -> Vec<HistoryEntryInfo> {
    use ledger::history::{HistoryEntry, HistoryKind};
    let a = AccountId(Hash32([7; 32]));
    let sat = Amount::from_sat;
    let mut p2wpkh = vec![0x00, 0x14];
    p2wpkh.extend([7u8; 20]);
    let outpoint = ledger::BtcOutPoint { txid: bitcoin::Txid::from_byte_array([5; 32]), vout: 1 };
    [
        HistoryKind::Sent { to: a, amount: sat(5), fee: sat(1) },
        HistoryKind::Received { from: a, amount: sat(5) },
        HistoryKind::Registered { fee: sat(1) },
        HistoryKind::Burned { burn_id: 3, amount: sat(5), fee: sat(1), btc_script_pubkey: p2wpkh },
        HistoryKind::Burned { burn_id: 4, amount: sat(5), fee: sat(1), btc_script_pubkey: vec![0x6a] },
        HistoryKind::Minted { outpoint, amount: sat(5), credited: sat(4), fee: sat(1) },
        HistoryKind::PaidOut { burn_id: 3, amount: sat(5), btc_txid: bitcoin::Txid::from_byte_array([6; 32]) },
    ]
    .into_iter()
    .map(|kind| {
        let e = HistoryEntry { height: Height(3), index: 1, txid: TxId(Hash32([2; 32])), kind };
        HistoryEntryInfo::new(&e, bitcoin::Network::Regtest)
    })
    .collect()
}

fn tx_kinds() -> Vec<TxInfo> {
    let txid = bitcoin::Txid::from_byte_array([4; 32]);
    let block = bitcoin::BlockHash::from_byte_array([5; 32]);
    let kinds = vec![
        TxKindInfo::Evidence { offender: ValidatorIndex(2), height: Height(3), round: Round(1) },
        TxKindInfo::Registerdeposit,
        TxKindInfo::Pegout { btc_script_pubkey: "0014".to_string() + &"07".repeat(20), amount: Amount::ONE_BTC },
        TxKindInfo::Reportreorg { validator: ValidatorIndex(1), btc_height: 100, btc_block_hash: block },
        TxKindInfo::Pegoutsignatures { validator: ValidatorIndex(1), batch: 2, btc_txid: txid, inputs: 3 },
        TxKindInfo::Reconfigure { activation_height: Height(50), validators: 5, peg_threshold: 4, approvals: 3 },
        TxKindInfo::Settle { batch: 2, btc_txid: txid, btc_block_hash: block, btc_height: 101 },
        TxKindInfo::Feeratevote { validator: ValidatorIndex(0), sat_per_vb: 12 },
        TxKindInfo::Resumepeg { validator: ValidatorIndex(3), btc_height: 99, btc_block_hash: block },
        TxKindInfo::Mint {
            btc_outpoint: bitcoin::OutPoint { txid, vout: 7 },
            recipient: AccountId(Hash32([8; 32])),
            amount: Amount::from_sat(50_000),
            btc_block_hash: block,
            btc_height: 98,
        },
    ];
    kinds
        .into_iter()
        .map(|kind| TxInfo {
            txid: TxId(Hash32([9; 32])),
            hex: "00".into(),
            signer: None,
            from: None,
            nonce: None,
            fee: Amount::ZERO,
            kind,
            signature: None,
        })
        .collect()
}

#[tokio::test]
async fn rare_shapes_validate() {
    let f = Fixture::start().await;
    let doc = openrpc::document();
    for p in pegouts() {
        assert_result(&doc, "getpegoutstatus", &p);
    }
    assert_result(&doc, "listpegouts", &pegouts());
    assert_result(&doc, "listtransactions", &history_kinds());
    for tx in tx_kinds() {
        let mut info: Value =
            f.call("gettransaction", json!([f.backend.tip_block().block.txs[0].txid()])).await["result"].clone();
        info["tx"] = serde_json::to_value(&tx).unwrap();
        assert_valid(&doc, &method(&doc, "gettransaction")["result"]["schema"], &info, &format!("{:?}", tx.kind));
    }
    // A minted deposit, and one below the minimum.
    let record = ledger::PegInRecord {
        recipient: AccountId(Hash32([7; 32])),
        amount: Amount::from_sat(50_000),
        credited: Amount::from_sat(49_000),
        fee: Amount::from_sat(1_000),
        btc_block: ledger::BtcAnchor { height: BtcHeight(105), hash: bitcoin::BlockHash::from_byte_array([3; 32]) },
        minted_at: Height(12),
        mint_txid: TxId(Hash32([9; 32])),
    };
    let outpoint = bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([1; 32]), vout: 1 };
    let facts = PegInFacts {
        record: Some(record),
        minted_time_ms: Some(1_700_000_000_000),
        btc_best_height: Some(110),
        confirmations_required: 6,
        ..PegInFacts::default()
    };
    assert_result(&doc, "getpegstatus", &PegInStatus::new(outpoint, &facts));
    // A node with a bitcoind and a deposit in flight.
    let view = BitcoinViewInfo {
        bitcoind: BitcoindState::Ok,
        best_height: Some(110),
        lag_blocks: Some(5),
        deposits: vec![DepositInFlight {
            outpoint: outpoint.to_string(),
            recipient: AccountId(Hash32([7; 32])),
            amount: Amount::from_sat(60_000),
            btc_height: 108,
            btc_block_hash: bitcoin::BlockHash::from_byte_array([2; 32]).to_string(),
            confirmations: 3,
        }],
        ..BitcoinViewInfo::without_bitcoind(105, 6)
    };
    assert_result(&doc, "getbitcoinview", &view);
    // A federation mid-change: a pending set, an old wallet being swept, the emergency path.
    let mut fed: rpc::types::FederationInfo =
        serde_json::from_value(f.call("getfederationinfo", json!([])).await["result"].clone()).unwrap();
    let validators = fed.changes.validators.clone();
    fed.changes.pending = Some(PendingChangeInfo {
        epoch: 1,
        activation_height: Height(40),
        peg_threshold: 3,
        validators: validators.clone(),
        descriptor: "wsh(sortedmulti(3,...))".into(),
    });
    fed.changes.wallets.push(EpochHoldingsInfo {
        epoch: 0,
        in_force: false,
        from_height: Height(0),
        until_height: Some(Height(40)),
        deposit_window_ends: Some(Height(140)),
        address: "bcrt1qold".into(),
        utxos: 2,
        amount: Amount::from_sat(90_000),
        refresh_due: 1,
        batches: vec![SweepBatchInfo {
            id: 5,
            kind: "sweep".into(),
            btc_txid: bitcoin::Txid::from_byte_array([6; 32]).to_string(),
            inputs: 2,
            signatures: "1/3".into(),
            to_epoch: 1,
            fee: Amount::from_sat(400),
        }],
    });
    fed.changes.emergency = Some(EmergencyInfo {
        threshold: 2,
        keys: vec![ledger::testkit::validator_peg_key(0), ledger::testkit::validator_peg_key(1)],
        delay_blocks: 4032,
        refresh_margin_blocks: 144,
    });
    assert_result(&doc, "getfederationinfo", &fed);
    // The federation-change methods: a proposal and approval in, an approval and a txid out.
    let chain = &f.backend.chain;
    let proposal = ledger::FederationProposal {
        validators: chain.genesis().validators.clone(),
        peg_threshold: 3,
        activation_height: Height(1_000),
    };
    let approval = proposal.approve(ValidatorIndex(0), 0, &ledger::testkit::validator_key(0), chain.genesis_hash());
    let change = ledger::ReconfigureTx { proposal: proposal.clone(), approvals: vec![approval.clone()] };
    let approve = method(&doc, "approvefederationchange");
    assert_valid(&doc, &approve["params"][0]["schema"], &serde_json::to_value(&proposal).unwrap(), "proposal");
    assert_result(&doc, "approvefederationchange", &approval);
    let submit = method(&doc, "submitfederationchange");
    assert_valid(&doc, &submit["params"][0]["schema"], &serde_json::to_value(&change).unwrap(), "change");
    assert_result(&doc, "submitfederationchange", &change.txid());
    assert_result(&doc, "sendrawtransaction", &Hash32([1; 32]));
    assert_result(&doc, "resumepeg", &"vote recorded".to_string());
}
