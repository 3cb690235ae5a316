//! Fuzz targets of the ledger's decoders: transactions (as the RPC and gossip receive them), blocks (as sync
//! receives them) and state proofs (as a light client receives them), seeded from real encodings built with
//! `ledger::testkit`. The short run is part of `cargo test`; `scripts/fuzz` runs millions of inputs.
//!
//! Beyond "no panic, no allocation past the cap", a value that decodes must re-encode to the same bytes:
//! the encoding is canonical (ids and signatures are over these bytes), so two encodings of one value
//! would be two ids for one transaction.

use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use borsh::BorshDeserialize;
use fuzzkit::Target;
use primitives::{canonical_bytes, AccountId, BtcHeight, Hash32, Height, Round, ValidatorIndex};
use sidechain_ledger::testkit::{self, transfer, user_key, validator_key};
use sidechain_ledger::{
    build_block, check_tx, BlockTemplate, BtcAnchor, Chain, EvidenceTx, FederationProposal, PegShareTx, ReconfigureTx,
    SettleTx, SignedUserTx, StateKey, StateProof, Tx, UserTx, UserTxKind, ValidatorTx, ValidatorTxKind,
};

#[global_allocator]
static ALLOC: fuzzkit::CountingAlloc = fuzzkit::CountingAlloc;

fn user_txs(chain: &Chain) -> Vec<SignedUserTx> {
    let (a, b) = (user_key(0), user_key(1));
    let to = b.public().account_id();
    let g = chain.genesis_hash();
    let sat = Amount::from_sat;
    vec![
        transfer(chain, &a, 0, to, sat(5_000), sat(1_000)),
        UserTx {
            signer: a.public(),
            nonce: 1,
            fee: chain.params().registration_fee,
            kind: UserTxKind::RegisterDeposit,
        }
        .sign(&a, g),
        UserTx {
            signer: b.public(),
            nonce: 0,
            fee: sat(2_000),
            kind: UserTxKind::PegOut {
                btc_script_pubkey: vec![0x00, 0x14].into_iter().chain([7; 20]).collect(),
                amount: sat(60_000),
            },
        }
        .sign(&b, g),
    ]
}

fn txs(chain: &Chain) -> Vec<Tx> {
    let g = chain.genesis_hash();
    let anchor = BtcAnchor { height: BtcHeight(101), hash: bitcoin::BlockHash::from_byte_array([9; 32]) };
    let mut txs: Vec<Tx> = user_txs(chain).into_iter().map(Tx::User).collect();
    let vtx = |kind| ValidatorTx { validator: ValidatorIndex(1), height: Height(1), kind }.sign(&validator_key(1), g);
    txs.push(Tx::Validator(vtx(ValidatorTxKind::FeeRateVote { sat_per_vb: 12 })));
    txs.push(Tx::Validator(vtx(ValidatorTxKind::ReportReorg { anchor })));
    txs.push(Tx::Validator(vtx(ValidatorTxKind::ResumePeg { anchor })));
    txs.push(Tx::Evidence(EvidenceTx {
        offender: ValidatorIndex(2),
        height: Height(3),
        round: Round(0),
        proof: vec![0; 80],
    }));
    txs.push(Tx::Settle(SettleTx { batch: 4, txid: bitcoin::Txid::from_byte_array([3; 32]), btc_block: anchor }));
    txs.push(Tx::PegShare(PegShareTx {
        batch: 4,
        txid: bitcoin::Txid::from_byte_array([3; 32]),
        signer: ValidatorIndex(0),
        signatures: vec![vec![0x30; 71], vec![0x30; 72]],
    }));
    let proposal = FederationProposal {
        validators: chain.genesis().validators.clone(),
        peg_threshold: 3,
        activation_height: Height(40),
    };
    let approvals =
        (0..3u16).map(|i| proposal.approve(ValidatorIndex(i), 0, &validator_key(u32::from(i)), g)).collect();
    txs.push(Tx::Reconfigure(ReconfigureTx { proposal, approvals }));
    txs.push(Tx::Mint(sidechain_ledger::MintTx {
        outpoint: sidechain_ledger::BtcOutPoint { txid: bitcoin::Txid::from_byte_array([4; 32]), vout: 1 },
        recipient: sidechain_ledger::fee_pool_id(),
        amount: Amount::from_sat(50_000),
        btc_block: sidechain_ledger::BtcAnchor::default(),
        epoch: 0,
        kind: sidechain_ledger::MintKind::Federation,
        coinbase: true,
    }));
    txs
}

fn template(chain: &Chain) -> BlockTemplate {
    BlockTemplate {
        height: Height(1),
        prev_hash: chain.genesis_hash().as_block_id(),
        time_ms: chain.genesis().genesis_time_ms + 1_000,
        proposer: ValidatorIndex(1),
        btc_anchor: BtcAnchor::default(),
        last_commit_hash: Hash32::ZERO,
    }
}

/// Decodes `T` from all of `bytes`; a value that decodes must re-encode to exactly `bytes`.
fn decode_canonical<T: BorshDeserialize + borsh::BorshSerialize>(bytes: &[u8]) -> Option<T> {
    let v: T = borsh::from_slice(bytes).ok()?;
    assert_eq!(canonical_bytes(&v), bytes, "a second encoding of one value");
    Some(v)
}

fn targets() -> Vec<Target> {
    let (chain, store) = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000));
    let users = user_txs(&chain);
    let all = txs(&chain);
    let (block, _) = build_block(&chain, &store, template(&chain), users.iter().cloned().map(Tx::User).collect())
        .expect("a block of valid transfers builds");
    let empty = build_block(&chain, &store, template(&chain), Vec::new()).expect("an empty block builds").0;
    let version = store.latest_version().expect("genesis is stored");
    let snapshot = store.snapshot(version);
    let root = snapshot.root().expect("genesis root");
    let present = user_key(0).public().account_id();
    let absent = AccountId(Hash32([0xee; 32]));
    let keys = [StateKey::Account(present), StateKey::Account(absent), StateKey::ChainMeta];
    let proofs: Vec<(StateKey, Option<Vec<u8>>, StateProof)> = keys
        .iter()
        .map(|k| {
            let (v, p) = snapshot.prove(k).expect("in-memory proof");
            (*k, v, p)
        })
        .collect();

    let chain_u = chain.clone();
    let store_u = store.clone();
    let chain_t = chain.clone();
    vec![
        Target::new("ledger_user_tx", users.iter().map(canonical_bytes).collect(), move |b| {
            if let Some(tx) = decode_canonical::<SignedUserTx>(b) {
                let _ = tx.txid();
                let _ = check_tx(&chain_u, &store_u.snapshot(version), &tx);
                // A mutated body no longer matches its signature; signed again by the test key it names, it
                // reaches execution: admission of a hostile transaction (amounts at u64::MAX, any script,
                // any nonce) is an error at worst.
                if let Some(key) = (0..2).map(user_key).find(|k| k.public() == tx.tx.signer) {
                    let resigned = tx.tx.sign(&key, chain_u.genesis_hash());
                    let _ = check_tx(&chain_u, &store_u.snapshot(version), &resigned);
                }
            }
        }),
        Target::new("ledger_tx", all.iter().map(canonical_bytes).collect(), move |b| {
            if let Some(tx) = decode_canonical::<Tx>(b) {
                let _ = tx.txid();
                let _ = sidechain_ledger::verify_tx_signatures(&chain_t, &chain_t.genesis().validators, &[tx]);
            }
        }),
        Target::new("ledger_block", vec![canonical_bytes(&block), canonical_bytes(&empty)], |b| {
            if let Some(block) = decode_canonical::<sidechain_ledger::Block>(b) {
                let _ = block.hash();
                let _ = block.compute_tx_root();
            }
        }),
        Target::new("ledger_state_proof", proofs.iter().map(|(_, _, p)| p.to_bytes()).collect(), move |b| {
            if let Ok(proof) = StateProof::from_bytes(b) {
                assert_eq!(proof.to_bytes(), b, "a second encoding of one proof");
                for (key, value, _) in &proofs {
                    let _ = proof.verify(root, key, value.as_deref());
                    let _ = proof.verify(root, key, None);
                }
            }
        }),
    ]
}

fuzzkit::fuzz_tests!(targets());

#[test]
fn seeds_are_valid_encodings() {
    // The seeds must be real encodings, or the fuzzing starts from garbage.
    let (chain, _) = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000));
    for tx in txs(&chain) {
        assert_eq!(decode_canonical::<Tx>(&canonical_bytes(&tx)), Some(tx));
    }
}
