//! Configuration: a TOML file, overridden by flags and `SIDECHAIND_*` environment variables (clap reads
//! both), with clear errors for anything missing or malformed.
//!
//! Why apart from `main`: the loaders (config file, genesis file, addresses) are what an operator gets
//! wrong, so each failure is a typed [`ConfigError`] naming the file or value and keeping the parser's own
//! error as its source, and the loaders are tested without starting a node.

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
    /// Indexes this node keeps.
    #[serde(default)]
    pub index: IndexSection,
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

/// `[index]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSection {
    /// Keep every account's history for `listtransactions` (default true). A validator that serves no
    /// wallets may turn it off; turned on again, the node indexes the blocks it missed when it starts.
    pub history: Option<bool>,
}

impl IndexSection {
    /// The history setting, on unless turned off.
    pub fn history(&self) -> crate::chain::HistoryIndex {
        match self.history {
            Some(false) => crate::chain::HistoryIndex::Off,
            _ => crate::chain::HistoryIndex::On,
        }
    }
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
    #[error("config {path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// The genesis file is missing or invalid.
    #[error("genesis {path}: {source}")]
    Genesis {
        path: PathBuf,
        #[source]
        source: GenesisFileError,
    },
    /// A multiaddr does not parse.
    #[error("{what} {value:?} is not a valid address: {source}")]
    Address {
        what: &'static str,
        value: String,
        #[source]
        source: <net::Multiaddr as std::str::FromStr>::Err,
    },
}

/// Why the genesis file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisFileError {
    /// There is no such file.
    #[error("file not found (make one with `sidechaind genesis`)")]
    Missing,
    /// Reading it failed.
    #[error(transparent)]
    Read(std::io::Error),
    /// It is not a genesis in JSON.
    #[error("not valid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// It is one, but not a valid one.
    #[error(transparent)]
    Invalid(#[from] ledger::GenesisError),
}

impl From<std::io::Error> for GenesisFileError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => GenesisFileError::Missing,
            _ => GenesisFileError::Read(e),
        }
    }
}

impl FileConfig {
    /// Reads `path`; a missing file is an error only if `required`.
    pub fn load(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }
}

/// Reads and validates a genesis JSON file.
pub fn load_genesis(path: &Path) -> Result<ledger::Genesis, ConfigError> {
    let read = || -> Result<ledger::Genesis, GenesisFileError> {
        let g: ledger::Genesis = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        g.validate()?;
        Ok(g)
    };
    read().map_err(|source| ConfigError::Genesis { path: path.to_path_buf(), source })
}

/// Parses a multiaddr with a clear error.
pub fn parse_multiaddr(what: &'static str, s: &str) -> Result<net::Multiaddr, ConfigError> {
    s.parse::<net::Multiaddr>().map_err(|source| ConfigError::Address { what, value: s.to_string(), source })
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

    /// The history is kept unless the operator turns it off.
    #[test]
    fn the_history_index_is_on_unless_turned_off() {
        use crate::chain::HistoryIndex;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        for (toml, want) in [
            ("", HistoryIndex::On),
            ("[index]\nhistory = true\n", HistoryIndex::On),
            ("[index]\nhistory = false\n", HistoryIndex::Off),
        ] {
            std::fs::write(&p, toml).expect("write");
            assert_eq!(FileConfig::load(&p, true).expect("valid").index.history(), want, "{toml:?}");
        }
        std::fs::write(&p, "[index]\nhistory = \"no\"\n").expect("write");
        assert!(FileConfig::load(&p, true).is_err(), "not a boolean");
    }

    #[test]
    fn missing_or_bad_genesis_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = load_genesis(&dir.path().join("genesis.json")).expect_err("missing");
        assert!(e.to_string().contains("not found"), "{e}");
        assert!(matches!(e, ConfigError::Genesis { source: GenesisFileError::Missing, .. }), "{e:?}");
        let p = dir.path().join("g.json");
        std::fs::write(&p, "{\"chain_id\": 5}").expect("write");
        let e = load_genesis(&p).expect_err("bad");
        assert!(e.to_string().contains("not valid genesis JSON"), "{e}");
        assert!(matches!(e, ConfigError::Genesis { source: GenesisFileError::Json(_), .. }), "{e:?}");
        let e = parse_multiaddr("listen", "not-an-addr").expect_err("not a multiaddr");
        assert!(std::error::Error::source(&e).is_some(), "the parser's error is kept: {e:?}");
    }
}
