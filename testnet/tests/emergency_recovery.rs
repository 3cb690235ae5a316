//! The emergency recovery path on a real regtest bitcoind (groundwork for issue 12): outputs paid to
//! `wsh(or_d(multi(3, K1..K4), and_v(v:multi(2, E1..E3), older(D))))` are spent by 3 federation keys at any
//! time; the emergency keys cannot spend them before they are D blocks deep (bitcoind refuses the spend as
//! not final), and can once they are; without the relative lock in the input the emergency branch cannot
//! even be finalized.

use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Amount, OutPoint, PublicKey, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use peg::{Federation, Recovery};
use testnet::btc_wallet::{broadcast, confirmations};
use testnet::{Bitcoind, BtcWallet};

const DELAY: u32 = 10;

fn secrets(from: u8, n: u8) -> Vec<SecretKey> {
    (from..from + n).map(|i| SecretKey::from_slice(&[i; 32]).expect("valid scalar")).collect()
}

fn spend_psbt(fed: &Federation, outpoint: OutPoint, value: Amount, sequence: Sequence, to: ScriptBuf) -> Psbt {
    let unsigned = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: value - Amount::from_sat(2_000), script_pubkey: to }],
    };
    let mut psbt = Psbt::from_unsigned_tx(unsigned).expect("unsigned tx");
    psbt.inputs[0].witness_utxo = Some(TxOut { value, script_pubkey: fed.script_pubkey() });
    psbt.inputs[0].witness_script = fed.witness_script();
    psbt
}

#[test]
fn emergency_keys_spend_only_after_the_delay_and_the_federation_spends_at_any_time() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    let secp = Secp256k1::new();
    let fed_secrets = secrets(0x21, 4);
    let emergency_secrets = secrets(0x41, 3);
    let pubkeys = |s: &[SecretKey]| s.iter().map(|k| PublicKey::new(k.public_key(&secp))).collect::<Vec<_>>();
    let recovery = Recovery { threshold: 2, keys: pubkeys(&emergency_secrets), delay: DELAY };
    let fed = Federation::with_recovery(3, pubkeys(&fed_secrets), recovery).expect("valid wallet");

    // Two federation outputs, confirmed in one block.
    let wallet = BtcWallet::from_seed(3);
    let coinbase = wallet.mine_coinbases(&btc, 1).expect("coinbase").remove(0);
    btc.mine(100).expect("mature");
    let value = Amount::from_sat(50_000_000);
    let first = wallet.pay(&coinbase, fed.script_pubkey(), value, Amount::from_sat(2_000)).expect("pay");
    let change = wallet.key().owned_outputs(&first).into_iter().next().expect("change");
    let second = wallet.pay(&change, fed.script_pubkey(), value, Amount::from_sat(2_000)).expect("pay");
    broadcast(&btc, &first).expect("first deposit");
    broadcast(&btc, &second).expect("second deposit");
    btc.mine(1).expect("confirm");
    let out_a = OutPoint { txid: first.compute_txid(), vout: 0 };
    let out_b = OutPoint { txid: second.compute_txid(), vout: 0 };
    let dest = wallet.script_pubkey();

    // The federation spends at once, with 3 of its 4 keys, through the first branch.
    let mut psbt = spend_psbt(&fed, out_a, value, Sequence::ENABLE_RBF_NO_LOCKTIME, dest.clone());
    for s in &fed_secrets[..3] {
        peg::sign_input(&secp, &mut psbt, 0, s).expect("sign");
    }
    let spend = peg::finalize(&secp, psbt).expect("3 federation signatures finalize");
    let txid = broadcast(&btc, &spend).expect("bitcoind takes the federation spend");
    btc.mine(1).expect("mine");
    assert_eq!(confirmations(&btc, &txid).expect("known"), 1);

    // Emergency keys without the relative lock in the input: the emergency branch cannot be satisfied.
    let mut psbt = spend_psbt(&fed, out_b, value, Sequence::ENABLE_RBF_NO_LOCKTIME, dest.clone());
    for s in &emergency_secrets[..2] {
        peg::sign_input(&secp, &mut psbt, 0, s).expect("sign");
    }
    assert!(peg::finalize(&secp, psbt).is_err(), "no emergency spend without the relative lock");

    // With the lock: finalized, but bitcoind refuses it until the output is DELAY blocks deep.
    let mut psbt =
        spend_psbt(&fed, out_b, value, fed.recovery().expect("has an emergency path").emergency_sequence(), dest);
    for s in &emergency_secrets[1..] {
        peg::sign_input(&secp, &mut psbt, 0, s).expect("sign");
    }
    let emergency = peg::finalize(&secp, psbt).expect("2 emergency signatures and the lock finalize");
    // The output confirmed at tip - 1; it may be spent in the block at its height + DELAY.
    let confirmed_at = btc.height().expect("height") - 1;
    let mut refusals = 0;
    while btc.height().expect("height") + 1 < confirmed_at + u64::from(DELAY) {
        let refused = broadcast(&btc, &emergency).expect_err("too early");
        assert!(refused.to_string().contains("non-BIP68-final"), "{refused}");
        refusals += 1;
        btc.mine(1).expect("mine");
    }
    assert_eq!(refusals, DELAY - 2, "refused at every depth from 2 to DELAY - 1");
    let txid = broadcast(&btc, &emergency).expect("bitcoind takes the emergency spend once it is DELAY deep");
    btc.mine(1).expect("mine");
    assert_eq!(confirmations(&btc, &txid).expect("known"), 1);
}
