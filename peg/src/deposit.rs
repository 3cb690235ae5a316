//! Deposit addresses bound to a recipient and to this chain (pay-to-contract on every peg key).
//!
//! Why tweak: a BTC deposit carries no sidechain data, so the address itself must say who the coins are for.
//! Each federation peg key `K_i` becomes `K_i' = K_i + t_i*G` with
//! `t_i = tagged_hash("sidechain/pegin-tweak", genesis_hash || K_i (33-byte compressed) || recipient)`,
//! and the deposit descriptor is `wsh(sortedmulti(k, K_1'..K_n'))` (taproot custody: the same wallet
//! shape with the tweaked keys in its `multi_a` leaf and the group key `P` untouched as internal key, so
//! the binding rides in the script tree's merkle root, which the output key commits to and the FROST
//! key-path signature is tweaked by; see `docs/PROTOCOL.md`). Consequences:
//! - the script commits to the recipient: a mint to anyone else is caught by recomputing the script from R;
//! - the script commits to the genesis hash: a deposit for another chain with the same federation (testnet vs
//!   mainnet, a fork) is not mintable here;
//! - the keys are tweaked one by one with a per-key hash, so every validator derives its own tweaked secret
//!   `k_i + t_i` without the others and signs exactly as for the plain federation script (same threshold).
//!
//! Including `K_i` in its own hash keeps two keys' tweaks independent (no related-key structure).
//! A hash above the group order is rejected rather than reduced, as BIP341 does: the probability is ~2^-128.

use crate::error::PegError;
use crate::federation::Federation;
use bitcoin::secp256k1::{Scalar, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::{Address, Network, PublicKey, ScriptBuf};
use miniscript::descriptor::Descriptor;

/// Tag of the tagged hash that tweaks each peg key for a deposit.
pub const DEPOSIT_TWEAK_TAG: &str = "sidechain/pegin-tweak";

/// What a deposit is bound to: this chain (its genesis hash) and the recipient's 32-byte account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DepositTweak {
    genesis: [u8; 32],
    recipient: [u8; 32],
}

impl DepositTweak {
    /// Binds deposits to `recipient` on the chain whose genesis hash is `genesis`.
    pub fn new(genesis: [u8; 32], recipient: [u8; 32]) -> Self {
        DepositTweak { genesis, recipient }
    }

    /// The genesis hash.
    pub fn genesis(&self) -> [u8; 32] {
        self.genesis
    }

    /// The recipient account id.
    pub fn recipient(&self) -> [u8; 32] {
        self.recipient
    }

    /// The tweak `t_i` for peg key `key`; rejects a hash that is not a valid scalar.
    pub fn scalar(&self, key: &PublicKey) -> Result<Scalar, PegError> {
        let h = primitives::tagged_hash(DEPOSIT_TWEAK_TAG, &[&self.genesis, &key.inner.serialize(), &self.recipient]);
        Scalar::from_be_bytes(h.0).map_err(|_| PegError::TweakOutOfRange { key: *key })
    }

    /// `K' = K + t*G`, always compressed.
    pub fn tweak_key<C: Verification>(&self, secp: &Secp256k1<C>, key: &PublicKey) -> Result<PublicKey, PegError> {
        let t = self.scalar(key)?;
        let tweaked = key.inner.add_exp_tweak(secp, &t).map_err(|_| PegError::TweakedKeyInvalid { key: *key })?;
        Ok(PublicKey::new(tweaked))
    }

    /// `k' = k + t` for the secret `secret` of a peg key: signs for `tweak_key` of its public key.
    pub fn tweak_secret<C: Signing>(&self, secp: &Secp256k1<C>, secret: &SecretKey) -> Result<SecretKey, PegError> {
        let key = PublicKey::new(secret.public_key(secp));
        let t = self.scalar(&key)?;
        secret.add_tweak(&t).map_err(|_| PegError::TweakedKeyInvalid { key })
    }
}

/// The tweaked secret a validator signs a deposit input with: `sk + t` where `t` is computed from `sk`'s own
/// public key (so a mismatched key pair cannot be passed in).
pub fn tweak_secret<C: Signing>(
    secp: &Secp256k1<C>,
    secret: &SecretKey,
    genesis: [u8; 32],
    recipient: [u8; 32],
) -> Result<SecretKey, PegError> {
    DepositTweak::new(genesis, recipient).tweak_secret(secp, secret)
}

impl Federation {
    /// The peg keys tweaked for `(genesis, recipient)`, in the order of [`Federation::keys`].
    pub fn deposit_keys(&self, genesis: [u8; 32], recipient: [u8; 32]) -> Result<Vec<PublicKey>, PegError> {
        let secp = Secp256k1::verification_only();
        let tweak = DepositTweak::new(genesis, recipient);
        self.keys().iter().map(|k| tweak.tweak_key(&secp, k)).collect()
    }

    /// The wallet's descriptor over the tweaked keys, `wsh(sortedmulti(k, K_1'..K_n'))` or
    /// `tr(P, multi_a(k, K_1'..K_n'))` (with the emergency branch or leaf, emergency keys untweaked, if the
    /// wallet has one): the descriptor of deposits to `recipient` on chain `genesis`.
    pub fn deposit_descriptor(
        &self,
        genesis: [u8; 32],
        recipient: [u8; 32],
    ) -> Result<Descriptor<PublicKey>, PegError> {
        let keys = self.deposit_keys(genesis, recipient)?;
        Ok(self.descriptor_over(&keys)?)
    }

    /// The output script a deposit to `recipient` pays (what the watcher looks for).
    pub fn deposit_script_pubkey(&self, genesis: [u8; 32], recipient: [u8; 32]) -> Result<ScriptBuf, PegError> {
        Ok(self.deposit_descriptor(genesis, recipient)?.script_pubkey())
    }

    /// The witness script that spending a deposit to `recipient` reveals (for the PSBT updater); an error
    /// for taproot custody, whose spends reveal a leaf or nothing (see [`crate::taproot`]).
    pub fn deposit_witness_script(&self, genesis: [u8; 32], recipient: [u8; 32]) -> Result<ScriptBuf, PegError> {
        Ok(self.deposit_descriptor(genesis, recipient)?.explicit_script()?)
    }

    /// The deposit address (P2WSH or P2TR) for `recipient` on `network` (what `getpeginaddress` returns).
    pub fn deposit_address(
        &self,
        genesis: [u8; 32],
        recipient: [u8; 32],
        network: Network,
    ) -> Result<Address, PegError> {
        Ok(self.deposit_descriptor(genesis, recipient)?.address(network)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{finalize, sign_input};
    use bitcoin::hashes::Hash;
    use bitcoin::psbt::Psbt;
    use bitcoin::secp256k1::{ecdsa, Message};
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};
    use bitcoin::{absolute, transaction, Amount, OutPoint, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

    const GENESIS: [u8; 32] = [0x47; 32];

    fn secrets(n: u8) -> Vec<SecretKey> {
        (1..=n).map(|i| SecretKey::from_slice(&[i; 32]).expect("valid scalar")).collect()
    }

    fn federation(k: usize, n: u8) -> Federation {
        let secp = Secp256k1::new();
        Federation::new(k, secrets(n).iter().map(|s| PublicKey::new(s.public_key(&secp))).collect()).expect("valid")
    }

    #[test]
    fn address_is_bound_to_recipient_and_chain_and_deterministic() {
        let fed = federation(3, 4);
        let a = fed.deposit_address(GENESIS, [1; 32], Network::Regtest).expect("address");
        assert_eq!(a, fed.deposit_address(GENESIS, [1; 32], Network::Regtest).expect("address"));
        assert_ne!(a, fed.deposit_address(GENESIS, [2; 32], Network::Regtest).expect("address"));
        assert_ne!(a, fed.deposit_address([0x48; 32], [1; 32], Network::Regtest).expect("address"));
        // Pinned (cross-checked with an independent Python implementation of the tweak, sortedmulti and
        // bech32): any change to the tag, the hashed bytes or the descriptor changes every deposit address.
        assert_eq!(a.to_string(), "bcrt1qvfqgcdl8udm5ldt28zs4gwyvsj0wk983dhtytz6js6s6enjljk5sacqjk0");
        let d = fed.deposit_descriptor(GENESIS, [1; 32]).expect("descriptor").to_string();
        assert!(d.starts_with("wsh(sortedmulti(3,"), "{d}");
    }

    #[test]
    fn plain_federation_script_differs_from_every_deposit_script() {
        let fed = federation(3, 4);
        let plain = fed.script_pubkey();
        let mut seen = std::collections::BTreeSet::new();
        for r in 0..=255u8 {
            let s = fed.deposit_script_pubkey(GENESIS, [r; 32]).expect("script");
            assert_ne!(s, plain);
            assert!(s.is_p2wsh());
            assert!(seen.insert(s), "two recipients share a deposit script");
        }
    }

    #[test]
    fn deposit_keys_do_not_depend_on_key_order() {
        let fed = federation(3, 4);
        let mut keys = fed.keys().to_vec();
        keys.reverse();
        let rev = Federation::new(3, keys).expect("valid");
        assert_eq!(
            fed.deposit_script_pubkey(GENESIS, [9; 32]).expect("script"),
            rev.deposit_script_pubkey(GENESIS, [9; 32]).expect("script")
        );
    }

    #[test]
    fn tweaked_secret_matches_tweaked_key() {
        let secp = Secp256k1::new();
        let fed = federation(3, 4);
        let tweaked = fed.deposit_keys(GENESIS, [5; 32]).expect("keys");
        for (sk, want) in secrets(4).iter().zip(tweaked) {
            let tsk = tweak_secret(&secp, sk, GENESIS, [5; 32]).expect("tweak");
            assert_eq!(PublicKey::new(tsk.public_key(&secp)), want);
        }
    }

    fn spend_psbt(fed: &Federation, recipient: [u8; 32]) -> Psbt {
        let spk = fed.deposit_script_pubkey(GENESIS, recipient).expect("script");
        let tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint { txid: Txid::from_byte_array([3; 32]), vout: 1 },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(99_000), script_pubkey: fed.script_pubkey() }],
        };
        let mut psbt = Psbt::from_unsigned_tx(tx).expect("unsigned");
        psbt.inputs[0].witness_utxo = Some(TxOut { value: Amount::from_sat(100_000), script_pubkey: spk });
        psbt.inputs[0].witness_script = Some(fed.deposit_witness_script(GENESIS, recipient).expect("ws"));
        psbt
    }

    #[test]
    fn tweaked_secrets_spend_a_deposit() {
        let secp = Secp256k1::new();
        let fed = federation(3, 4);
        let r = [7; 32];
        let mut psbt = spend_psbt(&fed, r);
        // Untweaked keys are not in the deposit script.
        assert!(sign_input(&secp, &mut psbt, 0, &secrets(4)[0]).is_err());
        for sk in &secrets(4)[1..] {
            sign_input(&secp, &mut psbt, 0, &tweak_secret(&secp, sk, GENESIS, r).expect("tweak")).expect("sign");
        }
        let unsigned = psbt.unsigned_tx.clone();
        let ws = psbt.inputs[0].witness_script.clone().expect("ws");
        let tx = finalize(&secp, psbt).expect("3 of 4 tweaked signatures finalize");
        // The peg-in fee's size bound covers the real input.
        let desc = fed.deposit_descriptor(GENESIS, r).expect("descriptor");
        assert!(tx.input[0].segwit_weight() <= crate::fee::input_weight(&desc).expect("weight"));
        // Witness: empty (CHECKMULTISIG bug), 3 signatures, the witness script.
        let w: Vec<&[u8]> = tx.input[0].witness.iter().collect();
        assert_eq!(w.len(), 5);
        assert!(w[0].is_empty());
        assert_eq!(w[4], ws.as_bytes());
        let sighash = SighashCache::new(&unsigned)
            .p2wsh_signature_hash(0, &ws, Amount::from_sat(100_000), EcdsaSighashType::All)
            .expect("sighash");
        let msg = Message::from(sighash);
        let keys = fed.deposit_keys(GENESIS, r).expect("keys");
        for sig in &w[1..4] {
            let (last, der) = sig.split_last().expect("non-empty");
            assert_eq!(*last, EcdsaSighashType::All as u8);
            let sig = ecdsa::Signature::from_der(der).expect("der");
            assert!(keys.iter().any(|k| secp.verify_ecdsa(&msg, &sig, &k.inner).is_ok()));
        }
        // A signature by a tweak for another recipient is rejected up front.
        let mut other = spend_psbt(&fed, r);
        let wrong = tweak_secret(&secp, &secrets(4)[0], GENESIS, [8; 32]).expect("tweak");
        assert!(sign_input(&secp, &mut other, 0, &wrong).is_err());
    }
}
