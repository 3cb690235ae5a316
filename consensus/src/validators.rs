//! The validator set of a height: ed25519 keys with voting power, the quorum thresholds, and the
//! proposer of each `(height, round)`.
//!
//! Invariants owned here: thresholds are strict (`> 2/3` and `> 1/3` of total power, computed without
//! overflow), and every node computes the same proposer for a `(height, round)` from the set alone.

use primitives::{Height, PublicKey, Round, ValidatorIndex};

/// The proposer schedule has at most this many slots; larger total powers are scaled down for scheduling
/// only (thresholds always use exact powers).
const MAX_SCHEDULE_SLOTS: u64 = 4096;

/// One validator: consensus key and voting power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its ed25519 consensus key.
    pub public_key: PublicKey,
    /// Its voting power (> 0).
    pub power: u64,
}

/// Why a list of validators is not a usable set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators at all.
    #[error("validator set is empty")]
    Empty,
    /// More validators than a `ValidatorIndex` can name.
    #[error("validator set has {0} validators, at most 65535 are supported")]
    TooMany(usize),
    /// A validator without power.
    #[error("validator {0} has zero voting power")]
    ZeroPower(ValidatorIndex),
    /// The same key twice.
    #[error("validator {1} repeats the key of validator {0}")]
    DuplicateKey(ValidatorIndex, ValidatorIndex),
    /// A key that is not an ed25519 point.
    #[error("validator {0} has a malformed ed25519 key")]
    MalformedKey(ValidatorIndex),
    /// Total power does not fit in a u64.
    #[error("total voting power overflows u64")]
    PowerOverflow,
}

/// The validators of a height, in index order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    /// Weighted, interleaved round-robin over one cycle (derived from the powers).
    schedule: Vec<ValidatorIndex>,
}

impl ValidatorSet {
    /// Builds a set from `(key, power)` pairs; the index of a validator is its position.
    pub fn new(members: Vec<(PublicKey, u64)>) -> Result<Self, ValidatorSetError> {
        if members.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if members.len() > usize::from(u16::MAX) {
            return Err(ValidatorSetError::TooMany(members.len()));
        }
        let mut total: u64 = 0;
        let mut seen = std::collections::BTreeMap::new();
        let mut validators = Vec::with_capacity(members.len());
        for (i, (public_key, power)) in members.into_iter().enumerate() {
            let idx = index(i);
            if power == 0 {
                return Err(ValidatorSetError::ZeroPower(idx));
            }
            if public_key.check().is_err() {
                return Err(ValidatorSetError::MalformedKey(idx));
            }
            if let Some(first) = seen.insert(public_key, idx) {
                return Err(ValidatorSetError::DuplicateKey(first, idx));
            }
            total = total.checked_add(power).ok_or(ValidatorSetError::PowerOverflow)?;
            validators.push(Validator { public_key, power });
        }
        let schedule = build_schedule(&validators, total);
        Ok(ValidatorSet { validators, total_power: total, schedule })
    }

    /// A set where every key has power 1.
    pub fn equal_power(keys: Vec<PublicKey>) -> Result<Self, ValidatorSetError> {
        Self::new(keys.into_iter().map(|k| (k, 1)).collect())
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true for a constructed set (kept for the `len` convention).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validators in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator at `idx`.
    pub fn get(&self, idx: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(idx.as_usize())
    }

    /// The key of the validator at `idx`.
    pub fn public_key(&self, idx: ValidatorIndex) -> Option<&PublicKey> {
        self.get(idx).map(|v| &v.public_key)
    }

    /// The power of the validator at `idx` (0 if unknown).
    pub fn power(&self, idx: ValidatorIndex) -> u64 {
        self.get(idx).map_or(0, |v| v.power)
    }

    /// The index of `key`, if it is a member.
    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.validators.iter().position(|v| &v.public_key == key).map(index)
    }

    /// Sum of all powers.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// `power > 2/3 * total`: a quorum (2f+1).
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }

    /// `power > 1/3 * total`: at least one honest validator among them (f+1).
    pub fn is_one_third(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power)
    }

    /// The least power that is a quorum.
    pub fn quorum_power(&self) -> u64 {
        // floor(2t/3) + 1 is the least p with 3p > 2t; cannot overflow since it is <= t.
        let t = u128::from(self.total_power);
        u64::try_from(t * 2 / 3 + 1).unwrap_or(u64::MAX)
    }

    /// The proposer of `(height, round)`: slot `height + round` of a weighted round-robin cycle.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let slots = self.schedule.len() as u128;
        let slot = (u128::from(height.get()) + u128::from(round.get())) % slots;
        // `slot < schedule.len()` by the modulo above, and a built schedule is never empty.
        self.schedule[slot as usize]
    }
}

fn index(i: usize) -> ValidatorIndex {
    // Callers bound `i` by the set size, which `new` caps at u16::MAX.
    ValidatorIndex(u16::try_from(i).unwrap_or(u16::MAX))
}

/// Smooth weighted round-robin (Tendermint's proposer-priority algorithm over one cycle): each slot every
/// validator gains its power in priority, the highest (lowest index on ties) proposes and loses the total.
/// A validator with power p proposes p times per cycle, spread out rather than in a run.
fn build_schedule(validators: &[Validator], total: u64) -> Vec<ValidatorIndex> {
    let weights: Vec<i128> = if total > MAX_SCHEDULE_SLOTS {
        validators
            .iter()
            .map(|v| {
                let w = u128::from(v.power) * u128::from(MAX_SCHEDULE_SLOTS) / u128::from(total);
                i128::try_from(w.max(1)).unwrap_or(1)
            })
            .collect()
    } else {
        validators.iter().map(|v| i128::from(v.power)).collect()
    };
    let cycle: i128 = weights.iter().sum();
    let mut priority = vec![0i128; weights.len()];
    let mut schedule = Vec::with_capacity(usize::try_from(cycle).unwrap_or(0));
    for _ in 0..cycle {
        let mut best = 0;
        for i in 0..weights.len() {
            priority[i] += weights[i];
            if priority[i] > priority[best] {
                best = i;
            }
        }
        priority[best] -= cycle;
        schedule.push(index(best));
    }
    schedule
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Keypair;

    fn keys(n: u8) -> Vec<PublicKey> {
        (0..n).map(|i| Keypair::from_secret([i + 1; 32]).public()).collect()
    }

    #[test]
    fn thresholds_are_strict() {
        let set = ValidatorSet::equal_power(keys(4)).unwrap();
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        assert_eq!(set.quorum_power(), 3);
        assert!(!set.is_one_third(1));
        assert!(set.is_one_third(2));
        let set = ValidatorSet::equal_power(keys(7)).unwrap();
        assert_eq!(set.quorum_power(), 5);
        assert!(!set.is_quorum(4));
        assert!(set.is_one_third(3));
        assert!(!set.is_one_third(2));
    }

    #[test]
    fn equal_power_is_round_robin_and_weighted_is_spread() {
        let set = ValidatorSet::equal_power(keys(4)).unwrap();
        let order: Vec<u16> = (0..8).map(|r| set.proposer(Height(0), Round(r)).0).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(set.proposer(Height(1), Round(0)), ValidatorIndex(1));

        let k = keys(3);
        let set = ValidatorSet::new(vec![(k[0], 3), (k[1], 1), (k[2], 1)]).unwrap();
        let order: Vec<u16> = (0..5).map(|r| set.proposer(Height(0), Round(r)).0).collect();
        assert_eq!(order.iter().filter(|&&i| i == 0).count(), 3);
        // Spread out: validator 0 never proposes three slots in a row.
        assert!(!order.windows(3).any(|w| w.iter().all(|&i| i == 0)));
    }

    #[test]
    fn huge_powers_are_scaled_for_the_schedule_only() {
        let k = keys(2);
        let set = ValidatorSet::new(vec![(k[0], u64::MAX / 2), (k[1], u64::MAX / 2)]).unwrap();
        assert!(set.schedule.len() <= MAX_SCHEDULE_SLOTS as usize + 2);
        assert!(set.is_quorum(u64::MAX / 2 * 2));
        assert!(!set.is_quorum(u64::MAX / 2));
    }

    #[test]
    fn rejects_bad_sets() {
        let k = keys(2);
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert_eq!(ValidatorSet::new(vec![(k[0], 1), (k[1], 0)]), Err(ValidatorSetError::ZeroPower(ValidatorIndex(1))));
        assert_eq!(
            ValidatorSet::new(vec![(k[0], 1), (k[0], 1)]),
            Err(ValidatorSetError::DuplicateKey(ValidatorIndex(0), ValidatorIndex(1)))
        );
        assert_eq!(ValidatorSet::new(vec![(k[0], u64::MAX), (k[1], 1)]), Err(ValidatorSetError::PowerOverflow));
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(matches!(
            ValidatorSet::new(vec![(PublicKey(bad), 1)]),
            Err(ValidatorSetError::MalformedKey(_)) | Ok(_)
        ));
    }
}
