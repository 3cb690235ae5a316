//! Deterministic test networks: a valid genesis with seeded keys and funded accounts.
//!
//! Why in the library: the node's and the testnet's unit tests need the same fixtures as ours. Keys are
//! derived from fixed seeds, so they are public: never use them on a real chain. Hence behind the `testkit`
//! feature, which only test, bench and simulation builds turn on.

use crate::btc_anchor::BtcAnchor;
use crate::genesis::{Chain, Genesis, GenesisCustody, GenesisValidator, InitialAccount, Params};
use crate::state::MemStore;
use crate::tx::{SignedUserTx, UserTx, UserTxKind};
use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use primitives::{AccountId, Keypair, PublicKey};

/// The ed25519 key of test user `i` (seed: `[i + 1; 32]` with the top byte set to `0xA0`).
pub fn user_key(i: u32) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xA0;
    Keypair::from_secret(seed)
}

/// The consensus key of test validator `i`.
pub fn validator_key(i: u32) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xB0;
    Keypair::from_secret(seed)
}

/// The secret peg key of test validator `i`.
pub fn validator_peg_secret(i: u32) -> bitcoin::secp256k1::SecretKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xC0;
    bitcoin::secp256k1::SecretKey::from_slice(&seed)
        .expect("a seed with one high byte and a small counter is below the curve order")
}

/// The peg key of test validator `i`.
pub fn validator_peg_key(i: u32) -> bitcoin::PublicKey {
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    bitcoin::PublicKey::new(validator_peg_secret(i).public_key(&secp))
}

/// Test validator `i` as a genesis (or federation-change) member: its keys, a loopback address, power 1.
pub fn validator(i: u32) -> GenesisValidator {
    GenesisValidator {
        consensus_key: validator_key(i).public(),
        peg_key: validator_peg_key(i),
        p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", 26656 + i),
        power: 1,
    }
}

/// A genesis with `validators` validators of power 1 and `users` users holding `balance` each.
pub fn genesis(validators: u32, users: u32, balance: Amount) -> Genesis {
    Genesis {
        chain_id: "fedpeg-test".into(),
        genesis_time_ms: 1_700_000_000_000,
        btc_anchor: BtcAnchor::default(),
        validators: (0..validators).map(validator).collect(),
        params: Params::default(),
        emergency: None,
        initial_accounts: (0..users)
            .map(|i| InitialAccount { account: user_key(i).public().account_id(), balance })
            .collect(),
        custody: GenesisCustody::Wsh,
    }
}

/// [`genesis`] with taproot custody: a DKG run in this process from a fixed seed (so every participant's
/// key share is known here: test networks only), its transcript in the genesis. Returns the key shares too,
/// in validator order.
pub fn taproot_genesis(validators: u32, users: u32, balance: Amount) -> (Genesis, Vec<peg::frost::KeyShare>) {
    use bitcoin::hex::DisplayHex;
    use rand_chacha::rand_core::SeedableRng;
    let mut g = genesis(validators, users, balance);
    let peg_keys: Vec<bitcoin::PublicKey> = g.validators.iter().map(|v| v.peg_key).collect();
    let k = crate::genesis::federation_threshold(peg_keys.len());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(validators));
    let (shares, transcript) =
        peg::frost::dkg::run_in_process(peg_keys.len(), k, &mut rng).expect("an in-process DKG succeeds");
    let setup = peg::frost::dkg::setup_bytes(k, &peg_keys);
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let dkg_round1 = transcript
        .packages()
        .map(|(i, p)| {
            let package = p.serialize().expect("a round-1 package serializes");
            let key = bitcoin::secp256k1::Keypair::from_secret_key(&secp, &validator_peg_secret(i as u32));
            let signature = secp.sign_schnorr(&peg::frost::dkg::round1_message(&setup, i, &package), &key);
            crate::genesis::custody::SignedRound1 {
                package: package.to_lower_hex_string(),
                signature: signature.as_ref().to_lower_hex_string(),
            }
        })
        .collect();
    g.custody = GenesisCustody::Taproot { dkg_round1 };
    (g, shares)
}

/// A chain from [`genesis`] and a store holding its genesis state.
pub fn chain_and_store(validators: u32, users: u32, balance: Amount) -> (Chain, MemStore) {
    let chain = Chain::new(genesis(validators, users, balance)).expect("test genesis is valid");
    let mut store = MemStore::new();
    let ws = chain.genesis_state(&store).expect("an empty in-memory store cannot fail");
    store.apply(&ws);
    (chain, store)
}

/// A signed transfer.
pub fn transfer(chain: &Chain, from: &Keypair, nonce: u64, to: AccountId, amount: Amount, fee: Amount) -> SignedUserTx {
    UserTx { signer: from.public(), nonce, fee, kind: UserTxKind::Transfer { to, amount } }
        .sign(from, chain.genesis_hash())
}

/// Shorthand for the account of a key.
pub fn account_of(k: &PublicKey) -> AccountId {
    k.account_id()
}

/// The BTC anchor tests use for BTC height `h` (its hash is `h` repeated).
pub fn btc_anchor(h: u32) -> BtcAnchor {
    BtcAnchor { height: primitives::BtcHeight(h), hash: bitcoin::BlockHash::from_byte_array([h as u8; 32]) }
}

/// Builds block `h` from `txs` with anchor `at` on `store`, checks that re-executing it agrees, and applies
/// it: how the ledger's tests commit a block.
pub fn commit_block(
    chain: &Chain,
    store: &mut MemStore,
    h: u64,
    at: BtcAnchor,
    txs: Vec<crate::tx::Tx>,
) -> Result<(), crate::execute::BlockError> {
    let template = crate::execute::BlockTemplate {
        height: primitives::Height(h),
        prev_hash: primitives::BlockId(primitives::Hash32([h as u8; 32])),
        time_ms: chain.genesis().genesis_time_ms + h * 1000,
        proposer: primitives::ValidatorIndex(0),
        btc_anchor: at,
        last_commit_hash: primitives::Hash32::ZERO,
    };
    let (block, outcome) = crate::execute::build_block(chain, store, template, txs)?;
    assert_eq!(crate::execute::execute_block(chain, store, &block).expect("re-execution agrees"), outcome);
    store.apply(&outcome.write_set);
    Ok(())
}
