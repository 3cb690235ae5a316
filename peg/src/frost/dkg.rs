//! Distributed key generation: `n` validators make a `k`-of-`n` FROST key that nobody ever holds whole
//! (Pedersen DKG with proofs of knowledge, RFC 9591's companion as `frost-secp256k1-tr` implements it).
//!
//! One [`Ceremony`] per participant, driven by messages, returning what to send next:
//! 1. [`Ceremony::start`] gives the participant's round-1 package (its polynomial's commitments and a proof of
//!    knowledge of its secret): public, broadcast to all and kept in the [`Transcript`];
//! 2. once the other `n - 1` round-1 packages arrived, [`Ceremony::on_round1`] gives one round-2 package per
//!    other participant: a secret share of this participant's polynomial, for that recipient only (the
//!    carrier must encrypt it);
//! 3. once the other `n - 1` round-2 packages arrived, [`Ceremony::on_round2`] gives the [`KeyShare`].
//!
//! A bad proof of knowledge or a share that does not match its sender's commitments is refused by the
//! library and the ceremony fails (it cannot be resumed: its secret is spent, a new ceremony starts); a
//! repeated or early message is refused without changing state, so the carrier must deliver round-2
//! packages only after round 1 ended (a chain does: packages are applied in block order).
//!
//! What the carrier must give: Pedersen DKG needs a broadcast channel with agreement for round 1. A
//! participant that shows different round-1 packages to different peers leaves them with different group
//! keys, each consistent with its own view. Carried in chain transactions, every node sees the same packages.
//!
//! What the public [`Transcript`] shows: the group key and every verifying share follow from the round-1
//! commitments ([`Transcript::group`]), and each participant's [`KeyShare`] must agree with it
//! ([`Transcript::check`]). [`Transcript::record`] checks each package's proof of knowledge of its secret,
//! so no package can cancel another's commitment (a rogue key: a commitment `-A` next to `A` leaves a group
//! key everyone knows). Who made each package is the carrier's to show: before a chain exists, each
//! validator's peg key signs its package ([`round1_message`], [`check_signed_round1`]), so a transcript
//! that checks is the validators' own and no assembler can substitute a package of its own making.

use super::{index_of, participant, FrostError, KeyShare};
use bitcoin::secp256k1::{schnorr, Message, Secp256k1, Verification};
use frost_secp256k1_tr::keys::dkg as frost_dkg;
pub use frost_secp256k1_tr::keys::dkg::{round1, round2};
use frost_secp256k1_tr::keys::{PublicKeyPackage, Tweak};
use frost_secp256k1_tr::rand_core::{CryptoRng, RngCore};
use std::collections::BTreeMap;

/// One participant's side of a DKG.
#[derive(Debug)]
pub struct Ceremony {
    index: usize,
    n: usize,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    Round1 {
        secret: Box<round1::SecretPackage>,
        received: BTreeMap<usize, round1::Package>,
    },
    Round2 {
        secret: Box<round2::SecretPackage>,
        round1: BTreeMap<usize, round1::Package>,
        received: BTreeMap<usize, round2::Package>,
    },
    Done,
}

impl Ceremony {
    /// Starts participant `index` of an `n`-participant DKG with threshold `k`: returns the ceremony and the
    /// round-1 package to broadcast.
    pub fn start<R: RngCore + CryptoRng>(
        index: usize,
        n: usize,
        k: usize,
        rng: &mut R,
    ) -> Result<(Self, round1::Package), FrostError> {
        let id = participant(index)?;
        let max = u16::try_from(n).map_err(|_| FrostError::BadIndex(n))?;
        let min = u16::try_from(k).map_err(|_| FrostError::BadIndex(k))?;
        if index >= n {
            return Err(FrostError::BadIndex(index));
        }
        let (secret, package) = frost_dkg::part1(id, max, min, rng)?;
        let stage = Stage::Round1 { secret: Box::new(secret), received: BTreeMap::new() };
        Ok((Ceremony { index, n, stage }, package))
    }

    /// This participant's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Takes participant `from`'s round-1 package. When it is the last one missing, returns the round-2
    /// packages to send (recipient index → package, each for its recipient's eyes only).
    pub fn on_round1(
        &mut self,
        from: usize,
        package: round1::Package,
    ) -> Result<Option<BTreeMap<usize, round2::Package>>, FrostError> {
        self.check_sender(from)?;
        let Stage::Round1 { received, .. } = &mut self.stage else {
            return Err(FrostError::OutOfTurn { from, why: "round 1 is over" });
        };
        if received.contains_key(&from) {
            return Err(FrostError::OutOfTurn { from, why: "a second round-1 package" });
        }
        received.insert(from, package);
        if received.len() < self.n - 1 {
            return Ok(None);
        }
        let Stage::Round1 { secret, received } = std::mem::replace(&mut self.stage, Stage::Done) else {
            unreachable!("matched above");
        };
        let by_id = by_identifier(&received)?;
        let (secret, packages) = frost_dkg::part2(*secret, &by_id)?;
        let mut out = BTreeMap::new();
        for (id, package) in packages {
            out.insert(index_of(&id, self.n).ok_or(FrostError::UnknownParticipant(usize::MAX))?, package);
        }
        self.stage = Stage::Round2 { secret: Box::new(secret), round1: received, received: BTreeMap::new() };
        Ok(Some(out))
    }

    /// Takes participant `from`'s round-2 package (its secret share for this participant). When it is the
    /// last one missing, returns this participant's key share.
    pub fn on_round2(&mut self, from: usize, package: round2::Package) -> Result<Option<KeyShare>, FrostError> {
        self.check_sender(from)?;
        let Stage::Round2 { received, .. } = &mut self.stage else {
            return Err(FrostError::OutOfTurn { from, why: "not in round 2" });
        };
        if received.contains_key(&from) {
            return Err(FrostError::OutOfTurn { from, why: "a second round-2 package" });
        }
        received.insert(from, package);
        if received.len() < self.n - 1 {
            return Ok(None);
        }
        let Stage::Round2 { secret, round1, received } = std::mem::replace(&mut self.stage, Stage::Done) else {
            unreachable!("matched above");
        };
        let (secret, public) = frost_dkg::part3(&secret, &by_identifier(&round1)?, &by_identifier(&received)?)?;
        Ok(Some(KeyShare { index: self.index, secret, public }))
    }

    /// The secret this participant keeps between steps when the ceremony runs over files (`sidechaind
    /// ceremony`): its round-1 or round-2 secret package, in the library's encoding.
    pub fn secret_bytes(&self) -> Result<Vec<u8>, FrostError> {
        match &self.stage {
            Stage::Round1 { secret, .. } => Ok(secret.serialize()?),
            Stage::Round2 { secret, .. } => Ok(secret.serialize()?),
            Stage::Done => Err(FrostError::OutOfTurn { from: self.index, why: "the ceremony is over" }),
        }
    }

    /// The commitment to this participant's own polynomial (what its round-1 package must carry).
    pub fn own_commitment(&self) -> Option<&frost_secp256k1_tr::keys::VerifiableSecretSharingCommitment> {
        match &self.stage {
            Stage::Round1 { secret, .. } => Some(secret.commitment()),
            Stage::Round2 { secret, .. } => Some(secret.commitment()),
            Stage::Done => None,
        }
    }

    /// Resumes participant `index` of an `n`-participant ceremony from [`Ceremony::secret_bytes`]: in round 1
    /// when `round1` is `None` (nothing received yet), else in round 2 with the others' round-1 packages
    /// (nothing of round 2 received yet).
    pub fn resume(
        index: usize,
        n: usize,
        secret: &[u8],
        round1: Option<BTreeMap<usize, round1::Package>>,
    ) -> Result<Self, FrostError> {
        if index >= n {
            return Err(FrostError::BadIndex(index));
        }
        let stage = match round1 {
            None => Stage::Round1 {
                secret: Box::new(round1::SecretPackage::deserialize(secret)?),
                received: BTreeMap::new(),
            },
            Some(round1) => {
                if round1.len() != n - 1 || round1.contains_key(&index) || round1.keys().any(|&i| i >= n) {
                    return Err(FrostError::Transcript("not the other participants' round-1 packages"));
                }
                Stage::Round2 {
                    secret: Box::new(round2::SecretPackage::deserialize(secret)?),
                    round1,
                    received: BTreeMap::new(),
                }
            }
        };
        Ok(Ceremony { index, n, stage })
    }

    fn check_sender(&self, from: usize) -> Result<(), FrostError> {
        if from >= self.n || from == self.index {
            return Err(FrostError::UnknownParticipant(from));
        }
        Ok(())
    }
}

fn by_identifier<P: Clone>(
    packages: &BTreeMap<usize, P>,
) -> Result<BTreeMap<frost_secp256k1_tr::Identifier, P>, FrostError> {
    packages.iter().map(|(&i, p)| Ok((participant(i)?, p.clone()))).collect()
}

/// The public record of a `k`-of-`n` DKG: every participant's round-1 package.
#[derive(Debug, Clone)]
pub struct Transcript {
    n: usize,
    k: usize,
    round1: BTreeMap<usize, round1::Package>,
}

impl Transcript {
    /// An empty transcript of a `k`-of-`n` DKG.
    pub fn new(n: usize, k: usize) -> Self {
        Transcript { n, k, round1: BTreeMap::new() }
    }

    /// Records participant `index`'s round-1 package. A second, different package from one participant is
    /// refused and the first kept: it is evidence of equivocation, never overwritten.
    /// The package's proof of knowledge must hold for participant `index`, and its commitment must be of
    /// degree `k - 1`.
    pub fn record(&mut self, index: usize, package: round1::Package) -> Result<(), FrostError> {
        if index >= self.n {
            return Err(FrostError::UnknownParticipant(index));
        }
        if package.commitment().serialize()?.len() != self.k {
            return Err(FrostError::Transcript("a commitment of the wrong degree"));
        }
        frost_core::keys::dkg::verify_proof_of_knowledge(
            participant(index)?,
            package.commitment(),
            package.proof_of_knowledge(),
        )?;
        match self.round1.get(&index) {
            Some(kept) if *kept != package => {
                Err(FrostError::Transcript("two different round-1 packages from one participant"))
            }
            Some(_) => Ok(()),
            None => {
                self.round1.insert(index, package);
                Ok(())
            }
        }
    }

    /// The group's public data (group key and every verifying share) computed from the commitments alone,
    /// finished as the library finishes a DKG: BIP341-tweaked with no script tree (`P + H_TapTweak(P)·G`,
    /// even y), so that the raw sum of the commitments is never a key anyone signs for.
    /// Refuses a transcript missing a participant or with a commitment not of degree `k - 1`.
    pub fn group(&self) -> Result<PublicKeyPackage, FrostError> {
        if self.round1.len() != self.n {
            return Err(FrostError::Transcript("a participant's round-1 package is missing"));
        }
        if self.k < 2 || self.k > self.n {
            return Err(FrostError::Transcript("a threshold below 2 or above the participants"));
        }
        let mut commitments = BTreeMap::new();
        for (&i, p) in &self.round1 {
            if p.commitment().serialize()?.len() != self.k {
                return Err(FrostError::Transcript("a commitment of the wrong degree"));
            }
            commitments.insert(participant(i)?, p.commitment());
        }
        Ok(PublicKeyPackage::from_dkg_commitments(&commitments)?.tweak::<&[u8]>(None))
    }

    /// The recorded round-1 packages, by participant index.
    pub fn packages(&self) -> impl Iterator<Item = (usize, &round1::Package)> {
        self.round1.iter().map(|(&i, p)| (i, p))
    }

    /// Checks that `share` is a result of this transcript (same group key and verifying shares).
    pub fn check(&self, share: &KeyShare) -> Result<(), FrostError> {
        let group = self.group()?;
        if group.verifying_key() != share.public.verifying_key()
            || group.verifying_shares() != share.public.verifying_shares()
            || share.public.min_signers().map(usize::from) != Some(self.k)
        {
            return Err(FrostError::TranscriptMismatch);
        }
        Ok(())
    }
}

/// The bytes naming a DKG's setup: the threshold (8 bytes, big-endian) and every peg key (33 bytes each),
/// in validator order. Part of what each round-1 signature signs, so a package is bound to its ceremony.
pub fn setup_bytes(threshold: usize, peg_keys: &[bitcoin::PublicKey]) -> Vec<u8> {
    let mut out = (threshold as u64).to_be_bytes().to_vec();
    for k in peg_keys {
        out.extend_from_slice(&k.inner.serialize());
    }
    out
}

/// What validator `index`'s peg key signs (BIP340) over its round-1 package `package` (the library's
/// encoding): the tagged hash of the setup's bytes, the index and the package.
pub fn round1_message(setup_bytes: &[u8], index: usize, package: &[u8]) -> Message {
    let h = primitives::tagged_hash("sidechain/dkg-round1", &[setup_bytes, &(index as u64).to_be_bytes(), package]);
    Message::from_digest(h.0)
}

/// Decodes validator `index`'s signed round-1 package and checks what a transcript cannot: that `package`
/// is the one canonical encoding (the library's decoder ignores trailing bytes) and that `peg_key` signed
/// it for this setup. [`Transcript::record`] then checks the proof of knowledge and the degree.
pub fn check_signed_round1<C: Verification>(
    secp: &Secp256k1<C>,
    setup_bytes: &[u8],
    index: usize,
    peg_key: &bitcoin::PublicKey,
    package: &[u8],
    signature: &[u8],
) -> Result<round1::Package, FrostError> {
    let signature = schnorr::Signature::from_slice(signature).map_err(|_| FrostError::Round1Signature(index))?;
    secp.verify_schnorr(&signature, &round1_message(setup_bytes, index, package), &peg_key.inner.x_only_public_key().0)
        .map_err(|_| FrostError::Round1Signature(index))?;
    let decoded = round1::Package::deserialize(package).map_err(|_| FrostError::Round1Encoding(index))?;
    if decoded.serialize()? != package {
        return Err(FrostError::Round1Encoding(index));
    }
    Ok(decoded)
}

/// Runs a whole DKG in this process, every participant's ceremony fed by the others' messages: for tests,
/// simulations and the bench, where one process plays every validator (and so holds every share, like a
/// trusted dealer: never for a real federation, hence the `testkit` feature). Returns each participant's
/// share (in index order) and the transcript.
#[cfg(any(test, feature = "testkit"))]
pub fn run_in_process<R: RngCore + CryptoRng>(
    n: usize,
    k: usize,
    rng: &mut R,
) -> Result<(Vec<KeyShare>, Transcript), FrostError> {
    let mut ceremonies = Vec::with_capacity(n);
    let mut transcript = Transcript::new(n, k);
    for i in 0..n {
        let (ceremony, package) = Ceremony::start(i, n, k, rng)?;
        transcript.record(i, package)?;
        ceremonies.push(ceremony);
    }
    let mut round2 = Vec::with_capacity(n);
    for ceremony in &mut ceremonies {
        let mut out = None;
        for (&from, package) in &transcript.round1 {
            if from != ceremony.index() {
                out = ceremony.on_round1(from, package.clone())?;
            }
        }
        round2.push(out.ok_or(FrostError::OutOfTurn { from: ceremony.index(), why: "round 1 did not finish" })?);
    }
    let mut shares = Vec::with_capacity(n);
    for ceremony in &mut ceremonies {
        let mut out = None;
        for (from, packages) in round2.iter().enumerate() {
            if let Some(package) = packages.get(&ceremony.index()) {
                out = ceremony.on_round2(from, package.clone())?;
            }
        }
        let share = out.ok_or(FrostError::OutOfTurn { from: ceremony.index(), why: "round 2 did not finish" })?;
        transcript.check(&share)?;
        shares.push(share);
    }
    Ok((shares, transcript))
}
