//! Genesis validation, hashing and (de)serialization.

use super::*;
use crate::testkit;
use crate::StateReader;
use primitives::Keypair;

fn g() -> Genesis {
    testkit::genesis(4, 2, Amount::from_sat(1_000))
}

#[test]
fn valid_genesis_round_trips_json_and_borsh() {
    let genesis = g();
    assert_eq!(genesis.validate(), Ok(()));
    let json = serde_json::to_string_pretty(&genesis).unwrap();
    assert!(json.contains("\"min_fee\": 100"), "amounts are plain sats: {json}");
    let back: Genesis = serde_json::from_str(&json).unwrap();
    assert_eq!(back, genesis);
    assert_eq!(back.hash(), genesis.hash());
    let bytes = canonical_bytes(&genesis);
    assert_eq!(borsh::from_slice::<Genesis>(&bytes).unwrap(), genesis);
}

#[test]
fn params_default_when_omitted() {
    let mut v = serde_json::to_value(g()).unwrap();
    v.as_object_mut().unwrap().remove("params");
    v.as_object_mut().unwrap().remove("initial_accounts");
    let back: Genesis = serde_json::from_value(v).unwrap();
    assert_eq!(back.params, Params::default());
    assert!(back.initial_accounts.is_empty());
}

#[test]
fn hash_covers_every_field() {
    let base = g().hash();
    let mut x = g();
    x.chain_id.push('x');
    assert_ne!(x.hash(), base);
    let mut x = g();
    x.params.min_fee = Amount::from_sat(101);
    assert_ne!(x.hash(), base);
    let mut x = g();
    x.validators[3].power = 2;
    assert_ne!(x.hash(), base);
}

#[test]
fn rejects_bad_chain_id() {
    for id in ["", "has space", &"x".repeat(65)] {
        let mut x = g();
        x.chain_id = id.to_string();
        assert_eq!(x.validate(), Err(GenesisError::BadChainId(id.to_string())));
    }
}

#[test]
fn rejects_bad_validator_sets() {
    let mut x = g();
    x.validators.clear();
    assert_eq!(x.validate(), Err(GenesisError::NoValidators));

    let mut x = g();
    x.validators[2].power = 0;
    assert_eq!(x.validate(), Err(GenesisError::ZeroPower { index: 2 }));

    let mut x = g();
    x.validators[0].power = u64::MAX;
    assert_eq!(x.validate(), Err(GenesisError::PowerOverflow));

    let mut x = g();
    x.validators[3].consensus_key = x.validators[1].consensus_key;
    assert!(matches!(x.validate(), Err(GenesisError::DuplicateConsensusKey { first: 1, second: 3, .. })));

    let mut x = g();
    x.validators[2].peg_key = x.validators[0].peg_key;
    assert!(matches!(x.validate(), Err(GenesisError::DuplicatePegKey { first: 0, second: 2, .. })));

    let mut x = g();
    x.validators[1].peg_key.compressed = false;
    assert_eq!(x.validate(), Err(GenesisError::UncompressedPegKey { index: 1 }));

    let mut x = g();
    x.validators[1].p2p_addr = " ".into();
    assert_eq!(x.validate(), Err(GenesisError::EmptyP2pAddr { index: 1 }));

    let mut x = g();
    let mut bad = [0u8; 32];
    bad[0] = 2; // y = 2 is not on the curve
    x.validators[0].consensus_key = PublicKey(bad);
    assert!(matches!(x.validate(), Err(GenesisError::BadConsensusKey { index: 0, .. })));
}

#[test]
fn rejects_bad_params() {
    type Case = (&'static str, fn(&mut Params));
    let cases: Vec<Case> = vec![
        ("block_max_bytes", |p| p.block_max_bytes = 10),
        ("block_max_txs", |p| p.block_max_txs = 0),
        ("min_fee", |p| p.min_fee = Amount::MAX),
        ("pegin_confirmations", |p| p.pegin_confirmations = 0),
        ("max_anchor_step", |p| p.max_anchor_step = 0),
        ("pegout_interval", |p| p.pegout_interval = 0),
        ("pegout_bump_after", |p| p.pegout_bump_after = 0),
        ("registration_fee", |p| p.registration_fee = Amount::ZERO),
        ("registration_fee", |p| p.registration_fee = p.min_fee - Amount::ONE_SAT),
        ("registration_fee", |p| p.registration_fee = Amount::MAX),
        ("pegout_limit_window", |p| p.pegout_limit_window = crate::genesis::MAX_PEGOUT_LIMIT_WINDOW + 1),
        ("pegout_limit", |p| p.pegout_limit = p.pegout_min_amount - Amount::ONE_SAT),
        ("pegout_limit", |p| p.pegout_limit = Amount::MAX),
    ];
    for (field, f) in cases {
        let mut x = g();
        f(&mut x.params);
        assert!(matches!(x.validate(), Err(GenesisError::BadParam { name, .. }) if name == field), "{field}");
    }
}

#[test]
fn a_zero_window_turns_the_pegout_limit_off() {
    let mut x = g();
    x.params.pegout_limit_window = 0;
    x.params.pegout_limit = Amount::ZERO;
    assert_eq!(x.validate(), Ok(()));
    // The defaults: registration costs 1,000 sat; at most 10 BTC paid out per 144 BTC blocks.
    let p = Params::default();
    assert_eq!(
        (p.registration_fee, p.pegout_limit, p.pegout_limit_window),
        (Amount::from_sat(1_000), Amount::from_int_btc(10), 144)
    );
}

#[test]
fn rejects_bad_initial_accounts() {
    let mut x = g();
    let dup = x.initial_accounts[0].clone();
    x.initial_accounts.push(dup.clone());
    assert_eq!(x.validate(), Err(GenesisError::DuplicateAccount(dup.account)));

    let mut x = g();
    x.initial_accounts[1].balance = Amount::ZERO;
    let a = x.initial_accounts[1].account;
    assert_eq!(x.validate(), Err(GenesisError::ZeroBalance(a)));

    let mut x = g();
    x.initial_accounts[0].balance = Amount::MAX_MONEY;
    assert_eq!(x.validate(), Err(GenesisError::SupplyTooLarge));

    let mut x = g();
    x.initial_accounts.push(InitialAccount { account: fee_pool_id(), balance: Amount::from_sat(1) });
    assert_eq!(x.validate(), Err(GenesisError::FeePoolAccount(fee_pool_id())));
}

#[test]
fn genesis_state_root_ignores_account_order() {
    let (chain, store) = testkit::chain_and_store(4, 5, Amount::from_sat(7));
    let mut shuffled = chain.genesis().clone();
    shuffled.initial_accounts.reverse();
    let other = Chain::new(shuffled).unwrap();
    assert_ne!(other.genesis_hash(), chain.genesis_hash());
    let a = chain.genesis_state(&crate::MemStore::new()).unwrap();
    let b = other.genesis_state(&crate::MemStore::new()).unwrap();
    assert_eq!(a.root, b.root);
    assert_eq!(store.snapshot(0).root().unwrap(), a.root);
    let k = Keypair::from_secret([1; 32]);
    assert_eq!(store.snapshot(0).get_account(&k.public().account_id()), Ok(None));
}

#[test]
fn a_wsh_genesis_writes_no_custody_byte_so_older_chains_keep_their_hash() {
    let genesis = g();
    let without_custody = borsh::to_vec(&(
        &genesis.chain_id,
        genesis.genesis_time_ms,
        &genesis.btc_anchor,
        &genesis.validators,
        &genesis.params,
        &genesis.emergency,
        &genesis.initial_accounts,
    ))
    .unwrap();
    assert_eq!(canonical_bytes(&genesis), without_custody);
    // A second encoding of the wsh wallet (an explicit tag) is refused rather than read as the same genesis.
    let mut explicit = without_custody.clone();
    explicit.push(0);
    assert!(borsh::from_slice::<Genesis>(&explicit).is_err());
    // A genesis file without `custody` is a wsh genesis.
    let mut v = serde_json::to_value(&genesis).unwrap();
    v.as_object_mut().unwrap().remove("custody");
    assert_eq!(serde_json::from_value::<Genesis>(v).unwrap().custody, GenesisCustody::Wsh);
}

#[test]
fn a_taproot_genesis_builds_the_wallet_of_its_dkg_transcript() {
    let (genesis, shares) = testkit::taproot_genesis(4, 2, Amount::from_sat(1_000));
    let json = serde_json::to_string_pretty(&genesis).unwrap();
    assert!(json.contains("\"kind\": \"taproot\""), "{json}");
    let back: Genesis = serde_json::from_str(&json).unwrap();
    assert_eq!(back, genesis);
    assert_eq!(borsh::from_slice::<Genesis>(&canonical_bytes(&genesis)).unwrap(), genesis);
    let wsh = g();
    assert_ne!(genesis.hash(), wsh.hash(), "the custody is part of the chain's identity");

    let chain = Chain::new(genesis).expect("valid taproot genesis");
    let wallet = chain.genesis_wallet();
    let group_key = shares[0].group_key().unwrap();
    assert_eq!(wallet.custody(), peg::Custody::Taproot { group_key });
    assert!(wallet.descriptor().to_string().starts_with("tr("));
    let epoch0 = epoch(&chain, 0);
    assert_eq!(chain.frost_group(&epoch0).map(|g| g.verifying_key()), Some(shares[1].public().verifying_key()));
    let wsh_chain = Chain::new(g()).unwrap();
    assert_eq!(wsh_chain.frost_group(&epoch(&wsh_chain, 0)), None);
    // Batches are planned for the key path, and the peg-in fee is its input: 58 vB at 2 sat/vB, against the
    // wsh wallet's 132 (and the leaf's 135, which a batch pays only after giving the key path up).
    assert_eq!(wallet.planned_path(), peg::SpendPath::KeyPath);
    assert_eq!(chain.pegin_fee(), Amount::from_sat(58 * 2));
    assert_eq!(wsh_chain.pegin_fee(), Amount::from_sat(132 * 2));
    assert_eq!(peg::fee::input_vbytes(wallet.descriptor()).unwrap(), 135);
}

#[test]
fn a_taproot_genesis_with_a_bad_transcript_is_refused() {
    use custody::{SignedRound1, TranscriptError};
    let (genesis, _) = testkit::taproot_genesis(4, 0, Amount::ZERO);
    let GenesisCustody::Taproot { dkg_round1 } = &genesis.custody else { panic!("taproot") };
    let with = |round1: Vec<SignedRound1>| {
        let mut g = genesis.clone();
        g.custody = GenesisCustody::Taproot { dkg_round1: round1 };
        Chain::new(g).map(|_| ())
    };
    let bad = |e: TranscriptError| Err(GenesisError::BadTranscript(e));
    assert_eq!(with(dkg_round1.clone()), Ok(()));
    assert_eq!(with(dkg_round1[..3].to_vec()), bad(TranscriptError::Count { packages: 3, validators: 4 }));
    let edit = |i: usize, f: &dyn Fn(&mut SignedRound1)| {
        let mut r = dkg_round1.clone();
        f(&mut r[i]);
        with(r)
    };
    assert_eq!(edit(2, &|r| r.package = r.package.to_uppercase()), bad(TranscriptError::Encoding(2)));
    assert_eq!(edit(1, &|r| r.signature = r.signature.to_uppercase()), bad(TranscriptError::Encoding(1)));
    assert_eq!(edit(1, &|r| r.package.truncate(r.package.len() - 2)), bad(TranscriptError::Signature(1)));
    assert_eq!(edit(0, &|r| r.package = "zz".into()), bad(TranscriptError::Encoding(0)));
    // Validators' packages swapped: each signature is over its own index, so neither fits the other's slot.
    let mut swapped = dkg_round1.clone();
    swapped.swap(0, 1);
    assert_eq!(with(swapped), bad(TranscriptError::Signature(0)));

    // Whoever assembles the genesis runs a DKG of its own (holding every share) and puts its packages in:
    // its packages are not signed by the validators' peg keys.
    let (_, own) = {
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(9);
        peg::frost::dkg::run_in_process(4, 3, &mut rng).unwrap()
    };
    use bitcoin::hex::DisplayHex;
    let mut forged = dkg_round1.clone();
    forged[3].package = own.packages().nth(3).unwrap().1.serialize().unwrap().to_lower_hex_string();
    assert_eq!(with(forged), bad(TranscriptError::Signature(3)));
}

#[test]
fn a_rogue_round1_package_signed_by_its_validator_is_refused_by_its_proof_of_knowledge() {
    use custody::{SignedRound1, TranscriptError};
    use peg::frost::dkg::{round1, round1_message, setup_bytes};
    // Validator 3 signs a package whose commitment cancels validator 0's (-A next to A), reusing a proof
    // of knowledge it cannot make for it: the sum of the constant terms would be a key everyone knows.
    let (genesis, _) = testkit::taproot_genesis(4, 0, Amount::ZERO);
    let GenesisCustody::Taproot { dkg_round1 } = &genesis.custody else { panic!("taproot") };
    let decode = |r: &SignedRound1| {
        round1::Package::deserialize(&<Vec<u8> as bitcoin::hex::FromHex>::from_hex(&r.package).unwrap()).unwrap()
    };
    let a = decode(&dkg_round1[0]);
    let mine = decode(&dkg_round1[3]);
    let negated: Vec<_> = a.commitment().coefficients().iter().map(|c| -c.value()).collect();
    let commitment = frost_core::keys::VerifiableSecretSharingCommitment::<peg::frost::Ciphersuite>::new(
        negated.into_iter().map(frost_core::keys::CoefficientCommitment::new).collect(),
    );
    let rogue = round1::Package::new(commitment, *mine.proof_of_knowledge());
    let bytes = rogue.serialize().unwrap();
    let peg_keys: Vec<bitcoin::PublicKey> = genesis.validators.iter().map(|v| v.peg_key).collect();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = bitcoin::secp256k1::Keypair::from_secret_key(&secp, &testkit::validator_peg_secret(3));
    let signature = secp.sign_schnorr(&round1_message(&setup_bytes(3, &peg_keys), 3, &bytes), &key);
    use bitcoin::hex::DisplayHex;
    let mut r = dkg_round1.clone();
    r[3] = SignedRound1 { package: bytes.to_lower_hex_string(), signature: signature.as_ref().to_lower_hex_string() };
    let mut g = genesis.clone();
    g.custody = GenesisCustody::Taproot { dkg_round1: r };
    assert!(matches!(
        Chain::new(g),
        Err(GenesisError::BadTranscript(TranscriptError::Group(peg::frost::FrostError::Frost(
            frost_core::Error::InvalidProofOfKnowledge { .. }
        ))))
    ));
}

#[test]
fn a_taproot_genesis_refuses_more_validators_than_it_takes() {
    let (mut genesis, _) = testkit::taproot_genesis(4, 0, Amount::ZERO);
    let many = testkit::genesis(custody::MAX_TAPROOT_VALIDATORS as u32 + 1, 0, Amount::ZERO);
    genesis.validators = many.validators;
    assert_eq!(
        Chain::new(genesis),
        Err(GenesisError::BadTranscript(custody::TranscriptError::TooManyValidators(
            custody::MAX_TAPROOT_VALIDATORS + 1
        )))
    );
}

#[test]
fn a_taproot_federation_refuses_member_changes_until_its_key_generation_is_on_chain() {
    let (genesis, _) = testkit::taproot_genesis(4, 0, Amount::ZERO);
    let chain = Chain::new(genesis).unwrap();
    assert_eq!(chain.wallet(&epoch(&chain, 1)), Err(GenesisError::TaprootChangeNotSupported));
    let proposal = crate::FederationProposal {
        validators: chain.genesis().validators.clone(),
        peg_threshold: 3,
        activation_height: primitives::Height(50),
    };
    assert_eq!(
        crate::federation::check_proposal(&chain, &proposal),
        Err(crate::federation::ProposalError::Wallet(GenesisError::TaprootChangeNotSupported))
    );
}

/// Epoch `n` of `chain` with the genesis validators.
fn epoch(chain: &Chain, n: u32) -> FederationEpoch {
    let validators = chain.genesis().validators.clone();
    let peg_threshold = federation_threshold(validators.len()) as u32;
    FederationEpoch { epoch: n, validators, peg_threshold, from_height: primitives::Height(0) }
}
