//! `sidechain-cli pegin --fund` against a real regtest bitcoind: [`wallet::btc_funding::fund_regtest`] pays the
//! exact amount to the address, leaves the payment unconfirmed, reuses its coins (confirmed change, matured
//! coinbases) instead of mining again, never double-spends an unconfirmed payment, and reports refused
//! credentials as the auth error.

use bitcoin::{Address, Amount, Txid};
use serde_json::{json, Value};
use testnet::btc_wallet::confirmations;
use testnet::{Bitcoind, BtcWallet};
use wallet::btc_funding::{self, BitcoindAuth, BitcoindClient, FundingError};

fn client(btc: &Bitcoind) -> BitcoindClient {
    let (url, user, password) = btc.rpc_credentials();
    btc_funding::connect(&url, BitcoindAuth::UserPass { user, password }).expect("client")
}

/// The value `tx` pays to `to`, from bitcoind's JSON, checked to be one output.
fn paid_to(tx: &Value, to: &Address) -> Amount {
    let script = to.script_pubkey().to_hex_string();
    let outs: Vec<&Value> = tx["vout"]
        .as_array()
        .expect("vout")
        .iter()
        .filter(|o| o["scriptPubKey"]["hex"].as_str() == Some(script.as_str()))
        .collect();
    assert_eq!(outs.len(), 1, "exactly one output pays {to}: {tx}");
    Amount::from_btc(outs[0]["value"].as_f64().expect("value")).expect("amount")
}

fn in_mempool(btc: &Bitcoind, txid: &Txid) -> bool {
    btc.call::<Value>("getmempoolentry", &[json!(txid.to_string())]).is_ok()
}

#[test]
fn fund_regtest_pays_the_exact_amount_and_leaves_confirming_to_the_caller() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let client = client(&btc);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = btc_funding::load_or_create_key(&dir.path().join(btc_funding::KEY_FILE_NAME)).expect("key file");
    let to = BtcWallet::from_seed(7).address();

    // 1. A fresh key has nothing: one coinbase is mined to it and matured (1 + 99 blocks), then it pays.
    let amount = Amount::from_sat(150_000_000);
    let txid = btc_funding::fund_regtest(&client, &key, &to, amount).expect("fund");
    assert_eq!(btc.height().expect("height"), 100, "mined exactly the blocks that mature one coinbase");
    assert!(in_mempool(&btc, &txid), "broadcast");
    assert_eq!(confirmations(&btc, &txid).expect("known tx"), 0, "funding does not confirm the payment");

    // The caller confirms it; the block holds it and it pays the address exactly the amount.
    let hash = btc.mine(1).expect("mine").pop().expect("one block");
    let block: Value = btc.call("getblock", &[json!(hash.to_string()), json!(2)]).expect("getblock");
    let tx = block["tx"]
        .as_array()
        .expect("txs")
        .iter()
        .find(|t| t["txid"].as_str() == Some(txid.to_string().as_str()))
        .unwrap_or_else(|| panic!("{txid} not in block {hash}"));
    assert_eq!(paid_to(tx, &to), amount);
    let raw: Value = btc.call("getrawtransaction", &[json!(txid.to_string()), json!(true)]).expect("raw tx");
    assert_eq!(raw["confirmations"], 1);
    assert_eq!(paid_to(&raw, &to), amount);
    assert_eq!(raw["vout"][0]["scriptPubKey"]["hex"], to.script_pubkey().to_hex_string(), "payment is output 0");

    // 2. and 3. The key now has two spendable coins, found without mining: the first payment's change
    //    (confirmed by the caller's block) and the coinbase of block 2 (mature with that block). A second
    //    payment spends one; a third, made while the second is unconfirmed, leaves the coin the second
    //    spends alone (no replacement, no conflict) and takes the other.
    let coinbase_2: Value = {
        let hash: String = btc.call("getblockhash", &[json!(2)]).expect("block 2");
        btc.call("getblock", &[json!(hash), json!(1)]).expect("getblock")
    };
    let mut expected = vec![format!("{txid}:1"), format!("{}:0", coinbase_2["tx"][0].as_str().expect("coinbase"))];
    expected.sort();
    let mut spent = Vec::new();
    for sats in [20_000, 30_000] {
        let paid = btc_funding::fund_regtest(&client, &key, &to, Amount::from_sat(sats)).expect("fund again");
        assert_eq!(btc.height().expect("height"), 101, "no block mined");
        let raw: Value = btc.call("getrawtransaction", &[json!(paid.to_string()), json!(true)]).expect("raw tx");
        assert_eq!(paid_to(&raw, &to), Amount::from_sat(sats));
        let inputs = raw["vin"].as_array().expect("vin");
        assert_eq!(inputs.len(), 1, "one coin covers it");
        spent.push(format!("{}:{}", inputs[0]["txid"].as_str().expect("txid"), inputs[0]["vout"]));
        assert!(in_mempool(&btc, &paid));
    }
    spent.sort();
    assert_eq!(spent, expected, "each coin spent once");
    let hash = btc.mine(1).expect("mine").pop().expect("one block");
    let block: Value = btc.call("getblock", &[json!(hash.to_string()), json!(1)]).expect("getblock");
    let mined: Vec<&str> = block["tx"].as_array().expect("txids").iter().filter_map(Value::as_str).collect();
    assert_eq!(mined.len(), 3, "coinbase and both payments: {block}");
}

#[test]
fn wrong_password_is_the_auth_error() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let (url, user, _) = btc.rpc_credentials();
    let auth = BitcoindAuth::UserPass { user, password: "wrong".into() };
    let client = btc_funding::connect(&url, auth).expect("client");
    let key = peg::FundingKey::from_secret_bytes([0x42; 32]).expect("key");
    let to = BtcWallet::from_seed(7).address();
    match btc_funding::fund_regtest(&client, &key, &to, Amount::from_sat(100_000)) {
        Err(FundingError::Auth { status: 401, .. }) => {}
        other => panic!("expected the auth error, got {other:?}"),
    }
    assert_eq!(btc.height().expect("height"), 0, "nothing mined");
}
