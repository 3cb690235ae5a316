//! The federation wallet with an emergency recovery path (groundwork for issue 12; not wired into the
//! genesis, deposit addresses or batches yet):
//! `wsh(or_d(multi(k, K1..Kn), and_v(v:multi(m, E1..Ej), older(D))))`.
//!
//! Why: with a plain k-of-n wallet, losing n - k + 1 peg keys freezes every BTC the federation holds,
//! forever. Liquid answers with timelocked emergency keys (`older(4032)`): the federation spends at any
//! time with k signatures; a separate, offline set of emergency keys can spend an output only once it is D
//! blocks deep. `older` counts from each output's confirmation, so a healthy federation keeps the path
//! closed by refreshing outputs before they reach D (a sweep, still to be built in execution).
//!
//! Invariants owned here:
//! - the federation branch comes first (`or_d`): miniscript satisfies it whenever k signatures exist, and
//!   the emergency branch is satisfiable only by an input whose sequence encodes a relative lock of at
//!   least D blocks (the federation's own spends use `0xFFFFFFFD`, which disables relative locks, so they
//!   can never take the emergency branch by accident);
//! - keys are sorted inside each `multi`, so the script does not depend on the order they were listed in;
//! - an emergency key is never a federation key, and no key appears twice anywhere.

use crate::federation::FederationError;
use bitcoin::{Address, Network, PublicKey, ScriptBuf, Sequence};
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

/// A federation wallet whose outputs the emergency keys may also spend after [`Recovery::delay`] blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverableFederation {
    threshold: usize,
    keys: Vec<PublicKey>,
    recovery: Recovery,
    descriptor: Descriptor<PublicKey>,
}

fn check_keys(keys: &[PublicKey], seen: &mut Vec<PublicKey>) -> Result<(), FederationError> {
    for k in keys {
        if !k.compressed {
            return Err(FederationError::UncompressedKey(*k));
        }
        if seen.contains(k) {
            return Err(FederationError::DuplicateKey(*k));
        }
        seen.push(*k);
    }
    Ok(())
}

fn sorted_list(keys: &[PublicKey]) -> String {
    let mut sorted = keys.to_vec();
    sorted.sort_by_key(|k| k.inner.serialize());
    sorted.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

impl RecoverableFederation {
    /// Builds the descriptor after checking both thresholds, the delay and every key.
    pub fn new(threshold: usize, keys: Vec<PublicKey>, recovery: Recovery) -> Result<Self, FederationError> {
        if threshold == 0 || threshold > keys.len() {
            return Err(FederationError::BadThreshold { threshold, keys: keys.len() });
        }
        if recovery.threshold == 0 || recovery.threshold > recovery.keys.len() {
            return Err(FederationError::BadThreshold { threshold: recovery.threshold, keys: recovery.keys.len() });
        }
        if recovery.delay == 0 || recovery.delay > MAX_RECOVERY_DELAY {
            return Err(FederationError::BadRecoveryDelay(recovery.delay));
        }
        let mut seen = Vec::new();
        check_keys(&keys, &mut seen)?;
        if let Some(shared) = recovery.keys.iter().find(|e| keys.contains(e)) {
            return Err(FederationError::EmergencyKeyIsValidatorKey(*shared));
        }
        check_keys(&recovery.keys, &mut seen)?;
        let text = format!(
            "wsh(or_d(multi({threshold},{}),and_v(v:multi({},{}),older({}))))",
            sorted_list(&keys),
            recovery.threshold,
            sorted_list(&recovery.keys),
            recovery.delay
        );
        let descriptor =
            Descriptor::<PublicKey>::from_str(&text).map_err(|e| FederationError::Miniscript(e.to_string()))?;
        descriptor.sanity_check().map_err(|e| FederationError::Miniscript(e.to_string()))?;
        Ok(RecoverableFederation { threshold, keys, recovery, descriptor })
    }

    /// The federation's threshold.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The federation's keys as given.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The emergency branch.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The miniscript descriptor.
    pub fn descriptor(&self) -> &Descriptor<PublicKey> {
        &self.descriptor
    }

    /// The output script.
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

    /// The input sequence an emergency spend must carry: a relative lock of exactly the delay in blocks.
    pub fn emergency_sequence(&self) -> Sequence {
        Sequence::from_height(u16::try_from(self.recovery.delay).unwrap_or(u16::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let a = RecoverableFederation::new(3, keys(1, 4), recovery(144)).expect("valid");
        let text = a.descriptor().to_string();
        assert!(text.starts_with("wsh(or_d(multi(3,") && text.contains("older(144)"), "{text}");
        let mut reversed = keys(1, 4);
        reversed.reverse();
        let b = RecoverableFederation::new(3, reversed, recovery(144)).expect("valid");
        assert_eq!(a.script_pubkey(), b.script_pubkey());
        let plain = crate::Federation::new(3, keys(1, 4)).expect("valid");
        assert_ne!(a.script_pubkey(), plain.script_pubkey(), "a different wallet than the plain k-of-n");
        assert_eq!(a.emergency_sequence(), Sequence::from_height(144));
    }

    #[test]
    fn bad_sets_are_refused_with_clear_errors() {
        let validators = keys(1, 4);
        let shared = Recovery { threshold: 2, keys: vec![validators[2], keys(60, 1)[0]], delay: 10 };
        let e = RecoverableFederation::new(3, validators.clone(), shared).expect_err("shared key");
        assert_eq!(e, FederationError::EmergencyKeyIsValidatorKey(validators[2]));
        assert!(e.to_string().contains("emergency key"), "{e}");
        let dup = Recovery { threshold: 2, keys: vec![keys(60, 1)[0], keys(60, 1)[0]], delay: 10 };
        assert!(matches!(
            RecoverableFederation::new(3, validators.clone(), dup),
            Err(FederationError::DuplicateKey(_))
        ));
        let too_many = Recovery { threshold: 4, keys: keys(60, 3), delay: 10 };
        assert!(matches!(
            RecoverableFederation::new(3, validators.clone(), too_many),
            Err(FederationError::BadThreshold { threshold: 4, keys: 3 })
        ));
        for delay in [0, MAX_RECOVERY_DELAY + 1] {
            assert_eq!(
                RecoverableFederation::new(3, validators.clone(), recovery(delay)),
                Err(FederationError::BadRecoveryDelay(delay))
            );
        }
        assert!(matches!(
            RecoverableFederation::new(5, validators, recovery(10)),
            Err(FederationError::BadThreshold { threshold: 5, keys: 4 })
        ));
    }
}
