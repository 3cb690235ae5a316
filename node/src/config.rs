//! Configuration: a TOML file, overridden by flags and `SIDECHAIND_*` environment variables (clap reads
//! both), with clear errors for anything missing or malformed.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The TOML file (every field optional; flags override).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Path of the genesis JSON (relative paths are relative to the datadir).
    pub genesis: Option<PathBuf>,
    /// Path of the key file (default `<datadir>/node_key.json`).
    pub key_file: Option<PathBuf>,
    /// P2P settings.
    #[serde(default)]
    pub p2p: P2pSection,
    /// RPC settings.
    #[serde(default)]
    pub rpc: RpcSection,
    /// Metrics settings.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Consensus timeouts.
    pub consensus: Option<consensus::Config>,
    /// Peg settings of this validator.
    #[serde(default)]
    pub peg: PegSection,
    /// Deliberate faults for test networks (refused unless `SIDECHAIND_ALLOW_FAULTS=1`).
    #[serde(default)]
    pub fault: crate::service::Faults,
}

/// `[peg]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PegSection {
    /// The least fee rate (sat/vB) this validator votes for, whatever its bitcoind estimates. On regtest,
    /// where bitcoind has no estimate, this is the vote (default: the chain's floor).
    pub fee_rate_floor_sat_vb: Option<u64>,
}

/// `[metrics]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Listen address of `GET /metrics`, e.g. `127.0.0.1:9332` (off when unset).
    pub bind: Option<String>,
}

/// `[p2p]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// Listen multiaddr, e.g. `/ip4/127.0.0.1/tcp/26656`.
    pub listen: Option<String>,
    /// Peers to stay connected to (multiaddrs, may end in `/p2p/<peer id>`).
    #[serde(default)]
    pub bootstrap: Vec<String>,
}

/// `[rpc]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcSection {
    /// Listen address, e.g. `127.0.0.1:18443`.
    pub bind: Option<String>,
    /// Serve the dashboard page and its read-only endpoint (default true); `false` answers them 404.
    pub dashboard: Option<bool>,
}

/// What went wrong reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config {path} is invalid: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// The genesis file is missing or invalid.
    #[error("genesis {path}: {reason}")]
    Genesis { path: PathBuf, reason: String },
    /// A multiaddr or socket address does not parse.
    #[error("{what} {value:?} is not a valid address: {reason}")]
    Address { what: &'static str, value: String, reason: String },
}

impl FileConfig {
    /// Reads `path`; a missing file is an error only if `required`.
    pub fn load(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }
}

/// Reads and validates a genesis JSON file.
pub fn load_genesis(path: &Path) -> Result<ledger::Genesis, ConfigError> {
    let err = |reason: String| ConfigError::Genesis { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            err("file not found (make one with `sidechaind genesis`)".into())
        } else {
            err(e.to_string())
        }
    })?;
    let g: ledger::Genesis = serde_json::from_str(&text).map_err(|e| err(format!("not valid genesis JSON: {e}")))?;
    g.validate().map_err(|e| err(e.to_string()))?;
    Ok(g)
}

/// Parses a multiaddr with a clear error.
pub fn parse_multiaddr(what: &'static str, s: &str) -> Result<net::Multiaddr, ConfigError> {
    s.parse::<net::Multiaddr>().map_err(|e| ConfigError::Address { what, value: s.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_toml_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\nbootstrapp = []\n").expect("write");
        let e = FileConfig::load(&p, true).expect_err("typo");
        assert!(e.to_string().contains("bootstrapp"), "{e}");
        std::fs::write(&p, "this is not toml = = =").expect("write");
        assert!(matches!(FileConfig::load(&p, true), Err(ConfigError::Parse { .. })));
        assert_eq!(FileConfig::load(&dir.path().join("none.toml"), false).expect("optional"), FileConfig::default());
        assert!(matches!(FileConfig::load(&dir.path().join("none.toml"), true), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn peg_and_dashboard_settings_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[rpc]\ndashboard = false\n[peg]\nfee_rate_floor_sat_vb = 25\n").expect("write");
        let c = FileConfig::load(&p, true).expect("valid");
        assert_eq!((c.rpc.dashboard, c.peg.fee_rate_floor_sat_vb), (Some(false), Some(25)));
        std::fs::write(&p, "[peg]\nfee_rate_floor = 25\n").expect("write");
        assert!(FileConfig::load(&p, true).expect_err("typo").to_string().contains("fee_rate_floor"));
    }

    #[test]
    fn missing_or_bad_genesis_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = load_genesis(&dir.path().join("genesis.json")).expect_err("missing");
        assert!(e.to_string().contains("not found"), "{e}");
        let p = dir.path().join("g.json");
        std::fs::write(&p, "{\"chain_id\": 5}").expect("write");
        assert!(load_genesis(&p).expect_err("bad").to_string().contains("not valid genesis JSON"));
        assert!(parse_multiaddr("listen", "not-an-addr").is_err());
    }
}
