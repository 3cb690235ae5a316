//! Taproot custody end to end in Bitcoin's own interpreter (libbitcoinconsensus): a FROST key-path spend of
//! a deposit, the `multi_a` fallback leaf, the emergency leaf only with its lock, and the sizes each costs.

use super::*;
use crate::frost::{self, dkg::run_in_process, KeyShare};
use crate::recovery::Recovery;
use crate::verify::verify_spends;
use crate::{Custody, Federation};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{absolute, transaction, Amount, OutPoint, Sequence, TxIn, Txid};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const GENESIS: [u8; 32] = [0x47; 32];
const RECIPIENT: [u8; 32] = [0x11; 32];

fn secrets(from: u8, n: u8) -> Vec<SecretKey> {
    (from..from + n).map(|i| SecretKey::from_slice(&[i; 32]).expect("valid scalar")).collect()
}

fn public(s: &[SecretKey]) -> Vec<PublicKey> {
    let secp = Secp256k1::new();
    s.iter().map(|k| PublicKey::new(k.public_key(&secp))).collect()
}

struct Setup {
    shares: Vec<KeyShare>,
    peg: Vec<SecretKey>,
    emergency: Vec<SecretKey>,
    fed: Federation,
}

fn setup(k: usize, n: u8) -> Setup {
    let (shares, _) = run_in_process(usize::from(n), k, &mut ChaCha20Rng::seed_from_u64(42)).expect("dkg");
    let peg = secrets(1, n);
    let emergency = secrets(0x40, 3);
    let recovery = Recovery { threshold: 2, keys: public(&emergency), delay: 144 };
    let fed = Federation::taproot(shares[0].public(), k, public(&peg), Some(recovery)).expect("valid wallet");
    Setup { shares, peg, emergency, fed }
}

/// A one-input, one-output spend of a deposit to `RECIPIENT`.
fn spend(fed: &Federation, sequence: Sequence) -> (Transaction, Vec<TxOut>) {
    let value = Amount::from_sat(1_000_000);
    let prevout = TxOut { value, script_pubkey: fed.deposit_script_pubkey(GENESIS, RECIPIENT).expect("script") };
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: Txid::from_byte_array([3; 32]), vout: 1 },
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: value - Amount::from_sat(1_000), script_pubkey: fed.script_pubkey() }],
    };
    (tx, vec![prevout])
}

fn frost_sign(
    shares: &[KeyShare],
    signers: &[usize],
    sighash: TapSighash,
    root: Option<bitcoin::TapNodeHash>,
) -> taproot::Signature {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let (n, c) = shares[i].commit(&mut rng);
        nonces.insert(i, n);
        commitments.insert(i, c);
    }
    let package = frost::signing_package(&commitments, sighash).expect("package");
    let sig_shares: BTreeMap<_, _> =
        nonces.into_iter().map(|(i, n)| (i, shares[i].sign(&package, sighash, n, root).expect("share"))).collect();
    frost::aggregate(shares[0].public(), &package, &sig_shares, root).expect("aggregate")
}

#[test]
fn the_taproot_wallet_is_tr_of_the_group_key_with_the_fallback_and_emergency_leaves() {
    let s = setup(3, 4);
    assert_eq!(s.fed.custody(), Custody::Taproot { group_key: s.shares[0].group_key().expect("group key") });
    let text = s.fed.descriptor().to_string();
    assert!(text.starts_with("tr(") && text.contains("multi_a(3,") && text.contains("older(144)"), "{text}");
    assert!(s.fed.witness_script().is_none());
    assert!(s.fed.address(bitcoin::Network::Regtest).to_string().starts_with("bcrt1p"));
    // Deposits differ per recipient and chain, and keep the group key as internal key.
    let a = s.fed.deposit_descriptor(GENESIS, RECIPIENT).expect("deposit");
    let b = s.fed.deposit_descriptor(GENESIS, [0x12; 32]).expect("deposit");
    let c = s.fed.deposit_descriptor([0x48; 32], RECIPIENT).expect("deposit");
    assert!(a.script_pubkey() != b.script_pubkey() && a.script_pubkey() != c.script_pubkey());
    assert_ne!(a.script_pubkey(), s.fed.script_pubkey());
    let Descriptor::Tr(tr) = &a else { panic!("a taproot deposit") };
    assert_eq!(tr.internal_key().inner.x_only_public_key().0, s.shares[0].group_key().expect("group key"));
    // Same keys in another order: same wallet.
    let mut reversed = public(&s.peg);
    reversed.reverse();
    let again = Federation::taproot(s.shares[0].public(), 3, reversed, s.fed.recovery().cloned()).expect("valid");
    assert_eq!(again.script_pubkey(), s.fed.script_pubkey());
}

#[test]
fn a_frost_key_path_spend_of_a_deposit_passes_bitcoins_interpreter_and_costs_57_5_vbytes() {
    let s = setup(3, 4);
    let (mut tx, prevouts) = spend(&s.fed, Sequence::ENABLE_RBF_NO_LOCKTIME);
    let descriptor = s.fed.deposit_descriptor(GENESIS, RECIPIENT).expect("deposit");
    let root = crate::federation::merkle_root(&descriptor);
    assert!(root.is_some());
    let sighash = key_path_sighash(&tx, 0, &prevouts).expect("sighash");
    let unsigned_weight = tx.weight();
    // Signed with the tree of another recipient's deposit: Bitcoin refuses it.
    let other = crate::federation::merkle_root(&s.fed.deposit_descriptor(GENESIS, [0x12; 32]).expect("deposit"));
    tx.input[0].witness = key_path_witness(&frost_sign(&s.shares, &[0, 1, 2], sighash, other));
    assert!(verify_spends(&tx, &prevouts).is_err(), "the signature commits to the recipient's tree");
    for signers in [[0, 1, 2], [1, 2, 3]] {
        tx.input[0].witness = key_path_witness(&frost_sign(&s.shares, &signers, sighash, root));
        verify_spends(&tx, &prevouts).expect("Bitcoin's interpreter takes the key-path spend");
    }
    // The witness: count 1 + length 1 + 64-byte signature, plus the 2-WU segwit marker of a first witness.
    assert_eq!((tx.weight() - unsigned_weight).to_wu(), 66 + 2);
    assert_eq!(crate::fee::KEY_PATH_INPUT_WEIGHT.to_wu(), 41 * 4 + 66, "57.5 vB");
}

#[test]
fn the_fallback_leaf_spends_with_threshold_peg_key_signatures_and_the_emergency_leaf_only_after_its_lock() {
    let secp = Secp256k1::new();
    let s = setup(3, 4);
    let descriptor = s.fed.deposit_descriptor(GENESIS, RECIPIENT).expect("deposit");
    let leaves = leaves(&descriptor).expect("taproot");
    assert_eq!(leaves.len(), 2);
    let (fallback, emergency) = (leaves[0].1, leaves[1].1);
    let tweak = crate::DepositTweak::new(GENESIS, RECIPIENT);
    let tweaked = s.fed.deposit_keys(GENESIS, RECIPIENT).expect("keys");

    // Fallback: 3 tweaked peg-key signatures in the multi_a leaf.
    let (mut tx, prevouts) = spend(&s.fed, Sequence::ENABLE_RBF_NO_LOCKTIME);
    let sighash = leaf_sighash(&tx, 0, &prevouts, fallback).expect("sighash");
    let mut sigs = BTreeMap::new();
    for (i, secret) in s.peg.iter().enumerate().take(2) {
        let tweaked_secret = tweak.tweak_secret(&secp, secret).expect("tweak");
        sigs.insert((tweaked[i], fallback), sign(&secp, &tweaked_secret, sighash));
    }
    assert!(
        matches!(script_path_witness(&descriptor, &sigs, tx.input[0].sequence), Err(TaprootSpendError::Unsatisfied(_))),
        "two of three signatures satisfy nothing"
    );
    let third = tweak.tweak_secret(&secp, &s.peg[3]).expect("tweak");
    sigs.insert((tweaked[3], fallback), sign(&secp, &third, sighash));
    tx.input[0].witness = script_path_witness(&descriptor, &sigs, tx.input[0].sequence).expect("satisfied");
    verify_spends(&tx, &prevouts).expect("Bitcoin's interpreter takes the fallback leaf");

    // Emergency: 2 untweaked emergency-key signatures, only with the relative lock in the input.
    let emergency_keys = public(&s.emergency);
    let sign_emergency = |tx: &Transaction| {
        let sighash = leaf_sighash(tx, 0, &prevouts, emergency).expect("sighash");
        (0..2)
            .map(|i| ((emergency_keys[i], emergency), sign(&secp, &s.emergency[i], sighash)))
            .collect::<BTreeMap<_, _>>()
    };
    let (tx, _) = spend(&s.fed, Sequence::ENABLE_RBF_NO_LOCKTIME);
    assert!(script_path_witness(&descriptor, &sign_emergency(&tx), tx.input[0].sequence).is_err(), "no lock");
    let sequence = s.fed.recovery().expect("has one").emergency_sequence();
    let (mut tx, _) = spend(&s.fed, sequence);
    tx.input[0].witness = script_path_witness(&descriptor, &sign_emergency(&tx), sequence).expect("satisfied");
    verify_spends(&tx, &prevouts).expect("Bitcoin's interpreter takes the emergency leaf with its lock");
}

#[test]
fn wrong_inputs_are_errors_not_panics() {
    let s = setup(3, 4);
    let (tx, prevouts) = spend(&s.fed, Sequence::ENABLE_RBF_NO_LOCKTIME);
    let r = key_path_sighash(&tx, 1, &prevouts);
    assert!(matches!(r, Err(TaprootSpendError::Input { input: 1, inputs: 1, prevouts: 1 })), "{r:?}");
    assert!(matches!(key_path_sighash(&tx, 0, &[]), Err(TaprootSpendError::Input { .. })));
    assert!(matches!(leaf_sighash(&tx, 2, &prevouts, TapLeafHash::all_zeros()), Err(TaprootSpendError::Input { .. })));
    let wsh = Federation::new(3, public(&s.peg)).expect("wsh");
    assert!(matches!(leaves(wsh.descriptor()), Err(TaprootSpendError::NotTaproot)));
    assert!(matches!(
        script_path_witness(wsh.descriptor(), &BTreeMap::new(), Sequence::MAX),
        Err(TaprootSpendError::NotTaproot)
    ));
}

#[test]
fn a_taproot_wallet_refuses_a_group_of_other_validators_or_threshold_and_keys_equal_in_x() {
    let secp = Secp256k1::new();
    let s = setup(3, 4);
    let group = s.shares[0].public();
    let peg = public(&s.peg);
    assert!(matches!(Federation::taproot(group, 2, peg.clone(), None), Err(crate::FederationError::GroupMismatch(_))));
    let mut five = peg.clone();
    five.push(public(&secrets(0x30, 1))[0]);
    assert!(matches!(Federation::taproot(group, 3, five, None), Err(crate::FederationError::GroupMismatch(_))));
    assert!(matches!(
        Federation::taproot(group, 3, peg[..3].to_vec(), None),
        Err(crate::FederationError::GroupMismatch(_))
    ));
    // -K has K's x coordinate: one key to tapscript, two to a compressed-key check.
    let negated = PublicKey::new(peg[1].inner.negate(&secp));
    let mut with_negated = peg.clone();
    with_negated[3] = negated;
    assert_eq!(
        Federation::taproot(group, 3, with_negated, None),
        Err(crate::FederationError::DuplicateXOnlyKey(negated))
    );
    let recovery = Recovery { threshold: 1, keys: vec![PublicKey::new(peg[0].inner.negate(&secp))], delay: 10 };
    assert!(matches!(
        Federation::taproot(group, 3, peg.clone(), Some(recovery)),
        Err(crate::FederationError::DuplicateXOnlyKey(_))
    ));
    Federation::taproot(group, 3, peg, None).expect("the matching group and keys");
}

#[test]
fn a_taproot_batch_is_planned_at_the_key_path_size_and_its_signed_form_meets_it_exactly() {
    let s = setup(3, 4);
    let wsh = Federation::with_recovery(3, public(&s.peg), s.fed.recovery().cloned().expect("recovery")).expect("wsh");
    assert_eq!(crate::fee::planned_input_vbytes(&s.fed).expect("vb"), 58);
    assert_eq!(crate::fee::planned_input_vbytes(&wsh).expect("vb"), crate::input_vbytes(wsh.descriptor()).expect("vb"));
    let coin = crate::BatchInput {
        outpoint: OutPoint { txid: Txid::from_byte_array([1; 32]), vout: 0 },
        amount: Amount::from_sat(10_000_000),
        tweak: Some(RECIPIENT),
    };
    let payout = crate::Payout {
        script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20])),
        amount: Amount::from_sat(50_000),
    };
    let rate = bitcoin::FeeRate::from_sat_per_vb(2).expect("rate");
    let plan = crate::plan_batch(
        &s.fed,
        GENESIS,
        &[coin],
        std::slice::from_ref(&payout),
        rate,
        crate::BatchLimits::STANDARD,
        &s.fed.script_pubkey(),
    )
    .expect("plan");
    let wsh_plan = crate::plan_batch(
        &wsh,
        GENESIS,
        &[coin],
        std::slice::from_ref(&payout),
        rate,
        crate::BatchLimits::STANDARD,
        &wsh.script_pubkey(),
    );
    assert!(plan.vbytes < wsh_plan.expect("wsh plan").vbytes);
    // Sign the planned transaction by key path: its size is the plan's, to the vbyte.
    let mut tx = plan.tx.clone();
    let prevouts = vec![TxOut {
        value: coin.amount,
        script_pubkey: s.fed.deposit_script_pubkey(GENESIS, RECIPIENT).expect("script"),
    }];
    let root = crate::federation::merkle_root(&s.fed.deposit_descriptor(GENESIS, RECIPIENT).expect("deposit"));
    let sighash = key_path_sighash(&tx, 0, &prevouts).expect("sighash");
    tx.input[0].witness = key_path_witness(&frost_sign(&s.shares, &[0, 2, 3], sighash, root));
    verify_spends(&tx, &prevouts).expect("valid");
    assert_eq!(tx.vsize() as u64, plan.vbytes);
}

#[test]
fn fallback_shares_sign_a_taproot_batch_in_the_multi_a_leaf_and_bad_ones_are_refused() {
    use crate::shares::{PreparedBatch, ShareError};
    let secp = Secp256k1::new();
    let s = setup(3, 4);
    let coin = |id: u8, amount: u64, tweak: Option<[u8; 32]>| crate::BatchInput {
        outpoint: OutPoint { txid: Txid::from_byte_array([id; 32]), vout: 1 },
        amount: Amount::from_sat(amount),
        tweak,
    };
    let coins = [coin(1, 600_000, Some(RECIPIENT)), coin(2, 500_000, None), coin(3, 400_000, Some([0x12; 32]))];
    let payout = crate::Payout {
        script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20])),
        amount: Amount::from_sat(1_400_000),
    };
    let rate = bitcoin::FeeRate::from_sat_per_vb(2).expect("rate");
    let key_path_plan = crate::plan_batch(
        &s.fed,
        GENESIS,
        &coins,
        std::slice::from_ref(&payout),
        rate,
        crate::BatchLimits::STANDARD,
        &s.fed.script_pubkey(),
    )
    .expect("plan");
    // Signed in the leaf, the batch is planned for the leaf.
    let leaf_wallet = s.fed.clone().planned_for(crate::SpendPath::Leaf);
    let plan = crate::plan_batch(
        &leaf_wallet,
        GENESIS,
        &coins,
        &[payout],
        rate,
        crate::BatchLimits::STANDARD,
        &s.fed.script_pubkey(),
    )
    .expect("plan");
    assert_eq!(plan.inputs.len(), 3);
    let batch = PreparedBatch::new(&s.fed, GENESIS, &plan.tx, &plan.inputs).expect("prepared");
    let shares: Vec<_> = (0..4).map(|j| batch.sign(&secp, j, &s.peg[j]).expect("share")).collect();
    for share in &shares {
        assert!(share.signatures.iter().all(|sig| sig.len() == 64));
        batch.verify(&secp, share).expect("a valid fallback share");
    }
    // A 65th byte (an explicit SIGHASH_DEFAULT) is a second form of the same signature: refused.
    let mut long = shares[1].clone();
    long.signatures[0].push(0x00);
    assert!(matches!(batch.verify(&secp, &long), Err(ShareError::BadSignatureEncoding { signer: 1, input: 0 })));
    // Signer 2's signatures presented as signer 3's.
    let mut stolen = shares[2].clone();
    stolen.signer = 3;
    assert!(matches!(batch.verify(&secp, &stolen), Err(ShareError::InvalidSignature { signer: 3, input: 0 })));
    assert!(matches!(batch.sign(&secp, 0, &s.peg[1]), Err(ShareError::WrongSecret { signer: 0 })));
    assert!(matches!(batch.finalize(&secp, &shares[..2]), Err(ShareError::NotEnoughShares { have: 2, need: 3 })));

    let signed = batch.finalize(&secp, &[shares[3].clone(), shares[0].clone(), shares[2].clone()]).expect("finalize");
    let prevouts: Vec<TxOut> = plan
        .inputs
        .iter()
        .map(|i| TxOut {
            value: i.amount,
            script_pubkey: match i.tweak {
                Some(r) => s.fed.deposit_script_pubkey(GENESIS, r).expect("script"),
                None => s.fed.script_pubkey(),
            },
        })
        .collect();
    verify_spends(&signed, &prevouts).expect("Bitcoin's interpreter takes every fallback-leaf input");
    assert!(signed.vsize() as u64 > key_path_plan.vbytes, "the fallback leaf costs more than the key path");
    assert!(signed.vsize() as u64 <= plan.vbytes, "the leaf plan bounds the signed leaf spend");
    assert!(plan.vbytes - (signed.vsize() as u64) < 3 * 2, "and by less than two vbytes per input");
}
