//! Commit certificates: the 2f+1 precommits that make a block final, in a form anyone can check alone.
//!
//! Invariant owned here: `verify` accepts a certificate only if distinct members of the given validator
//! set holding more than 2/3 of its power signed a precommit for exactly this `(chain, height, round,
//! block hash)`. A full node needs nothing else (no votes, no rounds, no peers) to trust the block.

use crate::types::{Value, Vote, VoteKind};
use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{
    canonical_bytes, signing_bytes, verify_batch, GenesisHash, Height, PublicKey, Round, SignDomain, Signature,
    ValidatorIndex,
};
use serde::{Deserialize, Serialize};

/// A block hash with the precommit signatures that decided it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height of the decided block.
    pub height: Height,
    /// Round in which it was decided.
    pub round: Round,
    /// Hash of the decided block.
    pub value: Value,
    /// `(signer, signature)` of each precommit for `value` at `(height, round)`.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

/// Why a commit certificate is rejected. Each failure has its own variant so callers (and peers'
/// scores) can tell a stale certificate from a forged one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate is for another height than the one being checked.
    #[error("certificate is for height {got}, expected height {expected}")]
    WrongHeight {
        /// The height the caller needs.
        expected: Height,
        /// The height in the certificate.
        got: Height,
    },
    /// The certificate is for another round than the one being checked.
    #[error("certificate is for round {got}, expected round {expected}")]
    WrongRound {
        /// The round the caller needs.
        expected: Round,
        /// The round in the certificate.
        got: Round,
    },
    /// One validator appears twice.
    #[error("validator {0} signed the certificate more than once")]
    DuplicateSigner(ValidatorIndex),
    /// A signer index outside the set.
    #[error("signer index {index} is not in the validator set of {set_len} validators")]
    UnknownSigner {
        /// The offending index.
        index: ValidatorIndex,
        /// Size of the set.
        set_len: usize,
    },
    /// Not enough power signed.
    #[error("certificate has voting power {got}, a quorum needs {need}")]
    InsufficientPower {
        /// Power of the distinct known signers.
        got: u64,
        /// Least quorum power.
        need: u64,
    },
    /// At least one signature does not verify; lists every signer whose signature is bad.
    #[error("bad precommit signatures from validators {0:?}")]
    BadSignatures(Vec<ValidatorIndex>),
}

impl CommitCertificate {
    /// The precommit body validator `index` signed, as reconstructed from the certificate.
    pub fn precommit(&self, index: ValidatorIndex) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            value: Some(self.value),
            validator: index,
        }
    }

    /// Verifies the certificate for `height` against `set` on the chain `genesis`, checking the
    /// signatures as one ed25519 batch (falling back to one by one only to name the bad signers).
    pub fn verify(&self, set: &ValidatorSet, genesis: &GenesisHash, height: Height) -> Result<(), CertificateError> {
        let items = self.check_structure(set, genesis, height)?;
        if verify_batch(&items).is_ok() {
            return Ok(());
        }
        Err(CertificateError::BadSignatures(self.bad_signers(set, genesis)))
    }

    /// As [`verify`](Self::verify), and also requires the certificate to be for `round` (e.g. the round a
    /// block header names for its last commit).
    pub fn verify_at(
        &self,
        set: &ValidatorSet,
        genesis: &GenesisHash,
        height: Height,
        round: Round,
    ) -> Result<(), CertificateError> {
        if self.round != round {
            return Err(CertificateError::WrongRound { expected: round, got: self.round });
        }
        self.verify(set, genesis, height)
    }

    /// The same checks as [`verify`](Self::verify) with each signature verified on its own (kept for
    /// the benchmark that measures what batching buys).
    pub fn verify_one_by_one(
        &self,
        set: &ValidatorSet,
        genesis: &GenesisHash,
        height: Height,
    ) -> Result<(), CertificateError> {
        self.check_structure(set, genesis, height)?;
        let bad = self.bad_signers(set, genesis);
        if bad.is_empty() {
            Ok(())
        } else {
            Err(CertificateError::BadSignatures(bad))
        }
    }

    /// Height, signer membership, duplicates and power; returns the batch to verify.
    fn check_structure(
        &self,
        set: &ValidatorSet,
        genesis: &GenesisHash,
        height: Height,
    ) -> Result<Vec<(PublicKey, Vec<u8>, Signature)>, CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight { expected: height, got: self.height });
        }
        let mut seen = vec![false; set.len()];
        let mut power: u64 = 0;
        let mut items = Vec::with_capacity(self.signatures.len());
        for (index, sig) in &self.signatures {
            let key =
                set.public_key(*index).ok_or(CertificateError::UnknownSigner { index: *index, set_len: set.len() })?;
            let slot = &mut seen[index.as_usize()];
            if *slot {
                return Err(CertificateError::DuplicateSigner(*index));
            }
            *slot = true;
            power = power.saturating_add(set.power(*index));
            let body = canonical_bytes(&self.precommit(*index));
            items.push((*key, signing_bytes(SignDomain::Vote, genesis, &body), *sig));
        }
        if !set.is_quorum(power) {
            return Err(CertificateError::InsufficientPower { got: power, need: set.quorum_power() });
        }
        Ok(items)
    }

    fn bad_signers(&self, set: &ValidatorSet, genesis: &GenesisHash) -> Vec<ValidatorIndex> {
        self.signatures
            .iter()
            .filter(|(index, sig)| {
                let body = canonical_bytes(&self.precommit(*index));
                set.public_key(*index).is_none_or(|k| k.verify(SignDomain::Vote, genesis, &body, sig).is_err())
            })
            .map(|(index, _)| *index)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Keypair;
    use primitives::{BlockId, Hash32};

    const G: GenesisHash = GenesisHash(Hash32([9; 32]));

    fn setup(n: u8) -> (Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_secret([i + 1; 32])).collect();
        let set = ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect()).unwrap();
        (keys, set)
    }

    fn cert(keys: &[Keypair], signers: &[u16], height: u64, round: u32) -> CommitCertificate {
        let mut c = CommitCertificate {
            height: Height(height),
            round: Round(round),
            value: BlockId(Hash32([5; 32])),
            signatures: vec![],
        };
        for &i in signers {
            let v = c.precommit(ValidatorIndex(i));
            c.signatures.push((ValidatorIndex(i), v.sign(&keys[usize::from(i)], &G).signature));
        }
        c
    }

    #[test]
    fn accepts_a_quorum_both_ways() {
        let (keys, set) = setup(4);
        let c = cert(&keys, &[0, 2, 3], 7, 1);
        assert_eq!(c.verify(&set, &G, Height(7)), Ok(()));
        assert_eq!(c.verify_one_by_one(&set, &G, Height(7)), Ok(()));
        assert_eq!(c.verify_at(&set, &G, Height(7), Round(1)), Ok(()));
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let (keys, set) = setup(4);
        let c = cert(&keys, &[0, 2, 3], 7, 1);
        assert_eq!(
            c.verify(&set, &G, Height(8)),
            Err(CertificateError::WrongHeight { expected: Height(8), got: Height(7) })
        );
        assert_eq!(
            c.verify_at(&set, &G, Height(7), Round(0)),
            Err(CertificateError::WrongRound { expected: Round(0), got: Round(1) })
        );
        let mut dup = c.clone();
        dup.signatures.push(dup.signatures[0]);
        assert_eq!(dup.verify(&set, &G, Height(7)), Err(CertificateError::DuplicateSigner(ValidatorIndex(0))));
        let mut unknown = c.clone();
        unknown.signatures.push((ValidatorIndex(9), c.signatures[0].1));
        assert!(matches!(
            unknown.verify(&set, &G, Height(7)),
            Err(CertificateError::UnknownSigner { index, set_len: 4 }) if index == ValidatorIndex(9)
        ));
        let short = cert(&keys, &[0, 1], 7, 1);
        assert_eq!(short.verify(&set, &G, Height(7)), Err(CertificateError::InsufficientPower { got: 2, need: 3 }));
        let mut bad = c.clone();
        bad.signatures[1].1 .0[0] ^= 1;
        assert_eq!(bad.verify(&set, &G, Height(7)), Err(CertificateError::BadSignatures(vec![ValidatorIndex(2)])));
        assert_eq!(
            bad.verify_one_by_one(&set, &G, Height(7)),
            Err(CertificateError::BadSignatures(vec![ValidatorIndex(2)]))
        );
        // A precommit from another round or chain does not count for this one.
        let mut moved = c.clone();
        moved.round = Round(2);
        assert!(matches!(
            moved.verify(&set, &G, Height(7)),
            Err(CertificateError::BadSignatures(b)) if b.len() == 3
        ));
        assert!(matches!(
            c.verify(&set, &GenesisHash(Hash32([1; 32])), Height(7)),
            Err(CertificateError::BadSignatures(_))
        ));
    }
}
