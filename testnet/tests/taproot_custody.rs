//! Taproot custody on a real regtest bitcoind (issue 23, first step): the federation's FROST group key from
//! an in-process DKG, deposit addresses that Bitcoin Core's `deriveaddresses` rebuilds from the `tr()`
//! descriptor alone, and bitcoind accepting each way out of a deposit: the FROST key-path spend, the
//! `multi_a` fallback leaf signed by the peg keys, and the emergency leaf only once its lock has passed.

use bitcoin::secp256k1::{rand::thread_rng, Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Address, Amount, OutPoint, PublicKey, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use peg::frost::{self, dkg::run_in_process, KeyShare};
use peg::taproot::{key_path_sighash, key_path_witness, leaf_sighash, leaves, script_path_witness, sign};
use peg::{DepositTweak, Federation, Recovery};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use testnet::btc_wallet::{broadcast, confirmations};
use testnet::{Bitcoind, BtcWallet};

const GENESIS: [u8; 32] = [0x47; 32];
const RECIPIENT: [u8; 32] = [0x2a; 32];
const DELAY: u32 = 6;

fn secrets(from: u8, n: u8) -> Vec<SecretKey> {
    (from..from + n).map(|i| SecretKey::from_slice(&[i; 32]).expect("valid scalar")).collect()
}

fn public(s: &[SecretKey]) -> Vec<PublicKey> {
    let secp = Secp256k1::new();
    s.iter().map(|k| PublicKey::new(k.public_key(&secp))).collect()
}

/// bitcoind's address for a descriptor, through `getdescriptorinfo` (checksum) and `deriveaddresses`.
fn bitcoind_address(btc: &Bitcoind, descriptor: &str) -> Address {
    let bare = descriptor.split('#').next().expect("text");
    let info: Value = btc.call("getdescriptorinfo", &[json!(bare)]).expect("bitcoind parses the descriptor");
    let checksum = info["checksum"].as_str().expect("checksum");
    let addresses: Vec<String> =
        btc.call("deriveaddresses", &[json!(format!("{bare}#{checksum}"))]).expect("bitcoind derives");
    Address::from_str(&addresses[0]).expect("address").assume_checked()
}

fn spend_of(outpoint: OutPoint, value: Amount, sequence: Sequence, to: ScriptBuf) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: value - Amount::from_sat(1_000), script_pubkey: to }],
    }
}

fn frost_signature(
    shares: &[KeyShare],
    signers: &[usize],
    tx: &Transaction,
    prevouts: &[TxOut],
    fed: &Federation,
) -> Witness {
    let sighash = key_path_sighash(tx, 0, prevouts).expect("sighash");
    let root = peg::federation::merkle_root(&fed.deposit_descriptor(GENESIS, RECIPIENT).expect("deposit"));
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let (n, c) = shares[i].commit(&mut thread_rng());
        nonces.insert(i, n);
        commitments.insert(i, c);
    }
    let package = frost::signing_package(&commitments, sighash).expect("package");
    let mut sig_shares = BTreeMap::new();
    for (i, n) in nonces {
        let share = shares[i].sign(&package, sighash, n, root).expect("share");
        frost::verify_share(shares[0].public(), i, &share, &package, root).expect("honest share");
        sig_shares.insert(i, share);
    }
    key_path_witness(&frost::aggregate(shares[0].public(), &package, &sig_shares, root).expect("aggregate"))
}

#[test]
fn taproot_deposits_are_rebuilt_by_bitcoind_and_spent_by_frost_key_path_fallback_and_emergency_leaves() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let secp = Secp256k1::new();
    let (shares, transcript) = run_in_process(4, 3, &mut thread_rng()).expect("dkg");
    assert_eq!(
        frost::group_key(&transcript.group().expect("group")).expect("key"),
        shares[0].group_key().expect("group key")
    );
    let peg_secrets = secrets(0x21, 4);
    let emergency = secrets(0x41, 3);
    let recovery = Recovery { threshold: 2, keys: public(&emergency), delay: DELAY };
    let fed = Federation::taproot(shares[0].public(), 3, public(&peg_secrets), Some(recovery)).expect("wallet");

    // Bitcoin Core rebuilds every address from the descriptor text alone.
    let network = bitcoin::Network::Regtest;
    assert_eq!(bitcoind_address(&btc, &fed.descriptor().to_string()), fed.address(network));
    for recipient in [RECIPIENT, [0; 32], [0xff; 32]] {
        let descriptor = fed.deposit_descriptor(GENESIS, recipient).expect("deposit").to_string();
        assert_eq!(
            bitcoind_address(&btc, &descriptor),
            fed.deposit_address(GENESIS, recipient, network).expect("address"),
            "{descriptor}"
        );
    }

    // Three deposits to RECIPIENT, confirmed together.
    let wallet = BtcWallet::from_seed(7);
    let coinbase = wallet.mine_coinbases(&btc, 1).expect("coinbase").remove(0);
    btc.mine(100).expect("mature");
    let value = Amount::from_sat(25_000_000);
    let deposit_script = fed.deposit_script_pubkey(GENESIS, RECIPIENT).expect("script");
    let mut utxo = coinbase;
    let mut deposits = Vec::new();
    for _ in 0..3 {
        let tx = wallet.pay(&utxo, deposit_script.clone(), value, Amount::from_sat(2_000)).expect("pay");
        broadcast(&btc, &tx).expect("deposit");
        deposits.push(OutPoint { txid: tx.compute_txid(), vout: 0 });
        utxo = wallet.key().owned_outputs(&tx).into_iter().next().expect("change");
    }
    btc.mine(1).expect("confirm");
    let prevouts = vec![TxOut { value, script_pubkey: deposit_script.clone() }];
    let dest = wallet.script_pubkey();

    // 1. Key path: validators 1, 2 and 3 sign with FROST; one 64-byte signature; bitcoind takes it.
    let mut tx = spend_of(deposits[0], value, Sequence::ENABLE_RBF_NO_LOCKTIME, dest.clone());
    tx.input[0].witness = frost_signature(&shares, &[1, 2, 3], &tx, &prevouts, &fed);
    assert_eq!(tx.input[0].witness.len(), 1);
    let txid = broadcast(&btc, &tx).expect("bitcoind takes the FROST key-path spend");
    btc.mine(1).expect("mine");
    assert_eq!(confirmations(&btc, &txid).expect("known"), 1);

    // 2. Fallback leaf: three validators' deposit-tweaked peg keys sign the multi_a leaf.
    let descriptor = fed.deposit_descriptor(GENESIS, RECIPIENT).expect("deposit");
    let [(_, fallback), (_, emergency_leaf)] =
        <[_; 2]>::try_from(leaves(&descriptor).expect("taproot")).expect("2 leaves");
    let tweak = DepositTweak::new(GENESIS, RECIPIENT);
    let tweaked = fed.deposit_keys(GENESIS, RECIPIENT).expect("keys");
    let mut tx = spend_of(deposits[1], value, Sequence::ENABLE_RBF_NO_LOCKTIME, dest.clone());
    let sighash = leaf_sighash(&tx, 0, &prevouts, fallback).expect("sighash");
    let mut sigs = BTreeMap::new();
    for i in [0, 2, 3] {
        let secret = tweak.tweak_secret(&secp, &peg_secrets[i]).expect("tweak");
        sigs.insert((tweaked[i], fallback), sign(&secp, &secret, sighash));
    }
    tx.input[0].witness = script_path_witness(&descriptor, &sigs, tx.input[0].sequence).expect("satisfied");
    let txid = broadcast(&btc, &tx).expect("bitcoind takes the fallback leaf");
    btc.mine(1).expect("mine");
    assert_eq!(confirmations(&btc, &txid).expect("known"), 1);

    // 3. Emergency leaf: refused until the deposit is DELAY deep, then taken.
    let sequence = fed.recovery().expect("has one").emergency_sequence();
    let mut tx = spend_of(deposits[2], value, sequence, dest);
    let sighash = leaf_sighash(&tx, 0, &prevouts, emergency_leaf).expect("sighash");
    let keys = public(&emergency);
    let sigs: BTreeMap<_, _> =
        [1, 2].into_iter().map(|i| ((keys[i], emergency_leaf), sign(&secp, &emergency[i], sighash))).collect();
    tx.input[0].witness = script_path_witness(&descriptor, &sigs, sequence).expect("satisfied");
    let deposited_at = btc.height().expect("height") - 2;
    let mut refusals = 0;
    while btc.height().expect("height") + 1 < deposited_at + u64::from(DELAY) {
        let refused = broadcast(&btc, &tx).expect_err("too early");
        assert!(refused.to_string().contains("non-BIP68-final"), "{refused}");
        refusals += 1;
        btc.mine(1).expect("mine");
    }
    assert_eq!(refusals, DELAY - 3, "refused at every depth from 3 to DELAY - 1");
    let txid = broadcast(&btc, &tx).expect("bitcoind takes the emergency leaf once DELAY deep");
    btc.mine(1).expect("mine");
    assert_eq!(confirmations(&btc, &txid).expect("known"), 1);
}
