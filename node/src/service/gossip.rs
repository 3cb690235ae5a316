//! The gossip judge: what a message from the network is, and whether it may reach the core, before any
//! state changes. Consensus messages are checked here (height window, signature against the set of their
//! own height); transactions, federation transactions and claims are passed on to the component that owns
//! their pool, and their verdicts are mapped here, so every rule of what gossip is punished for is in one
//! file.
//!
//! The verdict rules (gossipsub forwards only `Accept`; `Reject` scores the forwarding peer down):
//! - `Reject` only for what no honest node sends: a bad signature for a height whose set we know, a forged
//!   federation transaction, a proposal that contradicts its own block or slot;
//! - `Ignore` for what an honest node may send while it is ahead of us, behind us, or racing us (stale
//!   heights, the height after next, a share for a version we have not seen, a full pool);
//! - status messages are never forwarded: only direct neighbours learn each other's tips.

use crate::chain::{ChainState, FullBlock};
use crate::fed_pool::PoolError;
use crate::mempool::MempoolError;
use crate::proposals::{ProposalRefusal, Slot};
use crate::wire::Gossip;
use consensus::{SignedProposal, SignedVote};
use ledger::SignedUserTx;
use net::Verdict;
use primitives::{Height, ValidatorIndex};

/// A message judged: dropped with a verdict, or what to hand on.
pub enum Judged {
    /// Dropped with this verdict; nothing else to do.
    Drop(Verdict),
    /// Dropped (ignored), but it is for a height past the next: the sender is ahead, sync from it.
    Ahead,
    /// A peer's tip (ignored for forwarding).
    Status(Height),
    /// A vote whose signature checks against its height's set: accept, and hand it to the core.
    Vote(SignedVote),
    /// A proposal whose signature checks: admit it for `slot`, which consensus expects from `expected`.
    Proposal { proposal: SignedProposal, block: Box<FullBlock>, slot: Slot, expected: ValidatorIndex },
    /// For the mempool; [`tx_verdict`] maps its answer.
    Tx(SignedUserTx),
    /// For the federation pool; [`fed_verdict`] maps its answer.
    Fed(ledger::Tx),
    /// For the claims; accepted when kept.
    Claim(crate::pegin::PegClaim),
}

/// Judges `g` at our tip. `ignore_precommits`: the `precommit_nil` test fault (this node hears none).
pub fn judge(chain: &ChainState, g: Gossip, ignore_precommits: bool) -> Judged {
    let genesis = *chain.chain().genesis_hash();
    let next = chain.tip().next();
    // Only heights h and h+1 are handed to the core; a newer one says we are behind.
    let window = |h: Height| {
        if h > next.next() {
            Some(Judged::Ahead)
        } else if h < next {
            Some(Judged::Drop(Verdict::Ignore))
        } else {
            None
        }
    };
    // A bad signature is punished, except for the height after next: a set we cannot know yet may rule it.
    let bad_signature = |h: Height| Judged::Drop(if h > next { Verdict::Ignore } else { Verdict::Reject });
    match g {
        Gossip::Status { height } => Judged::Status(height),
        Gossip::Claim(claim) => Judged::Claim(claim),
        Gossip::Fed(tx) => Judged::Fed(tx),
        Gossip::Tx(tx) => Judged::Tx(tx),
        Gossip::Vote(v) => {
            if let Some(out) = window(v.vote.height) {
                return out;
            }
            if ignore_precommits && v.vote.kind == consensus::VoteKind::Precommit {
                return Judged::Drop(Verdict::Ignore);
            }
            // Against the set of the vote's own height: a change may take effect at the next one.
            let set = chain.validators_at(v.vote.height).unwrap_or(chain.validators());
            match v.verify(set, &genesis) {
                Ok(_) => Judged::Vote(v),
                Err(e) => {
                    tracing::debug!(error = %e, "vote rejected");
                    bad_signature(v.vote.height)
                }
            }
        }
        Gossip::Proposal { proposal, block } => {
            let h = proposal.proposal.height;
            if let Some(out) = window(h) {
                return out;
            }
            // Judged only against the set in force at its own height (tip + 1 or tip + 2), never another.
            let Some(set) = chain.validators_at(h) else { return Judged::Drop(Verdict::Ignore) };
            if let Err(e) = proposal.verify(set, &genesis) {
                tracing::debug!(error = %e, "proposal rejected");
                return bad_signature(h);
            }
            let p = &proposal.proposal;
            let expected = set.proposer(h, p.round);
            let slot = Slot { height: h, round: p.round, proposer: p.proposer };
            Judged::Proposal { proposal, block, slot, expected }
        }
    }
}

/// A gossiped user transaction's verdict from the mempool's answer: only a bad signature is the sender's
/// fault (a nonce gap, a full pool or a spent balance may be a race).
pub fn tx_verdict<T>(admitted: &Result<T, MempoolError>) -> Verdict {
    match admitted {
        Ok(_) => Verdict::Accept,
        Err(MempoolError::Invalid(ledger::TxError::BadSignature(_))) => Verdict::Reject,
        Err(_) => Verdict::Ignore,
    }
}

/// A gossiped federation transaction's verdict from the pool's answer (`Ok(false)`: known already). A share
/// for a version we have not seen yet (we lag) is not the sender's fault: ignored, never punished.
pub fn fed_verdict(admitted: &Result<bool, PoolError>) -> Verdict {
    match admitted {
        Ok(true) => Verdict::Accept,
        Err(e) if e.is_forged() => Verdict::Reject,
        Ok(false) | Err(_) => Verdict::Ignore,
    }
}

/// A signature-checked proposal the store would not keep: rejected only when forged.
pub fn proposal_verdict(refusal: &ProposalRefusal) -> Verdict {
    if refusal.is_forged() {
        Verdict::Reject
    } else {
        Verdict::Ignore
    }
}
