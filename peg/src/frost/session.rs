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
//! 3. **Deadlines**: each phase has its own, `timeout` blocks from its start (the attempt's start for the
//!    commitments, the block that fixed the signers for the shares). When the share deadline passes, the
//!    chosen signers that did not share are excluded (committing and then withholding must not win a seat in
//!    every attempt); when the commit deadline passes with fewer than `k` commitments, nobody is, and the
//!    attempt just counts. [`Session::on_height`] is called after a block's messages are applied, so a
//!    message in the deadline block itself still counts.
//!
//! A proposer chooses which messages a block carries, so faulty proposers can delay an honest signer's
//! share. `timeout` must outlast the longest run of proposer slots faulty validators can hold in a row plus
//! the time a message needs to reach a proposer, or a censored honest signer is excluded as if it withheld;
//! [`Session::new`] refuses a timeout under [`MIN_TIMEOUT`] blocks.
//!
//! Each failed attempt with chosen signers excludes at least one of them, so with at most `n - k` faulty
//! validators some attempt of the first `n - k + 1` has only honest signers and finishes, so
//! [`Session::new`] refuses `max_attempts` below `n - k + 1`. When fewer than `k` validators are left, or
//! `max_attempts` attempts have failed (empty ones included: validators that lost their key shares cannot
//! commit at all), the session gives up on the key path ([`State::FallBack`]): the batch is then signed in
//! the `multi_a` leaf with the peg keys. Only a share the library proves invalid
//! (`InvalidSignatureShare`) excludes its sender at once; any other failure is refused without blame.
//!
//! Every message names the session (the batch version's id) and the attempt, so nothing is replayed from
//! another batch; who sent it is the carrier's to authenticate (a validator transaction's signature).
//!
//! Nonces are the node's to keep safe, not the session's: a share leaks once it is gossiped, whatever the
//! chain does with it. The node marks a nonce used before its share leaves, signs only packages fixed by
//! final blocks, destroys an attempt's nonces when the attempt ends, and looks them up by (session, attempt).

use super::{participant, signing_package, FrostError};
use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::{taproot, TapNodeHash, TapSighash};
use frost_secp256k1_tr::keys::{PublicKeyPackage, Tweak};
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

/// The shortest deadline a session accepts, in blocks: the signers are fixed in one block and their shares
/// need at least one more, behind any run of faulty proposers.
pub const MIN_TIMEOUT: u64 = 3;

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

/// Why a commitment or share was refused. A refusal never changes the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a validator of this federation.
    #[error("validator {0} is not in the federation")]
    UnknownSigner(usize),
    /// For another session (another batch version).
    #[error("for another batch version's signing")]
    WrongSession,
    /// A commitment that is not a usable nonce commitment (the identity).
    #[error("validator {0}'s nonce commitment is not usable")]
    BadCommitment(usize),
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
    /// The library refused to build the packages or the signature (a valid set of shares never does this).
    #[error("FROST: {0}")]
    Frost(#[from] FrostError),
}

/// What an accepted message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; the session waits for more.
    Recorded,
    /// The attempt's signers are now fixed (this was the `k`-th commitment).
    SignersFixed,
    /// Every input is signed.
    Signed,
    /// The share was proved invalid: its signer is excluded and the next attempt started (or the session
    /// fell back). Recorded on chain like any other message, so every node excludes the same signer.
    Excluded {
        /// The culprit.
        signer: usize,
        /// The first input whose share was invalid.
        input: usize,
    },
}

/// Why a session cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A batch with no input.
    #[error("a batch version with no input")]
    NoInputs,
    /// The group's threshold is missing or above its size.
    #[error("the group's threshold does not fit its {0} participants")]
    BadGroup(usize),
    /// A deadline below [`MIN_TIMEOUT`].
    #[error("a deadline of {0} blocks is below {MIN_TIMEOUT}")]
    TimeoutTooShort(u64),
    /// Fewer attempts than `n - k + 1`: `f` faulty signers could use them all.
    #[error("{got} attempts, at least {min} needed so that faulty signers cannot use them all")]
    TooFewAttempts {
        /// Attempts allowed.
        got: u32,
        /// `n - k + 1`.
        min: u32,
    },
    /// The group key is not a valid key.
    #[error(transparent)]
    Frost(#[from] FrostError),
}

/// A session's progress as plain data in the on-chain encodings ([`super::wire`]), for a chain to keep in its
/// state between blocks: [`Session::snapshot`] and [`Session::restore`]. Shares in a snapshot were checked
/// when they were recorded, so restoring does not check them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The current attempt.
    pub attempt: u32,
    /// When the current phase started.
    pub phase_started: u64,
    /// The attempt's commitments, in the order they arrived: (signer, one per input).
    pub commitments: Vec<(usize, Vec<[u8; super::wire::COMMITMENTS_BYTES]>)>,
    /// The attempt's checked shares: (signer, one per input).
    pub shares: Vec<(usize, Vec<[u8; super::wire::SHARE_BYTES]>)>,
    /// Validators excluded from this batch.
    pub excluded: Vec<usize>,
    /// Where the session is.
    pub state: SnapshotState,
}

/// [`State`] as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotState {
    /// Collecting commitments.
    Committing,
    /// Collecting the fixed signers' shares (the signers are the first `k` committers).
    Sharing,
    /// Signed: one 64-byte BIP340 signature per input.
    Signed(Vec<[u8; 64]>),
    /// The key path is given up.
    FallBack,
}

impl Snapshot {
    /// The height at which the current phase times out, if the session is still open.
    pub fn deadline(&self, rules: &SessionRules) -> Option<u64> {
        matches!(self.state, SnapshotState::Committing | SnapshotState::Sharing)
            .then(|| self.phase_started.saturating_add(rules.timeout))
    }
}

/// One batch version's FROST signing.
#[derive(Debug, Clone)]
pub struct Session {
    id: [u8; 32],
    group: PublicKeyPackage,
    /// The group tweaked by each input's tree, computed once.
    tweaked: Vec<PublicKeyPackage>,
    threshold: usize,
    n: usize,
    rules: SessionRules,
    inputs: Vec<InputToSign>,
    attempt: u32,
    /// When the current phase started: the attempt (committing) or the fixing of its signers (sharing).
    phase_started: u64,
    commitments: Vec<(usize, Vec<SigningCommitments>)>,
    packages: Vec<SigningPackage>,
    shares: BTreeMap<usize, Vec<SignatureShare>>,
    excluded: BTreeSet<usize>,
    state: State,
}

impl Session {
    /// Opens the signing of batch version `id` with these inputs at block `height` (attempt 0), after checking
    /// the rules against the group (see [`SessionError`]).
    pub fn new(
        id: [u8; 32],
        group: PublicKeyPackage,
        rules: SessionRules,
        inputs: Vec<InputToSign>,
        height: u64,
    ) -> Result<Self, SessionError> {
        let n = group.verifying_shares().len();
        let threshold =
            group.min_signers().map(usize::from).filter(|&k| k >= 1 && k <= n).ok_or(SessionError::BadGroup(n))?;
        if inputs.is_empty() {
            return Err(SessionError::NoInputs);
        }
        if rules.timeout < MIN_TIMEOUT {
            return Err(SessionError::TimeoutTooShort(rules.timeout));
        }
        let min = u32::try_from(n - threshold + 1).unwrap_or(u32::MAX);
        if rules.max_attempts < min {
            return Err(SessionError::TooFewAttempts { got: rules.max_attempts, min });
        }
        super::group_key(&group)?;
        let tweaked = inputs
            .iter()
            .map(|i| {
                let root = i.merkle_root.map(|r| r.to_byte_array());
                group.clone().tweak(root.as_ref().map(|r| &r[..]))
            })
            .collect();
        Ok(Session {
            id,
            group,
            tweaked,
            threshold,
            n,
            rules,
            inputs,
            attempt: 0,
            phase_started: height,
            commitments: Vec::new(),
            packages: Vec::new(),
            shares: BTreeMap::new(),
            excluded: BTreeSet::new(),
            state: State::Committing,
        })
    }

    /// The session's progress as plain data (see [`Snapshot`]).
    pub fn snapshot(&self) -> Result<Snapshot, FrostError> {
        let wire = |e: super::wire::WireError| FrostError::Wire(e);
        let commitments = self
            .commitments
            .iter()
            .map(|(s, c)| {
                Ok((*s, c.iter().map(super::wire::encode_commitments).collect::<Result<_, _>>().map_err(wire)?))
            })
            .collect::<Result<_, FrostError>>()?;
        let shares = self
            .shares
            .iter()
            .map(|(s, v)| Ok((*s, v.iter().map(super::wire::encode_share).collect::<Result<_, _>>().map_err(wire)?)))
            .collect::<Result<_, FrostError>>()?;
        let state = match &self.state {
            State::Committing => SnapshotState::Committing,
            State::Sharing { .. } => SnapshotState::Sharing,
            State::Signed(sigs) => SnapshotState::Signed(sigs.iter().map(|s| s.signature.serialize()).collect()),
            State::FallBack => SnapshotState::FallBack,
        };
        Ok(Snapshot {
            attempt: self.attempt,
            phase_started: self.phase_started,
            commitments,
            shares,
            excluded: self.excluded.iter().copied().collect(),
            state,
        })
    }

    /// The session [`Session::new`] opens, brought to `snapshot` (taken of a session over the same `id`,
    /// group, rules and inputs). The packages of a sharing attempt are rebuilt from its commitments.
    pub fn restore(
        id: [u8; 32],
        group: PublicKeyPackage,
        rules: SessionRules,
        inputs: Vec<InputToSign>,
        snapshot: &Snapshot,
    ) -> Result<Self, SessionError> {
        let mut session = Session::new(id, group, rules, inputs, snapshot.phase_started)?;
        let wire = |e: super::wire::WireError| SessionError::Frost(FrostError::Wire(e));
        let count = session.inputs.len();
        let bad = || SessionError::Frost(FrostError::Transcript("a snapshot of another batch version"));
        for (signer, c) in &snapshot.commitments {
            if c.len() != count {
                return Err(bad());
            }
            let decoded =
                c.iter().map(|b| super::wire::decode_commitments(b)).collect::<Result<_, _>>().map_err(wire)?;
            session.commitments.push((*signer, decoded));
        }
        for (signer, v) in &snapshot.shares {
            if v.len() != count {
                return Err(bad());
            }
            let decoded = v.iter().map(|b| super::wire::decode_share(b)).collect::<Result<_, _>>().map_err(wire)?;
            session.shares.insert(*signer, decoded);
        }
        session.attempt = snapshot.attempt;
        session.excluded = snapshot.excluded.iter().copied().collect();
        session.state = match &snapshot.state {
            SnapshotState::Committing => State::Committing,
            SnapshotState::Sharing => {
                if session.commitments.len() != session.threshold {
                    return Err(bad());
                }
                session.packages = session.packages_of_commitments()?;
                State::Sharing { signers: session.commitments.iter().map(|(s, _)| *s).collect() }
            }
            SnapshotState::Signed(sigs) => State::Signed(
                sigs.iter()
                    .map(|b| {
                        taproot::Signature::from_slice(b).map_err(|_| SessionError::Frost(FrostError::BadSignature))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            SnapshotState::FallBack => State::FallBack,
        };
        Ok(session)
    }

    fn packages_of_commitments(&self) -> Result<Vec<SigningPackage>, FrostError> {
        let mut packages = Vec::with_capacity(self.inputs.len());
        for (i, input) in self.inputs.iter().enumerate() {
            let per_signer: BTreeMap<usize, SigningCommitments> =
                self.commitments.iter().map(|(s, c)| (*s, c[i])).collect();
            packages.push(signing_package(&per_signer, input.sighash)?);
        }
        Ok(packages)
    }

    /// The validators that may still take part (not excluded), in index order.
    pub fn eligible(&self) -> Vec<usize> {
        (0..self.n).filter(|s| !self.excluded.contains(s)).collect()
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

    /// What each input is signed for (sighash and merkle root), as the session was opened with them: a
    /// signer that built the session from its own state signs against these, not the packages' messages.
    pub fn inputs(&self) -> &[InputToSign] {
        &self.inputs
    }

    /// The signing packages of the current attempt, one per input, once its signers are fixed: what a signer
    /// signs (and checks: each package's message must be the sighash it computed itself).
    pub fn packages(&self) -> &[SigningPackage] {
        &self.packages
    }

    /// Validator `signer`'s nonce commitments for `attempt` of session `id`, one per input, carried in block
    /// `height`.
    pub fn commit(
        &mut self,
        id: [u8; 32],
        signer: usize,
        attempt: u32,
        commitments: Vec<SigningCommitments>,
        height: u64,
    ) -> Result<Outcome, Refusal> {
        self.admit(id, signer, attempt)?;
        if self.state != State::Committing {
            return Err(Refusal::NotNow);
        }
        if self.commitments.iter().any(|(s, _)| *s == signer) {
            return Err(Refusal::Repeated(signer));
        }
        if commitments.len() != self.inputs.len() {
            return Err(Refusal::WrongCount { got: commitments.len(), inputs: self.inputs.len() });
        }
        if commitments.iter().any(|c| super::wire::encode_commitments(c).is_err()) {
            return Err(Refusal::BadCommitment(signer));
        }
        self.commitments.push((signer, commitments));
        if self.commitments.len() < self.threshold {
            return Ok(Outcome::Recorded);
        }
        self.packages = self.packages_of_commitments()?;
        self.state = State::Sharing { signers: self.commitments.iter().map(|(s, _)| *s).collect() };
        self.phase_started = height;
        Ok(Outcome::SignersFixed)
    }

    /// Validator `signer`'s signature shares for `attempt` of session `id`, one per input, carried in block
    /// `height`. A share the library proves invalid excludes its signer and starts the next attempt.
    pub fn share(
        &mut self,
        id: [u8; 32],
        signer: usize,
        attempt: u32,
        shares: Vec<SignatureShare>,
        height: u64,
    ) -> Result<Outcome, Refusal> {
        self.admit(id, signer, attempt)?;
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
            match super::verify_share_tweaked(&self.tweaked[input], signer, share, package) {
                Ok(()) => {}
                Err(FrostError::Frost(frost_core::Error::InvalidSignatureShare { .. })) => {
                    self.excluded.insert(signer);
                    self.next_attempt(height);
                    return Ok(Outcome::Excluded { signer, input });
                }
                Err(e) => return Err(Refusal::Frost(e)),
            }
        }
        if self.shares.len() + 1 < self.threshold {
            self.shares.insert(signer, shares);
            return Ok(Outcome::Recorded);
        }
        let mut all = self.shares.clone();
        all.insert(signer, shares);
        let signatures = self.aggregate(&all)?;
        self.shares = all;
        self.state = State::Signed(signatures);
        Ok(Outcome::Signed)
    }

    /// The signature of every input from `k` checked shares, each checked again as Bitcoin will check it
    /// (BIP340 against the input's output key) before the session calls itself signed.
    fn aggregate(&self, shares: &BTreeMap<usize, Vec<SignatureShare>>) -> Result<Vec<taproot::Signature>, Refusal> {
        let secp = Secp256k1::verification_only();
        let key = super::group_key(&self.group)?;
        let mut signatures = Vec::with_capacity(self.inputs.len());
        for (i, (input, package)) in self.inputs.iter().zip(&self.packages).enumerate() {
            let per_signer: BTreeMap<usize, SignatureShare> = shares.iter().map(|(s, v)| (*s, v[i])).collect();
            let signature = super::aggregate(&self.group, package, &per_signer, input.merkle_root)?;
            let (output_key, _) = key.tap_tweak(&secp, input.merkle_root);
            let message = Message::from_digest(input.sighash.to_byte_array());
            secp.verify_schnorr(&signature.signature, &message, &output_key.to_x_only_public_key())
                .map_err(|_| Refusal::Frost(FrostError::BadSignature))?;
            signatures.push(signature);
        }
        Ok(signatures)
    }

    /// Block `height` has been applied (its messages included): ends the attempt if its current phase has
    /// been open `timeout` blocks, excluding the chosen signers that did not share. Returns whether the
    /// attempt ended.
    pub fn on_height(&mut self, height: u64) -> bool {
        let open = matches!(self.state, State::Committing | State::Sharing { .. });
        if !open || height < self.phase_started.saturating_add(self.rules.timeout) {
            return false;
        }
        if let State::Sharing { signers } = &self.state {
            let silent: Vec<usize> = signers.iter().copied().filter(|s| !self.shares.contains_key(s)).collect();
            self.excluded.extend(silent);
        }
        self.next_attempt(height);
        true
    }

    fn admit(&self, id: [u8; 32], signer: usize, attempt: u32) -> Result<(), Refusal> {
        if id != self.id {
            return Err(Refusal::WrongSession);
        }
        let member = participant(signer).map(|p| self.group.verifying_shares().contains_key(&p)).unwrap_or(false);
        if !member {
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
        self.phase_started = height;
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
