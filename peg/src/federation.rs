//! The federation wallet: a miniscript descriptor over the validators' secp256k1 peg keys.
//!
//! The descriptor is the single source of truth for what the federation can spend and with how many
//! signatures: `wsh(sortedmulti(k, K1..Kn))`, or with an emergency path (see [`crate::recovery`])
//! `wsh(or_d(multi(k, K1..Kn), and_v(v:multi(m, E1..Ej), older(D))))`. Keys are sorted in the script, so
//! every validator derives the same address from the same key set whatever order they are listed in.

use crate::recovery::Recovery;
use bitcoin::{Address, Network, PublicKey, ScriptBuf};
use miniscript::descriptor::{Descriptor, Wsh};

mod error;
pub use error::FederationError;

/// A k-of-n federation over compressed secp256k1 keys, with or without an emergency path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    threshold: usize,
    keys: Vec<PublicKey>,
    recovery: Option<Recovery>,
    descriptor: Descriptor<PublicKey>,
}

impl Federation {
    /// Builds `wsh(sortedmulti(threshold, keys...))` after checking the threshold and the keys.
    pub fn new(threshold: usize, keys: Vec<PublicKey>) -> Result<Self, FederationError> {
        Self::build(threshold, keys, None)
    }

    /// Builds `wsh(or_d(multi(threshold, keys..), and_v(v:multi(m, E..), older(D))))` after checking both
    /// thresholds, the delay and every key (an emergency key may not be a federation key).
    pub fn with_recovery(threshold: usize, keys: Vec<PublicKey>, recovery: Recovery) -> Result<Self, FederationError> {
        Self::build(threshold, keys, Some(recovery))
    }

    fn build(threshold: usize, keys: Vec<PublicKey>, recovery: Option<Recovery>) -> Result<Self, FederationError> {
        if threshold == 0 || threshold > keys.len() {
            return Err(FederationError::BadThreshold { threshold, keys: keys.len() });
        }
        for (i, k) in keys.iter().enumerate() {
            if !k.compressed {
                return Err(FederationError::UncompressedKey(*k));
            }
            if keys[..i].contains(k) {
                return Err(FederationError::DuplicateKey(*k));
            }
        }
        if let Some(r) = &recovery {
            r.check(&keys)?;
        }
        let descriptor = descriptor_over(threshold, &keys, recovery.as_ref())?;
        Ok(Federation { threshold, keys, recovery, descriptor })
    }

    /// The same wallet shape over other federation keys (the deposit-tweaked ones): the threshold and the
    /// emergency branch are kept as they are.
    pub(crate) fn descriptor_over(&self, keys: &[PublicKey]) -> Result<Descriptor<PublicKey>, FederationError> {
        descriptor_over(self.threshold, keys, self.recovery.as_ref())
    }

    /// The emergency path, if the wallet has one.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The threshold k: how many signatures spend a federation output.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The peg keys in the order they were given (the script itself sorts them).
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The miniscript descriptor.
    pub fn descriptor(&self) -> &Descriptor<PublicKey> {
        &self.descriptor
    }

    /// The output script that locks coins to the federation.
    pub fn script_pubkey(&self) -> ScriptBuf {
        self.descriptor.script_pubkey()
    }

    /// The witness script a spend reveals.
    pub fn witness_script(&self) -> ScriptBuf {
        self.descriptor.explicit_script().expect("a wsh descriptor always has an explicit script")
    }

    /// The P2WSH address on `network`.
    pub fn address(&self, network: Network) -> Address {
        self.descriptor.address(network).expect("a wsh descriptor always has an address")
    }
}

fn descriptor_over(
    threshold: usize,
    keys: &[PublicKey],
    recovery: Option<&Recovery>,
) -> Result<Descriptor<PublicKey>, FederationError> {
    match recovery {
        Some(r) => r.descriptor(threshold, keys),
        None => Wsh::new_sortedmulti(threshold, keys.to_vec())
            .map(Descriptor::Wsh)
            .map_err(|e| FederationError::Miniscript(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    fn keys(n: u8) -> Vec<PublicKey> {
        let secp = Secp256k1::new();
        (1..=n)
            .map(|i| PublicKey::new(SecretKey::from_slice(&[i; 32]).expect("valid scalar").public_key(&secp)))
            .collect()
    }

    #[test]
    fn address_does_not_depend_on_key_order() {
        let mut k = keys(4);
        let a = Federation::new(3, k.clone()).expect("valid");
        k.reverse();
        let b = Federation::new(3, k).expect("valid");
        assert_eq!(a.address(Network::Regtest), b.address(Network::Regtest));
        assert!(a.descriptor().to_string().starts_with("wsh(sortedmulti(3,"));
    }

    #[test]
    fn rejects_bad_thresholds_and_duplicates() {
        let k = keys(4);
        assert_eq!(Federation::new(0, k.clone()), Err(FederationError::BadThreshold { threshold: 0, keys: 4 }));
        assert_eq!(Federation::new(5, k.clone()), Err(FederationError::BadThreshold { threshold: 5, keys: 4 }));
        let mut dup = k.clone();
        dup[3] = dup[0];
        assert_eq!(Federation::new(3, dup), Err(FederationError::DuplicateKey(k[0])));
        let mut unc = k.clone();
        unc[1].compressed = false;
        assert!(matches!(Federation::new(3, unc), Err(FederationError::UncompressedKey(_))));
    }
}
