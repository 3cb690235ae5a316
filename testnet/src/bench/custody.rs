//! What taproot custody (issue 23) saves, measured on real witnesses: per-input vbytes of a federation
//! spend by FROST key path, by the `multi_a` fallback leaf and by today's `wsh` script, for 3-of-4, 7-of-10
//! and 11-of-15 (each with a 2-of-3 emergency path), each against the 57.5 vB key-path floor; the peg-in
//! fee at the agreed rate against that floor; planned peg-out batch sizes (taproot against wsh); and
//! FROST's in-process signing time per input against one plain BIP340 signature plus its verification in
//! the same run.
//!
//! The fallback witnesses are made by signing (miniscript assembles them), so their sizes are those a
//! spend would put on chain, not estimates. The key-path size is one 64-byte signature.

use super::Row;
use anyhow::{Context, Result};
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{rand::thread_rng, Secp256k1, SecretKey};
use bitcoin::{PublicKey, Sequence, TapSighash, Weight};
use peg::frost::{self, dkg::run_in_process};
use peg::{Federation, Recovery};
use std::collections::BTreeMap;
use std::time::Instant;

const SHAPES: [(usize, u8); 3] = [(3, 4), (7, 10), (11, 15)];

fn keys(secrets: &[SecretKey]) -> Vec<PublicKey> {
    let secp = Secp256k1::new();
    secrets.iter().map(|s| PublicKey::new(s.public_key(&secp))).collect()
}

/// The table rows and their JSON; the peg-in fee rate is the bench genesis's floor.
pub fn custody_costs() -> Result<(Vec<Row>, serde_json::Value)> {
    let chain = ledger::Chain::new(ledger::testkit::genesis(4, 0, bitcoin::Amount::ZERO))?;
    let pegin_fee_rate_sat_vb = chain.params().pegin_fee_rate_sat_vb;
    let secp = Secp256k1::new();
    let floor = peg::fee::KEY_PATH_INPUT_WEIGHT.to_wu() as f64 / 4.0;
    let emergency: Vec<SecretKey> =
        (0x60..0x63u8).map(|i| SecretKey::from_slice(&[i; 32]).context("key")).collect::<Result<_>>()?;
    let recovery = Recovery { threshold: 2, keys: keys(&emergency), delay: 4032 };
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for (k, n) in SHAPES {
        let peg_secrets: Vec<SecretKey> =
            (1..=n).map(|i| SecretKey::from_slice(&[i; 32]).context("key")).collect::<Result<_>>()?;
        let dkg_start = Instant::now();
        let (shares, _) = run_in_process(usize::from(n), k, &mut thread_rng())?;
        let dkg = dkg_start.elapsed();
        let tr = Federation::taproot(shares[0].public(), k, keys(&peg_secrets), Some(recovery.clone()))?;
        let wsh = Federation::with_recovery(k, keys(&peg_secrets), recovery.clone())?;
        let wsh_vb = peg::input_weight(wsh.descriptor())?.to_wu() as f64 / 4.0;

        // The fallback leaf, signed by k peg keys (untweaked wallet: deposits' leaves have the same size).
        let leaves = peg::taproot::leaves(tr.descriptor())?;
        let (_, fallback) = leaves.first().context("a fallback leaf")?;
        let sighash = TapSighash::from_byte_array([5; 32]);
        let signatures: BTreeMap<_, _> = peg_secrets
            .iter()
            .zip(keys(&peg_secrets))
            .take(k)
            .map(|(s, p)| ((p, *fallback), peg::taproot::sign(&secp, s, sighash)))
            .collect();
        let witness = peg::taproot::script_path_witness(tr.descriptor(), &signatures, Sequence::MAX)?;
        let fallback_vb = (Weight::from_non_witness_data_size(peg::fee::NON_WITNESS_INPUT_BYTES)
            + Weight::from_witness_data_size(witness.size() as u64))
        .to_wu() as f64
            / 4.0;

        // One key-path signature by k of n, both rounds, every share checked, in this process.
        let start = Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            let mut nonces = BTreeMap::new();
            let mut commitments = BTreeMap::new();
            for (i, share) in shares.iter().enumerate().take(k) {
                let (nonce, commitment) = share.commit(&mut thread_rng());
                nonces.insert(i, nonce);
                commitments.insert(i, commitment);
            }
            let package = frost::signing_package(&commitments, sighash)?;
            let root = tr.merkle_root();
            let mut sig_shares = BTreeMap::new();
            for (i, nonce) in nonces {
                let share = shares[i].sign(&package, sighash, nonce, root)?;
                frost::verify_share(shares[0].public(), i, &share, &package, root)?;
                sig_shares.insert(i, share);
            }
            frost::aggregate(shares[0].public(), &package, &sig_shares, root)?;
        }
        let frost_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
        let single_ms = single_sign_and_verify_ms(&secp, &peg_secrets[0], sighash);

        rows.push((
            format!("federation input {k}-of-{n}"),
            format!("key path {floor:.1} vB, fallback leaf {fallback_vb:.1} vB, wsh(or_d) {wsh_vb:.1} vB"),
            format!("key-path floor {floor:.1} vB"),
            format!("wsh {:.2}x, fallback {:.2}x", wsh_vb / floor, fallback_vb / floor),
        ));
        rows.push((
            format!("FROST signing {k}-of-{n}"),
            format!(
                "{frost_ms:.2} ms per input in process (2 rounds, {k} shares checked); DKG {:.0} ms",
                dkg.as_secs_f64() * 1000.0
            ),
            format!("one BIP340 sign + verify {single_ms:.3} ms"),
            format!("{:.1}", frost_ms / single_ms),
        ));
        let rate = bitcoin::FeeRate::from_sat_per_vb(2).context("rate")?;
        let batches = super::batch_vbytes(&tr, [0x47; 32], rate)?;
        let wsh_batches = super::batch_vbytes(&wsh, [0x47; 32], rate)?;
        rows.push((
            format!("peg-out batch vbytes {k}-of-{n}"),
            format!(
                "taproot 1: {} vB, 10: {} vB, 100: {} vB; wsh(or_d) {} / {} / {} vB",
                batches[0], batches[1], batches[2], wsh_batches[0], wsh_batches[1], wsh_batches[2]
            ),
            "-".to_string(),
            format!(
                "{:.2} / {:.2} / {:.2}",
                ratio(batches[0], wsh_batches[0]),
                ratio(batches[1], wsh_batches[1]),
                ratio(batches[2], wsh_batches[2])
            ),
        ));
        let (frost_bytes, leaf_bytes) = signing_bytes(k)?;
        rows.push((
            format!("signing messages per batch {k}-of-{n}"),
            format!(
                "{} FROST transactions ({k} commit + {k} share); bytes on chain for 1 / 10 / 100 inputs: {} / {} / {}",
                2 * k,
                frost_bytes[0],
                frost_bytes[1],
                frost_bytes[2]
            ),
            format!("{k} leaf shares: {} / {} / {} bytes", leaf_bytes[0], leaf_bytes[1], leaf_bytes[2]),
            format!(
                "{:.2} / {:.2} / {:.2}",
                ratio(frost_bytes[0] as u64, leaf_bytes[0] as u64),
                ratio(frost_bytes[1] as u64, leaf_bytes[1] as u64),
                ratio(frost_bytes[2] as u64, leaf_bytes[2] as u64)
            ),
        ));
        json.push(serde_json::json!({
            "signing_messages": 2 * k, "frost_message_bytes": frost_bytes, "leaf_share_bytes": leaf_bytes,
            "batch_vbytes_taproot": batches, "batch_vbytes_wsh": wsh_batches,
            "k": k, "n": n, "key_path_vbytes": floor, "fallback_leaf_vbytes": fallback_vb, "wsh_vbytes": wsh_vb,
            "frost_sign_ms": frost_ms, "single_sign_verify_ms": single_ms, "dkg_ms": dkg.as_secs_f64() * 1000.0,
        }));
    }
    let wsh_fee = rate_fee(pegin_fee_rate_sat_vb, json[0]["wsh_vbytes"].as_f64().unwrap_or_default().ceil());
    // What a taproot chain charges, from its own genesis (3-of-4, no emergency path: the same key path).
    let taproot_chain = ledger::Chain::new(ledger::testkit::taproot_genesis(4, 0, bitcoin::Amount::ZERO).0)?;
    let tr_fee = taproot_chain.pegin_fee().to_sat();
    let floor_fee = floor * pegin_fee_rate_sat_vb as f64;
    rows.push((
        "peg-in fee 3-of-4, taproot vs wsh".to_string(),
        format!("key path {tr_fee} sat, wsh(or_d) {wsh_fee} sat at {pegin_fee_rate_sat_vb} sat/vB"),
        format!("57.5 vB floor {floor_fee:.1} sat"),
        format!("{:.3} / {:.3}", tr_fee as f64 / floor_fee, wsh_fee as f64 / floor_fee),
    ));
    Ok((rows, serde_json::json!({ "shapes": json, "pegin_fee_key_path_sat": tr_fee, "pegin_fee_wsh_sat": wsh_fee })))
}

/// Encoded bytes of one healthy key-path signing of a batch of 1, 10 and 100 inputs (k commitment and k
/// share transactions), and of the k leaf-share transactions the fallback would take instead.
fn signing_bytes(k: usize) -> Result<([usize; 3], [usize; 3])> {
    let secret = SecretKey::from_slice(&[9; 32]).context("key")?;
    let genesis = primitives::GenesisHash(primitives::Hash32([1; 32]));
    let txid = bitcoin::Txid::from_byte_array([2; 32]);
    let mut frost_bytes = [0; 3];
    let mut leaf_bytes = [0; 3];
    for (slot, inputs) in [1usize, 10, 100].into_iter().enumerate() {
        let signer = primitives::ValidatorIndex(0);
        let commit = ledger::FrostRound::Commit(vec![vec![2; 66]; inputs]);
        let share = ledger::FrostRound::Share(vec![vec![1; 32]; inputs]);
        let size = |round| {
            ledger::Tx::Frost(ledger::FrostTx::sign(0, txid, 0, signer, round, &secret, &genesis)).encoded_len()
        };
        frost_bytes[slot] = k * (size(commit) + size(share));
        let leaf =
            ledger::Tx::PegShare(ledger::PegShareTx { batch: 0, txid, signer, signatures: vec![vec![3; 64]; inputs] });
        leaf_bytes[slot] = k * leaf.encoded_len();
    }
    Ok((frost_bytes, leaf_bytes))
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

fn rate_fee(rate: u64, vbytes: f64) -> u64 {
    rate * vbytes as u64
}

fn single_sign_and_verify_ms(
    secp: &Secp256k1<bitcoin::secp256k1::All>,
    secret: &SecretKey,
    sighash: TapSighash,
) -> f64 {
    let keypair = bitcoin::secp256k1::Keypair::from_secret_key(secp, secret);
    let message = bitcoin::secp256k1::Message::from_digest(sighash.to_byte_array());
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let sig = secp.sign_schnorr_no_aux_rand(&message, &keypair);
        let _ = secp.verify_schnorr(&sig, &message, &keypair.x_only_public_key().0);
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds)
}
