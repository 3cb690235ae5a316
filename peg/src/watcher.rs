//! The deposit scanner: which outputs of a BTC block pay the federation, and for whom.
//!
//! Why pure: a block that advances the anchor must carry a `Mint` for every registered deposit in the BTC
//! blocks it covers, and every validator recomputes that list from its own bitcoind. If the scan were mixed
//! with IO, two validators could disagree on the list for reasons other than the blocks themselves. Here the
//! IO half only fetches blocks; the same block and registrations always give the same list, in block order
//! (transaction order, then output index), so the proposer's list and a validator's can be compared directly.
//!
//! Two kinds of federation outputs are reported, each with the federation epoch whose wallet it pays (the
//! federation changes over time; deposits to a recent earlier wallet still count):
//! - [`Deposit`]: pays a registered deposit script, so it is bound to a recipient and is mintable;
//! - [`FederationOutput`]: pays a plain (untweaked) federation script: nobody can be credited, so it is not
//!   minted, but the federation holds it and it counts in reserves.
//!
//! Deposits to unregistered deposit scripts are invisible here by design (the script does not reveal the
//! recipient); they are minted through `claimpegin`, which names the recipient.

use bitcoin::{Amount, Block, BlockHash, OutPoint, Script, ScriptBuf, Transaction};
use std::collections::HashMap;

/// Where the watcher learns which scripts pay the federation: registered deposit scripts (for whom, in which
/// epoch's wallet) and plain federation scripts (which epoch's).
pub trait DepositLookup {
    /// The recipient and wallet epoch a deposit to `script_pubkey` is bound to, if that script is registered.
    fn deposit_target(&self, script_pubkey: &Script) -> Option<([u8; 32], u32)>;
    /// The epoch whose plain federation script `script_pubkey` is, if it is one that is watched.
    fn federation_epoch(&self, script_pubkey: &Script) -> Option<u32>;
}

/// A lookup from two maps: deposit scripts to `(recipient, epoch)`, plain federation scripts to their epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptMaps {
    /// Registered deposit scripts.
    pub deposits: HashMap<ScriptBuf, ([u8; 32], u32)>,
    /// Plain federation scripts.
    pub plain: HashMap<ScriptBuf, u32>,
}

impl DepositLookup for ScriptMaps {
    fn deposit_target(&self, script_pubkey: &Script) -> Option<([u8; 32], u32)> {
        self.deposits.get(script_pubkey).copied()
    }

    fn federation_epoch(&self, script_pubkey: &Script) -> Option<u32> {
        self.plain.get(script_pubkey).copied()
    }
}

/// An output paying a registered deposit script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
    /// The deposit script it pays.
    pub script_pubkey: ScriptBuf,
    /// The recipient the script is bound to.
    pub recipient: [u8; 32],
    /// The federation epoch whose wallet the script belongs to.
    pub epoch: u32,
    /// The BTC block that contains it.
    pub btc_block_hash: BlockHash,
    /// That block's height.
    pub btc_height: u32,
    /// Paid by a coinbase: the federation cannot spend it until it is 100 blocks deep.
    pub coinbase: bool,
}

/// An output paying the plain federation script: held by the federation, not mintable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationOutput {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
    /// The federation epoch whose wallet it pays.
    pub epoch: u32,
    /// The BTC block that contains it.
    pub btc_block_hash: BlockHash,
    /// That block's height.
    pub btc_height: u32,
    /// Paid by a coinbase.
    pub coinbase: bool,
}

/// Everything a BTC block pays to the federation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockScan {
    /// Outputs to registered deposit scripts, in block order.
    pub deposits: Vec<Deposit>,
    /// Outputs to the plain federation script, in block order.
    pub plain: Vec<FederationOutput>,
}

/// Scans `block` (at `height`) for outputs to registered deposit scripts and to plain federation scripts.
pub fn scan_block(block: &Block, height: u32, registered: &impl DepositLookup) -> BlockScan {
    scan_transactions(&block.txdata, block.block_hash(), height, registered)
}

/// As [`scan_block`], over the transactions of the block `block_hash` at `height`, in block order.
pub fn scan_transactions(
    txs: &[Transaction],
    block_hash: BlockHash,
    height: u32,
    registered: &impl DepositLookup,
) -> BlockScan {
    let mut scan = BlockScan::default();
    for tx in txs {
        let txid = tx.compute_txid();
        let coinbase = tx.is_coinbase();
        for (vout, out) in (0u32..).zip(&tx.output) {
            let outpoint = OutPoint { txid, vout };
            if let Some((recipient, epoch)) = registered.deposit_target(&out.script_pubkey) {
                scan.deposits.push(Deposit {
                    outpoint,
                    amount: out.value,
                    script_pubkey: out.script_pubkey.clone(),
                    recipient,
                    epoch,
                    btc_block_hash: block_hash,
                    btc_height: height,
                    coinbase,
                });
            } else if let Some(epoch) = registered.federation_epoch(&out.script_pubkey) {
                scan.plain.push(FederationOutput {
                    outpoint,
                    amount: out.value,
                    epoch,
                    btc_block_hash: block_hash,
                    btc_height: height,
                    coinbase,
                });
            }
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::Federation;
    use bitcoin::block::{Header, Version};
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use bitcoin::{
        absolute, transaction, CompactTarget, PublicKey, Sequence, TxIn, TxMerkleNode, TxOut, Txid, Witness,
    };

    const GENESIS: [u8; 32] = [0x11; 32];

    fn federation() -> Federation {
        let secp = Secp256k1::new();
        let keys = (1..=4u8)
            .map(|i| PublicKey::new(SecretKey::from_slice(&[i; 32]).expect("key").public_key(&secp)))
            .collect();
        Federation::new(3, keys).expect("valid")
    }

    fn tx(prev: u8, outputs: Vec<(ScriptBuf, u64)>) -> Transaction {
        let previous_output =
            if prev == 0 { OutPoint::null() } else { OutPoint { txid: Txid::from_byte_array([prev; 32]), vout: 0 } };
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: outputs.into_iter().map(|(s, v)| TxOut { value: Amount::from_sat(v), script_pubkey: s }).collect(),
        }
    }

    fn block(txdata: Vec<Transaction>) -> Block {
        let header = Header {
            version: Version::TWO,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: 0,
            bits: CompactTarget::from_consensus(0x207fffff),
            nonce: 0,
        };
        Block { header, txdata }
    }

    #[test]
    fn finds_registered_deposits_in_block_order_and_plain_outputs_apart() {
        let fed = federation();
        let (ra, rb) = ([0xaa; 32], [0xbb; 32]);
        let sa = fed.deposit_script_pubkey(GENESIS, ra).expect("script");
        let sb = fed.deposit_script_pubkey(GENESIS, rb).expect("script");
        let unregistered = fed.deposit_script_pubkey(GENESIS, [0xcc; 32]).expect("script");
        let other = ScriptBuf::new_op_return([1, 2, 3]);
        let registered = ScriptMaps {
            deposits: [(sa.clone(), (ra, 0)), (sb.clone(), (rb, 1))].into_iter().collect(),
            plain: [(fed.script_pubkey(), 0)].into_iter().collect(),
        };

        let txs = vec![
            tx(0, vec![(sb.clone(), 50), (other.clone(), 0)]),
            tx(1, vec![(other.clone(), 7), (sa.clone(), 1_000), (fed.script_pubkey(), 2_000), (sb.clone(), 3_000)]),
            tx(2, vec![(unregistered, 4_000)]),
            tx(3, vec![(sa.clone(), 5_000), (fed.script_pubkey(), 6)]),
        ];
        let b = block(txs.clone());
        let scan = scan_block(&b, 120, &registered);
        let got: Vec<_> = scan.deposits.iter().map(|d| (d.outpoint, d.amount.to_sat(), d.recipient)).collect();
        let op = |i: usize, vout| OutPoint { txid: txs[i].compute_txid(), vout };
        assert_eq!(got, vec![(op(0, 0), 50, rb), (op(1, 1), 1_000, ra), (op(1, 3), 3_000, rb), (op(3, 0), 5_000, ra)]);
        assert!(scan.deposits.iter().all(|d| d.btc_block_hash == b.block_hash() && d.btc_height == 120));
        assert!(scan.deposits[0].coinbase && !scan.deposits[1].coinbase);
        assert_eq!(scan.deposits[1].script_pubkey, sa);
        assert_eq!(scan.deposits.iter().map(|d| d.epoch).collect::<Vec<_>>(), vec![1, 0, 1, 0], "each its epoch");
        let plain: Vec<_> = scan.plain.iter().map(|p| (p.outpoint, p.amount.to_sat())).collect();
        assert_eq!(plain, vec![(op(1, 2), 2_000), (op(3, 1), 6)]);

        // An unwatched plain script is not reported.
        let unwatched = ScriptMaps { plain: HashMap::new(), ..registered };
        assert!(scan_block(&b, 120, &unwatched).plain.is_empty());
    }

    #[test]
    fn nothing_registered_nothing_found() {
        let fed = federation();
        let s = fed.deposit_script_pubkey(GENESIS, [1; 32]).expect("script");
        let b = block(vec![tx(0, vec![(s, 10)])]);
        let scan = scan_block(&b, 1, &ScriptMaps::default());
        assert_eq!(scan, BlockScan::default());
        assert_eq!(scan_transactions(&[], b.block_hash(), 1, &ScriptMaps::default()), scan);
    }
}
