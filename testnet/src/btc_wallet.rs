//! A minimal single-key Bitcoin wallet in Rust (P2WPKH), because the bitcoind we build has no wallet.
//!
//! It mines coinbase outputs to its own key, finds them with `getblock`, and builds and signs spends with
//! rust-bitcoin. It is for regtest funding only; the federation's wallet lives in the `peg` crate.

use crate::bitcoind::{Bitcoind, BitcoindError};
use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    Address, Amount, BlockHash, CompressedPublicKey, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid, Witness,
};
use serde_json::{json, Value};

/// An unspent output we can spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it holds.
    pub txout: TxOut,
}

/// Why the wallet could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// bitcoind failed.
    #[error(transparent)]
    Bitcoind(#[from] BitcoindError),
    /// The block's coinbase does not pay us.
    #[error("coinbase of block {0} does not pay this wallet")]
    NotOurCoinbase(BlockHash),
    /// The utxo cannot cover the payment and the fee.
    #[error("utxo of {have} cannot pay {want} plus fee {fee}")]
    InsufficientFunds { have: Amount, want: Amount, fee: Amount },
    /// bitcoind answered something we could not read.
    #[error("unexpected bitcoind answer for {0}")]
    BadAnswer(String),
}

/// A P2WPKH key on regtest.
pub struct BtcWallet {
    secp: Secp256k1<All>,
    secret: SecretKey,
    public: CompressedPublicKey,
}

impl BtcWallet {
    /// A wallet whose key is derived from `seed` (deterministic tests).
    pub fn from_seed(seed: u8) -> Self {
        let secp = Secp256k1::new();
        let mut bytes = [seed; 32];
        bytes[0] = 0x42; // keep the scalar far from zero and from the group order
        let secret = SecretKey::from_slice(&bytes).expect("0x42.. is a valid secp256k1 scalar");
        let public = CompressedPublicKey(secret.public_key(&secp));
        BtcWallet { secp, secret, public }
    }

    /// Our receiving address.
    pub fn address(&self) -> Address {
        Address::p2wpkh(&self.public, Network::Regtest)
    }

    /// Our output script.
    pub fn script_pubkey(&self) -> ScriptBuf {
        self.address().script_pubkey()
    }

    /// Mines `n` blocks to us and returns the coinbase utxos of those blocks (mature after 100 more).
    pub fn mine_coinbases(&self, btc: &Bitcoind, n: u64) -> Result<Vec<Utxo>, WalletError> {
        let hashes = btc.mine_to(n, &self.address())?;
        hashes.iter().map(|h| self.coinbase_utxo(btc, h)).collect()
    }

    /// The output of block `hash`'s coinbase that pays us.
    pub fn coinbase_utxo(&self, btc: &Bitcoind, hash: &BlockHash) -> Result<Utxo, WalletError> {
        let block: Value = btc.call("getblock", &[json!(hash.to_string()), json!(2)])?;
        let cb = &block["tx"][0];
        let txid: Txid = cb["txid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| WalletError::BadAnswer("getblock tx[0].txid".into()))?;
        let ours = self.script_pubkey().to_hex_string();
        let outs = cb["vout"].as_array().ok_or_else(|| WalletError::BadAnswer("getblock vout".into()))?;
        for o in outs {
            if o["scriptPubKey"]["hex"].as_str() == Some(ours.as_str()) {
                let vout = o["n"].as_u64().ok_or_else(|| WalletError::BadAnswer("vout n".into()))? as u32;
                let value = o["value"].as_f64().ok_or_else(|| WalletError::BadAnswer("vout value".into()))?;
                let value = Amount::from_btc(value).map_err(|_| WalletError::BadAnswer("vout value".into()))?;
                return Ok(Utxo {
                    outpoint: OutPoint { txid, vout },
                    txout: TxOut { value, script_pubkey: self.script_pubkey() },
                });
            }
        }
        Err(WalletError::NotOurCoinbase(*hash))
    }

    /// Builds and signs a transaction spending `utxo`: `amount` to `to`, the rest minus `fee` back to us.
    /// Returns the transaction (not broadcast).
    pub fn pay(&self, utxo: &Utxo, to: ScriptBuf, amount: Amount, fee: Amount) -> Result<Transaction, WalletError> {
        let change = utxo
            .txout
            .value
            .checked_sub(amount)
            .and_then(|v| v.checked_sub(fee))
            .ok_or(WalletError::InsufficientFunds { have: utxo.txout.value, want: amount, fee })?;
        let mut outputs = vec![TxOut { value: amount, script_pubkey: to }];
        if change > Amount::ZERO {
            outputs.push(TxOut { value: change, script_pubkey: self.script_pubkey() });
        }
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: utxo.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: outputs,
        };
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(0, &utxo.txout.script_pubkey, utxo.txout.value, EcdsaSighashType::All)
            .map_err(|e| WalletError::BadAnswer(format!("sighash: {e}")))?;
        let sig = self.secp.sign_ecdsa(&Message::from(sighash), &self.secret);
        let sig = bitcoin::ecdsa::Signature { signature: sig, sighash_type: EcdsaSighashType::All };
        tx.input[0].witness = Witness::p2wpkh(&sig, &self.public.0);
        Ok(tx)
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
