//! `sidechaind ceremony`: the genesis federation's FROST key generation, which the validators run over files
//! before the genesis exists (taproot custody, issue 23).
//!
//! Why files: before genesis there is no chain to carry messages, and a validator's operator should be
//! able to run each step by hand and see what leaves the machine. The steps, for `n` validators with their
//! peg keys listed in genesis order and threshold `k`:
//! 1. `round1`: each validator writes its public round-1 package, signed with its peg key (BIP340 over
//!    the ceremony's setup and the package), and keeps its secret in `<datadir>/ceremony.secret` (0600).
//! 2. `round2`: given every round-1 file, each validator checks the signatures, and writes one file per other
//!    validator holding that validator's secret share, encrypted to its peg key: ChaCha20-Poly1305 under a
//!    key from the two peg keys' ECDH secret, the ceremony id and both indices, and a random nonce. The
//!    ceremony id hashes the setup and every round-1 package (index and length-prefixed bytes, the canonical
//!    encoding only), so two different sets of packages never share an id; `round2` prints it.
//! 3. `finish`: given every round-1 file and the round-2 files addressed to it, each validator decrypts,
//!    checks (the library checks each share against its sender's commitments), writes its key share file
//!    (`<datadir>/frost_key_share.json`, 0600, never overwritten) and the transcript, and prints the group
//!    key; the secret of steps 1-2 is deleted.
//! 4. `verify`: anyone checks a transcript against the setup they expect (threshold and peg keys) and each
//!    round-1 signature against its peg key, and recomputes the group key from the commitments (`finish`
//!    also compares every verifying share with its own result).
//!
//! Every file a step writes is created new (never overwriting, never following a planted symlink); the
//! kept secret is replaced atomically (written aside, then renamed). A validator checks in `round2` and
//! `finish` that the round-1 package shown under its own index is the one its secret made, so an old
//! package replayed by the carrier is refused rather than encrypted to again.
//!
//! Whoever carries the files learns nothing secret: round-1 packages are public, round-2 packages are
//! encrypted and bound to sender, recipient and ceremony. The carrier must show everyone the same round-1
//! files (the DKG's broadcast): the ceremony id printed by `finish` and `verify` lets validators compare.

use crate::keys::NodeKeys;
use bitcoin::secp256k1::{ecdh::SharedSecret, Keypair, Secp256k1};
use bitcoin::XOnlyPublicKey;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use peg::frost::dkg::{round1, round2, Ceremony, Transcript};
use peg::frost::{FrostError, KeyShare};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of a validator's FROST key share in its datadir.
pub const KEY_SHARE_FILE: &str = "frost_key_share.json";
/// File name of the secret kept between ceremony steps.
pub const SECRET_FILE: &str = "ceremony.secret";
/// Most validators a ceremony takes (a bound on the work a hostile transcript can ask of `verify`).
pub const MAX_VALIDATORS: usize = 1000;

/// Why a ceremony step failed.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what this step expects.
    #[error("{path}: {why}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// This node's peg key is not among the ceremony's.
    #[error("this node's peg key {0} is not one of the ceremony's peg keys")]
    NotAParticipant(bitcoin::PublicKey),
    /// The setup does not make a DKG.
    #[error("bad setup: {0}")]
    Setup(&'static str),
    /// A round-1 file whose signature is not its validator's.
    #[error("the round-1 package of validator {0} is not signed by its peg key")]
    BadSignature(usize),
    /// A round-2 file that does not decrypt: not from its sender, not for this node or this ceremony.
    #[error("the round-2 package from validator {0} does not decrypt for this node and ceremony")]
    Decrypt(usize),
    /// The round-1 package under this validator's index is not the one its kept secret made (an old
    /// ceremony's, replayed).
    #[error("the round-1 package under this validator's index is not its own (a replay from another ceremony?)")]
    NotOwnPackage,
    /// The transcript is for another setup than the one given.
    #[error("the transcript is for another threshold or set of peg keys")]
    OtherSetup,
    /// Round-1 or round-2 files missing or repeated.
    #[error("{0}")]
    Files(String),
    /// The key generation itself failed (a bad proof or share: someone cheated or a file is corrupt).
    #[error("FROST: {0}")]
    Frost(#[from] FrostError),
    /// The genesis's DKG transcript does not make a group.
    #[error("the genesis's taproot custody: {0}")]
    Genesis(#[from] ledger::genesis::custody::TranscriptError),
}

/// Who takes part: the validators' peg keys in genesis order and the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// Signatures a spend needs (`k`).
    pub threshold: usize,
    /// The validators' peg keys, in genesis order (validator `i` is participant `i + 1`).
    pub peg_keys: Vec<bitcoin::PublicKey>,
}

impl Setup {
    fn check(&self) -> Result<(), CeremonyError> {
        let n = self.peg_keys.len();
        if n > MAX_VALIDATORS {
            return Err(CeremonyError::Setup("more validators than a ceremony takes (1000)"));
        }
        if n < 2 || self.threshold < 2 || self.threshold > n {
            return Err(CeremonyError::Setup("need 2 <= threshold <= validators"));
        }
        // x-only: 02x and 03x are one BIP340 key, and an uncompressed key is the compressed one again.
        let mut seen = std::collections::BTreeSet::new();
        for k in &self.peg_keys {
            if !k.compressed {
                return Err(CeremonyError::Setup("peg keys must be compressed"));
            }
            if !seen.insert(k.inner.x_only_public_key().0.serialize()) {
                return Err(CeremonyError::Setup("a peg key listed twice"));
            }
        }
        Ok(())
    }

    /// The setup's bytes: threshold and every peg key ([`peg::frost::dkg::setup_bytes`]).
    fn bytes(&self) -> Vec<u8> {
        peg::frost::dkg::setup_bytes(self.threshold, &self.peg_keys)
    }

    fn index_of(&self, keys: &NodeKeys) -> Result<usize, CeremonyError> {
        let own = keys.peg_public();
        self.peg_keys.iter().position(|k| *k == own).ok_or(CeremonyError::NotAParticipant(own))
    }
}

/// A round-1 file: public, signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round1File {
    /// The ceremony's setup.
    pub setup: Setup,
    /// The sender.
    pub index: usize,
    /// The package, hex of the library's encoding.
    pub package: String,
    /// BIP340 signature by the sender's peg key over the tagged hash of the setup, the index and the package.
    pub signature: String,
}

/// A round-2 file: one sender's secret share for one recipient, encrypted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round2File {
    /// The ceremony id (hash of every round-1 file), hex.
    pub ceremony: String,
    /// The sender.
    pub from: usize,
    /// The recipient.
    pub to: usize,
    /// The 12-byte ChaCha20-Poly1305 nonce, hex (random).
    pub nonce: String,
    /// ChaCha20-Poly1305 ciphertext of the package, hex.
    pub ciphertext: String,
}

/// The public record: every round-1 file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TranscriptFile {
    /// The ceremony's setup.
    pub setup: Setup,
    /// Every validator's round-1 file, in index order.
    pub round1: Vec<Round1File>,
}

/// A validator's key share file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyShareFile {
    index: usize,
    key_package: String,
    public_package: String,
    ceremony: String,
}

/// What `finish` and `verify` report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The federation's FROST group key (the taproot internal key).
    pub group_key: XOnlyPublicKey,
    /// The ceremony id, to compare across validators.
    pub ceremony: String,
}

/// Step 1: writes this validator's signed round-1 file to `out` and keeps its secret in the datadir.
pub fn round1(keys: &NodeKeys, setup: &Setup, datadir: &Path, out: &Path) -> Result<(), CeremonyError> {
    setup.check()?;
    let index = setup.index_of(keys)?;
    let (ceremony, package) =
        Ceremony::start(index, setup.peg_keys.len(), setup.threshold, &mut bitcoin::secp256k1::rand::thread_rng())?;
    write_new_secret(&datadir.join(SECRET_FILE), &ceremony.secret_bytes()?)?;
    let bytes = package.serialize().map_err(FrostError::from)?;
    let secp = Secp256k1::signing_only();
    let keypair = Keypair::from_secret_key(&secp, &keys.peg);
    let signature = secp.sign_schnorr(&peg::frost::dkg::round1_message(&setup.bytes(), index, &bytes), &keypair);
    let file = Round1File {
        setup: setup.clone(),
        index,
        package: hex::encode(bytes),
        signature: hex::encode(signature.as_ref()),
    };
    write_json(out, &file)
}

/// Refuses a round-1 set whose package under this validator's index is not the one its secret made.
fn check_own_package(ceremony: &Ceremony, own: Option<&round1::Package>) -> Result<(), CeremonyError> {
    let own = own.ok_or(CeremonyError::NotOwnPackage)?;
    if ceremony.own_commitment() != Some(own.commitment()) {
        return Err(CeremonyError::NotOwnPackage);
    }
    Ok(())
}

/// Step 2: checks every round-1 file and writes `round2-<from>-to-<to>.json` for each other validator into
/// `out_dir`; returns the ceremony id.
pub fn round2(
    keys: &NodeKeys,
    setup: &Setup,
    datadir: &Path,
    round1_files: &[PathBuf],
    out_dir: &Path,
) -> Result<String, CeremonyError> {
    setup.check()?;
    let index = setup.index_of(keys)?;
    let (_, packages, ceremony_id, _) = read_round1(setup, round1_files)?;
    let secret_path = datadir.join(SECRET_FILE);
    let secret = read_secret(&secret_path)?;
    let mut ceremony = Ceremony::resume(index, setup.peg_keys.len(), &secret, None)?;
    check_own_package(&ceremony, packages.get(&index))?;
    let mut out = None;
    for (&from, package) in packages.iter().filter(|(&i, _)| i != index) {
        out = ceremony.on_round1(from, package.clone())?;
    }
    let shares = out.ok_or_else(|| CeremonyError::Files("round 1 did not finish".into()))?;
    std::fs::create_dir_all(out_dir).map_err(|source| CeremonyError::Io { path: out_dir.to_path_buf(), source })?;
    for (to, package) in shares {
        let plaintext = package.serialize().map_err(FrostError::from)?;
        let mut nonce = [0u8; 12];
        bitcoin::secp256k1::rand::RngCore::fill_bytes(&mut bitcoin::secp256k1::rand::thread_rng(), &mut nonce);
        let ciphertext = cipher(keys, &setup.peg_keys[to], &ceremony_id, index, to)
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad(&ceremony_id, index, to) })
            .map_err(|_| CeremonyError::Setup("encryption failed"))?;
        let file = Round2File {
            ceremony: hex::encode(ceremony_id),
            from: index,
            to,
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        write_json(&out_dir.join(format!("round2-{index}-to-{to}.json")), &file)?;
    }
    // The round-2 secret replaces the round-1 one atomically: written aside, then renamed over it.
    let aside = datadir.join(format!("{SECRET_FILE}.next"));
    let _ = std::fs::remove_file(&aside);
    write_new_secret(&aside, &ceremony.secret_bytes()?)?;
    std::fs::rename(&aside, &secret_path).map_err(|source| CeremonyError::Io { path: secret_path.clone(), source })?;
    Ok(hex::encode(ceremony_id))
}

/// Step 3: decrypts the round-2 files addressed to this validator, finishes the key generation, writes the
/// transcript to `transcript_out` and then the key share into the datadir.
pub fn finish(
    keys: &NodeKeys,
    setup: &Setup,
    datadir: &Path,
    round1_files: &[PathBuf],
    round2_files: &[PathBuf],
    transcript_out: &Path,
) -> Result<Outcome, CeremonyError> {
    setup.check()?;
    let index = setup.index_of(keys)?;
    let (transcript, packages, ceremony_id, checked) = read_round1(setup, round1_files)?;
    let secret_path = datadir.join(SECRET_FILE);
    let secret = read_secret(&secret_path)?;
    let own = packages.get(&index).cloned();
    let others: BTreeMap<usize, round1::Package> = packages.into_iter().filter(|(i, _)| *i != index).collect();
    let mut ceremony = Ceremony::resume(index, setup.peg_keys.len(), &secret, Some(others))?;
    check_own_package(&ceremony, own.as_ref())?;
    let mut share = None;
    for path in round2_files {
        let file: Round2File = read_json(path)?;
        if file.to != index {
            continue;
        }
        if file.ceremony != hex::encode(ceremony_id) || file.from >= setup.peg_keys.len() || file.from == index {
            return Err(CeremonyError::BadFile {
                path: path.clone(),
                why: "not a round-2 file of this ceremony for this validator".into(),
            });
        }
        let ciphertext = hex::decode(&file.ciphertext).map_err(|_| CeremonyError::Decrypt(file.from))?;
        let nonce: [u8; 12] =
            hex::decode(&file.nonce).ok().and_then(|n| n.try_into().ok()).ok_or(CeremonyError::Decrypt(file.from))?;
        let plaintext = cipher(keys, &setup.peg_keys[file.from], &ceremony_id, file.from, index)
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &aad(&ceremony_id, file.from, index) })
            .map_err(|_| CeremonyError::Decrypt(file.from))?;
        let package = round2::Package::deserialize(&plaintext).map_err(|_| CeremonyError::Decrypt(file.from))?;
        share = ceremony.on_round2(file.from, package)?;
    }
    let share: KeyShare =
        share.ok_or_else(|| CeremonyError::Files("a round-2 package for this validator is missing".into()))?;
    transcript.check(&share)?;
    let (key_package, public_package) = share.to_bytes()?;
    let file = KeyShareFile {
        index,
        key_package: hex::encode(key_package),
        public_package: hex::encode(public_package),
        ceremony: hex::encode(ceremony_id),
    };
    let outcome = Outcome { group_key: share.group_key()?, ceremony: hex::encode(ceremony_id) };
    // The transcript first (a bad path fails before anything is committed), then the key share, then the
    // kept secret goes.
    write_json(transcript_out, &TranscriptFile { setup: setup.clone(), round1: checked })?;
    let share_path = datadir.join(KEY_SHARE_FILE);
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| CeremonyError::BadFile { path: share_path.clone(), why: e.to_string() })?;
    write_new_secret(&share_path, &json)?;
    std::fs::remove_file(&secret_path).map_err(|source| CeremonyError::Io { path: secret_path.clone(), source })?;
    Ok(outcome)
}

/// Step 4 (anyone): checks a transcript against the expected setup and its signatures, and computes its
/// group key.
pub fn verify(setup: &Setup, transcript_path: &Path) -> Result<Outcome, CeremonyError> {
    let record: TranscriptFile = read_json(transcript_path)?;
    setup.check()?;
    if record.setup != *setup {
        return Err(CeremonyError::OtherSetup);
    }
    let (transcript, _, ceremony_id, _) =
        check_round1(setup, record.round1.into_iter().map(|f| (transcript_path.to_path_buf(), f)))?;
    let group = transcript.group()?;
    Ok(Outcome { group_key: peg::frost::group_key(&group)?, ceremony: hex::encode(ceremony_id) })
}

/// The genesis custody of a checked transcript ([`verify`] against `setup`): the round-1 packages in
/// validator order, as the genesis carries them. What `sidechaind genesis --taproot-transcript` embeds.
pub fn genesis_custody(
    setup: &Setup,
    transcript_path: &Path,
) -> Result<(Outcome, ledger::GenesisCustody), CeremonyError> {
    let outcome = verify(setup, transcript_path)?;
    let record: TranscriptFile = read_json(transcript_path)?;
    let (_, _, _, checked) =
        check_round1(setup, record.round1.into_iter().map(|f| (transcript_path.to_path_buf(), f)))?;
    let dkg_round1 = checked
        .into_iter()
        .map(|f| {
            // Lower-case, as the genesis takes them (the files were checked to decode).
            let lower = |h: &str| hex::decode(h).map(hex::encode).unwrap_or_default();
            ledger::genesis::custody::SignedRound1 { package: lower(&f.package), signature: lower(&f.signature) }
        })
        .collect();
    Ok((outcome, ledger::GenesisCustody::Taproot { dkg_round1 }))
}

/// At start, on a taproot chain: the key share of the validator with peg key `peg_key`, checked against the
/// genesis group (its index, the group key and every verifying share). `Ok(None)` when the chain is wsh,
/// the node is no genesis validator, or it holds no key share (it then cannot take part in FROST
/// signing; the caller warns). A share of another ceremony or index is an error: the operator has the wrong
/// file in place.
pub fn genesis_key_share(
    genesis: &ledger::Genesis,
    peg_key: &bitcoin::PublicKey,
    datadir: &Path,
) -> Result<Option<KeyShare>, CeremonyError> {
    let peg_keys: Vec<_> = genesis.validators.iter().map(|v| v.peg_key).collect();
    let Some(group) = genesis.custody.group(&peg_keys, ledger::federation_threshold(peg_keys.len()))? else {
        return Ok(None);
    };
    let Some(index) = genesis.validators.iter().position(|v| v.peg_key == *peg_key) else { return Ok(None) };
    let share = match load_key_share(datadir) {
        Err(CeremonyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let same = share.index() == index
        && share.public().verifying_key() == group.verifying_key()
        && share.public().verifying_shares() == group.verifying_shares();
    if !same {
        return Err(CeremonyError::BadFile {
            path: datadir.join(KEY_SHARE_FILE),
            why: format!("not validator {index}'s share of the genesis group (another ceremony's, or another index)"),
        });
    }
    Ok(Some(share))
}

/// Loads the key share this node's datadir holds, refusing a file others can read.
pub fn load_key_share(datadir: &Path) -> Result<KeyShare, CeremonyError> {
    use std::os::unix::fs::PermissionsExt;
    let path = datadir.join(KEY_SHARE_FILE);
    let mode = std::fs::metadata(&path)
        .map_err(|source| CeremonyError::Io { path: path.clone(), source })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        let why = format!("readable by others (mode {:o}); run chmod 600 on it", mode & 0o777);
        return Err(CeremonyError::BadFile { path, why });
    }
    let file: KeyShareFile = read_json(&path)?;
    let bad = |why: &str| CeremonyError::BadFile { path: path.clone(), why: why.into() };
    let key = hex::decode(&file.key_package).map_err(|_| bad("key_package is not hex"))?;
    let public = hex::decode(&file.public_package).map_err(|_| bad("public_package is not hex"))?;
    Ok(KeyShare::from_bytes(file.index, &key, &public)?)
}

type Round1Read = (Transcript, BTreeMap<usize, round1::Package>, [u8; 32], Vec<Round1File>);

fn read_round1(setup: &Setup, paths: &[PathBuf]) -> Result<Round1Read, CeremonyError> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        files.push((path.clone(), read_json::<Round1File>(path)?));
    }
    check_round1(setup, files.into_iter())
}

/// Checks round-1 files: one per validator, each for this setup, signed by its validator's peg key, in the
/// package's canonical encoding, with a commitment of degree `k - 1`. Returns them with the ceremony id.
fn check_round1(
    setup: &Setup,
    files: impl Iterator<Item = (PathBuf, Round1File)>,
) -> Result<Round1Read, CeremonyError> {
    let secp = Secp256k1::verification_only();
    let n = setup.peg_keys.len();
    let setup_bytes = setup.bytes();
    let mut transcript = Transcript::new(n, setup.threshold);
    let mut packages = BTreeMap::new();
    let mut raw = BTreeMap::new();
    let mut checked = BTreeMap::new();
    for (path, file) in files {
        if file.setup != *setup || file.index >= n {
            return Err(CeremonyError::BadFile { path, why: "a round-1 file of another ceremony setup".into() });
        }
        let bytes = hex::decode(&file.package)
            .map_err(|_| CeremonyError::BadFile { path: path.clone(), why: "package is not hex".into() })?;
        let signature = hex::decode(&file.signature).map_err(|_| CeremonyError::BadSignature(file.index))?;
        let key = &setup.peg_keys[file.index];
        let package = peg::frost::dkg::check_signed_round1(&secp, &setup_bytes, file.index, key, &bytes, &signature)
            .map_err(|e| match e {
                FrostError::Round1Signature(i) => CeremonyError::BadSignature(i),
                _ => CeremonyError::BadFile { path: path.clone(), why: "not a canonical round-1 package".into() },
            })?;
        transcript.record(file.index, package.clone())?;
        packages.insert(file.index, package);
        raw.insert(file.index, bytes);
        checked.insert(file.index, file);
    }
    if packages.len() != n {
        return Err(CeremonyError::Files(format!("{} round-1 packages for {n} validators", packages.len())));
    }
    // The setup, then each package as index || length || bytes: no two different sets hash alike.
    let mut framed = setup_bytes;
    for (index, bytes) in &raw {
        framed.extend_from_slice(&(*index as u64).to_be_bytes());
        framed.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        framed.extend_from_slice(bytes);
    }
    let ceremony_id = primitives::tagged_hash("sidechain/dkg-ceremony", &[&framed]).0;
    Ok((transcript, packages, ceremony_id, checked.into_values().collect()))
}

/// The AEAD for `from`'s package to `to`: a key from the ECDH secret of their peg keys, the ceremony id and
/// both indices (one message per key in an honest run; the nonce is random all the same).
fn cipher(
    keys: &NodeKeys,
    other: &bitcoin::PublicKey,
    ceremony: &[u8; 32],
    from: usize,
    to: usize,
) -> ChaCha20Poly1305 {
    let shared = SharedSecret::new(&other.inner, &keys.peg);
    let key = primitives::tagged_hash(
        "sidechain/dkg-round2-key",
        &[&shared.secret_bytes(), ceremony, &(from as u64).to_be_bytes(), &(to as u64).to_be_bytes()],
    );
    ChaCha20Poly1305::new(Key::from_slice(&key.0))
}

fn aad(ceremony: &[u8; 32], from: usize, to: usize) -> Vec<u8> {
    [&ceremony[..], &(from as u64).to_be_bytes(), &(to as u64).to_be_bytes()].concat()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CeremonyError> {
    let text = std::fs::read(path).map_err(|source| CeremonyError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&text).map_err(|e| CeremonyError::BadFile { path: path.to_path_buf(), why: e.to_string() })
}

/// A new public file: never overwrites, and `create_new` refuses a planted symlink too.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CeremonyError> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| CeremonyError::BadFile { path: path.to_path_buf(), why: e.to_string() })?;
    let io = |source| CeremonyError::Io { path: path.to_path_buf(), source };
    let mut f = OpenOptions::new().write(true).create_new(true).open(path).map_err(io)?;
    f.write_all(&json).map_err(io)
}

fn read_secret(path: &Path) -> Result<Vec<u8>, CeremonyError> {
    std::fs::read(path).map_err(|source| CeremonyError::Io { path: path.to_path_buf(), source })
}

/// A new file with mode 0600, synced; never overwrites.
fn write_new_secret(path: &Path, bytes: &[u8]) -> Result<(), CeremonyError> {
    let io = |source| CeremonyError::Io { path: path.to_path_buf(), source };
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
