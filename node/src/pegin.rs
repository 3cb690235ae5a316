//! The node's view of the peg-in side that follows from the genesis alone: the federation wallet (one
//! secp256k1 peg key per validator, threshold 2f+1) and the deposit address bound to a recipient.
//!
//! Why here and not in `peg`: `peg` knows descriptors and keys but not genesis files; the ledger knows
//! the genesis but not miniscript. This module joins them for RPC now and for the watcher later.

use ledger::Chain;
use primitives::AccountId;

/// The federation's signing threshold for `n` peg keys: the consensus quorum `n - f` with
/// `f = (n - 1) / 3` (2f+1 when n = 3f+1): f lost keys cannot freeze the wallet, f bad ones cannot spend.
pub fn threshold(n: usize) -> usize {
    n - n.saturating_sub(1) / 3
}

/// The federation wallet of `chain`'s genesis: `wsh(sortedmulti(k, K_1..K_n))`.
pub fn federation(chain: &Chain) -> Result<peg::Federation, peg::FederationError> {
    let keys: Vec<bitcoin::PublicKey> = chain.genesis().validators.iter().map(|v| v.peg_key).collect();
    peg::Federation::new(threshold(keys.len()), keys)
}

/// The deposit descriptor bound to `recipient` on this chain (its script, address and text follow).
pub fn deposit_descriptor(chain: &Chain, recipient: &AccountId) -> Result<peg::Descriptor, peg::PegError> {
    federation(chain)?.deposit_descriptor(chain.genesis_hash().0, recipient.0 .0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_two_f_plus_one() {
        assert_eq!([1, 4, 5, 7, 10].map(threshold), [1, 3, 4, 5, 7]);
    }
}
