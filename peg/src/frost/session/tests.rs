//! The session under honest, silent, withholding and lying validators: with at most `n - k` of them faulty
//! the batch is signed, a bad share names and excludes its signer at once, and the key path is given up
//! only when it cannot finish.

use super::*;
use crate::frost::dkg::run_in_process;
use crate::frost::KeyShare;
use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{Message, Secp256k1};
use frost_secp256k1_tr::round1::SigningNonces;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const RULES: SessionRules = SessionRules { timeout: 5, max_attempts: 4 };
const ID: [u8; 32] = [0xb0; 32];

struct Net {
    shares: Vec<KeyShare>,
    inputs: Vec<InputToSign>,
    rng: ChaCha20Rng,
    nonces: BTreeMap<(usize, u32), Vec<SigningNonces>>,
}

impl Net {
    fn new(n: usize, k: usize, inputs: usize) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let (shares, _) = run_in_process(n, k, &mut rng).expect("dkg");
        let inputs = (0..inputs)
            .map(|i| InputToSign {
                sighash: TapSighash::from_byte_array([i as u8 + 1; 32]),
                merkle_root: (i % 2 == 0).then(|| TapNodeHash::from_byte_array([0x70 + i as u8; 32])),
            })
            .collect();
        Net { shares, inputs, rng, nonces: BTreeMap::new() }
    }

    fn session(&self) -> Session {
        Session::new(ID, self.shares[0].public().clone(), RULES, self.inputs.clone(), 100).expect("session")
    }

    /// Validator `v` commits for the session's current attempt (keeping its nonces, as a node persists them).
    fn commit(&mut self, s: &mut Session, v: usize) -> Result<Outcome, Refusal> {
        let (nonces, commitments): (Vec<_>, Vec<_>) =
            (0..self.inputs.len()).map(|_| self.shares[v].commit(&mut self.rng)).unzip();
        self.nonces.insert((v, s.attempt()), nonces);
        s.commit(ID, v, s.attempt(), commitments, 100)
    }

    /// Validator `v` signs the current attempt's packages with the nonces it kept (used once: removed).
    fn sign(&mut self, s: &Session, v: usize) -> Vec<SignatureShare> {
        let nonces = self.nonces.remove(&(v, s.attempt())).expect("nonces of this attempt");
        s.packages()
            .iter()
            .zip(nonces)
            .zip(&self.inputs)
            .map(|((p, n), input)| self.shares[v].sign(p, input.sighash, n, input.merkle_root).expect("share"))
            .collect()
    }

    fn check_signed(&self, s: &Session) {
        let State::Signed(signatures) = s.state() else { panic!("not signed: {:?}", s.state()) };
        assert_eq!(signatures.len(), self.inputs.len(), "one signature per input");
        let secp = Secp256k1::verification_only();
        let key = self.shares[0].group_key().expect("key");
        for (sig, input) in signatures.iter().zip(&self.inputs) {
            let (q, _) = key.tap_tweak(&secp, input.merkle_root);
            let message = Message::from_digest(input.sighash.to_byte_array());
            secp.verify_schnorr(&sig.signature, &message, &q.to_x_only_public_key()).expect("valid for Q");
        }
    }
}

#[test]
fn honest_validators_sign_every_input_in_one_attempt_and_the_first_k_committers_sign() {
    let mut net = Net::new(4, 3, 3);
    let mut s = net.session();
    for v in [2, 0, 3] {
        net.commit(&mut s, v).expect("commit");
    }
    assert_eq!(s.state(), &State::Sharing { signers: vec![2, 0, 3] });
    assert_eq!(net.commit(&mut s, 1), Err(Refusal::NotNow), "a fourth commitment is not needed");
    assert_eq!(s.packages().len(), 3);
    for v in [3, 2, 0] {
        let shares = net.sign(&s, v);
        s.share(ID, v, 0, shares, 101).expect("share");
    }
    assert_eq!(s.attempt(), 0);
    net.check_signed(&s);
}

#[test]
fn f_silent_validators_do_not_stall_the_batch() {
    // 7-of-10 tolerates 3 silent validators.
    let mut net = Net::new(10, 7, 2);
    let mut s = net.session();
    for v in 3..10 {
        net.commit(&mut s, v).expect("commit");
    }
    for v in 3..10 {
        let shares = net.sign(&s, v);
        s.share(ID, v, 0, shares, 101).expect("share");
    }
    net.check_signed(&s);
}

#[test]
fn a_bad_share_excludes_its_signer_at_once_and_the_next_attempt_signs_without_it() {
    let mut net = Net::new(4, 3, 2);
    let mut s = net.session();
    for v in [1, 0, 2] {
        net.commit(&mut s, v).expect("commit");
    }
    let stale = net.sign(&s, 0);
    // Validator 1 sends a share made for another input's package: valid bytes, wrong share.
    let mut lying = net.sign(&s, 1);
    lying.swap(0, 1);
    assert_eq!(s.share(ID, 1, 0, lying, 102), Ok(Outcome::Excluded { signer: 1, input: 0 }));
    assert_eq!(s.excluded(), &BTreeSet::from([1]));
    assert_eq!(s.state(), &State::Committing);
    assert_eq!(s.attempt(), 1);
    // The excluded signer cannot come back in this batch; stale attempt-0 messages are refused.
    assert_eq!(net.commit(&mut s, 1), Err(Refusal::Excluded(1)));
    assert_eq!(s.share(ID, 0, 0, stale, 102), Err(Refusal::WrongAttempt { got: 0, current: 1 }));
    for v in [3, 0, 2] {
        net.commit(&mut s, v).expect("commit");
    }
    for v in [0, 2, 3] {
        let shares = net.sign(&s, v);
        s.share(ID, v, 1, shares, 103).expect("share");
    }
    net.check_signed(&s);
}

#[test]
fn a_signer_that_commits_and_withholds_is_excluded_at_the_timeout() {
    let mut net = Net::new(4, 3, 1);
    let mut s = net.session();
    for v in [0, 1, 2] {
        net.commit(&mut s, v).expect("commit");
    }
    for v in [0, 2] {
        let shares = net.sign(&s, v);
        s.share(ID, v, 0, shares, 101).expect("share");
    }
    assert!(!s.on_height(104), "still open");
    assert!(s.on_height(105), "timed out after 5 blocks");
    assert_eq!(s.excluded(), &BTreeSet::from([1]), "only the withholder");
    for v in [1, 0, 2, 3] {
        let r = net.commit(&mut s, v);
        assert_eq!(r.is_err(), v == 1);
    }
    for v in [0, 2, 3] {
        let shares = net.sign(&s, v);
        s.share(ID, v, 1, shares, 106).expect("share");
    }
    net.check_signed(&s);
}

#[test]
fn the_key_path_is_given_up_when_fewer_than_k_are_left_or_the_attempts_run_out() {
    // Two liars in a 3-of-4: after both are excluded only 2 are left.
    let mut net = Net::new(4, 3, 1);
    let mut s = net.session();
    for liar in [0, 1] {
        for v in [liar, 2, 3] {
            net.commit(&mut s, v).expect("commit");
        }
        let mut bad = net.sign(&s, liar);
        bad[0] = net.sign(&s, 2)[0];
        assert_eq!(s.share(ID, liar, s.attempt(), bad, 110), Ok(Outcome::Excluded { signer: liar, input: 0 }));
    }
    assert_eq!(s.state(), &State::FallBack);
    assert_eq!(net.commit(&mut s, 2), Err(Refusal::NotNow), "a session that fell back takes nothing");

    // Nobody commits: attempts time out without exclusions until max_attempts.
    let net = Net::new(4, 3, 1);
    let mut s = net.session();
    let mut height = 100;
    while s.state() != &State::FallBack {
        height += RULES.timeout;
        assert!(s.on_height(height));
    }
    assert_eq!(s.attempt(), RULES.max_attempts);
    assert!(s.excluded().is_empty());
    assert!(!s.on_height(height + 100), "a finished session stays finished");
}

#[test]
fn hostile_messages_are_refused_without_changing_the_session() {
    let mut net = Net::new(4, 3, 2);
    let mut s = net.session();
    let (_, c) = net.shares[0].commit(&mut net.rng);
    assert_eq!(s.commit(ID, 4, 0, vec![c, c], 100), Err(Refusal::UnknownSigner(4)));
    assert_eq!(s.commit(ID, usize::MAX, 0, vec![c, c], 100), Err(Refusal::UnknownSigner(usize::MAX)));
    assert_eq!(s.commit(ID, 0, 1, vec![c, c], 100), Err(Refusal::WrongAttempt { got: 1, current: 0 }));
    assert_eq!(s.commit(ID, 0, 0, vec![c], 100), Err(Refusal::WrongCount { got: 1, inputs: 2 }));
    assert_eq!(s.share(ID, 0, 0, Vec::new(), 100), Err(Refusal::NotNow), "no shares before the signers are fixed");
    net.commit(&mut s, 0).expect("commit");
    assert_eq!(s.commit(ID, 0, 0, vec![c, c], 100), Err(Refusal::Repeated(0)));
    for v in [1, 2] {
        net.commit(&mut s, v).expect("commit");
    }
    let shares = net.sign(&s, 0);
    assert_eq!(s.share(ID, 3, 0, shares.clone(), 100), Err(Refusal::NotASigner(3)));
    assert_eq!(s.share(ID, 0, 0, shares[..1].to_vec(), 100), Err(Refusal::WrongCount { got: 1, inputs: 2 }));
    s.share(ID, 0, 0, shares.clone(), 100).expect("share");
    assert_eq!(s.share(ID, 0, 0, shares, 100), Err(Refusal::Repeated(0)));
    assert!(s.excluded().is_empty());
    assert_eq!(s.attempt(), 0);
}

#[test]
fn a_bad_share_on_a_later_input_names_that_input_and_messages_after_the_end_are_refused() {
    let mut net = Net::new(4, 3, 2);
    let mut s = net.session();
    for v in [0, 1, 2] {
        assert_eq!(net.commit(&mut s, v), Ok(if v == 2 { Outcome::SignersFixed } else { Outcome::Recorded }));
    }
    let mut bad = net.sign(&s, 2);
    bad[1] = bad[0];
    assert_eq!(s.share(ID, 2, 0, bad, 101), Ok(Outcome::Excluded { signer: 2, input: 1 }));
    for v in [0, 1, 3] {
        net.commit(&mut s, v).expect("commit");
    }
    for v in [0, 1, 3] {
        let shares = net.sign(&s, v);
        let outcome = s.share(ID, v, 1, shares, 102).expect("share");
        assert_eq!(outcome, if v == 3 { Outcome::Signed } else { Outcome::Recorded });
    }
    net.check_signed(&s);
    assert_eq!(net.commit(&mut s, 0), Err(Refusal::NotNow), "a signed session takes nothing more");
    assert_eq!(net.commit(&mut s, 2), Err(Refusal::Excluded(2)));
}

#[test]
fn too_few_commitments_by_the_deadline_exclude_nobody() {
    let mut net = Net::new(4, 3, 1);
    let mut s = net.session();
    for v in [0, 1] {
        net.commit(&mut s, v).expect("commit");
    }
    assert!(!s.on_height(104));
    assert!(s.on_height(105));
    assert!(s.excluded().is_empty(), "committing is not a promise until k have committed");
    assert_eq!(s.state(), &State::Committing);
    assert_eq!(s.attempt(), 1);
}

#[test]
fn a_session_refuses_rules_that_cannot_work_and_messages_for_another_batch() {
    let net = Net::new(4, 3, 1);
    let group = net.shares[0].public().clone();
    let open =
        |rules: SessionRules, inputs: Vec<InputToSign>| Session::new(ID, group.clone(), rules, inputs, 0).map(|_| ());
    assert_eq!(open(RULES, Vec::new()), Err(SessionError::NoInputs));
    assert_eq!(open(SessionRules { timeout: 2, ..RULES }, net.inputs.clone()), Err(SessionError::TimeoutTooShort(2)));
    assert_eq!(
        open(SessionRules { max_attempts: 1, ..RULES }, net.inputs.clone()),
        Err(SessionError::TooFewAttempts { got: 1, min: 2 })
    );
    let mut s = net.session();
    let mut net = net;
    let (_, c) = net.shares[0].commit(&mut net.rng);
    assert_eq!(s.commit([0; 32], 0, 0, vec![c], 100), Err(Refusal::WrongSession));
}

#[test]
fn a_session_restored_from_its_snapshot_goes_on_as_if_never_stored() {
    let mut net = Net::new(4, 3, 2);
    let mut s = net.session();
    let restore = |s: &Session| {
        let snapshot = s.snapshot().expect("snapshot");
        let back = Session::restore(ID, s.group.clone(), RULES, s.inputs.clone(), &snapshot).expect("restore");
        assert_eq!(back.snapshot().expect("snapshot"), snapshot);
        back
    };
    // A liar is excluded in attempt 0; attempt 1 is stored and restored at every step.
    for v in [0, 1, 2] {
        net.commit(&mut s, v).expect("commit");
        s = restore(&s);
    }
    let mut lie = net.sign(&s, 1);
    lie[0] = net.sign(&s, 0)[0];
    assert!(matches!(s.share(ID, 1, 0, lie, 101), Ok(Outcome::Excluded { signer: 1, input: 0 })));
    s = restore(&s);
    assert_eq!((s.attempt(), s.eligible()), (1, vec![0, 2, 3]));
    for v in [3, 2, 0] {
        net.commit(&mut s, v).expect("commit");
        s = restore(&s);
    }
    assert!(matches!(s.state(), State::Sharing { signers } if *signers == vec![3, 2, 0]));
    for v in [0, 3] {
        let shares = net.sign(&s, v);
        assert_eq!(s.share(ID, v, 1, shares, 102), Ok(Outcome::Recorded));
        s = restore(&s);
    }
    let shares = net.sign(&s, 2);
    assert_eq!(s.share(ID, 2, 1, shares, 103), Ok(Outcome::Signed));
    let signed = restore(&s);
    net.check_signed(&signed);
    // A snapshot of another batch (one input fewer) does not restore.
    let snapshot = signed.snapshot().expect("snapshot");
    let mut fewer = signed.inputs.clone();
    fewer.pop();
    let mut at_sharing = snapshot.clone();
    at_sharing.state = SnapshotState::Sharing;
    assert!(Session::restore(ID, signed.group.clone(), RULES, fewer, &at_sharing).is_err());
    assert_eq!(snapshot.deadline(&RULES), None, "a signed session has no deadline");
}
