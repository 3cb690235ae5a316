//! Tests of signature shares: signing a planned batch, refusing every kind of bad share with the right error,
//! finalizing into a transaction that miniscript's interpreter accepts, and hostile bytes.

use super::*;
use crate::batch::{bump_batch, plan_batch, BatchLimits, BatchPlan, Payout};
use crate::deposit::tweak_secret;
use crate::signing::sign_input;
use crate::test_fixtures::{coin, sat};
use bitcoin::hashes::Hash;
use bitcoin::sighash::Prevouts;
use bitcoin::{FeeRate, WPubkeyHash, Witness};
use miniscript::interpreter::{Interpreter, SatisfiedConstraint};

const GENESIS: [u8; 32] = [0x47; 32];
const ALICE: [u8; 32] = [1; 32];
const BOB: [u8; 32] = [2; 32];

fn secrets() -> Vec<SecretKey> {
    crate::test_fixtures::secrets(4)
}

/// 3-of-4, keys listed in genesis order 1..=4 (not the script's sorted order).
fn federation() -> Federation {
    crate::test_fixtures::federation(3, 4)
}

fn payout(i: u8, amount: u64) -> Payout {
    Payout { script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([i; 20])), amount: sat(amount) }
}

fn rate(sat_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_vb(sat_vb).expect("rate")
}

/// Four inputs, largest first: 0 tweaked for Alice, 1 untweaked, 2 tweaked for Bob, 3 tweaked for Alice.
fn plan() -> BatchPlan {
    let fed = federation();
    let coins =
        [coin(4, 30_000, Some(ALICE)), coin(2, 50_000, None), coin(1, 60_000, Some(ALICE)), coin(3, 40_000, Some(BOB))];
    let p = plan_batch(
        &fed,
        GENESIS,
        &coins,
        &[payout(1, 80_000), payout(2, 80_000)],
        rate(5),
        BatchLimits::STANDARD,
        &fed.script_pubkey(),
    )
    .expect("plan");
    assert_eq!(p.inputs.iter().map(|i| i.tweak).collect::<Vec<_>>(), vec![Some(ALICE), None, Some(BOB), Some(ALICE)]);
    p
}

fn share(p: &BatchPlan, signer: usize) -> Share {
    let secp = Secp256k1::new();
    sign_batch(&secp, &federation(), GENESIS, &p.tx, &p.inputs, signer, &secrets()[signer]).expect("sign")
}

fn verify(p: &BatchPlan, share: &Share) -> Result<(), ShareError> {
    verify_share(&Secp256k1::verification_only(), &federation(), GENESIS, &p.tx, &p.inputs, share)
}

fn finalize(p: &BatchPlan, shares: &[Share]) -> Result<Transaction, ShareError> {
    finalize_batch(&Secp256k1::verification_only(), &federation(), GENESIS, &p.tx, &p.inputs, shares)
}

/// `share` with signature `input` replaced by `bytes`.
fn with_signature(share: &Share, input: usize, bytes: Vec<u8>) -> Share {
    let mut s = share.clone();
    s.signatures[input] = bytes;
    s
}

/// The same signature with `s` replaced by `n - s` (valid for libsecp256k1's math, but high-S).
fn high_s(sig: &[u8]) -> Vec<u8> {
    let (flag, der) = sig.split_last().expect("non-empty");
    let mut compact = ecdsa::Signature::from_der(der).expect("der").serialize_compact();
    let negated = SecretKey::from_slice(&compact[32..]).expect("s is a valid scalar").negate();
    compact[32..].copy_from_slice(&negated.secret_bytes());
    let high = ecdsa::Signature::from_compact(&compact).expect("compact");
    [&high.serialize_der()[..], &[*flag]].concat()
}

/// The same signature with a needless 0x00 before `r`: valid BER, not strict DER.
fn padded_r(sig: &[u8]) -> Vec<u8> {
    let rlen = usize::from(sig[3]);
    let mut v = vec![0x30, sig[1] + 1, 0x02, sig[3] + 1, 0x00];
    v.extend_from_slice(&sig[4..4 + rlen]);
    v.extend_from_slice(&sig[4 + rlen..]);
    v
}

#[test]
fn every_validator_signs_every_input_and_every_share_verifies() {
    let p = plan();
    let fed = federation();
    let secp = Secp256k1::new();
    let mut psbt = p.psbt(&fed, GENESIS).expect("psbt");
    for signer in 0..4 {
        let s = share(&p, signer);
        assert_eq!(s.signer, signer);
        assert_eq!(s.signatures.len(), 4);
        assert_eq!(verify(&p, &s), Ok(()));
        // RFC-6979: the same version signed twice gives the same bytes.
        assert_eq!(s, share(&p, signer));
        for (i, sig) in s.signatures.iter().enumerate() {
            assert_eq!(sig.last(), Some(&0x01), "SIGHASH_ALL");
            assert!(sig.len() <= 72, "low-S DER is at most 71 bytes plus the flag");
            // The same bytes as the PSBT signer of `crate::signing` produces for the same input and key.
            let key = match p.inputs[i].tweak {
                None => secrets()[signer],
                Some(r) => tweak_secret(&secp, &secrets()[signer], GENESIS, r).expect("tweak"),
            };
            sign_input(&secp, &mut psbt, i, &key).expect("psbt sign");
            let pk = PublicKey::new(key.public_key(&secp));
            assert_eq!(psbt.inputs[i].partial_sigs[&pk].to_vec(), *sig, "signer {signer} input {i}");
        }
    }
    // A prepared batch gives the same shares and checks them the same way.
    let prepared = PreparedBatch::new(&fed, GENESIS, &p.tx, &p.inputs).expect("prepare");
    assert_eq!(prepared.tx(), &p.tx);
    assert_eq!(prepared.sign(&secp, 2, &secrets()[2]), Ok(share(&p, 2)));
    assert_eq!(prepared.verify(&secp, &share(&p, 1)), Ok(()));
}

#[test]
fn signing_refuses_a_wrong_secret_or_an_unknown_signer() {
    let p = plan();
    let fed = federation();
    let secp = Secp256k1::new();
    let sign = |signer: usize, secret: &SecretKey| sign_batch(&secp, &fed, GENESIS, &p.tx, &p.inputs, signer, secret);
    assert_eq!(sign(0, &secrets()[1]), Err(ShareError::WrongSecret { signer: 0 }));
    // An already tweaked secret is not the peg key's secret either.
    let tweaked = tweak_secret(&secp, &secrets()[0], GENESIS, ALICE).expect("tweak");
    assert_eq!(sign(0, &tweaked), Err(ShareError::WrongSecret { signer: 0 }));
    assert_eq!(sign(4, &secrets()[0]), Err(ShareError::UnknownSigner { signer: 4, keys: 4 }));
}

#[test]
fn tampered_signatures_are_refused_naming_signer_and_input() {
    let p = plan();
    let s = share(&p, 1);
    let good = s.signatures[2].clone();
    let der_len = good.len() - 1;

    let mut flipped = good.clone();
    flipped[der_len - 1] ^= 0x01; // last byte of s: still canonical DER
    assert_eq!(verify(&p, &with_signature(&s, 2, flipped)), Err(ShareError::InvalidSignature { signer: 1, input: 2 }));

    for flag in [0x00, 0x02, 0x03, 0x81] {
        let mut other = good.clone();
        other[der_len] = flag;
        assert_eq!(
            verify(&p, &with_signature(&s, 2, other)),
            Err(ShareError::WrongSighashType { signer: 1, input: 2, found: flag })
        );
    }

    assert_eq!(verify(&p, &with_signature(&s, 2, high_s(&good))), Err(ShareError::HighS { signer: 1, input: 2 }));

    let bad = Err(ShareError::BadSignatureEncoding { signer: 1, input: 2 });
    let mut trailing = good[..der_len].to_vec();
    trailing.extend_from_slice(&[0x00, 0x01]);
    let r_out_of_range = [&[0x30, 0x26, 0x02, 0x21, 0x00][..], &[0xFF; 32], &[0x02, 0x01, 0x01, 0x01]].concat();
    for bytes in [
        vec![],
        vec![0x01],
        good[..der_len].to_vec(),      // no sighash byte
        good[1..].to_vec(),            // no sequence tag
        good[..der_len - 1].to_vec(),  // truncated
        trailing,                      // junk after the DER sequence
        padded_r(&good),               // BER, not strict DER
        r_out_of_range,                // r >= n parses to zero in libsecp256k1
        [&good[..], &[0x01]].concat(), // two sighash bytes
    ] {
        assert_eq!(verify(&p, &with_signature(&s, 2, bytes.clone())), bad, "{bytes:02x?}");
    }
    // r = s = 0 is canonical DER, but no signature.
    let zero = vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01];
    assert_eq!(verify(&p, &with_signature(&s, 2, zero)), Err(ShareError::InvalidSignature { signer: 1, input: 2 }));
}

#[test]
fn shares_for_another_signer_input_tweak_chain_or_version_are_refused() {
    let p = plan();
    let fed = federation();
    let secp = Secp256k1::new();
    let s = share(&p, 1);

    // Another signer's index.
    let relabelled = Share { signer: 2, ..s.clone() };
    assert_eq!(verify(&p, &relabelled), Err(ShareError::InvalidSignature { signer: 2, input: 0 }));
    for signer in [4, usize::MAX] {
        assert_eq!(verify(&p, &Share { signer, ..s.clone() }), Err(ShareError::UnknownSigner { signer, keys: 4 }));
    }

    // Another input's signature.
    let mut swapped = s.clone();
    swapped.signatures.swap(1, 2);
    assert_eq!(verify(&p, &swapped), Err(ShareError::InvalidSignature { signer: 1, input: 1 }));

    // Too few or too many signatures.
    let mut short = s.clone();
    short.signatures.pop();
    assert_eq!(verify(&p, &short), Err(ShareError::WrongInputCount { signer: 1, have: 3, want: 4 }));
    let mut long = s.clone();
    long.signatures.push(s.signatures[0].clone());
    assert_eq!(verify(&p, &long), Err(ShareError::WrongInputCount { signer: 1, have: 5, want: 4 }));
    assert_eq!(
        verify(&p, &Share { signer: 1, signatures: vec![] }),
        Err(ShareError::WrongInputCount { signer: 1, have: 0, want: 4 })
    );

    // A tweaked input signed with the untweaked key (input 0 is Alice's deposit).
    let mut cache = SighashCache::new(&p.tx);
    let ws = fed.deposit_witness_script(GENESIS, ALICE).expect("ws");
    let sighash = cache.p2wsh_signature_hash(0, &ws, p.inputs[0].amount, EcdsaSighashType::All).expect("sighash");
    let untweaked = secp.sign_ecdsa(&Message::from(sighash), &secrets()[1]);
    let untweaked = bitcoin::ecdsa::Signature { signature: untweaked, sighash_type: EcdsaSighashType::All };
    assert_eq!(
        verify(&p, &with_signature(&s, 0, untweaked.to_vec())),
        Err(ShareError::InvalidSignature { signer: 1, input: 0 })
    );

    // Another chain: the deposit tweaks (and so input 0's keys and script) differ.
    let other_chain = verify_share(&secp, &fed, [0x48; 32], &p.tx, &p.inputs, &s);
    assert_eq!(other_chain, Err(ShareError::InvalidSignature { signer: 1, input: 0 }));

    // Another version that spends the same inputs (a bump paid from the change): every sighash differs.
    let incr = FeeRate::from_sat_per_vb(1).expect("rate");
    let bump = bump_batch(&fed, GENESIS, &p, &[], rate(7), incr, BatchLimits::STANDARD, &fed.script_pubkey())
        .expect("bump from change");
    assert_eq!(bump.inputs, p.inputs);
    assert_ne!(bump.tx.compute_txid(), p.tx.compute_txid());
    assert_eq!(verify(&bump, &s), Err(ShareError::InvalidSignature { signer: 1, input: 0 }));
    assert_eq!(verify(&p, &share(&bump, 1)), Err(ShareError::InvalidSignature { signer: 1, input: 0 }));
    assert_eq!(verify(&bump, &share(&bump, 1)), Ok(()));

    // A version with one more input.
    let extra = [coin(9, 100_000, None)];
    let bigger = bump_batch(&fed, GENESIS, &p, &extra, rate(60), incr, BatchLimits::STANDARD, &fed.script_pubkey())
        .expect("bump with a new input");
    assert_eq!(bigger.inputs.len(), 5);
    assert_eq!(verify(&bigger, &s), Err(ShareError::WrongInputCount { signer: 1, have: 4, want: 5 }));
    assert_eq!(verify(&bigger, &share(&bigger, 3)), Ok(()));
}

/// Checks a finalized batch without our code's help: miniscript's interpreter, then by hand.
fn check_finalized(p: &BatchPlan, tx: &Transaction, signers: &[usize]) {
    let fed = federation();
    let secp = Secp256k1::verification_only();
    assert_eq!(tx.compute_txid(), p.tx.compute_txid(), "signing does not change the txid");
    assert!(tx.vsize() as u64 <= p.vbytes, "{} vB above the bound {}", tx.vsize(), p.vbytes);
    let prevouts: Vec<TxOut> = p
        .inputs
        .iter()
        .map(|i| {
            let script_pubkey = match i.tweak {
                None => fed.script_pubkey(),
                Some(r) => fed.deposit_script_pubkey(GENESIS, r).expect("spk"),
            };
            TxOut { value: i.amount, script_pubkey }
        })
        .collect();
    let prevouts_all = Prevouts::All(&prevouts);
    let mut cache = SighashCache::new(tx);
    for (i, (txin, input)) in tx.input.iter().zip(&p.inputs).enumerate() {
        // 1. Miniscript's interpreter runs the script with real signature checks.
        let interpreter = Interpreter::from_txdata(
            &prevouts[i].script_pubkey,
            &txin.script_sig,
            &txin.witness,
            txin.sequence,
            tx.lock_time,
        )
        .expect("interpreter");
        let satisfied: Vec<SatisfiedConstraint> = interpreter
            .iter(&secp, tx, i, &prevouts_all)
            .collect::<Result<_, _>>()
            .expect("input satisfies its script");
        assert_eq!(satisfied.iter().filter(|c| matches!(c, SatisfiedConstraint::PublicKey { .. })).count(), 3);

        // 2. By hand: <empty> <3 signatures in sorted-key order> <witness script>, each valid.
        let (keys, ws) = match input.tweak {
            None => (fed.keys().to_vec(), fed.witness_script().expect("a wsh wallet")),
            Some(r) => {
                (fed.deposit_keys(GENESIS, r).expect("keys"), fed.deposit_witness_script(GENESIS, r).expect("ws"))
            }
        };
        let items: Vec<&[u8]> = txin.witness.iter().collect();
        assert_eq!(items.len(), 5, "input {i}");
        assert!(items[0].is_empty(), "CHECKMULTISIG's extra pop");
        assert_eq!(items[4], ws.as_bytes());
        let mut want: Vec<PublicKey> = signers.iter().map(|&j| keys[j]).collect();
        want.sort_by_key(|k| k.inner.serialize());
        let msg =
            Message::from(cache.p2wsh_signature_hash(i, &ws, input.amount, EcdsaSighashType::All).expect("sighash"));
        for (sig, key) in items[1..4].iter().zip(&want) {
            let (flag, der) = sig.split_last().expect("non-empty");
            assert_eq!(*flag, 0x01);
            let sig = ecdsa::Signature::from_der(der).expect("der");
            assert_eq!(secp.verify_ecdsa(&msg, &sig, &key.inner), Ok(()), "input {i} key {key}");
        }
    }
}

#[test]
fn three_shares_finalize_into_a_valid_transaction() {
    let p = plan();
    let shares: Vec<Share> = (0..4).map(|j| share(&p, j)).collect();
    // Any three signers, given in any order.
    let tx = finalize(&p, &[shares[3].clone(), shares[0].clone(), shares[2].clone()]).expect("finalize");
    check_finalized(&p, &tx, &[0, 2, 3]);
    let tx = finalize(&p, &[shares[1].clone(), shares[2].clone(), shares[3].clone()]).expect("finalize");
    check_finalized(&p, &tx, &[1, 2, 3]);
    // Four shares: the three lowest signer indices, whatever the order, so every node builds the same witness.
    let lowest = finalize(&p, &shares[..3]).expect("finalize");
    check_finalized(&p, &lowest, &[0, 1, 2]);
    let mut all = shares.clone();
    all.reverse();
    let from_all = finalize(&p, &all).expect("finalize");
    assert_eq!(from_all, lowest);
    assert_eq!(from_all.compute_wtxid(), lowest.compute_wtxid());
}

#[test]
fn finalize_refuses_too_few_duplicate_unknown_or_invalid_shares() {
    let p = plan();
    let shares: Vec<Share> = (0..4).map(|j| share(&p, j)).collect();
    assert_eq!(finalize(&p, &shares[..2]), Err(ShareError::NotEnoughShares { have: 2, need: 3 }));
    assert_eq!(finalize(&p, &[]), Err(ShareError::NotEnoughShares { have: 0, need: 3 }));
    let dup = [shares[0].clone(), shares[1].clone(), shares[1].clone()];
    assert_eq!(finalize(&p, &dup), Err(ShareError::DuplicateSigner { signer: 1 }));
    let dup = [shares[0].clone(), shares[1].clone(), shares[2].clone(), shares[0].clone()];
    assert_eq!(finalize(&p, &dup), Err(ShareError::DuplicateSigner { signer: 0 }));
    let unknown = [shares[0].clone(), shares[1].clone(), Share { signer: 7, ..shares[2].clone() }];
    assert_eq!(finalize(&p, &unknown), Err(ShareError::UnknownSigner { signer: 7, keys: 4 }));
    // A bad share is an error even when the other three would do.
    let mut tampered = shares.clone();
    tampered[3].signatures[3] = high_s(&tampered[3].signatures[3]);
    assert_eq!(finalize(&p, &tampered), Err(ShareError::HighS { signer: 3, input: 3 }));
    // Shares of the previous version do not finalize the bump.
    let fed = federation();
    let incr = FeeRate::from_sat_per_vb(1).expect("rate");
    let bump =
        bump_batch(&fed, GENESIS, &p, &[], rate(7), incr, BatchLimits::STANDARD, &fed.script_pubkey()).expect("bump");
    assert_eq!(finalize(&bump, &shares[..3]), Err(ShareError::InvalidSignature { signer: 0, input: 0 }));
}

#[test]
fn hostile_bytes_are_errors_never_panics() {
    let p = plan();
    let fed = federation();
    let secp = Secp256k1::verification_only();
    let prepared = PreparedBatch::new(&fed, GENESIS, &p.tx, &p.inputs).expect("prepare");
    let s = share(&p, 0);
    // Every single-bit flip of a valid signature is refused (one accepted byte string per signature).
    for input in 0..4 {
        let good = &s.signatures[input];
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bytes = good.clone();
                bytes[byte] ^= 1 << bit;
                let err = prepared.verify(&secp, &with_signature(&s, input, bytes)).expect_err("flipped bit");
                assert!(
                    matches!(
                        err,
                        ShareError::BadSignatureEncoding { input: i, .. }
                            | ShareError::WrongSighashType { input: i, .. }
                            | ShareError::HighS { input: i, .. }
                            | ShareError::InvalidSignature { input: i, .. } if i == input
                    ),
                    "{err}"
                );
            }
        }
    }
    // Pseudo-random strings (fixed seed: the run is reproducible), some dressed up as DER.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5_000 {
        let len = (next() % 90) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && len > 8 {
            bytes[0] = 0x30;
            bytes[1] = (len - 3) as u8;
            bytes[2] = 0x02;
        }
        let input = round % 4;
        assert!(prepared.verify(&secp, &with_signature(&s, input, bytes)).is_err(), "round {round}");
    }
    // A huge share is refused by its count before any signature is parsed.
    let huge = Share { signer: 0, signatures: vec![vec![0xFF; 100]; 100_000] };
    assert!(matches!(prepared.verify(&secp, &huge), Err(ShareError::WrongInputCount { have: 100_000, .. })));
}

#[test]
fn inconsistent_batches_are_refused() {
    let p = plan();
    let fed = federation();
    let prepare = |tx: &Transaction, inputs: &[BatchInput]| PreparedBatch::new(&fed, GENESIS, tx, inputs).map(|_| ());
    assert!(matches!(prepare(&p.tx, &p.inputs[..3]), Err(ShareError::InconsistentBatch(_))));
    let mut moved = p.inputs.clone();
    moved.swap(0, 1);
    assert!(matches!(prepare(&p.tx, &moved), Err(ShareError::InconsistentBatch(_))));
    let mut signed = p.tx.clone();
    signed.input[2].witness = Witness::from_slice(&[vec![1u8]]);
    assert!(matches!(prepare(&signed, &p.inputs), Err(ShareError::InconsistentBatch(_))));
    let mut empty = p.tx.clone();
    empty.input.clear();
    assert!(matches!(prepare(&empty, &[]), Err(ShareError::InconsistentBatch(_))));
    assert_eq!(prepare(&p.tx, &p.inputs), Ok(()));
}

#[test]
fn a_wallet_with_an_emergency_path_is_signed_through_the_federation_branch() {
    let secp = Secp256k1::new();
    let emergency: Vec<PublicKey> =
        crate::test_fixtures::secrets(7)[4..].iter().map(|s| PublicKey::new(s.public_key(&secp))).collect();
    let recovery = crate::Recovery { threshold: 2, keys: emergency, delay: 144 };
    let fed = Federation::with_recovery(3, federation().keys().to_vec(), recovery).expect("valid");
    let coins = [coin(1, 60_000, Some(ALICE)), coin(2, 50_000, None)];
    let p =
        plan_batch(&fed, GENESIS, &coins, &[payout(1, 80_000)], rate(5), BatchLimits::STANDARD, &fed.script_pubkey())
            .expect("plan");
    let shares: Vec<Share> =
        (0..3).map(|j| sign_batch(&secp, &fed, GENESIS, &p.tx, &p.inputs, j, &secrets()[j]).expect("sign")).collect();
    let tx = finalize_batch(&secp, &fed, GENESIS, &p.tx, &p.inputs, &shares).expect("three shares finalize");
    // The size the fee was priced on bounds the real transaction.
    assert!(tx.vsize() as u64 <= p.vbytes, "{} > {}", tx.vsize(), p.vbytes);
    for input in &tx.input {
        // `or_d` first branch: an empty dummy, three signatures, then the empty-vector-free script.
        assert_eq!(input.witness.len(), 5);
    }
    assert_eq!(
        finalize_batch(&secp, &fed, GENESIS, &p.tx, &p.inputs, &shares[..2]),
        Err(ShareError::NotEnoughShares { have: 2, need: 3 })
    );
}

#[test]
fn bitcoins_interpreter_accepts_a_finalized_batch_and_refuses_a_misrecorded_prevout() {
    use crate::verify::{recorded_prevouts, verify_spends, ScriptCheckError};
    let p = plan();
    let shares: Vec<Share> = (0..3).map(|j| share(&p, j)).collect();
    let tx = finalize(&p, &shares).expect("finalize");
    let prevouts = recorded_prevouts(&federation(), GENESIS, &p.inputs).expect("prevouts");
    assert_eq!(verify_spends(&tx, &prevouts), Ok(()));
    // Input 0 is Alice's deposit: spent as if it were untweaked (the fee-pool finding), Bitcoin refuses it.
    let mut wrong = prevouts.clone();
    wrong[0].script_pubkey = federation().script_pubkey();
    assert!(matches!(verify_spends(&tx, &wrong), Err(ScriptCheckError::Script { input: 0, .. })));
    // A wrong amount breaks the BIP-143 sighash.
    let mut wrong = prevouts.clone();
    wrong[2].value += sat(1);
    assert!(matches!(verify_spends(&tx, &wrong), Err(ScriptCheckError::Script { input: 2, .. })));
    assert!(matches!(verify_spends(&tx, &prevouts[..1]), Err(ScriptCheckError::PrevoutCount { .. })));
    // Signed as if input 0 were untweaked: every share "verifies" against that record, Bitcoin still refuses.
    let mut misrecorded = p.clone();
    misrecorded.inputs[0].tweak = None;
    let bad: Vec<Share> = (0..3)
        .map(|j| {
            let secp = Secp256k1::new();
            sign_batch(&secp, &federation(), GENESIS, &p.tx, &misrecorded.inputs, j, &secrets()[j]).expect("sign")
        })
        .collect();
    let tx = finalize_batch(&Secp256k1::verification_only(), &federation(), GENESIS, &p.tx, &misrecorded.inputs, &bad)
        .expect("our own checks pass");
    assert!(matches!(verify_spends(&tx, &prevouts), Err(ScriptCheckError::Script { input: 0, .. })));
}
