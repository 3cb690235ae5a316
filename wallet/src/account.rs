//! The `sidechain-cli` wallet: one ed25519 key in a private file, amounts with an explicit unit, and
//! signed transfers and deposit registrations. In the library (not the binary) so the e2e tests can drive the same code.
//!
//! Why a unit is mandatory: "send 1" is a 100-million-fold ambiguity between BTC and sats; a typo there
//! loses money. `1.5btc` and `150000sat` are both unambiguous, a bare number is refused.

use bitcoin::{Amount, Denomination};
use ledger::{SignedUserTx, UserTx, UserTxKind};
use primitives::{AccountId, GenesisHash, Keypair, PublicKey};
use rpc::fsutil;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Identifies the file format.
const FORMAT: &str = "sidechain-wallet-v1";

/// Why an amount was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// A number without `btc` or `sat`.
    #[error("amount {0:?} has no unit: write e.g. 1.5btc or 150000sat")]
    NoUnit(String),
    /// Not a valid number for its unit.
    #[error("amount {input:?} is not valid: {source}")]
    Invalid {
        /// What was given.
        input: String,
        /// Why.
        #[source]
        source: InvalidAmount,
    },
}

/// Why a number with a unit is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAmount {
    /// Not a BTC amount (rust-bitcoin's parser says why).
    #[error(transparent)]
    Btc(bitcoin::amount::ParseAmountError),
    /// Not a whole number of satoshis.
    #[error("satoshis must be a whole non-negative number")]
    Sats(#[source] std::num::ParseIntError),
    /// Above the 21 million BTC that can ever exist.
    #[error("more than 21 million btc")]
    OverMaxMoney,
}

/// Parses `1.5btc`, `0.00000001 BTC`, `150000sat` or `150000sats` (case-insensitive).
pub fn parse_amount(input: &str) -> Result<Amount, AmountError> {
    let s = input.trim().to_ascii_lowercase();
    let invalid = |source| AmountError::Invalid { input: input.to_string(), source };
    let amount = if let Some(n) = s.strip_suffix("btc") {
        Amount::from_str_in(n.trim(), Denomination::Bitcoin).map_err(|e| invalid(InvalidAmount::Btc(e)))?
    } else if let Some(n) = s.strip_suffix("sats").or_else(|| s.strip_suffix("sat")) {
        let sats: u64 = n.trim().parse().map_err(|e| invalid(InvalidAmount::Sats(e)))?;
        Amount::from_sat(sats)
    } else {
        return Err(AmountError::NoUnit(input.to_string()));
    };
    if amount > Amount::MAX_MONEY {
        return Err(invalid(InvalidAmount::OverMaxMoney));
    }
    Ok(amount)
}

/// Why a wallet file could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// `createwallet` on an existing file.
    #[error("wallet file {0} already exists; refusing to overwrite a key")]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// Not a wallet file, or its key does not match its public half.
    #[error("wallet file {path} is not valid: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CorruptWallet,
    },
}

/// What is wrong inside a wallet file. The hex decoder's own error is not kept: it quotes the offending
/// character and its position, a piece of the secret.
#[derive(Debug, thiserror::Error)]
pub enum CorruptWallet {
    /// Not a wallet file's JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Another format (or version) than this wallet's.
    #[error("format {found:?}, expected {FORMAT:?}")]
    Format {
        /// The file's `format`.
        found: String,
    },
    /// `secret_key` is not 64 hex digits.
    #[error("secret_key is not 64 hex digits")]
    SecretHex,
    /// The key does not match the public key and account the file records (tampered or mixed up).
    #[error("secret_key does not match public_key and account")]
    KeyMismatch,
}

#[derive(Serialize, Deserialize)]
struct WalletFile {
    format: String,
    secret_key: String,
    public_key: PublicKey,
    account: AccountId,
}

/// A key that controls one account.
#[derive(Debug)]
pub struct Wallet {
    key: Keypair,
}

impl Wallet {
    /// Creates a new random key in `path` (mode 0600); an existing file is never overwritten.
    pub fn create(path: &Path) -> Result<Wallet, WalletError> {
        let wallet = Wallet { key: Keypair::generate() };
        let file = WalletFile {
            format: FORMAT.into(),
            secret_key: hex::encode(wallet.key.secret_bytes()),
            public_key: wallet.public_key(),
            account: wallet.account(),
        };
        let json = serde_json::to_vec_pretty(&file).expect("a struct of strings and hex newtypes serializes");
        fsutil::write_private(path, &json, true).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => WalletError::Exists(path.to_path_buf()),
            _ => WalletError::Io { path: path.to_path_buf(), source },
        })?;
        Ok(wallet)
    }

    /// Loads a wallet file and checks that its key matches the public key and account it records.
    pub fn load(path: &Path) -> Result<Wallet, WalletError> {
        let corrupt = |source: CorruptWallet| WalletError::Corrupt { path: path.to_path_buf(), source };
        let bytes = std::fs::read(path).map_err(|source| WalletError::Io { path: path.to_path_buf(), source })?;
        let file: WalletFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.into()))?;
        if file.format != FORMAT {
            return Err(corrupt(CorruptWallet::Format { found: file.format }));
        }
        let mut secret = [0u8; 32];
        hex::decode_to_slice(&file.secret_key, &mut secret).map_err(|_| corrupt(CorruptWallet::SecretHex))?;
        let wallet = Wallet { key: Keypair::from_secret(secret) };
        if wallet.public_key() != file.public_key || wallet.account() != file.account {
            return Err(corrupt(CorruptWallet::KeyMismatch));
        }
        Ok(wallet)
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// The account this key controls (its "address").
    pub fn account(&self) -> AccountId {
        self.key.public().account_id()
    }

    /// A signed transfer for the chain with `genesis_hash`.
    pub fn transfer(
        &self,
        genesis_hash: &GenesisHash,
        nonce: u64,
        to: AccountId,
        amount: Amount,
        fee: Amount,
    ) -> SignedUserTx {
        UserTx { signer: self.key.public(), nonce, fee, kind: UserTxKind::Transfer { to, amount } }
            .sign(&self.key, genesis_hash)
    }

    /// A signed `PegOut` for the chain with `genesis_hash`: burns `amount + fee` and queues a Bitcoin payment
    /// of exactly `amount` to `btc_script_pubkey`.
    pub fn pegout(
        &self,
        genesis_hash: &GenesisHash,
        nonce: u64,
        btc_script_pubkey: Vec<u8>,
        amount: Amount,
        fee: Amount,
    ) -> SignedUserTx {
        UserTx { signer: self.key.public(), nonce, fee, kind: UserTxKind::PegOut { btc_script_pubkey, amount } }
            .sign(&self.key, genesis_hash)
    }

    /// A signed `RegisterDeposit` for the chain with `genesis_hash`: makes this account's deposit address
    /// (`getpeginaddress`) watched, so deposits to it are minted without a claim. `fee` must be at least
    /// the chain's registration fee (`getpeginaddress` shows it).
    pub fn register_deposit(&self, genesis_hash: &GenesisHash, nonce: u64, fee: Amount) -> SignedUserTx {
        UserTx { signer: self.key.public(), nonce, fee, kind: UserTxKind::RegisterDeposit }
            .sign(&self.key, genesis_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Hash32;

    #[test]
    fn amounts_need_a_unit() {
        assert_eq!(parse_amount("1.5btc"), Ok(Amount::from_sat(150_000_000)));
        assert_eq!(parse_amount(" 0.00000001 BTC "), Ok(Amount::from_sat(1)));
        assert_eq!(parse_amount("150000sat"), Ok(Amount::from_sat(150_000)));
        assert_eq!(parse_amount("7sats"), Ok(Amount::from_sat(7)));
        assert_eq!(parse_amount("1.5"), Err(AmountError::NoUnit("1.5".into())));
        assert_eq!(parse_amount("100"), Err(AmountError::NoUnit("100".into())));
        assert!(matches!(parse_amount("1.5sat"), Err(AmountError::Invalid { source: InvalidAmount::Sats(_), .. })));
        assert!(matches!(parse_amount("1.5.5btc"), Err(AmountError::Invalid { source: InvalidAmount::Btc(_), .. })));
        assert!(matches!(
            parse_amount("21000001btc"),
            Err(AmountError::Invalid { source: InvalidAmount::OverMaxMoney, .. })
        ));
        assert!(matches!(parse_amount("0.000000001btc"), Err(AmountError::Invalid { .. })), "too precise");
        assert!(matches!(parse_amount("-1btc"), Err(AmountError::Invalid { .. })));
        assert!(matches!(parse_amount("21000001btc"), Err(AmountError::Invalid { .. })));
        assert!(matches!(parse_amount("2100000000000001sat"), Err(AmountError::Invalid { .. })));
        assert!(parse_amount("1.5 btc").is_ok());
    }

    #[test]
    fn wallet_file_is_private_refuses_overwrite_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let w = Wallet::create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(Wallet::create(&path), Err(WalletError::Exists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), before, "existing key untouched");
        let loaded = Wallet::load(&path).unwrap();
        assert_eq!(loaded.account(), w.account());
        let tx = loaded.transfer(
            &GenesisHash(Hash32([1; 32])),
            0,
            AccountId(Hash32([2; 32])),
            Amount::from_sat(5),
            Amount::from_sat(100),
        );
        assert_eq!(tx.verify_signature(&GenesisHash(Hash32([1; 32]))), Ok(()));
    }

    #[test]
    fn tampered_wallet_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        Wallet::create(&path).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["account"] = serde_json::json!("00".repeat(32));
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(Wallet::load(&path), Err(WalletError::Corrupt { source: CorruptWallet::KeyMismatch, .. })));
    }
}
