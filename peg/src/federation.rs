//! The federation wallet: a miniscript descriptor over the validators' secp256k1 peg keys.
//!
//! The descriptor is the single source of truth for what the federation can spend and with how many
//! signatures. Two custodies ([`Custody`]):
//! - **wsh** (every chain before taproot custody): `wsh(sortedmulti(k, K1..Kn))`, or with an emergency path
//!   (see [`crate::recovery`]) `wsh(or_d(multi(k, K1..Kn), and_v(v:multi(m, E1..Ej), older(D))))`;
//! - **taproot**: `tr(P, multi_a(k, K1..Kn))`, or with the emergency path
//!   `tr(P, {multi_a(k, K1..Kn), and_v(v:multi_a(m, E1..Ej), older(D))})`, where `P` is the federation's FROST
//!   group key ([`crate::frost`]): a healthy federation spends by key path (one BIP340 signature, 57.5 vB per
//!   input), the `multi_a` leaf is the fallback when a FROST signing cannot finish, and the emergency leaf
//!   keeps the wsh wallet's semantics.
//!
//! Keys are sorted in every script, so every validator derives the same address from the same key set
//! whatever order they are listed in.

use crate::recovery::Recovery;
use bitcoin::key::XOnlyPublicKey;
use bitcoin::secp256k1::Parity;
use bitcoin::{Address, Network, PublicKey, ScriptBuf, TapNodeHash};
use frost_secp256k1_tr::keys::PublicKeyPackage;
use miniscript::descriptor::{Descriptor, Wsh};
use std::str::FromStr;

mod error;
pub use error::FederationError;

/// How the federation holds its coins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Custody {
    /// A `wsh` multisig: each validator signs every input with its own peg key (ECDSA).
    Wsh,
    /// A taproot output: key path by the FROST group key, script leaves over the peg keys.
    Taproot {
        /// The FROST group key (x-only), the taproot internal key of every federation output.
        group_key: XOnlyPublicKey,
    },
}

/// How a batch plans to spend a taproot federation's inputs, which sets the witness size it is priced on
/// ([`crate::fee::planned_witness_weight`]). The wsh wallet has one way to spend and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpendPath {
    /// One FROST signature by the group key (57.5 vB per input): the healthy case.
    #[default]
    KeyPath,
    /// The largest script-path witness: what a batch signed in the `multi_a` fallback leaf with the peg
    /// keys (or, bounded by it, the emergency leaf) costs.
    Leaf,
}

/// A k-of-n federation over compressed secp256k1 keys, with or without an emergency path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    threshold: usize,
    keys: Vec<PublicKey>,
    recovery: Option<Recovery>,
    custody: Custody,
    descriptor: Descriptor<PublicKey>,
    planned_path: SpendPath,
}

impl Federation {
    /// Builds `wsh(sortedmulti(threshold, keys...))` after checking the threshold and the keys.
    pub fn new(threshold: usize, keys: Vec<PublicKey>) -> Result<Self, FederationError> {
        Self::build(threshold, keys, None, Custody::Wsh)
    }

    /// Builds `wsh(or_d(multi(threshold, keys..), and_v(v:multi(m, E..), older(D))))` after checking both
    /// thresholds, the delay and every key (an emergency key may not be a federation key).
    pub fn with_recovery(threshold: usize, keys: Vec<PublicKey>, recovery: Recovery) -> Result<Self, FederationError> {
        Self::build(threshold, keys, Some(recovery), Custody::Wsh)
    }

    /// Builds the taproot wallet `tr(P, {multi_a(threshold, keys..)[, emergency leaf]})` where `P` is the
    /// group key of `group`, after the wsh wallet's checks and these: `group` is a DKG of exactly
    /// `keys.len()` participants (validator `i` is participant `i + 1`) whose threshold is `threshold`, so the
    /// key path needs as many validators as the fallback leaf; and no two keys of the wallet (peg keys,
    /// emergency keys, the group key) share an x coordinate, which tapscript would count as one key.
    pub fn taproot(
        group: &PublicKeyPackage,
        threshold: usize,
        keys: Vec<PublicKey>,
        recovery: Option<Recovery>,
    ) -> Result<Self, FederationError> {
        if group.min_signers().map(usize::from) != Some(threshold) {
            return Err(FederationError::GroupMismatch("its threshold is not the federation's"));
        }
        let ids: Vec<_> = group.verifying_shares().keys().copied().collect();
        let expected: Vec<_> = (0..keys.len())
            .map(crate::frost::participant)
            .collect::<Result<_, _>>()
            .map_err(|_| FederationError::GroupMismatch("more validators than FROST participants"))?;
        if ids != expected {
            return Err(FederationError::GroupMismatch("its participants are not the federation's validators"));
        }
        let group_key = crate::frost::group_key(group)
            .map_err(|_| FederationError::GroupMismatch("its group key is not a valid point"))?;
        let mut seen = vec![group_key];
        for key in keys.iter().chain(recovery.iter().flat_map(|r| r.keys.iter())) {
            let x = key.inner.x_only_public_key().0;
            if seen.contains(&x) {
                return Err(FederationError::DuplicateXOnlyKey(*key));
            }
            seen.push(x);
        }
        Self::build(threshold, keys, recovery, Custody::Taproot { group_key })
    }

    fn build(
        threshold: usize,
        keys: Vec<PublicKey>,
        recovery: Option<Recovery>,
        custody: Custody,
    ) -> Result<Self, FederationError> {
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
        let descriptor = descriptor_over(threshold, &keys, recovery.as_ref(), custody)?;
        Ok(Federation { threshold, keys, recovery, custody, descriptor, planned_path: SpendPath::default() })
    }

    /// The same wallet, with batches planned for spending by `path` (taproot custody: a chain that cannot
    /// sign by key path plans at the leaf's size, or its batches would pay below their rate).
    pub fn planned_for(mut self, path: SpendPath) -> Self {
        self.planned_path = path;
        self
    }

    /// The path batches over this wallet are planned for ([`Federation::planned_for`]; key path by default).
    pub fn planned_path(&self) -> SpendPath {
        self.planned_path
    }

    /// The same wallet shape over other federation keys (the deposit-tweaked ones): the threshold, the
    /// emergency branch and the taproot internal key are kept as they are.
    pub(crate) fn descriptor_over(&self, keys: &[PublicKey]) -> Result<Descriptor<PublicKey>, FederationError> {
        descriptor_over(self.threshold, keys, self.recovery.as_ref(), self.custody)
    }

    /// How the federation holds its coins.
    pub fn custody(&self) -> Custody {
        self.custody
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

    /// The witness script a spend reveals: the wsh wallet's only script; `None` for taproot custody, whose
    /// spends reveal a leaf script and its control block, or nothing but a signature.
    pub fn witness_script(&self) -> Option<ScriptBuf> {
        self.descriptor.explicit_script().ok()
    }

    /// The merkle root of the federation output's script tree (taproot custody; `None` for wsh).
    pub fn merkle_root(&self) -> Option<TapNodeHash> {
        merkle_root(&self.descriptor)
    }

    /// The federation's address on `network` (P2WSH or P2TR).
    pub fn address(&self, network: Network) -> Address {
        self.descriptor.address(network).expect("wsh and tr descriptors always have an address")
    }
}

/// The merkle root of a taproot descriptor's script tree: the tweak its key-path signatures are made with.
pub fn merkle_root(descriptor: &Descriptor<PublicKey>) -> Option<TapNodeHash> {
    match descriptor {
        Descriptor::Tr(tr) => tr.spend_info().merkle_root(),
        _ => None,
    }
}

fn descriptor_over(
    threshold: usize,
    keys: &[PublicKey],
    recovery: Option<&Recovery>,
    custody: Custody,
) -> Result<Descriptor<PublicKey>, FederationError> {
    match (custody, recovery) {
        (Custody::Wsh, Some(r)) => r.descriptor(threshold, keys),
        (Custody::Wsh, None) => Wsh::new_sortedmulti(threshold, keys.to_vec())
            .map(Descriptor::Wsh)
            .map_err(|e| FederationError::Miniscript(e.to_string())),
        (Custody::Taproot { group_key }, recovery) => {
            let fallback = format!("multi_a({threshold},{})", crate::recovery::sorted_x_only_list(keys));
            let tree = match recovery {
                Some(r) => format!("{{{fallback},{}}}", r.tap_leaf()),
                None => fallback,
            };
            // The internal key is written as the even-y compressed key: miniscript's `PublicKey` keys are
            // 33 bytes, and a taproot descriptor reads a compressed key as its x coordinate.
            let internal = PublicKey::new(group_key.public_key(Parity::Even));
            let descriptor = Descriptor::<PublicKey>::from_str(&format!("tr({internal},{tree})"))
                .map_err(|e| FederationError::Miniscript(e.to_string()))?;
            descriptor.sanity_check().map_err(|e| FederationError::Miniscript(e.to_string()))?;
            Ok(descriptor)
        }
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
