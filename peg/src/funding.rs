//! A single-key P2WPKH wallet core: pick coins, build a payment, sign it (BIP-0143, SIGHASH_ALL).
//!
//! Why it exists: the Bitcoin Core we build has no wallet, so whoever pays BTC on regtest (the test
//! harness's funding wallet, `sidechain-cli pegin --fund`) needs one in Rust. This is its pure half: no IO,
//! no clock, no randomness. The callers find the coins (`getblock`, `scantxoutset`) and broadcast the result;
//! everything between is here, so there is exactly one implementation of signing a spend of our own key.
//!
//! Invariants it owns:
//! - **Deterministic**: the same key, coins (in any order), payee, amount and fee give the same transaction,
//!   byte for byte (coins are sorted, ECDSA nonces are RFC 6979).
//! - **Payment first**: the payment is output 0; change, if any, is output 1 and pays the key back.
//! - **No dust change**: change below the dust limit of a P2WPKH output (294 sat at Core's default
//!   `-dustrelayfee`) is left to the miner instead of making an output bitcoind would refuse to relay.
//! - **Fee bound**: with [`Fee::Rate`] the fee is priced on the largest possible size of the signed
//!   transaction ([`InputWeightPrediction::P2WPKH_MAX`]: 72-byte signatures), so the real rate is never below
//!   the one asked for.
//! - Only coins paying this key are spent: a foreign or duplicated coin is an error, never skipped silently.

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa;
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::{predict_weight, InputWeightPrediction, Version};
use bitcoin::{
    Address, Amount, CompressedPublicKey, FeeRate, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness,
};
use std::collections::BTreeSet;

/// Length of a P2WPKH output script (`OP_0 <20 bytes>`).
const P2WPKH_SCRIPT_LEN: usize = 22;

/// Why a payment could not be built or a key not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FundingError {
    /// The 32 bytes are zero or not below the secp256k1 group order.
    #[error("funding key secret is not a valid secp256k1 scalar")]
    InvalidSecret,
    /// The coins cannot cover the payment and its fee.
    #[error("funding coins hold {available}, not enough to pay {amount} plus fee {fee}")]
    InsufficientFunds {
        /// The sum of all the coins offered.
        available: Amount,
        /// The payment.
        amount: Amount,
        /// The fee with every coin spent and no change.
        fee: Amount,
    },
    /// The payment would be a dust output, which bitcoind does not relay.
    #[error("payment of {amount} is below the dust limit {dust} of its output script")]
    AmountBelowDust {
        /// The payment.
        amount: Amount,
        /// The smallest amount that is not dust for that script.
        dust: Amount,
    },
    /// A coin does not pay this key, so it cannot be signed for.
    #[error("coin {0} does not pay the funding key")]
    NotOurs(OutPoint),
    /// The same coin was offered twice (spending it twice makes an invalid transaction).
    #[error("coin {0} was offered twice")]
    DuplicateCoin(OutPoint),
    /// Sums of amounts or the fee do not fit in an amount.
    #[error("amount overflow while adding up coins and fee")]
    Overflow,
    /// rust-bitcoin refused to compute a sighash (an input index or script we built is inconsistent).
    #[error("sighash of input {input}: {source}")]
    Sighash {
        /// The input.
        input: usize,
        /// rust-bitcoin's reason.
        #[source]
        source: bitcoin::sighash::P2wpkhError,
    },
}

/// An unspent output of the funding key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it holds (the value is signed for: BIP-0143 commits to it).
    pub txout: TxOut,
}

/// How the fee of a payment is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fee {
    /// At least this rate over the largest possible size of the signed transaction.
    Rate(FeeRate),
    /// Exactly this fee, unless the change would be dust: then the dust is added to it.
    Absolute(Amount),
}

/// One secp256k1 key and its P2WPKH output.
#[derive(Clone)]
pub struct FundingKey {
    secp: Secp256k1<All>,
    secret: SecretKey,
    public: CompressedPublicKey,
}

impl std::fmt::Debug for FundingKey {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FundingKey").field("public", &self.public).finish_non_exhaustive()
    }
}

impl FundingKey {
    /// The key with secret `bytes` (big-endian scalar).
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Result<FundingKey, FundingError> {
        let secret = SecretKey::from_slice(&bytes).map_err(|_| FundingError::InvalidSecret)?;
        let secp = Secp256k1::new();
        let public = CompressedPublicKey(secret.public_key(&secp));
        Ok(FundingKey { secp, secret, public })
    }

    /// The public key.
    pub fn public_key(&self) -> CompressedPublicKey {
        self.public
    }

    /// The key's P2WPKH address on `network`.
    pub fn address(&self, network: Network) -> Address {
        Address::p2wpkh(&self.public, network)
    }

    /// The key's output script (the same on every network).
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&self.public.wpubkey_hash())
    }

    /// The outputs of `tx` that pay this key (e.g. a coinbase mined to it), in output order.
    pub fn owned_outputs(&self, tx: &Transaction) -> Vec<Utxo> {
        let ours = self.script_pubkey();
        let txid = tx.compute_txid();
        (0u32..)
            .zip(&tx.output)
            .filter(|(_, out)| out.script_pubkey == ours)
            .map(|(vout, out)| Utxo { outpoint: OutPoint { txid, vout }, txout: out.clone() })
            .collect()
    }

    /// A signed transaction paying `amount` to `to` from `utxos`, with change back to this key.
    ///
    /// Coins are taken largest first (ties by outpoint) until they cover the payment and its fee, so the
    /// result does not depend on the order of `utxos`. The payment is output 0, change output 1. The
    /// transaction is version 2, lock time 0, and signals replaceability (BIP-0125).
    pub fn pay(&self, utxos: &[Utxo], to: ScriptBuf, amount: Amount, fee: Fee) -> Result<Transaction, FundingError> {
        let dust = to.minimal_non_dust();
        if amount < dust {
            return Err(FundingError::AmountBelowDust { amount, dust });
        }
        let coins = self.sorted_coins(utxos)?;
        let to_len = to.len();
        let change_dust = self.script_pubkey().minimal_non_dust();

        let mut total = Amount::ZERO;
        for (i, coin) in coins.iter().enumerate() {
            total = total.checked_add(coin.txout.value).ok_or(FundingError::Overflow)?;
            let inputs = i + 1;
            let fee_alone = fee_for(fee, inputs, &[to_len])?;
            let needed = amount.checked_add(fee_alone).ok_or(FundingError::Overflow)?;
            if total < needed {
                continue;
            }
            let fee_with_change = fee_for(fee, inputs, &[to_len, P2WPKH_SCRIPT_LEN])?;
            let change = amount
                .checked_add(fee_with_change)
                .and_then(|spent| total.checked_sub(spent))
                .filter(|change| *change >= change_dust);
            let mut outputs = vec![TxOut { value: amount, script_pubkey: to }];
            if let Some(change) = change {
                outputs.push(TxOut { value: change, script_pubkey: self.script_pubkey() });
            }
            return self.sign(&coins[..inputs], outputs);
        }
        let fee = fee_for(fee, coins.len().max(1), &[to_len])?;
        Err(FundingError::InsufficientFunds { available: total, amount, fee })
    }

    /// `utxos` checked (ours, no duplicates) and in spending order: value descending, then outpoint.
    fn sorted_coins<'a>(&self, utxos: &'a [Utxo]) -> Result<Vec<&'a Utxo>, FundingError> {
        let ours = self.script_pubkey();
        let mut seen = BTreeSet::new();
        for u in utxos {
            if u.txout.script_pubkey != ours {
                return Err(FundingError::NotOurs(u.outpoint));
            }
            if !seen.insert(u.outpoint) {
                return Err(FundingError::DuplicateCoin(u.outpoint));
            }
        }
        let mut coins: Vec<&Utxo> = utxos.iter().collect();
        coins.sort_by(|a, b| b.txout.value.cmp(&a.txout.value).then(a.outpoint.cmp(&b.outpoint)));
        Ok(coins)
    }

    /// Builds the transaction spending `coins` to `outputs` and signs every input (P2WPKH, SIGHASH_ALL).
    fn sign(&self, coins: &[&Utxo], outputs: Vec<TxOut>) -> Result<Transaction, FundingError> {
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: coins
                .iter()
                .map(|c| TxIn {
                    previous_output: c.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let mut cache = SighashCache::new(&tx);
        let mut witnesses = Vec::with_capacity(coins.len());
        for (input, coin) in coins.iter().enumerate() {
            let sighash = cache
                .p2wpkh_signature_hash(input, &coin.txout.script_pubkey, coin.txout.value, EcdsaSighashType::All)
                .map_err(|source| FundingError::Sighash { input, source })?;
            let signature = self.secp.sign_ecdsa(&Message::from(sighash), &self.secret);
            let signature = ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All };
            witnesses.push(Witness::p2wpkh(&signature, &self.public.0));
        }
        for (txin, witness) in tx.input.iter_mut().zip(witnesses) {
            txin.witness = witness;
        }
        Ok(tx)
    }
}

/// The fee of a transaction with `inputs` P2WPKH inputs and outputs of the given script lengths.
fn fee_for(fee: Fee, inputs: usize, output_script_lens: &[usize]) -> Result<Amount, FundingError> {
    match fee {
        Fee::Absolute(fee) => Ok(fee),
        Fee::Rate(rate) => {
            let weight = predict_weight(
                std::iter::repeat_n(InputWeightPrediction::P2WPKH_MAX, inputs),
                output_script_lens.iter().copied(),
            );
            rate.fee_vb(weight.to_vbytes_ceil()).ok_or(FundingError::Overflow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::consensus::encode::{deserialize, serialize};
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::PublicKey;
    use bitcoin::Txid;

    fn key(byte: u8) -> FundingKey {
        FundingKey::from_secret_bytes([byte; 32]).expect("valid scalar")
    }

    fn coin(key: &FundingKey, n: u8, sats: u64) -> Utxo {
        Utxo {
            outpoint: OutPoint { txid: Txid::from_byte_array([n; 32]), vout: u32::from(n) },
            txout: TxOut { value: Amount::from_sat(sats), script_pubkey: key.script_pubkey() },
        }
    }

    fn payee() -> ScriptBuf {
        key(0x77).script_pubkey()
    }

    /// Checks every input's witness against BIP-0143 with the coin it spends, after a consensus round trip.
    fn assert_signed_by(tx: &Transaction, key: &FundingKey, coins: &[Utxo]) {
        let tx: Transaction = deserialize(&serialize(tx)).expect("round trip");
        let secp = Secp256k1::verification_only();
        let mut cache = SighashCache::new(&tx);
        for (i, txin) in tx.input.iter().enumerate() {
            let spent = coins.iter().find(|c| c.outpoint == txin.previous_output).expect("input spends a given coin");
            assert_eq!(txin.witness.len(), 2, "p2wpkh witness is [signature, pubkey]");
            let sig = ecdsa::Signature::from_slice(&txin.witness[0]).expect("der signature with sighash flag");
            assert_eq!(sig.sighash_type, EcdsaSighashType::All);
            let pubkey = PublicKey::from_slice(&txin.witness[1]).expect("pubkey");
            assert_eq!(pubkey, key.public_key().0);
            let sighash = cache
                .p2wpkh_signature_hash(i, &spent.txout.script_pubkey, spent.txout.value, EcdsaSighashType::All)
                .expect("sighash");
            secp.verify_ecdsa(&Message::from(sighash), &sig.signature, &pubkey).expect("signature verifies");
            // BIP-0143 commits to the spent value: the same signature is invalid for any other amount.
            let wrong = cache
                .p2wpkh_signature_hash(
                    i,
                    &spent.txout.script_pubkey,
                    spent.txout.value + Amount::ONE_SAT,
                    EcdsaSighashType::All,
                )
                .expect("sighash");
            assert!(secp.verify_ecdsa(&Message::from(wrong), &sig.signature, &pubkey).is_err());
        }
    }

    #[test]
    fn address_of_secret_one_is_the_bip173_vector() {
        let mut secret = [0u8; 32];
        secret[31] = 1;
        let k = FundingKey::from_secret_bytes(secret).expect("1 is a valid scalar");
        assert_eq!(k.address(Network::Regtest).to_string(), "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080");
        assert_eq!(k.address(Network::Bitcoin).to_string(), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
        assert_eq!(k.script_pubkey(), k.address(Network::Regtest).script_pubkey());
        assert_eq!(FundingKey::from_secret_bytes([0; 32]).err(), Some(FundingError::InvalidSecret));
        assert_eq!(FundingKey::from_secret_bytes([0xff; 32]).err(), Some(FundingError::InvalidSecret));
        assert!(!format!("{k:?}").contains(&"00".repeat(31)), "debug output has no secret");
    }

    #[test]
    fn signatures_verify_and_change_returns_to_the_key() {
        let k = key(1);
        let coins = vec![coin(&k, 1, 30_000), coin(&k, 2, 50_000), coin(&k, 3, 40_000)];
        let amount = Amount::from_sat(70_000);
        let rate = FeeRate::from_sat_per_vb(2).expect("rate");
        let tx = k.pay(&coins, payee(), amount, Fee::Rate(rate)).expect("pay");
        // Largest first: 50k + 40k cover 70k plus fee; the 30k coin stays.
        let spent: Vec<_> = tx.input.iter().map(|i| i.previous_output).collect();
        assert_eq!(spent, vec![coins[1].outpoint, coins[2].outpoint]);
        assert_eq!(tx.output[0], TxOut { value: amount, script_pubkey: payee() });
        assert_eq!(tx.output[1].script_pubkey, k.script_pubkey());
        assert_signed_by(&tx, &k, &coins);

        // The fee pays at least the rate on the real size, and the prediction is an upper bound.
        let fee = Amount::from_sat(90_000) - amount - tx.output[1].value;
        let predicted = predict_weight([InputWeightPrediction::P2WPKH_MAX; 2], [22, 22]);
        assert!(tx.weight() <= predicted);
        assert_eq!(fee, rate.fee_vb(predicted.to_vbytes_ceil()).expect("fee"));
        assert!(fee >= rate.fee_vb(tx.vsize() as u64).expect("fee"));
    }

    #[test]
    fn deterministic_whatever_the_coin_order() {
        let k = key(2);
        let coins = vec![coin(&k, 1, 10_000), coin(&k, 2, 10_000), coin(&k, 3, 10_000)];
        let reversed: Vec<_> = coins.iter().rev().cloned().collect();
        let pay = |c: &[Utxo]| k.pay(c, payee(), Amount::from_sat(15_000), Fee::Absolute(Amount::from_sat(500)));
        let tx = pay(&coins).expect("pay");
        assert_eq!(serialize(&tx), serialize(&pay(&reversed).expect("pay")));
        // Equal values: the lower outpoints are spent first.
        assert_eq!(tx.input[0].previous_output, coins[0].outpoint);
        assert_eq!(tx.input[1].previous_output, coins[1].outpoint);
        assert_signed_by(&tx, &k, &coins);
    }

    #[test]
    fn change_only_when_not_dust() {
        let k = key(3);
        let dust = k.script_pubkey().minimal_non_dust();
        assert_eq!(dust, Amount::from_sat(294));
        let coins = vec![coin(&k, 1, 100_000)];
        let fee = Amount::from_sat(1_000);

        // Change exactly at the dust limit: kept.
        let amount = Amount::from_sat(100_000) - fee - dust;
        let tx = k.pay(&coins, payee(), amount, Fee::Absolute(fee)).expect("pay");
        assert_eq!(tx.output.len(), 2);
        assert_eq!(tx.output[1].value, dust);

        // One satoshi less: no change output, the 293 sat go to the fee.
        let tx = k.pay(&coins, payee(), amount + Amount::ONE_SAT, Fee::Absolute(fee)).expect("pay");
        assert_eq!(tx.output, vec![TxOut { value: amount + Amount::ONE_SAT, script_pubkey: payee() }]);

        // Exactly everything: no change.
        let tx = k.pay(&coins, payee(), Amount::from_sat(99_000), Fee::Absolute(fee)).expect("pay");
        assert_eq!(tx.output.len(), 1);
        assert_signed_by(&tx, &k, &coins);
    }

    #[test]
    fn change_boundary_at_a_fee_rate() {
        let k = key(4);
        let coins = vec![coin(&k, 1, 100_000)];
        let rate = FeeRate::from_sat_per_vb(1).expect("rate");
        let fee_alone = fee_for(Fee::Rate(rate), 1, &[22]).expect("fee");
        let fee_change = fee_for(Fee::Rate(rate), 1, &[22, 22]).expect("fee");
        assert!(fee_change > fee_alone, "a change output costs its own bytes");

        let at_limit = Amount::from_sat(100_000) - fee_change - Amount::from_sat(294);
        let tx = k.pay(&coins, payee(), at_limit, Fee::Rate(rate)).expect("pay");
        assert_eq!(tx.output[1].value, Amount::from_sat(294));
        let tx = k.pay(&coins, payee(), at_limit + Amount::ONE_SAT, Fee::Rate(rate)).expect("pay");
        assert_eq!(tx.output.len(), 1);

        // The last amount payable is everything but the fee without change.
        let max = Amount::from_sat(100_000) - fee_alone;
        assert_eq!(k.pay(&coins, payee(), max, Fee::Rate(rate)).expect("pay").output.len(), 1);
        assert_eq!(
            k.pay(&coins, payee(), max + Amount::ONE_SAT, Fee::Rate(rate)),
            Err(FundingError::InsufficientFunds {
                available: Amount::from_sat(100_000),
                amount: max + Amount::ONE_SAT,
                fee: fee_alone
            })
        );
    }

    #[test]
    fn insufficient_funds_reports_what_there_is() {
        let k = key(5);
        let coins = vec![coin(&k, 1, 20_000), coin(&k, 2, 30_000)];
        let fee = Amount::from_sat(1_000);
        let err = k.pay(&coins, payee(), Amount::from_sat(49_001), Fee::Absolute(fee));
        assert_eq!(
            err,
            Err(FundingError::InsufficientFunds {
                available: Amount::from_sat(50_000),
                amount: Amount::from_sat(49_001),
                fee
            })
        );
        assert!(matches!(
            k.pay(&[], payee(), Amount::from_sat(10_000), Fee::Absolute(fee)),
            Err(FundingError::InsufficientFunds { available: Amount::ZERO, .. })
        ));
    }

    #[test]
    fn foreign_duplicate_and_dust_are_refused() {
        let k = key(6);
        let other = key(7);
        let amount = Amount::from_sat(10_000);
        let fee = Fee::Absolute(Amount::from_sat(500));
        let foreign = coin(&other, 9, 50_000);
        assert_eq!(
            k.pay(&[coin(&k, 1, 50_000), foreign.clone()], payee(), amount, fee),
            Err(FundingError::NotOurs(foreign.outpoint))
        );
        let dup = coin(&k, 1, 50_000);
        assert_eq!(
            k.pay(&[dup.clone(), dup.clone()], payee(), amount, fee),
            Err(FundingError::DuplicateCoin(dup.outpoint))
        );
        assert_eq!(
            k.pay(&[dup], payee(), Amount::from_sat(293), fee),
            Err(FundingError::AmountBelowDust { amount: Amount::from_sat(293), dust: Amount::from_sat(294) })
        );
    }

    #[test]
    fn owned_outputs_finds_only_ours() {
        let k = key(8);
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![],
            output: vec![
                TxOut { value: Amount::from_sat(1), script_pubkey: payee() },
                TxOut { value: Amount::from_sat(2), script_pubkey: k.script_pubkey() },
            ],
        };
        let found = k.owned_outputs(&tx);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].outpoint, OutPoint { txid: tx.compute_txid(), vout: 1 });
        assert_eq!(found[0].txout.value, Amount::from_sat(2));
    }
}
