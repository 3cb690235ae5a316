//! The emergency recovery path of the federation wallet:
//! `wsh(or_d(multi(k, K1..Kn), and_v(v:multi(m, E1..Ej), older(D))))`.
//!
//! Why: with a plain k-of-n wallet, losing n - k + 1 peg keys freezes every BTC the federation holds,
//! forever. Liquid answers with timelocked emergency keys (`older(4032)`): the federation spends at any
//! time with k signatures; a separate, offline set of emergency keys can spend an output only once it is D
//! blocks deep. `older` counts from each output's confirmation, so a healthy federation keeps the path
//! closed by refreshing outputs before they reach D (the refresh sweep in the ledger's batching).
//!
//! Invariants owned here:
//! - the federation branch comes first (`or_d`): miniscript satisfies it whenever k signatures exist, and
//!   the emergency branch is satisfiable only by an input whose sequence encodes a relative lock of at
//!   least D blocks (the federation's own spends use `0xFFFFFFFD`, which disables relative locks, so they
//!   can never take the emergency branch by accident);
//! - keys are sorted inside each `multi`, so the script does not depend on the order they were listed in;
//! - an emergency key is never a federation key, and no key appears twice anywhere;
//! - deposit tweaks apply to the federation keys only: the emergency keys stay as they are, so their holders
//!   need nothing but the public chain (the recipient of each deposit) to rebuild every script.

use crate::federation::FederationError;
use bitcoin::{PublicKey, Sequence};
use miniscript::Descriptor;
use std::str::FromStr;

/// Largest relative lock in blocks that BIP68 encodes (16 bits).
pub const MAX_RECOVERY_DELAY: u32 = 0xFFFF;

/// The emergency keys and when they may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Signatures the emergency branch needs.
    pub threshold: usize,
    /// The emergency keys (held offline, apart from the validators).
    pub keys: Vec<PublicKey>,
    /// Blocks an output must be deep before the emergency keys may spend it (BIP68 relative lock).
    pub delay: u32,
}

impl Recovery {
    /// The input sequence an emergency spend must carry: a relative lock of exactly the delay in blocks.
    pub fn emergency_sequence(&self) -> Sequence {
        Sequence::from_height(u16::try_from(self.delay).unwrap_or(u16::MAX))
    }

    /// Checks the threshold, the delay, and that no emergency key is one of `federation_keys` or repeated.
    pub(crate) fn check(&self, federation_keys: &[PublicKey]) -> Result<(), FederationError> {
        if self.threshold == 0 || self.threshold > self.keys.len() {
            return Err(FederationError::BadThreshold { threshold: self.threshold, keys: self.keys.len() });
        }
        if self.delay == 0 || self.delay > MAX_RECOVERY_DELAY {
            return Err(FederationError::BadRecoveryDelay(self.delay));
        }
        if let Some(shared) = self.keys.iter().find(|e| federation_keys.contains(e)) {
            return Err(FederationError::EmergencyKeyIsValidatorKey(*shared));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if !k.compressed {
                return Err(FederationError::UncompressedKey(*k));
            }
            if self.keys[..i].contains(k) {
                return Err(FederationError::DuplicateKey(*k));
            }
        }
        Ok(())
    }

    /// The emergency leaf of the taproot wallet: `and_v(v:multi_a(m, E..), older(D))`.
    pub(crate) fn tap_leaf(&self) -> String {
        format!("and_v(v:multi_a({},{}),older({}))", self.threshold, sorted_x_only_list(&self.keys), self.delay)
    }

    /// `wsh(or_d(multi(k, keys..), and_v(v:multi(m, E..), older(D))))` over `keys` (plain or tweaked).
    pub(crate) fn descriptor(
        &self,
        threshold: usize,
        keys: &[PublicKey],
    ) -> Result<Descriptor<PublicKey>, FederationError> {
        let text = format!(
            "wsh(or_d(multi({threshold},{}),and_v(v:multi({},{}),older({}))))",
            sorted_list(keys),
            self.threshold,
            sorted_list(&self.keys),
            self.delay
        );
        let descriptor =
            Descriptor::<PublicKey>::from_str(&text).map_err(|e| FederationError::Miniscript(e.to_string()))?;
        descriptor.sanity_check().map_err(|e| FederationError::Miniscript(e.to_string()))?;
        Ok(descriptor)
    }
}

/// Keys sorted by their x-only bytes (what a tapscript `multi_a` checks them as), written as compressed keys.
pub(crate) fn sorted_x_only_list(keys: &[PublicKey]) -> String {
    let mut sorted = keys.to_vec();
    sorted.sort_by_key(|k| k.inner.x_only_public_key().0.serialize());
    sorted.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

fn sorted_list(keys: &[PublicKey]) -> String {
    let mut sorted = keys.to_vec();
    sorted.sort_by_key(|k| k.inner.serialize());
    sorted.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Federation;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    fn keys(from: u8, n: u8) -> Vec<PublicKey> {
        let secp = Secp256k1::new();
        (from..from + n)
            .map(|i| PublicKey::new(SecretKey::from_slice(&[i; 32]).expect("valid scalar").public_key(&secp)))
            .collect()
    }

    fn recovery(delay: u32) -> Recovery {
        Recovery { threshold: 2, keys: keys(50, 3), delay }
    }

    #[test]
    fn the_descriptor_has_both_branches_and_ignores_key_order() {
        let a = Federation::with_recovery(3, keys(1, 4), recovery(144)).expect("valid");
        let text = a.descriptor().to_string();
        assert!(text.starts_with("wsh(or_d(multi(3,") && text.contains("older(144)"), "{text}");
        let mut reversed = keys(1, 4);
        reversed.reverse();
        let b = Federation::with_recovery(3, reversed, recovery(144)).expect("valid");
        assert_eq!(a.script_pubkey(), b.script_pubkey());
        let plain = Federation::new(3, keys(1, 4)).expect("valid");
        assert_ne!(a.script_pubkey(), plain.script_pubkey(), "a different wallet than the plain k-of-n");
        assert_eq!(a.recovery().expect("has one").emergency_sequence(), Sequence::from_height(144));
        // Deposits keep the emergency branch, with the emergency keys untweaked.
        let deposit = a.deposit_descriptor([7; 32], [1; 32]).expect("deposit").to_string();
        assert!(deposit.starts_with("wsh(or_d(multi(3,") && deposit.contains("older(144)"), "{deposit}");
        for e in keys(50, 3) {
            assert!(deposit.contains(&e.to_string()), "emergency key {e} untweaked in {deposit}");
        }
        assert_ne!(a.deposit_script_pubkey([7; 32], [1; 32]).expect("script"), a.script_pubkey());
    }

    #[test]
    fn bad_sets_are_refused_with_clear_errors() {
        let validators = keys(1, 4);
        let shared = Recovery { threshold: 2, keys: vec![validators[2], keys(60, 1)[0]], delay: 10 };
        let e = Federation::with_recovery(3, validators.clone(), shared).expect_err("shared key");
        assert_eq!(e, FederationError::EmergencyKeyIsValidatorKey(validators[2]));
        assert!(e.to_string().contains("emergency key"), "{e}");
        let dup = Recovery { threshold: 2, keys: vec![keys(60, 1)[0], keys(60, 1)[0]], delay: 10 };
        assert!(matches!(Federation::with_recovery(3, validators.clone(), dup), Err(FederationError::DuplicateKey(_))));
        let too_many = Recovery { threshold: 4, keys: keys(60, 3), delay: 10 };
        assert!(matches!(
            Federation::with_recovery(3, validators.clone(), too_many),
            Err(FederationError::BadThreshold { threshold: 4, keys: 3 })
        ));
        for delay in [0, MAX_RECOVERY_DELAY + 1] {
            assert_eq!(
                Federation::with_recovery(3, validators.clone(), recovery(delay)),
                Err(FederationError::BadRecoveryDelay(delay))
            );
        }
        assert!(matches!(
            Federation::with_recovery(5, validators, recovery(10)),
            Err(FederationError::BadThreshold { threshold: 5, keys: 4 })
        ));
    }
}
