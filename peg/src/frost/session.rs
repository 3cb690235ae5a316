//! One FROST signing of a batch version as every node's block execution runs it: ROAST's idea (keep
//! starting signings with whoever responds, drop whoever fails) with the chain as the coordinator.
//!
//! Why a session and not a coordinator: a coordinator is a validator that can stall or lie. Here every input
//! arrives in a block, so every node sees the same commitments and shares in the same order and reaches the
//! same decision: who signs in this attempt, whose share is bad, when the attempt has failed. Nothing is
//! decided by a clock or by one node.
//!
//! The rules, per attempt `r` (starting at 0):
//! 1. **Commit**: each validator that is not excluded may commit once, one nonce commitment per input. The
//!    first `k` to commit in chain order are the attempt's signers; the signing packages follow (each
//!    input's sighash with those `k` commitments).
//! 2. **Share**: each signer of the attempt sends one signature share per input. Each is checked against the
//!    signer's verifying share ([`super::verify_share`]). A bad share excludes its signer from this batch and
//!    starts attempt `r + 1` at once; when all `k` are good, the signatures are aggregated: done.
//! 3. **Timeout**: an attempt open `timeout` blocks ends. Signers that were chosen and did not share are
//!    excluded (committing and then withholding must not win a seat in every attempt); if fewer than `k`
//!    committed, nobody is, and the attempt just counts.
//!
//! A proposer chooses which messages a block carries, so a faulty proposer can delay an honest signer's
//! share; `timeout` must outlast the run of consecutive heights faulty proposers can hold (more than `f`
//! with round-robin proposers), or a censored honest signer is excluded as if it withheld.
//!
//! Each failed attempt with chosen signers excludes at least one of them, so with at most `n - k` faulty
//! validators some attempt of the first `n - k + 1` has only honest signers and finishes. When fewer than `k`
//! validators are left, or `max_attempts` attempts have failed, the session gives up on the key path
//! ([`State::FallBack`]): the batch is then signed in the `multi_a` leaf with the peg keys.
//!
//! Nonces: a validator commits once per attempt and signs once per attempt, for the package this session
//! fixed from final blocks, so a nonce never signs two messages as long as the node keeps each attempt's
//! nonces until it has signed and then destroys them (the node's job).

use super::{aggregate, participant, signing_package, verify_share, FrostError};
use bitcoin::{taproot, TapNodeHash, TapSighash};
use frost_secp256k1_tr::keys::PublicKeyPackage;
use frost_secp256k1_tr::round1::SigningCommitments;
use frost_secp256k1_tr::round2::SignatureShare;
use frost_secp256k1_tr::SigningPackage;
use std::collections::{BTreeMap, BTreeSet};

/// What each input of the batch version is signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputToSign {
    /// The input's key-path sighash.
    pub sighash: TapSighash,
    /// The merkle root of the script tree of the output it spends.
    pub merkle_root: Option<TapNodeHash>,
}

/// The session's limits, from chain parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRules {
    /// Blocks an attempt stays open.
    pub timeout: u64,
    /// Attempts before the key path is given up.
    pub max_attempts: u32,
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Collecting commitments for the attempt.
    Committing,
    /// The attempt's signers are fixed; collecting their shares.
    Sharing {
        /// The signers, in the order their commitments arrived.
        signers: Vec<usize>,
    },
    /// Every input has its key-path signature.
    Signed(Vec<taproot::Signature>),
    /// The key path is given up: fewer than `k` validators are left or every attempt failed.
    FallBack,
}

/// Why a commitment or share was refused. The session is unchanged by a refusal, except that a share that
/// fails its check excludes its signer ([`Refusal::BadShare`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a validator of this federation.
    #[error("validator {0} is not in the federation")]
    UnknownSigner(usize),
    /// For another attempt than the current one.
    #[error("for attempt {got}, the current attempt is {current}")]
    WrongAttempt {
        /// The attempt named.
        got: u32,
        /// The current attempt.
        current: u32,
    },
    /// The session is not collecting this kind of message now (or is over).
    #[error("the session is not taking this now")]
    NotNow,
    /// Excluded from this batch by an earlier failure.
    #[error("validator {0} is excluded from this batch")]
    Excluded(usize),
    /// A second commitment or share from one validator in one attempt.
    #[error("validator {0} already sent this in this attempt")]
    Repeated(usize),
    /// A share from a validator that is not a signer of this attempt.
    #[error("validator {0} is not a signer of this attempt")]
    NotASigner(usize),
    /// Not one item per input.
    #[error("{got} items for a batch of {inputs} inputs")]
    WrongCount {
        /// Items sent.
        got: usize,
        /// Inputs of the batch.
        inputs: usize,
    },
    /// A share that fails its check: its signer is excluded and a new attempt starts.
    #[error("validator {signer}'s share for input {input} is invalid; excluded, attempt {next_attempt} starts")]
    BadShare {
        /// The culprit.
        signer: usize,
        /// The first bad input.
        input: usize,
        /// The attempt that starts now.
        next_attempt: u32,
    },
    /// The library refused to build the packages or the signature (a valid set of shares never does this).
    #[error("FROST: {0}")]
    Frost(#[from] FrostError),
}

/// One batch version's FROST signing.
#[derive(Debug, Clone)]
pub struct Session {
    group: PublicKeyPackage,
    threshold: usize,
    n: usize,
    rules: SessionRules,
    inputs: Vec<InputToSign>,
    attempt: u32,
    attempt_started: u64,
    commitments: Vec<(usize, Vec<SigningCommitments>)>,
    packages: Vec<SigningPackage>,
    shares: BTreeMap<usize, Vec<SignatureShare>>,
    excluded: BTreeSet<usize>,
    state: State,
}

impl Session {
    /// Opens the signing of a batch version with these inputs at block `height` (attempt 0).
    pub fn new(
        group: PublicKeyPackage,
        rules: SessionRules,
        inputs: Vec<InputToSign>,
        height: u64,
    ) -> Result<Self, FrostError> {
        let threshold = group.min_signers().map(usize::from).ok_or(FrostError::Transcript("no threshold"))?;
        let n = group.verifying_shares().len();
        Ok(Session {
            group,
            threshold,
            n,
            rules,
            inputs,
            attempt: 0,
            attempt_started: height,
            commitments: Vec::new(),
            packages: Vec::new(),
            shares: BTreeMap::new(),
            excluded: BTreeSet::new(),
            state: State::Committing,
        })
    }

    /// The current attempt.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Where the session is.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Validators excluded from this batch.
    pub fn excluded(&self) -> &BTreeSet<usize> {
        &self.excluded
    }

    /// The signing packages of the current attempt, one per input, once its signers are fixed: what a signer
    /// signs (and checks: each package's message must be the sighash it computed itself).
    pub fn packages(&self) -> &[SigningPackage] {
        &self.packages
    }

    /// Validator `signer`'s nonce commitments for `attempt`, one per input.
    pub fn commit(&mut self, signer: usize, attempt: u32, commitments: Vec<SigningCommitments>) -> Result<(), Refusal> {
        self.admit(signer, attempt)?;
        if self.state != State::Committing {
            return Err(Refusal::NotNow);
        }
        if self.commitments.iter().any(|(s, _)| *s == signer) {
            return Err(Refusal::Repeated(signer));
        }
        if commitments.len() != self.inputs.len() {
            return Err(Refusal::WrongCount { got: commitments.len(), inputs: self.inputs.len() });
        }
        self.commitments.push((signer, commitments));
        if self.commitments.len() < self.threshold {
            return Ok(());
        }
        let mut packages = Vec::with_capacity(self.inputs.len());
        for (i, input) in self.inputs.iter().enumerate() {
            let per_signer: BTreeMap<usize, SigningCommitments> =
                self.commitments.iter().map(|(s, c)| (*s, c[i])).collect();
            packages.push(signing_package(&per_signer, input.sighash)?);
        }
        self.packages = packages;
        self.state = State::Sharing { signers: self.commitments.iter().map(|(s, _)| *s).collect() };
        Ok(())
    }

    /// Validator `signer`'s signature shares for `attempt`, one per input. A bad share excludes the signer
    /// and starts the next attempt at `height`.
    pub fn share(
        &mut self,
        signer: usize,
        attempt: u32,
        shares: Vec<SignatureShare>,
        height: u64,
    ) -> Result<(), Refusal> {
        self.admit(signer, attempt)?;
        let State::Sharing { signers } = &self.state else {
            return Err(Refusal::NotNow);
        };
        if !signers.contains(&signer) {
            return Err(Refusal::NotASigner(signer));
        }
        if self.shares.contains_key(&signer) {
            return Err(Refusal::Repeated(signer));
        }
        if shares.len() != self.inputs.len() {
            return Err(Refusal::WrongCount { got: shares.len(), inputs: self.inputs.len() });
        }
        for (input, (share, package)) in shares.iter().zip(&self.packages).enumerate() {
            if verify_share(&self.group, signer, share, package, self.inputs[input].merkle_root).is_err() {
                self.excluded.insert(signer);
                self.next_attempt(height);
                return Err(Refusal::BadShare { signer, input, next_attempt: self.attempt });
            }
        }
        self.shares.insert(signer, shares);
        if self.shares.len() < self.threshold {
            return Ok(());
        }
        let mut signatures = Vec::with_capacity(self.inputs.len());
        for (i, (input, package)) in self.inputs.iter().zip(&self.packages).enumerate() {
            let per_signer: BTreeMap<usize, SignatureShare> = self.shares.iter().map(|(s, v)| (*s, v[i])).collect();
            signatures.push(aggregate(&self.group, package, &per_signer, input.merkle_root)?);
        }
        self.state = State::Signed(signatures);
        Ok(())
    }

    /// A new block at `height`: ends the attempt if it has been open `timeout` blocks, excluding its signers
    /// that did not share. Returns whether a new attempt started.
    pub fn on_height(&mut self, height: u64) -> bool {
        let open = matches!(self.state, State::Committing | State::Sharing { .. });
        if !open || height < self.attempt_started.saturating_add(self.rules.timeout) {
            return false;
        }
        if let State::Sharing { signers } = &self.state {
            let silent: Vec<usize> = signers.iter().copied().filter(|s| !self.shares.contains_key(s)).collect();
            self.excluded.extend(silent);
        }
        self.next_attempt(height);
        true
    }

    fn admit(&self, signer: usize, attempt: u32) -> Result<(), Refusal> {
        if signer >= self.n || participant(signer).is_err() {
            return Err(Refusal::UnknownSigner(signer));
        }
        if self.excluded.contains(&signer) {
            return Err(Refusal::Excluded(signer));
        }
        if attempt != self.attempt {
            return Err(Refusal::WrongAttempt { got: attempt, current: self.attempt });
        }
        Ok(())
    }

    fn next_attempt(&mut self, height: u64) {
        self.commitments.clear();
        self.packages.clear();
        self.shares.clear();
        self.attempt_started = height;
        self.attempt = self.attempt.saturating_add(1);
        let left = self.n - self.excluded.len().min(self.n);
        self.state = if left < self.threshold || self.attempt >= self.rules.max_attempts {
            State::FallBack
        } else {
            State::Committing
        };
    }
}

#[cfg(test)]
mod tests;
