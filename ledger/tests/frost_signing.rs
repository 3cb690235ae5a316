//! Key-path signing of a taproot batch through block execution (issue 23): the chain runs the FROST session
//! over `Frost` transactions. Three honest signers sign every input in two blocks and the signed
//! transaction passes Bitcoin's interpreter at exactly its planned size; a bad share excludes its signer at
//! once and a silent one at the deadline, and when fewer than `k` are left the batch falls back to a new
//! version planned for the `multi_a` leaf, which `PegShare` transactions sign; messages in another's name,
//! leaf shares for a key-path version and messages after the signature are refused.

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, ScriptBuf, WPubkeyHash};
use frost_secp256k1_tr::round1::SigningNonces;
use peg::frost::KeyShare;
use primitives::ValidatorIndex;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sidechain_ledger::batch_records::GROUP_SIGNER;
use sidechain_ledger::batching::{batch, BatchRecord};
use sidechain_ledger::frost_signing::{frost_session, restore_session, SessionStage, FROST_PHASE_BLOCKS};
use sidechain_ledger::pegout::required_pegout_fee_at;
use sidechain_ledger::testkit::{self, user_key};
use sidechain_ledger::{
    BlockError, BtcOutPoint, Chain, FrostRound, FrostTx, FrostTxError, MemStore, MintTx, PegShareTx, StateReader, Tx,
    TxError, UserTx, UserTxKind,
};
use std::collections::BTreeMap;

const BAL: u64 = 1_000_000;

struct Net {
    chain: Chain,
    store: MemStore,
    shares: Vec<KeyShare>,
    rng: ChaCha20Rng,
    nonces: BTreeMap<(u32, u32), Vec<SigningNonces>>,
    height: u64,
}

impl Net {
    fn new() -> Self {
        let (mut g, shares) = testkit::taproot_genesis(4, 2, Amount::from_sat(BAL));
        g.params.pegout_enabled = true;
        g.params.pegout_interval = 2;
        g.params.pegin_confirmations = 1;
        let chain = Chain::new(g).unwrap();
        let mut store = MemStore::new();
        store.apply(&chain.genesis_state(&store).unwrap());
        Net { chain, store, shares, rng: ChaCha20Rng::seed_from_u64(5), nonces: BTreeMap::new(), height: 0 }
    }

    fn try_block(&mut self, txs: Vec<Tx>) -> Result<(), BlockError> {
        testkit::commit_block(&self.chain, &mut self.store, self.height + 1, testkit::btc_anchor(1), txs)?;
        self.height += 1;
        let t = self.store.snapshot(self.height).peg_totals().unwrap();
        assert!(t.supply + t.unpaid_burns <= t.btc_held + Amount::from_sat(2 * BAL), "reserve: {t:?}");
        Ok(())
    }

    fn block(&mut self, txs: Vec<Tx>) {
        self.try_block(txs).expect("valid block");
    }

    fn refused(&mut self, tx: Tx) -> TxError {
        let mut probe = self.store.clone();
        match testkit::commit_block(&self.chain, &mut probe, self.height + 1, testkit::btc_anchor(1), vec![tx]) {
            Err(BlockError::InvalidTx { source, .. }) => source,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn batch(&self) -> BatchRecord {
        batch(&self.store.snapshot(self.height), 0).unwrap().expect("batch 0")
    }

    /// Two deposits and a burn: batch 0 is built at height 2.
    fn built(&mut self) -> BatchRecord {
        let fee = required_pegout_fee_at(&self.chain, 2, &p2wpkh());
        let burn = UserTx {
            signer: user_key(0).public(),
            nonce: 0,
            fee,
            kind: UserTxKind::PegOut { btc_script_pubkey: p2wpkh().to_bytes(), amount: Amount::from_sat(450_000) },
        }
        .sign(&user_key(0), self.chain.genesis_hash());
        let tip = testkit::transfer(
            &self.chain,
            &user_key(1),
            0,
            user_key(0).public().account_id(),
            Amount::ONE_SAT,
            Amount::from_sat(20_000),
        );
        self.block(vec![deposit(1, 400_000, Some(9)), deposit(2, 100_000, None), burn.into(), tip.into()]);
        self.block(vec![]);
        self.batch()
    }

    fn frost(&self, b: &BatchRecord, attempt: u32, v: u32, round: FrostRound) -> Tx {
        let secret = testkit::validator_peg_secret(v);
        Tx::Frost(FrostTx::sign(
            b.id,
            b.txid,
            attempt,
            ValidatorIndex(v as u16),
            round,
            &secret,
            self.chain.genesis_hash(),
        ))
    }

    /// Validator `v`'s commitments for `attempt` (its nonces kept, as a node persists them).
    fn commit(&mut self, b: &BatchRecord, attempt: u32, v: u32) -> Tx {
        let (nonces, commitments): (Vec<_>, Vec<_>) =
            (0..b.inputs.len()).map(|_| self.shares[v as usize].commit(&mut self.rng)).unzip();
        self.nonces.insert((attempt, v), nonces);
        let bytes = commitments.iter().map(|c| peg::frost::wire::encode_commitments(c).unwrap().to_vec()).collect();
        self.frost(b, attempt, v, FrostRound::Commit(bytes))
    }

    /// Validator `v`'s shares over the packages the chain fixed (its nonces used once: removed).
    fn share(&mut self, b: &BatchRecord, attempt: u32, v: u32) -> Tx {
        let bytes = self.share_bytes(b, attempt, v);
        self.frost(b, attempt, v, FrostRound::Share(bytes))
    }

    fn share_bytes(&mut self, b: &BatchRecord, attempt: u32, v: u32) -> Vec<Vec<u8>> {
        let state = self.store.snapshot(self.height);
        let fs = sidechain_ledger::federation_state(&self.chain, &state).unwrap();
        let epoch = fs.epoch(b.epoch).unwrap();
        let stored = frost_session(&state, b.id).unwrap().expect("session");
        let session = restore_session(&self.chain, epoch, b, &stored).expect("session");
        let tx = b.unsigned().unwrap();
        let kp = peg::key_path::KeyPathBatch::new(
            self.chain.genesis_wallet(),
            *self.chain.genesis_hash().as_bytes(),
            &tx,
            &b.peg_inputs(),
        )
        .unwrap();
        let nonces = self.nonces.remove(&(attempt, v)).expect("nonces of this attempt");
        session
            .packages()
            .iter()
            .zip(nonces)
            .zip(kp.inputs())
            .map(|((p, n), input)| {
                let share = self.shares[v as usize].sign(p, input.sighash, n, input.merkle_root).expect("share");
                peg::frost::wire::encode_share(&share).unwrap().to_vec()
            })
            .collect()
    }

    fn stage(&self) -> (u32, SessionStage, Vec<u16>) {
        let s = frost_session(&self.store.snapshot(self.height), 0).unwrap().expect("session");
        (s.attempt, s.stage, s.excluded)
    }
}

fn p2wpkh() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 20])))
}

fn deposit(n: u8, sats: u64, recipient: Option<u32>) -> Tx {
    Tx::Mint(MintTx {
        outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 0 },
        recipient: recipient.map_or(sidechain_ledger::fee_pool_id(), |u| user_key(u).public().account_id()),
        amount: Amount::from_sat(sats),
        btc_block: testkit::btc_anchor(1),
        epoch: 0,
        kind: match recipient {
            Some(_) => sidechain_ledger::MintKind::Deposit,
            None => sidechain_ledger::MintKind::Federation,
        },
        coinbase: false,
    })
}

/// The spent outputs of `b`'s current version, as Bitcoin sees them.
fn prevouts(chain: &Chain, b: &BatchRecord) -> Vec<bitcoin::TxOut> {
    let fed = chain.genesis_wallet();
    let genesis = *chain.genesis_hash().as_bytes();
    b.peg_inputs()
        .iter()
        .map(|i| bitcoin::TxOut {
            value: i.amount,
            script_pubkey: match i.tweak {
                Some(r) => fed.deposit_script_pubkey(genesis, r).unwrap(),
                None => fed.script_pubkey(),
            },
        })
        .collect()
}

#[test]
fn three_honest_signers_sign_every_input_by_key_path_in_two_blocks() {
    let mut net = Net::new();
    let b = net.built();
    assert_eq!(b.inputs.len(), 2, "a deposit and a plain federation output");
    assert_eq!(net.stage(), (0, SessionStage::Committing, vec![]), "the session opened with the batch");
    // A leaf share for a key-path version is refused: finished in the leaf it would pay below its rate.
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let leaf = peg::shares::sign_batch(
        &secp,
        net.chain.genesis_wallet(),
        *net.chain.genesis_hash().as_bytes(),
        &b.unsigned().unwrap(),
        &b.peg_inputs(),
        0,
        &testkit::validator_peg_secret(0),
    )
    .unwrap();
    let leaf =
        Tx::PegShare(PegShareTx { batch: 0, txid: b.txid, signer: ValidatorIndex(0), signatures: leaf.signatures });
    assert_eq!(net.refused(leaf), TxError::Frost(FrostTxError::LeafShareOnKeyPath(0)));
    // A message in validator 1's name signed by validator 0's peg key is refused.
    let Tx::Frost(mut forged) = net.commit(&b, 0, 0) else { unreachable!() };
    forged.signer = ValidatorIndex(1);
    assert_eq!(
        net.refused(Tx::Frost(forged)),
        TxError::Frost(FrostTxError::BadSignature { signer: ValidatorIndex(1) })
    );

    let commits = vec![net.commit(&b, 0, 2), net.commit(&b, 0, 0), net.commit(&b, 0, 3)];
    net.block(commits);
    assert_eq!(net.stage().1, SessionStage::Sharing, "the first three committers are the signers");
    let late = net.commit(&b, 0, 1);
    assert!(matches!(net.refused(late), TxError::Frost(FrostTxError::Refused { .. })));
    let shares = vec![net.share(&b, 0, 0), net.share(&b, 0, 3), net.share(&b, 0, 2)];
    net.block(shares);
    let signed = net.batch();
    assert!(signed.is_signed());
    let sigs = signed.current_version().key_path_signatures().expect("the group's share").to_vec();
    assert_eq!(signed.shares[0].0, GROUP_SIGNER);
    assert_eq!(signed.signed_at_anchor, Some(primitives::BtcHeight(1)), "the bump clock starts");
    let sigs: Vec<_> = sigs.iter().map(|s| bitcoin::taproot::Signature::from_slice(s).unwrap()).collect();
    let kp = peg::key_path::KeyPathBatch::new(
        net.chain.genesis_wallet(),
        *net.chain.genesis_hash().as_bytes(),
        &signed.unsigned().unwrap(),
        &signed.peg_inputs(),
    )
    .unwrap();
    let tx = kp.finalize(&sigs).expect("Bitcoin's interpreter takes the key-path spend");
    peg::verify_spends(&tx, &prevouts(&net.chain, &signed)).unwrap();
    assert_eq!(tx.vsize() as u64, signed.vbytes, "the key path meets its plan exactly");
    let after = net.commit(&b, 0, 1);
    assert_eq!(net.refused(after), TxError::BatchAlreadySigned(0));
}

#[test]
fn a_liar_and_a_silent_signer_are_excluded_and_the_batch_falls_back_to_a_leaf_version() {
    let mut net = Net::new();
    let b = net.built();
    // Attempt 0: validator 1 sends validator 0's share as its own: proved invalid, excluded at once.
    let commits = vec![net.commit(&b, 0, 0), net.commit(&b, 0, 1), net.commit(&b, 0, 2)];
    net.block(commits);
    let stolen = net.share_bytes(&b, 0, 0);
    let lie = net.frost(&b, 0, 1, FrostRound::Share(stolen));
    net.block(vec![lie]);
    assert_eq!(net.stage(), (1, SessionStage::Committing, vec![1]));
    // Attempt 1: validator 3 commits and then withholds its share; at the deadline it is excluded too.
    let commits = vec![net.commit(&b, 1, 3), net.commit(&b, 1, 0), net.commit(&b, 1, 2)];
    net.block(commits);
    let shares = vec![net.share(&b, 1, 0), net.share(&b, 1, 2)];
    net.block(shares);
    let fixed_at = net.height - 1;
    while net.height < fixed_at + FROST_PHASE_BLOCKS - 1 {
        net.block(vec![]);
        assert_eq!(net.batch().txid, b.txid, "still the key-path version at {}", net.height);
    }
    net.block(vec![]);
    // Two left of four, below k = 3: the key path is given up and a leaf version is built like a bump.
    let leaf = net.batch();
    let stored = frost_session(&net.store.snapshot(net.height), 0).unwrap().unwrap();
    assert!(stored.fell_back && stored.stage == SessionStage::FallBack, "{stored:?}");
    assert_eq!((leaf.bumps(), leaf.earlier[0].txid), (1, b.txid));
    let extra = 70 * leaf.inputs.len() as u64;
    assert!(leaf.vbytes > b.vbytes + extra, "planned for the multi_a leaf: {} vs {}", leaf.vbytes, b.vbytes);
    assert!(leaf.inputs.iter().all(|i| b.inputs.iter().any(|j| j.outpoint == i.outpoint)));
    // FROST messages are over; the peg keys sign the leaf (any three, the liar included).
    let late = net.commit(&leaf, 2, 0);
    assert!(matches!(net.refused(late), TxError::Frost(FrostTxError::NotKeyPath(0))));
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let genesis = *net.chain.genesis_hash().as_bytes();
    let tx = leaf.unsigned().unwrap();
    let shares: Vec<Tx> = [1u32, 2, 3]
        .iter()
        .map(|&v| {
            let s = peg::shares::sign_batch(
                &secp,
                net.chain.genesis_wallet(),
                genesis,
                &tx,
                &leaf.peg_inputs(),
                v as usize,
                &testkit::validator_peg_secret(v),
            )
            .unwrap();
            Tx::PegShare(PegShareTx {
                batch: 0,
                txid: leaf.txid,
                signer: ValidatorIndex(v as u16),
                signatures: s.signatures,
            })
        })
        .collect();
    net.block(shares);
    let signed = net.batch();
    assert!(signed.is_signed());
    let finished: Vec<peg::shares::Share> =
        signed.shares.iter().map(|(v, s)| peg::shares::Share { signer: v.as_usize(), signatures: s.clone() }).collect();
    let btc =
        peg::shares::finalize_batch(&secp, net.chain.genesis_wallet(), genesis, &tx, &leaf.peg_inputs(), &finished)
            .expect("the leaf spend finishes");
    assert!(btc.vsize() as u64 <= leaf.vbytes, "the leaf plan bounds its spend");
}

#[test]
fn with_nobody_signing_the_batch_falls_back_after_its_attempts_and_not_before() {
    let mut net = Net::new();
    let b = net.built();
    let rules = sidechain_ledger::frost_signing::session_rules(4, 3);
    let opened = net.height;
    let fallback_at = opened + FROST_PHASE_BLOCKS * u64::from(rules.max_attempts);
    while net.height + 1 < fallback_at {
        net.block(vec![]);
        assert_eq!(net.batch().txid, b.txid, "key path still tried at {}", net.height);
    }
    net.block(vec![]);
    assert_eq!(net.batch().bumps(), 1, "the leaf version at height {}", net.height);
}

#[test]
fn a_bad_share_that_leaves_fewer_than_k_falls_back_at_once() {
    let mut net = Net::new();
    let b = net.built();
    // Attempt 0: validator 3 commits and withholds: excluded at the deadline.
    let commits = vec![net.commit(&b, 0, 3), net.commit(&b, 0, 0), net.commit(&b, 0, 2)];
    net.block(commits);
    let shares = vec![net.share(&b, 0, 0), net.share(&b, 0, 2)];
    net.block(shares);
    while net.stage().0 == 0 {
        net.block(vec![]);
    }
    assert_eq!(net.stage(), (1, SessionStage::Committing, vec![3]));
    // Attempt 1: validator 1 lies. Two are left of four: the key path is given up in that very block, and
    // the leaf version is built at its end (the batch does not hang on a session that is over).
    let commits = vec![net.commit(&b, 1, 0), net.commit(&b, 1, 1), net.commit(&b, 1, 2)];
    net.block(commits);
    let stolen = net.share_bytes(&b, 1, 0);
    let lie = net.frost(&b, 1, 1, FrostRound::Share(stolen));
    net.block(vec![lie]);
    let leaf = net.batch();
    assert_eq!((leaf.bumps(), leaf.earlier[0].txid), (1, b.txid), "the leaf version, in the lie's block");
    let stored = frost_session(&net.store.snapshot(net.height), 0).unwrap().unwrap();
    assert!(stored.fell_back && stored.commitments.is_empty(), "{stored:?}");
}

#[test]
fn junk_frost_messages_are_refused_before_any_cryptography() {
    let mut net = Net::new();
    let b = net.built();
    // Wrong attempt, wrong item count, a share while commitments are collected: refused from the stored
    // session alone (their signatures are not even looked at).
    let Tx::Frost(mut junk) = net.commit(&b, 0, 0) else { unreachable!() };
    junk.signature = vec![0; 64];
    junk.attempt = 5;
    assert!(matches!(net.refused(Tx::Frost(junk.clone())), TxError::Frost(FrostTxError::Refused { .. })));
    junk.attempt = 0;
    junk.round = FrostRound::Commit(vec![vec![2; 66]; 7]);
    assert!(matches!(net.refused(Tx::Frost(junk.clone())), TxError::Frost(FrostTxError::Refused { .. })));
    junk.round = FrostRound::Share(vec![vec![1; 32]; b.inputs.len()]);
    assert!(matches!(net.refused(Tx::Frost(junk)), TxError::Frost(FrostTxError::Refused { .. })));
}
