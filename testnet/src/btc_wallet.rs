//! A minimal single-key Bitcoin wallet for tests (P2WPKH), because the bitcoind we build has no wallet.
//!
//! It mines coinbase outputs to its own key and finds them in the raw block from `getblock`; building and
//! signing spends is [`peg::funding`]'s job, the one signing implementation shared with `sidechain-cli`.
//! This module is only the synchronous IO around it for the [`Bitcoind`] harness. It is for regtest funding
//! only; the federation's wallet lives in the `peg` crate.

use crate::bitcoind::{Bitcoind, BitcoindError};
use bitcoin::{Address, Amount, Block, BlockHash, Network, ScriptBuf, Transaction, Txid};
use peg::funding::{Fee, FundingError, FundingKey};
use serde_json::{json, Value};

pub use peg::funding::Utxo;

/// Why the wallet could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// bitcoind failed.
    #[error(transparent)]
    Bitcoind(#[from] BitcoindError),
    /// The block's coinbase does not pay us.
    #[error("coinbase of block {0} does not pay this wallet")]
    NotOurCoinbase(BlockHash),
    /// The payment could not be built (not enough funds, dust, ...).
    #[error(transparent)]
    Funding(#[from] FundingError),
    /// bitcoind answered something we could not read.
    #[error("unexpected bitcoind answer for {0}")]
    BadAnswer(String),
}

/// A P2WPKH key on regtest.
pub struct BtcWallet {
    key: FundingKey,
}

impl BtcWallet {
    /// A wallet whose key is derived from `seed` (deterministic tests).
    pub fn from_seed(seed: u8) -> Self {
        let mut bytes = [seed; 32];
        bytes[0] = 0x42; // keep the scalar far from zero and from the group order
        let key = FundingKey::from_secret_bytes(bytes).expect("0x42.. is a valid secp256k1 scalar");
        BtcWallet { key }
    }

    /// The key, for code that uses [`peg::funding`] directly.
    pub fn key(&self) -> &FundingKey {
        &self.key
    }

    /// Our receiving address.
    pub fn address(&self) -> Address {
        self.key.address(Network::Regtest)
    }

    /// Our output script.
    pub fn script_pubkey(&self) -> ScriptBuf {
        self.key.script_pubkey()
    }

    /// Mines `n` blocks to us and returns the coinbase utxos of those blocks (mature after 100 more).
    pub fn mine_coinbases(&self, btc: &Bitcoind, n: u64) -> Result<Vec<Utxo>, WalletError> {
        let hashes = btc.mine_to(n, &self.address())?;
        hashes.iter().map(|h| self.coinbase_utxo(btc, h)).collect()
    }

    /// The output of block `hash`'s coinbase that pays us.
    pub fn coinbase_utxo(&self, btc: &Bitcoind, hash: &BlockHash) -> Result<Utxo, WalletError> {
        // The raw block, not the JSON one: exact amounts in satoshis, and the same parsing as rust-bitcoin's.
        let hex: String = btc.call("getblock", &[json!(hash.to_string()), json!(0)])?;
        let block: Block = bitcoin::consensus::encode::deserialize_hex(&hex)
            .map_err(|e| WalletError::BadAnswer(format!("getblock {hash}: {e}")))?;
        let coinbase = block.txdata.first().ok_or_else(|| WalletError::BadAnswer(format!("block {hash} has no tx")))?;
        self.key.owned_outputs(coinbase).into_iter().next().ok_or(WalletError::NotOurCoinbase(*hash))
    }

    /// Builds and signs a transaction spending `utxo`: `amount` to `to` (output 0), the rest minus `fee` back
    /// to us (output 1; left to the fee when it would be dust). Returns the transaction (not broadcast).
    pub fn pay(&self, utxo: &Utxo, to: ScriptBuf, amount: Amount, fee: Amount) -> Result<Transaction, WalletError> {
        Ok(self.key.pay(std::slice::from_ref(utxo), to, amount, Fee::Absolute(fee))?)
    }
}

/// Broadcasts `tx` and returns its txid.
pub fn broadcast(btc: &Bitcoind, tx: &Transaction) -> Result<Txid, BitcoindError> {
    btc.call("sendrawtransaction", &[json!(bitcoin::consensus::encode::serialize_hex(tx))])
}

/// Confirmations of `txid` (0 when in the mempool; error when unknown).
pub fn confirmations(btc: &Bitcoind, txid: &Txid) -> Result<u64, BitcoindError> {
    let v: Value = btc.call("getrawtransaction", &[json!(txid.to_string()), json!(true)])?;
    Ok(v["confirmations"].as_u64().unwrap_or(0))
}
