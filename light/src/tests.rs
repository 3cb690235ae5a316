//! The light client against a real ledger: blocks built and executed by `ledger`, certified by the test
//! validators' keys, through a federation change 4 -> 7 -> 4; and every way a node could lie to it.

use super::*;
use consensus::{Round, Vote, VoteKind};
use ledger::testkit::{self, user_key, validator, validator_key};
use ledger::{build_block, BlockTemplate, MemStore, ReconfigureTx, StateReader, Tx};
use primitives::{canonical_bytes, tagged_hash, Hash32, ValidatorIndex};

const MIN_LEAD: u64 = 3;

/// A chain the tests grow block by block, certifying each with the set that decides it.
struct Net {
    chain: Chain,
    store: MemStore,
    headers: Vec<CertifiedHeader>,
    bodies: Vec<Vec<Tx>>,
}

/// Signatures of test validators `signers` (key index, index in the set) on `header`.
fn certify(chain: &Chain, header: &BlockHeader, signers: &[(u32, u16)]) -> CommitCertificate {
    let (height, value) = (header.height, header.hash());
    let signatures = signers
        .iter()
        .map(|(key, idx)| {
            let vote = Vote {
                kind: VoteKind::Precommit,
                height,
                round: Round(0),
                value: Some(value),
                validator: ValidatorIndex(*idx),
            };
            (ValidatorIndex(*idx), vote.sign(&validator_key(*key), chain.genesis_hash()).signature)
        })
        .collect();
    CommitCertificate { height, round: Round(0), value, signatures }
}

impl Net {
    fn new() -> Net {
        let mut g = testkit::genesis(4, 2, bitcoin::Amount::from_sat(1_000_000));
        g.params.federation_change_min_lead = MIN_LEAD;
        let chain = Chain::new(g).expect("valid genesis");
        let mut store = MemStore::new();
        store.apply(&chain.genesis_state(&store).expect("genesis state"));
        Net { chain, store, headers: Vec::new(), bodies: Vec::new() }
    }

    fn tip(&self) -> Height {
        Height(self.headers.len() as u64)
    }

    /// The validators (test key indices, in set order) deciding the next height.
    fn next_signers(&self) -> Vec<(u32, u16)> {
        let next = self.tip().next();
        let fs = ledger::federation_state(&self.chain, &self.store.snapshot(self.tip().get())).expect("federation");
        fs.deciding(next)
            .validators
            .iter()
            .enumerate()
            .map(|(idx, v)| {
                let key = (0..16).find(|k| validator_key(*k).public() == v.consensus_key).expect("a test validator");
                (key, idx as u16)
            })
            .collect()
    }

    /// Builds, executes and certifies the next block with `txs`, signed by all of the deciding set.
    fn commit(&mut self, txs: Vec<Tx>) {
        let signers = self.next_signers();
        let (prev_hash, last_commit_hash) = match self.headers.last() {
            Some(p) => (p.header.hash(), tagged_hash("test/commit", &[&canonical_bytes(&p.commit)])),
            None => (self.chain.genesis_hash().as_block_id(), Hash32::ZERO),
        };
        let height = self.tip().next();
        let template = BlockTemplate {
            height,
            prev_hash,
            time_ms: self.chain.genesis().genesis_time_ms + height.get() * 1000,
            proposer: ValidatorIndex(0),
            btc_anchor: self.chain.genesis().btc_anchor,
            last_commit_hash,
        };
        let (block, outcome) = build_block(&self.chain, &self.store, template, txs).expect("valid block");
        self.store.apply(&outcome.write_set);
        let commit = certify(&self.chain, &block.header, &signers);
        self.headers.push(CertifiedHeader { header: block.header, commit, federation: None });
        self.bodies.push(block.txs);
    }

    fn commit_empty(&mut self, n: u64) {
        for _ in 0..n {
            self.commit(Vec::new());
        }
    }

    /// A federation change to test validators `members`, approved by the whole set in force.
    fn reconfigure(&self, members: &[u32], threshold: u32, at: Height) -> Tx {
        let proposal = ledger::FederationProposal {
            validators: members.iter().map(|i| validator(*i)).collect(),
            peg_threshold: threshold,
            activation_height: at,
        };
        let fs = ledger::federation_state(&self.chain, &self.store.snapshot(self.tip().get())).expect("federation");
        let epoch = fs.in_force().epoch;
        let approvals = self
            .next_signers()
            .iter()
            .map(|(key, idx)| {
                proposal.approve(ValidatorIndex(*idx), epoch, &validator_key(*key), self.chain.genesis_hash())
            })
            .collect();
        Tx::Reconfigure(ReconfigureTx { proposal, approvals })
    }

    /// What a node serves for `getheaders(from, count)`: the federation entry on every header at a multiple
    /// of `federation_change_min_lead` and on the last.
    fn range(&self, from: Height, count: u64) -> HeaderRange {
        let mut headers: Vec<CertifiedHeader> =
            self.headers.iter().filter(|c| c.header.height >= from).take(count as usize).cloned().collect();
        let last = headers.last().map(|c| c.header.height);
        for c in &mut headers {
            let h = c.header.height;
            if h.get() % MIN_LEAD == 0 || Some(h) == last {
                c.federation = Some(self.federation_entry(h));
            }
        }
        HeaderRange { headers }
    }

    fn federation_entry(&self, height: Height) -> ProvedValue {
        let (value, proof) = self.store.snapshot(height.get()).prove(&StateKey::Federation).expect("proof");
        ProvedValue { value, proof }
    }

    /// A client that followed the whole chain, range by range.
    fn follow(&self, client: &mut LightClient) -> Result<(), LightError> {
        while client.tip() < self.tip() {
            client.extend(&self.range(client.tip().next(), 4))?;
        }
        Ok(())
    }
}

/// 4 validators, then 7 (genesis 0..4 and 4..7) from height 6, then 4 (3..7) from height 12.
fn changing_net() -> Net {
    let mut net = Net::new();
    net.commit_empty(1);
    let to_seven = net.reconfigure(&[0, 1, 2, 3, 4, 5, 6], 5, Height(6));
    net.commit(vec![to_seven]);
    net.commit_empty(5);
    assert_eq!(net.next_signers().len(), 7, "the seven decide from height 6");
    let to_four = net.reconfigure(&[3, 4, 5, 6], 3, Height(12));
    net.commit(vec![to_four]);
    net.commit_empty(6);
    assert_eq!(net.next_signers().iter().map(|s| s.0).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
    net
}

#[test]
fn a_client_follows_the_chain_from_genesis_across_a_federation_change_4_7_4() {
    let net = changing_net();
    let mut client = LightClient::from_genesis(&net.chain);
    net.follow(&mut client).expect("an honest chain is followed");
    assert_eq!(client.tip(), net.tip());
    assert_eq!(client.federation().in_force().epoch, 2);
    assert_eq!(client.federation().in_force().validators.len(), 4);
    assert_eq!(client.header(Height(6)).map(BlockHeader::hash), Some(net.headers[5].header.hash()));

    // A balance proved against the tip's certified state root.
    let alice = user_key(0).public().account_id();
    let snap = net.store.snapshot(net.tip().get());
    let (value, proof) = snap.prove(&StateKey::Account(alice)).expect("proof");
    assert_eq!(snap.get_account(&alice).expect("read").map(|a| a.balance), Some(bitcoin::Amount::from_sat(1_000_000)));
    client.verify_entry(net.tip(), &StateKey::Account(alice), value.as_deref(), &proof).expect("honest entry");
}

#[test]
fn a_range_is_checked_whole_or_not_at_all() {
    let net = changing_net();
    let mut client = LightClient::from_genesis(&net.chain);
    let mut range = net.range(Height(1), 8);
    range.headers[2].commit.signatures.pop();
    range.headers[2].commit.signatures.pop();
    let err = client.extend(&range).expect_err("two of four signatures are not a quorum");
    assert!(matches!(err, LightError::Certificate { height: Height(3), .. }), "{err}");
    assert_eq!(client.tip(), Height(0), "nothing of a bad range is kept");
    assert!(client.header(Height(1)).is_none());
}

#[test]
fn every_lie_about_headers_is_caught_and_named() {
    let net = changing_net();
    let mut client = LightClient::from_genesis(&net.chain);
    client.extend(&net.range(Height(1), 3)).expect("first range");
    let honest = net.range(Height(4), 3);
    let lie = |f: &dyn Fn(&mut HeaderRange)| {
        let mut r = honest.clone();
        f(&mut r);
        client.clone().extend(&r).expect_err("a lie is refused")
    };

    // An altered header (here its state root: a balance the validators never certified).
    let err = lie(&|r| r.headers[0].header.state_root = primitives::StateRoot(Hash32([7; 32])));
    assert!(matches!(err, LightError::CommitForOther { height: Height(4), .. }), "{err}");
    // The altered header with a certificate re-pointed at it: the signatures are for the real hash.
    let err = lie(&|r| {
        r.headers[0].header.state_root = primitives::StateRoot(Hash32([7; 32]));
        r.headers[0].commit.value = r.headers[0].header.hash();
    });
    assert!(matches!(err, LightError::Certificate { source: CertificateError::BadSignatures(_), .. }), "{err}");
    // A forged signature byte.
    let err = lie(&|r| {
        r.headers[1].commit.signatures[1].1 .0[5] ^= 1;
    });
    assert!(matches!(err, LightError::Certificate { height: Height(5), .. }), "{err}");
    // A header skipped.
    let err = lie(&|r| {
        r.headers.remove(0);
    });
    assert!(matches!(err, LightError::NotNext { expected: Height(4), got: Height(5) }), "{err}");
    // A header of another branch: certified, but not on the client's chain.
    let err = lie(&|r| r.headers[0].header.prev_hash = BlockId(Hash32([1; 32])));
    assert!(matches!(err, LightError::NotLinked { height: Height(4), .. }), "{err}");
    // A header of another chain.
    let err = lie(&|r| r.headers[0].header.genesis_hash = GenesisHash(Hash32([2; 32])));
    assert!(matches!(err, LightError::WrongChain { height: Height(4), .. }), "{err}");
    // The federation entries left out: past height 3 + MIN_LEAD the set is not known.
    let long = net.range(Height(4), 8);
    let mut bare = long.clone();
    bare.headers.iter_mut().for_each(|c| c.federation = None);
    let err = client.clone().extend(&bare).expect_err("no federation entry for too long");
    assert!(matches!(err, LightError::FederationMissing { height: Height(7), known_at: Height(3), .. }), "{err}");
    client.clone().extend(&long).expect("with its entries, a long range is followed");
    // An entry taken from another height (hiding the change accepted at 2), or altered.
    let err = lie(&|r| r.headers[2].federation = Some(net.federation_entry(Height(1))));
    assert!(matches!(err, LightError::FederationProof { height: Height(6), .. }), "{err}");
    let err = lie(&|r| {
        if let Some(Some(v)) = r.headers[2].federation.as_mut().map(|f| f.value.as_mut()) {
            v[0] ^= 1;
        }
    });
    assert!(matches!(err, LightError::FederationProof { height: Height(6), .. }), "{err}");
    // The honest range still passes after all that.
    client.extend(&honest).expect("honest range");
}

#[test]
fn the_retired_validators_cannot_certify_past_the_change() {
    let net = changing_net();
    let mut client = LightClient::from_genesis(&net.chain);
    while client.tip() < Height(11) {
        client.extend(&net.range(client.tip().next(), 1)).expect("honest prefix");
    }
    // From height 12 the set is validators 3..7: the genesis validators 0, 1 and 2, retired, sign a header.
    let mut range = net.range(Height(12), 1);
    range.headers[0].commit = certify(&net.chain, &range.headers[0].header, &[(0, 0), (1, 1), (2, 2)]);
    let err = client.extend(&range).expect_err("retired validators are no quorum");
    assert!(matches!(err, LightError::Certificate { height: Height(12), .. }), "{err}");
    // Nor can the four genesis validators certify a height the seven decide.
    let mut client = LightClient::from_genesis(&net.chain);
    client.extend(&net.range(Height(1), 3)).expect("prefix");
    client.extend(&net.range(Height(4), 2)).expect("up to 5");
    let mut range = net.range(Height(6), 1);
    range.headers[0].commit = certify(&net.chain, &range.headers[0].header, &[(0, 0), (1, 1), (2, 2), (3, 3)]);
    let err = client.extend(&range).expect_err("four of seven are no quorum");
    assert!(matches!(err, LightError::Certificate { height: Height(6), .. }), "{err}");
}

#[test]
fn a_state_entry_is_believed_only_with_its_proof_against_a_certified_root() {
    let net = changing_net();
    let mut client = LightClient::from_genesis(&net.chain);
    net.follow(&mut client).expect("follow");
    let alice = user_key(0).public().account_id();
    let key = StateKey::Account(alice);
    let (value, proof) = net.store.snapshot(net.tip().get()).prove(&key).expect("proof");
    let mut inflated: ledger::Account = borsh::from_slice(value.as_deref().expect("alice exists")).expect("decode");
    inflated.balance *= 2;
    let err = client
        .verify_entry(net.tip(), &key, Some(&canonical_bytes(&inflated)), &proof)
        .expect_err("an altered balance is refused");
    assert!(matches!(err, LightError::EntryProof { .. }), "{err}");
    let err = client.verify_entry(net.tip(), &key, None, &proof).expect_err("an account said not to exist");
    assert!(matches!(err, LightError::EntryProof { .. }), "{err}");
    let err = client.verify_entry(net.tip().next(), &key, value.as_deref(), &proof).expect_err("unfollowed height");
    assert!(matches!(err, LightError::UnknownHeight { .. }), "{err}");
}

#[test]
fn a_checkpoint_is_trusted_by_its_hash_only() {
    let net = changing_net();
    let at = Height(8);
    let hash = net.headers[7].header.hash();
    let mut client = LightClient::from_checkpoint(&net.chain, at, hash, net.range(at, 1)).expect("checkpoint");
    assert_eq!(client.federation().in_force().validators.len(), 7);
    net.follow(&mut client).expect("follow from the checkpoint across the change to four");
    assert_eq!(client.tip(), net.tip());

    let mut bare = net.range(at, 1);
    bare.headers[0].federation = None;
    let err = LightClient::from_checkpoint(&net.chain, at, hash, bare).expect_err("no federation entry");
    assert!(matches!(err, LightError::FederationMissing { .. }), "{err}");
    let err = LightClient::from_checkpoint(&net.chain, at, hash, net.range(Height(9), 1)).expect_err("another header");
    assert!(matches!(err, LightError::NotNext { .. }), "{err}");
    let mut other = net.range(at, 1);
    other.headers[0].header.time_ms += 1;
    let err = LightClient::from_checkpoint(&net.chain, at, hash, other).expect_err("an altered checkpoint");
    assert!(matches!(err, LightError::CheckpointMismatch { .. }), "{err}");
}

#[test]
fn a_transaction_is_believed_in_a_block_only_by_its_branch_to_the_certified_root() {
    let mut net = Net::new();
    let (alice, bob) = (user_key(0), user_key(1));
    let fee = bitcoin::Amount::from_sat(1_000);
    let txs: Vec<Tx> = (0..5)
        .map(|n| {
            let amount = bitcoin::Amount::from_sat(n + 1);
            Tx::User(testkit::transfer(&net.chain, &alice, n, bob.public().account_id(), amount, fee))
        })
        .collect();
    net.commit(txs);
    let mut client = LightClient::from_genesis(&net.chain);
    net.follow(&mut client).expect("follow");
    let body = &net.bodies[0];
    let txids: Vec<primitives::TxId> = body.iter().map(Tx::txid).collect();
    let count = body.len() as u32;
    for (i, tx) in body.iter().enumerate() {
        let branch = ledger::tx_branch(&txids, i);
        client.verify_tx(Height(1), i as u32, count, tx, &branch).expect("an included transaction");
        let other = &body[(i + 1) % body.len()];
        let err = client.verify_tx(Height(1), i as u32, count, other, &branch).expect_err("another transaction");
        assert!(matches!(err, LightError::TxNotIncluded { .. }), "{err}");
        let err = client.verify_tx(Height(1), i as u32, i as u32, tx, &branch).expect_err("an index past the count");
        assert!(matches!(err, LightError::TxNotIncluded { .. }), "{err}");
    }
    // A transaction never in a block, with a borrowed branch.
    let stranger = Tx::User(testkit::transfer(&net.chain, &alice, 9, bob.public().account_id(), fee, fee));
    let err = client.verify_tx(Height(1), 0, count, &stranger, &ledger::tx_branch(&txids, 0)).expect_err("not in it");
    assert!(matches!(err, LightError::TxNotIncluded { .. }), "{err}");
}
