//! Fuzz targets of the consensus messages a peer sends: signed votes and proposals (gossip), commit
//! certificates (sync, block headers) and equivocation evidence (inside blocks). Seeds are real signed
//! messages of a 4-validator set; each decoded value is also verified against that set, so the checks
//! behind the decoder (signer indices, duplicates, power sums, batch verification) see hostile values too.
//! Short run in `cargo test`; `scripts/fuzz` for long runs.

use borsh::{BorshDeserialize, BorshSerialize};
use fuzzkit::Target;
use primitives::{canonical_bytes, BlockId, GenesisHash, Hash32, Height, Keypair, Round, ValidatorIndex};
use sidechain_consensus::{
    CommitCertificate, Equivocation, Proposal, SignedProposal, SignedVote, ValidatorSet, Vote, VoteKind,
};

#[global_allocator]
static ALLOC: fuzzkit::CountingAlloc = fuzzkit::CountingAlloc;

const GENESIS: GenesisHash = GenesisHash(Hash32([0x42; 32]));

fn keys() -> Vec<Keypair> {
    (1u8..=4).map(|i| Keypair::from_secret([i; 32])).collect()
}

fn set() -> ValidatorSet {
    ValidatorSet::equal_power(keys().iter().map(Keypair::public).collect()).expect("4 distinct keys")
}

fn vote(kind: VoteKind, i: u16, value: Option<BlockId>) -> SignedVote {
    Vote { kind, height: Height(5), round: Round(1), value, validator: ValidatorIndex(i) }
        .sign(&keys()[usize::from(i)], &GENESIS)
}

fn proposal(i: u16, value: BlockId, pol_round: Option<Round>) -> SignedProposal {
    Proposal { height: Height(5), round: Round(1), value, pol_round, proposer: ValidatorIndex(i) }
        .sign(&keys()[usize::from(i)], &GENESIS)
}

fn certificate(signers: &[u16]) -> CommitCertificate {
    let value = BlockId(Hash32([7; 32]));
    let signatures =
        signers.iter().map(|&i| (ValidatorIndex(i), vote(VoteKind::Precommit, i, Some(value)).signature)).collect();
    CommitCertificate { height: Height(5), round: Round(1), value, signatures }
}

fn decode_canonical<T: BorshDeserialize + BorshSerialize>(bytes: &[u8]) -> Option<T> {
    let v: T = borsh::from_slice(bytes).ok()?;
    assert_eq!(canonical_bytes(&v), bytes, "a second encoding of one value");
    Some(v)
}

fn targets() -> Vec<Target> {
    let a = BlockId(Hash32([7; 32]));
    let b = BlockId(Hash32([8; 32]));
    let votes =
        [vote(VoteKind::Prevote, 0, Some(a)), vote(VoteKind::Precommit, 3, Some(b)), vote(VoteKind::Prevote, 2, None)];
    let proposals = [proposal(1, a, None), proposal(1, b, Some(Round(0)))];
    let certs = [certificate(&[0, 1, 2]), certificate(&[3, 1, 0, 2])];
    let evidence = [
        Equivocation::Votes(vote(VoteKind::Prevote, 2, Some(a)), vote(VoteKind::Prevote, 2, Some(b))),
        Equivocation::Proposals(proposal(1, a, None), proposal(1, b, None)),
    ];
    let (s1, s2, s3, s4) = (set(), set(), set(), set());
    vec![
        Target::new("consensus_vote", votes.iter().map(canonical_bytes).collect(), move |bytes| {
            if let Some(v) = decode_canonical::<SignedVote>(bytes) {
                let _ = v.verify(&s1, &GENESIS);
            }
        }),
        Target::new("consensus_proposal", proposals.iter().map(canonical_bytes).collect(), move |bytes| {
            if let Some(p) = decode_canonical::<SignedProposal>(bytes) {
                let _ = p.verify(&s2, &GENESIS);
            }
        }),
        Target::new("commit_certificate", certs.iter().map(canonical_bytes).collect(), move |bytes| {
            if let Some(c) = decode_canonical::<CommitCertificate>(bytes) {
                let _ = c.verify_at(&s3, &GENESIS, Height(5), Round(1));
                let _ = c.verify_one_by_one(&s3, &GENESIS, c.height);
            }
        })
        // Up to 4 signature checks per input, twice: about 8,000 inputs/s unoptimised.
        .short_iterations(6_000),
        Target::new("consensus_evidence", evidence.iter().map(canonical_bytes).collect(), move |bytes| {
            if let Some(e) = decode_canonical::<Equivocation>(bytes) {
                let _ = (e.offender(), e.height(), e.round());
                let _ = e.verify(&s4, &GENESIS);
            }
        }),
    ]
}

fuzzkit::fuzz_tests!(targets());

#[test]
fn seeds_verify() {
    // The seeds are valid messages, so mutations start next to what the checks accept.
    let set = set();
    certificate(&[0, 1, 2]).verify(&set, &GENESIS, Height(5)).expect("3 of 4 precommits");
    vote(VoteKind::Prevote, 0, None).verify(&set, &GENESIS).expect("a signed vote");
    let e = Equivocation::Votes(
        vote(VoteKind::Prevote, 2, Some(BlockId(Hash32([7; 32])))),
        vote(VoteKind::Prevote, 2, Some(BlockId(Hash32([8; 32])))),
    );
    e.verify(&set, &GENESIS).expect("two conflicting prevotes");
}
