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
