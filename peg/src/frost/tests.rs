use super::dkg::{run_in_process, Ceremony};
use super::*;
use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{Message, Secp256k1};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Runs both signing rounds with `signers` for `sighash` under `root`; returns the package and the shares.
fn sign_with(
    shares: &[KeyShare],
    signers: &[usize],
    sighash: TapSighash,
    root: Option<TapNodeHash>,
    rng: &mut ChaCha20Rng,
) -> (SigningPackage, BTreeMap<usize, SignatureShare>) {
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let (n, c) = shares[i].commit(rng);
        nonces.insert(i, n);
        commitments.insert(i, c);
    }
    let package = signing_package(&commitments, sighash).expect("package");
    let mut out = BTreeMap::new();
    for (i, n) in nonces {
        out.insert(i, shares[i].sign(&package, sighash, n, root).expect("share"));
    }
    (package, out)
}

#[test]
fn a_three_of_four_dkg_agrees_on_one_group_key_that_no_three_shares_disagree_on() {
    let (shares, transcript) = run_in_process(4, 3, &mut rng(1)).expect("dkg");
    let key = shares[0].group_key().expect("group key");
    assert!(shares.iter().all(|s| s.group_key().expect("group key") == key));
    assert_eq!(
        group_key(&transcript.group().expect("group")).expect("key"),
        key,
        "anyone gets the key from the transcript"
    );
    for (i, s) in shares.iter().enumerate() {
        assert_eq!(s.index(), i);
        transcript.check(s).expect("each share matches the transcript");
    }
    // Another run gives another key: nothing is fixed but the participants' randomness.
    let (other, other_transcript) = run_in_process(4, 3, &mut rng(2)).expect("dkg");
    assert_ne!(other[0].group_key().expect("group key"), key);
    assert_eq!(other_transcript.check(&shares[0]), Err(FrostError::TranscriptMismatch));
}

#[test]
fn any_threshold_of_signers_makes_a_bip340_signature_for_the_tweaked_output_key() {
    let secp = Secp256k1::verification_only();
    let (shares, _) = run_in_process(4, 3, &mut rng(3)).expect("dkg");
    let sighash = TapSighash::from_byte_array([7; 32]);
    let root = Some(TapNodeHash::from_byte_array([9; 32]));
    let (output_key, _) = shares[0].group_key().expect("group key").tap_tweak(&secp, root);
    let message = Message::from_digest(sighash.to_byte_array());
    let mut r = rng(4);
    for signers in [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]] {
        let (package, sig_shares) = sign_with(&shares, &signers, sighash, root, &mut r);
        for (&i, s) in &sig_shares {
            verify_share(shares[0].public(), i, s, &package, root).expect("an honest share checks out");
        }
        let sig = aggregate(shares[0].public(), &package, &sig_shares, root).expect("aggregate");
        secp.verify_schnorr(&sig.signature, &message, &output_key.to_x_only_public_key())
            .expect("a valid signature for Q");
        // Not for the untweaked key, nor for another tree.
        assert!(secp.verify_schnorr(&sig.signature, &message, &shares[0].group_key().expect("group key")).is_err());
    }
    // With no script tree the signature is for P's BIP86 output key.
    let (package, sig_shares) = sign_with(&shares, &[0, 1, 2], sighash, None, &mut r);
    let sig = aggregate(shares[0].public(), &package, &sig_shares, None).expect("aggregate");
    let (untweaked_tr, _) = shares[0].group_key().expect("group key").tap_tweak(&secp, None);
    secp.verify_schnorr(&sig.signature, &message, &untweaked_tr.to_x_only_public_key()).expect("BIP86-style");
}

#[test]
fn a_bad_share_is_refused_and_names_its_signer_and_too_few_shares_do_not_aggregate() {
    let (shares, _) = run_in_process(4, 3, &mut rng(5)).expect("dkg");
    let sighash = TapSighash::from_byte_array([1; 32]);
    let root = Some(TapNodeHash::from_byte_array([2; 32]));
    let mut r = rng(6);
    let (package, mut sig_shares) = sign_with(&shares, &[0, 1, 2], sighash, root, &mut r);
    // Signer 1 signs another tree (a wrong share that still parses).
    let (_, wrong) = sign_with(&shares, &[0, 1, 2], sighash, Some(TapNodeHash::from_byte_array([3; 32])), &mut r);
    sig_shares.insert(1, wrong[&1]);
    assert!(matches!(verify_share(shares[0].public(), 1, &sig_shares[&1], &package, root), Err(FrostError::Frost(_))));
    verify_share(shares[0].public(), 0, &sig_shares[&0], &package, root).expect("the others are fine");
    assert!(aggregate(shares[0].public(), &package, &sig_shares, root).is_err(), "a bad share spoils the signature");
    // A share from someone not in the signing, or out of the group.
    assert_eq!(
        verify_share(shares[0].public(), 3, &sig_shares[&0], &package, root),
        Err(FrostError::UnknownParticipant(3))
    );
    // Two of three shares do not make a signature.
    sig_shares.remove(&1);
    assert!(aggregate(shares[0].public(), &package, &sig_shares, root).is_err());
}

#[test]
fn dkg_messages_out_of_turn_or_from_strangers_are_refused_without_breaking_the_ceremony() {
    let mut r = rng(7);
    let (mut a, _) = Ceremony::start(0, 3, 2, &mut r).expect("start");
    let (mut b, pb) = Ceremony::start(1, 3, 2, &mut r).expect("start");
    let (_, pc) = Ceremony::start(2, 3, 2, &mut r).expect("start");
    assert_eq!(a.on_round1(0, pb.clone()), Err(FrostError::UnknownParticipant(0)), "from itself");
    assert_eq!(a.on_round1(3, pb.clone()), Err(FrostError::UnknownParticipant(3)), "from outside the group");
    assert_eq!(a.on_round1(1, pb.clone()), Ok(None));
    assert!(matches!(a.on_round1(1, pb.clone()), Err(FrostError::OutOfTurn { from: 1, .. })), "a repeat");
    let round2 = a.on_round1(2, pc.clone()).expect("round 1 ends").expect("round-2 packages");
    assert_eq!(round2.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert!(matches!(a.on_round1(2, pc), Err(FrostError::OutOfTurn { .. })), "round 1 is over");
    // A round-2 package before its recipient finished round 1.
    assert!(matches!(b.on_round2(0, round2[&1].clone()), Err(FrostError::OutOfTurn { .. })));
    assert!(Ceremony::start(3, 3, 2, &mut r).is_err(), "index beyond n");
    assert!(Ceremony::start(0, 3, 4, &mut r).is_err(), "threshold above n");
}

#[test]
fn a_round_one_package_from_another_ceremony_fails_the_proof_or_the_shares() {
    // Participant 1 swaps its round-1 package for one made for another index: its proof of knowledge binds
    // the identifier, so round 2 refuses it.
    let mut r = rng(8);
    let (mut a, _) = Ceremony::start(0, 3, 2, &mut r).expect("start");
    let (_, forged) = Ceremony::start(2, 3, 2, &mut r).expect("start");
    let (_, pc) = Ceremony::start(2, 3, 2, &mut r).expect("start");
    assert_eq!(a.on_round1(1, forged), Ok(None));
    assert!(matches!(a.on_round1(2, pc), Err(FrostError::Frost(_))));
}

#[test]
fn a_signer_refuses_a_package_for_another_message_and_a_transcript_keeps_its_first_package() {
    let mut r = rng(9);
    let (shares, transcript) = run_in_process(3, 2, &mut r).expect("dkg");
    let sighash = TapSighash::from_byte_array([4; 32]);
    let (nonces, commitment) = shares[0].commit(&mut r);
    let (_, other) = shares[1].commit(&mut r);
    let package = signing_package(&BTreeMap::from([(0, commitment), (1, other)]), sighash).expect("package");
    assert_eq!(
        shares[0].sign(&package, TapSighash::from_byte_array([5; 32]), nonces.clone(), None),
        Err(FrostError::WrongMessage),
        "a coordinator's package for a message this signer did not compute"
    );
    shares[0].sign(&package, sighash, nonces, None).expect("the expected message");

    let mut partial = dkg::Transcript::new(3, 2);
    let (_, first) = Ceremony::start(0, 3, 2, &mut r).expect("start");
    let (_, second) = Ceremony::start(0, 3, 2, &mut r).expect("start");
    partial.record(0, first.clone()).expect("first");
    partial.record(0, first).expect("the same again is harmless");
    assert!(matches!(partial.record(0, second), Err(FrostError::Transcript(_))), "equivocation is refused");
    assert!(matches!(partial.record(3, transcript_package(&mut r)), Err(FrostError::UnknownParticipant(3))));
    assert!(matches!(partial.group(), Err(FrostError::Transcript(_))), "two participants missing");
    assert!(transcript.group().is_ok());
    assert!(matches!(dkg::Transcript::new(3, 3).check(&shares[0]), Err(FrostError::Transcript(_))));
    assert_eq!(participant(usize::MAX), Err(FrostError::BadIndex(usize::MAX)));
}

fn transcript_package(r: &mut ChaCha20Rng) -> frost_secp256k1_tr::keys::dkg::round1::Package {
    Ceremony::start(2, 3, 2, r).expect("start").1
}
