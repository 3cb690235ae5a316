//! Equivocation evidence: two conflicting signed messages from one validator for the same
//! `(height, round, step)`.
//!
//! Invariant owned here: evidence is self-contained. `verify` needs only the validator set and the chain's
//! genesis hash, so it can go into state and be checked by every node (and by anyone outside).

use crate::types::{MessageError, SignedProposal, SignedVote};
use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{GenesisHash, Height, Round, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Proof that one validator signed two different messages where the protocol allows one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Equivocation {
    /// Two different prevotes (or two different precommits) in one round.
    Votes(SignedVote, SignedVote),
    /// Two different proposals in one round.
    Proposals(SignedProposal, SignedProposal),
}

/// Why evidence is not a proof of equivocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The two messages are identical.
    #[error("the two messages are the same, nothing conflicts")]
    NotConflicting,
    /// Different signer, height, round or vote kind: both may be honest.
    #[error("the two messages are not for the same signer, height, round and step")]
    DifferentSlot,
    /// A signature does not verify (or the signer is unknown).
    #[error("evidence message does not verify: {0}")]
    Message(#[from] MessageError),
}

impl Equivocation {
    /// The validator that equivocated.
    pub fn offender(&self) -> ValidatorIndex {
        match self {
            Equivocation::Votes(a, _) => a.vote.validator,
            Equivocation::Proposals(a, _) => a.proposal.proposer,
        }
    }

    /// Height of the conflicting messages.
    pub fn height(&self) -> Height {
        match self {
            Equivocation::Votes(a, _) => a.vote.height,
            Equivocation::Proposals(a, _) => a.proposal.height,
        }
    }

    /// Round of the conflicting messages.
    pub fn round(&self) -> Round {
        match self {
            Equivocation::Votes(a, _) => a.vote.round,
            Equivocation::Proposals(a, _) => a.proposal.round,
        }
    }

    /// Checks both messages are validly signed by the same member for the same slot, and differ.
    pub fn verify(&self, set: &ValidatorSet, genesis: &GenesisHash) -> Result<(), EvidenceError> {
        match self {
            Equivocation::Votes(a, b) => {
                let (x, y) = (&a.vote, &b.vote);
                if (x.validator, x.height, x.round, x.kind) != (y.validator, y.height, y.round, y.kind) {
                    return Err(EvidenceError::DifferentSlot);
                }
                if x == y {
                    return Err(EvidenceError::NotConflicting);
                }
                a.verify(set, genesis)?;
                b.verify(set, genesis)?;
            }
            Equivocation::Proposals(a, b) => {
                let (x, y) = (&a.proposal, &b.proposal);
                if (x.proposer, x.height, x.round) != (y.proposer, y.height, y.round) {
                    return Err(EvidenceError::DifferentSlot);
                }
                if x == y {
                    return Err(EvidenceError::NotConflicting);
                }
                a.verify(set, genesis)?;
                b.verify(set, genesis)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Vote, VoteKind};
    use primitives::Keypair;
    use primitives::{BlockId, Hash32};

    #[test]
    fn verifies_real_equivocation_and_rejects_the_rest() {
        let g = GenesisHash(Hash32([3; 32]));
        let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_secret([i + 1; 32])).collect();
        let set = ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect()).unwrap();
        let v = Vote {
            kind: VoteKind::Prevote,
            height: Height(2),
            round: Round(0),
            value: Some(BlockId(Hash32([1; 32]))),
            validator: ValidatorIndex(1),
        };
        let a = v.sign(&keys[1], &g);
        let b = Vote { value: None, ..v }.sign(&keys[1], &g);
        let e = Equivocation::Votes(a, b);
        assert_eq!(e.verify(&set, &g), Ok(()));
        assert_eq!(e.offender(), ValidatorIndex(1));
        assert_eq!(Equivocation::Votes(a, a).verify(&set, &g), Err(EvidenceError::NotConflicting));
        let c = Vote { kind: VoteKind::Precommit, ..v }.sign(&keys[1], &g);
        assert_eq!(Equivocation::Votes(a, c).verify(&set, &g), Err(EvidenceError::DifferentSlot));
        let mut forged = b;
        forged.signature.0[3] ^= 1;
        assert!(matches!(Equivocation::Votes(a, forged).verify(&set, &g), Err(EvidenceError::Message(_))));
    }
}
