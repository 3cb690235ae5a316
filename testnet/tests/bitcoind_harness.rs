//! The foundation tests: a real regtest bitcoind, a Rust-held key, and the federation multisig.
//!
//! These prove that the pieces every later feature stands on work for real: mining to our own key,
//! paying a `wsh(sortedmulti(3, K1..K4))` address with a rust-bitcoin transaction, spending it back with a
//! PSBT signed by 3 of 4 keys and finalized by miniscript, and reorgs between two connected bitcoinds.

use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Amount, OutPoint, PublicKey, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use peg::Federation;
use serde_json::{json, Value};
use std::time::Duration;
use testnet::btc_wallet::{broadcast, confirmations};
use testnet::{Bitcoind, BitcoindError, BitcoindOptions, BtcWallet};

fn peg_keys(n: u8) -> Vec<SecretKey> {
    (1..=n).map(|i| SecretKey::from_slice(&[0x10 + i; 32]).expect("valid scalar")).collect()
}

/// The value of `outpoint` as bitcoind's UTXO set sees it (None when spent or unknown).
fn utxo_value(btc: &Bitcoind, outpoint: &OutPoint) -> Option<Amount> {
    let v: Value = btc.call("gettxout", &[json!(outpoint.txid.to_string()), json!(outpoint.vout)]).ok()?;
    Amount::from_btc(v.get("value")?.as_f64()?).ok()
}

#[test]
fn multisig_deposit_and_threshold_spend_confirm_with_exact_amounts() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let wallet = BtcWallet::from_seed(1);
    let coinbases = wallet.mine_coinbases(&btc, 1).expect("mine to our key");
    btc.mine(100).expect("mature the coinbase");
    assert_eq!(btc.height().expect("height"), 101);
    let coinbase = &coinbases[0];
    assert_eq!(coinbase.txout.value, Amount::from_btc(50.0).expect("50 BTC"));

    let secp = Secp256k1::new();
    let secrets = peg_keys(4);
    let keys: Vec<PublicKey> = secrets.iter().map(|s| PublicKey::new(s.public_key(&secp))).collect();
    let federation = Federation::new(3, keys).expect("3-of-4 federation");
    assert!(federation.descriptor().to_string().starts_with("wsh(sortedmulti(3,"));

    // 1. Pay the federation from the coinbase with a transaction built and signed in Rust.
    let deposit = Amount::from_sat(100_000_000);
    let fee = Amount::from_sat(2_000);
    let tx = wallet.pay(coinbase, federation.script_pubkey(), deposit, fee).expect("build deposit");
    let deposit_txid = broadcast(&btc, &tx).expect("bitcoind accepts the deposit");
    btc.mine(1).expect("mine deposit");
    assert_eq!(confirmations(&btc, &deposit_txid).expect("known tx"), 1);
    let deposit_outpoint = OutPoint { txid: deposit_txid, vout: 0 };
    assert_eq!(utxo_value(&btc, &deposit_outpoint), Some(deposit));
    let change = OutPoint { txid: deposit_txid, vout: 1 };
    assert_eq!(utxo_value(&btc, &change), Some(coinbase.txout.value - deposit - fee));

    // 2. Spend it back with a PSBT: 3 of 4 keys sign, miniscript finalizes.
    let spend_fee = Amount::from_sat(3_000);
    let unsigned = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: deposit_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: deposit - spend_fee, script_pubkey: wallet.script_pubkey() }],
    };
    let mut psbt = Psbt::from_unsigned_tx(unsigned).expect("unsigned tx");
    psbt.inputs[0].witness_utxo = Some(TxOut { value: deposit, script_pubkey: federation.script_pubkey() });
    psbt.inputs[0].witness_script = federation.witness_script();

    // Two signatures are not enough: finalization fails clearly and hands the PSBT back intact.
    for s in &secrets[..2] {
        peg::sign_input(&secp, &mut psbt, 0, s).expect("sign");
    }
    let err = peg::finalize(&secp, psbt).expect_err("2 of 3 must not finalize");
    assert!(!err.errors.is_empty(), "the error names the failing input");
    let msg = err.to_string();
    assert!(msg.contains("cannot be finalized"), "clear error: {msg}");
    let mut psbt = *err.psbt;
    assert_eq!(psbt.inputs[0].partial_sigs.len(), 2, "no collected signature is lost");

    // A key outside the federation cannot add a signature.
    let stranger = SecretKey::from_slice(&[0x77; 32]).expect("valid scalar");
    assert!(matches!(
        peg::sign_input(&secp, &mut psbt, 0, &stranger),
        Err(peg::SignError::KeyNotInScript { input: 0, .. })
    ));

    peg::sign_input(&secp, &mut psbt, 0, &secrets[3]).expect("third signature");
    let spend = peg::finalize(&secp, psbt).expect("3 of 4 finalize");
    let spend_txid = broadcast(&btc, &spend).expect("bitcoind accepts the threshold spend");
    btc.mine(1).expect("mine spend");
    assert_eq!(confirmations(&btc, &spend_txid).expect("known tx"), 1);
    assert_eq!(utxo_value(&btc, &deposit_outpoint), None, "the multisig output is spent");
    assert_eq!(utxo_value(&btc, &OutPoint { txid: spend_txid, vout: 0 }), Some(deposit - spend_fee));
}

#[test]
fn connected_bitcoinds_share_blocks_and_reorg_to_the_longer_chain() {
    let a = Bitcoind::start().expect("bitcoind a");
    let b = Bitcoind::start().expect("bitcoind b");
    a.connect(&b).expect("connect");
    a.mine(5).expect("mine on a");
    b.wait_for_height(5, Duration::from_secs(30)).expect("b sees a's blocks");
    assert_eq!(a.best_hash().expect("a"), b.best_hash().expect("b"));

    a.disconnect(&b).expect("disconnect");
    let short_tip = a.mine(2).expect("a mines 2").pop().expect("two hashes");
    let long_tip = b.mine(4).expect("b mines 4").pop().expect("four hashes");
    assert_eq!(a.height().expect("a"), 7);
    assert_eq!(b.height().expect("b"), 9);

    a.connect(&b).expect("reconnect");
    a.wait_for_height(9, Duration::from_secs(30)).expect("a reorgs to b's chain");
    assert_eq!(a.best_hash().expect("a"), long_tip);
    // a's old tip is now on a side branch.
    let tips: Vec<Value> = a.call("getchaintips", &[]).expect("chain tips");
    let old = tips
        .iter()
        .find(|t| t["hash"].as_str() == Some(short_tip.to_string().as_str()))
        .unwrap_or_else(|| panic!("old tip {short_tip} not in {tips:?}"));
    assert_eq!(old["status"], "valid-fork");
}

#[test]
fn missing_binary_is_a_clear_error() {
    let opts = BitcoindOptions { binary: Some("/nonexistent/bitcoind".into()), ..Default::default() };
    match Bitcoind::start_with(opts) {
        Err(e @ BitcoindError::BinaryNotFound(_)) => assert!(e.to_string().contains("/nonexistent/bitcoind")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started a missing binary"),
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let opts = BitcoindOptions { rpc_port: Some(port), ..Default::default() };
    match Bitcoind::start_with(opts) {
        Err(e @ BitcoindError::PortInUse(p)) => {
            assert_eq!(p, port);
            assert!(e.to_string().contains(&port.to_string()));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started on a used port"),
    }
}

#[test]
fn a_bitcoind_that_never_answers_times_out_within_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("silent-bitcoind");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").expect("write script");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let opts = BitcoindOptions { binary: Some(fake), startup_timeout: Duration::from_secs(2), ..Default::default() };
    let started = std::time::Instant::now();
    match Bitcoind::start_with(opts) {
        Err(e @ BitcoindError::NotResponding { .. }) => {
            assert!(started.elapsed() < Duration::from_secs(20), "bounded wait");
            assert!(e.to_string().contains("did not answer RPC within"));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a silent process passed as bitcoind"),
    }
}

#[test]
fn a_bitcoind_that_exits_at_once_reports_its_log() {
    let opts = BitcoindOptions { extra_args: vec!["-nosuchoption=1".into()], ..Default::default() };
    match Bitcoind::start_with(opts) {
        Err(e @ BitcoindError::ExitedEarly { .. }) => assert!(e.to_string().contains("nosuchoption"), "{e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("bitcoind accepted an unknown option"),
    }
}
