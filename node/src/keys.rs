//! The node's key file: its ed25519 consensus key (which also names it on the p2p network) and, for
//! validators, its secp256k1 peg key. Written once by `sidechaind init` with mode 0600, never overwritten.
//!
//! Why a file of its own, apart from the config: it holds the secrets that sign votes and move the
//! federation's BTC, so it is refused when others can read it, never replaced, and its errors never quote
//! its contents ([`MalformedKeyFile`]).

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use primitives::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What went wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file does not exist.
    #[error("key file {0} not found (create one with `sidechaind init`)")]
    Missing(PathBuf),
    /// The file exists already (init never overwrites keys).
    #[error("key file {0} already exists; refusing to overwrite keys")]
    Exists(PathBuf),
    /// Other users can read it.
    #[error("key file {path} is readable by others (mode {mode:o}); run chmod 600 on it")]
    TooOpen { path: PathBuf, mode: u32 },
    /// It does not parse.
    #[error("key file {path} is malformed: {source}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: MalformedKeyFile,
    },
    /// IO failed.
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong inside a key file. The hex decoder's own error is not kept: it quotes the offending
/// character and its position, a piece of the secret.
#[derive(Debug, thiserror::Error)]
pub enum MalformedKeyFile {
    /// Not the key file's JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `consensus_secret` is not 64 hex digits.
    #[error("consensus_secret is not 64 hex digits")]
    ConsensusSecretHex,
    /// `peg_secret` is not 64 hex digits.
    #[error("peg_secret is not 64 hex digits")]
    PegSecretHex,
    /// `peg_secret` is not a valid secp256k1 secret key.
    #[error("peg_secret is not a valid secp256k1 key: {0}")]
    PegSecretInvalid(#[source] bitcoin::secp256k1::Error),
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    consensus_secret: String,
    peg_secret: String,
}

/// The node's secret keys.
#[derive(Clone)]
pub struct NodeKeys {
    /// ed25519: signs votes and proposals; its public half is the validator's identity.
    pub consensus: Keypair,
    /// secp256k1: signs peg-out transactions (validators only use it).
    pub peg: SecretKey,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKeys({:?})", self.consensus.public())
    }
}

impl NodeKeys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        let consensus = Keypair::generate();
        let peg = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
        NodeKeys { consensus, peg }
    }

    /// Keys derived from a seed: for local test networks only (`sidechaind init --insecure-seed`).
    pub fn from_seed(seed: &[u8]) -> Self {
        let c = primitives::tagged_hash("sidechain/test-consensus-key", &[seed]);
        let mut p = primitives::tagged_hash("sidechain/test-peg-key", &[seed]).0;
        // A tagged hash is a valid secp256k1 scalar except with negligible probability; re-hash if not.
        let peg = loop {
            match SecretKey::from_slice(&p) {
                Ok(k) => break k,
                Err(_) => p = primitives::tagged_hash("sidechain/test-peg-key", &[&p]).0,
            }
        };
        NodeKeys { consensus: Keypair::from_secret(c.0), peg }
    }

    /// The consensus public key.
    pub fn consensus_public(&self) -> PublicKey {
        self.consensus.public()
    }

    /// The compressed peg public key.
    pub fn peg_public(&self) -> bitcoin::PublicKey {
        bitcoin::PublicKey::new(self.peg.public_key(&Secp256k1::signing_only()))
    }

    /// Writes the keys to a new file with mode 0600.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |source| KeyFileError::Io { path: path.to_path_buf(), source };
        let body = KeyFile {
            consensus_secret: hex::encode(self.consensus.secret_bytes()),
            peg_secret: hex::encode(self.peg.secret_bytes()),
        };
        let json = serde_json::to_string_pretty(&body).expect("a struct of strings serializes");
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
        f.write_all(json.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                KeyFileError::Missing(path.to_path_buf())
            } else {
                KeyFileError::Io { path: path.to_path_buf(), source: e }
            }
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen { path: path.to_path_buf(), mode });
        }
        let text =
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&text).map_err(|source| KeyFileError::Malformed { path: path.to_path_buf(), source })
    }

    fn parse(text: &str) -> Result<Self, MalformedKeyFile> {
        let kf: KeyFile = serde_json::from_str(text)?;
        let mut c = [0u8; 32];
        hex::decode_to_slice(kf.consensus_secret.trim(), &mut c).map_err(|_| MalformedKeyFile::ConsensusSecretHex)?;
        let mut p = [0u8; 32];
        hex::decode_to_slice(kf.peg_secret.trim(), &mut p).map_err(|_| MalformedKeyFile::PegSecretHex)?;
        let peg = SecretKey::from_slice(&p).map_err(MalformedKeyFile::PegSecretInvalid)?;
        Ok(NodeKeys { consensus: Keypair::from_secret(c), peg })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_refusals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node_key.json");
        let keys = NodeKeys::generate();
        keys.save_new(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = NodeKeys::load(&path).expect("load");
        assert_eq!(back.consensus_public(), keys.consensus_public());
        assert_eq!(back.peg_public(), keys.peg_public());
        assert!(matches!(keys.save_new(&path), Err(KeyFileError::Exists(_))));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(NodeKeys::load(&path), Err(KeyFileError::TooOpen { mode: 0o644, .. })));

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"consensus_secret\": \"zz\", \"peg_secret\": \"00\"}").expect("write");
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(NodeKeys::load(&bad), Err(KeyFileError::Malformed { .. })));
        assert!(matches!(NodeKeys::load(&dir.path().join("none")), Err(KeyFileError::Missing(_))));
    }

    #[test]
    fn seeded_keys_are_deterministic_and_distinct() {
        let a = NodeKeys::from_seed(b"v0");
        assert_eq!(a.consensus_public(), NodeKeys::from_seed(b"v0").consensus_public());
        assert_ne!(a.consensus_public(), NodeKeys::from_seed(b"v1").consensus_public());
        assert_ne!(a.peg_public(), NodeKeys::from_seed(b"v1").peg_public());
    }
}
