//! Byzantine behaviours of the simulation: how a faulty validator turns what its (honest) core would send
//! into what it actually sends.
//!
//! Invariant owned here: a Byzantine validator only ever signs with its own key; everything it can do to
//! honest validators goes through the same network and signature checks as honest traffic.

use super::Rng;
use crate::types::{Message, Proposal, SignedProposal, SignedVote, Value, Vote};
use primitives::{tagged_hash, BlockId, GenesisHash, Height, Keypair, Round};

/// What a Byzantine validator does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing at all.
    Silent,
    /// As proposer, sends two different valid blocks in one round.
    EquivocatingProposer,
    /// Sends its real vote to everyone and a conflicting one to some.
    EquivocatingVoter,
    /// Every message it sends carries a corrupted signature.
    BadSignatures,
    /// Votes (and proposes) hashes of blocks nobody has.
    UnknownBlocks,
    /// Behaves honestly, and also floods messages for far-future heights and rounds.
    FarFuture,
}

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Silent,
        Behaviour::EquivocatingProposer,
        Behaviour::EquivocatingVoter,
        Behaviour::BadSignatures,
        Behaviour::UnknownBlocks,
        Behaviour::FarFuture,
    ];
}

/// A block hash no honest validator has (so it is invalid for everyone), fixed per slot so that a resend
/// does not become an equivocation by accident.
pub(super) fn unknown_block(h: Height, r: Round, tag: u8) -> Value {
    BlockId(tagged_hash("sim/unknown-block", &[&h.0.to_le_bytes(), &r.0.to_le_bytes(), &[tag]]))
}

/// What to send instead of `m`: a list of `(message, to_everyone_or_only_a_random_half)`.
/// `fresh_block` mints a new valid block (for the equivocating proposer's second block).
pub(super) fn mutate(
    b: Behaviour,
    m: Message,
    key: &Keypair,
    genesis: &GenesisHash,
    rng: &mut Rng,
    fresh_block: &mut dyn FnMut(Height, Round) -> Value,
) -> Vec<(Message, bool)> {
    match (b, m) {
        (Behaviour::Silent, _) => vec![],
        (Behaviour::EquivocatingProposer, Message::Proposal(sp)) => {
            let p = sp.proposal;
            let other = Proposal { value: fresh_block(p.height, p.round), pol_round: None, ..p };
            vec![(m, true), (Message::Proposal(other.sign(key, genesis)), false)]
        }
        (Behaviour::EquivocatingVoter, Message::Vote(sv)) => {
            let v = sv.vote;
            let flipped = match v.value {
                Some(_) => None,
                None => Some(unknown_block(v.height, v.round, 1)),
            };
            let other = Vote { value: flipped, ..v }.sign(key, genesis);
            vec![(m, true), (Message::Vote(other), false)]
        }
        (Behaviour::BadSignatures, Message::Vote(sv)) => {
            let mut sig = sv.signature;
            sig.0[rng.index(64)] ^= 1 << rng.index(8);
            vec![(Message::Vote(SignedVote { signature: sig, ..sv }), true)]
        }
        (Behaviour::BadSignatures, Message::Proposal(sp)) => {
            let mut sig = sp.signature;
            sig.0[rng.index(64)] ^= 1;
            vec![(Message::Proposal(SignedProposal { signature: sig, ..sp }), true)]
        }
        (Behaviour::UnknownBlocks, Message::Vote(sv)) => {
            let v = sv.vote;
            let value = Some(unknown_block(v.height, v.round, 2));
            vec![(Message::Vote(Vote { value, ..v }.sign(key, genesis)), true)]
        }
        (Behaviour::UnknownBlocks, Message::Proposal(sp)) => {
            let p = sp.proposal;
            let value = unknown_block(p.height, p.round, 3);
            vec![(Message::Proposal(Proposal { value, pol_round: None, ..p }.sign(key, genesis)), true)]
        }
        (Behaviour::FarFuture, Message::Vote(sv)) => {
            let v = sv.vote;
            let far = Vote { height: Height(v.height.0 + rng.range(2, 1000)), ..v }.sign(key, genesis);
            let next = Vote { height: v.height.next(), round: Round(v.round.0 + rng.range(1, 5000) as u32), ..v }
                .sign(key, genesis);
            let far_round =
                Vote { round: Round(v.round.0 + rng.range(2000, 1_000_000) as u32), ..v }.sign(key, genesis);
            vec![(m, true), (Message::Vote(far), true), (Message::Vote(next), true), (Message::Vote(far_round), true)]
        }
        _ => vec![(m, true)],
    }
}
