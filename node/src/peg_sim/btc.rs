//! The simulation's Bitcoin: blocks, a UTXO view with coinbase maturity, reorgs of the unanchored tip, and
//! a mempool that judges the federation's transactions as Bitcoin would.
//!
//! Users' own transactions are "external": their inputs come from outside the simulated chain and are not
//! checked (the federation never depends on them). Every federation transaction is checked input by input:
//! the coin exists unspent in the best chain, a coinbase is 100 blocks deep, and Bitcoin Core's interpreter
//! (`peg::verify_spends`) accepts the witness against the real prevout script and amount.

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{BlockHash, OutPoint, Transaction, TxOut, Txid};
use std::collections::HashSet;

/// One block of the simulated chain.
#[derive(Clone, Debug)]
pub struct SimBlock {
    /// Its hash (derived from its height, parent, transactions and a salt, so a reorg changes it).
    pub hash: BlockHash,
    /// Coinbase first.
    pub txs: Vec<Transaction>,
    /// Their txids, in the same order.
    pub txids: Vec<Txid>,
}

/// Why the simulated Bitcoin refuses a federation transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BtcReject {
    /// An input is not an unspent coin of the best chain (spent by a conflicting version, or never there).
    #[error("input {0} is not an unspent coin of the best chain")]
    MissingInput(OutPoint),
    /// A coinbase input fewer than 100 blocks deep.
    #[error("input {outpoint} is a coinbase only {depth} blocks deep")]
    ImmatureCoinbase {
        /// The coin.
        outpoint: OutPoint,
        /// Its depth in the next block.
        depth: u32,
    },
    /// Bitcoin's interpreter refuses an input.
    #[error(transparent)]
    Script(#[from] peg::ScriptCheckError),
}

/// The simulated chain and its mempool.
#[derive(Clone, Debug, Default)]
pub struct SimBitcoin {
    /// Blocks by height; `blocks[0]` is genesis.
    pub blocks: Vec<SimBlock>,
    /// Transactions waiting for a block: (transaction, external).
    mempool: Vec<(Transaction, bool)>,
    /// Counter for external inputs and block salts.
    nonce: u64,
    /// Txids of external transactions (their inputs are not checked).
    external: HashSet<Txid>,
}

impl SimBitcoin {
    /// A chain holding only a genesis block.
    pub fn new() -> Self {
        let mut b = SimBitcoin::default();
        let genesis = b.coinbase(0, Vec::new());
        let txids = vec![genesis.compute_txid()];
        b.blocks.push(SimBlock { hash: BlockHash::all_zeros(), txs: vec![genesis], txids });
        b
    }

    /// The tip's height.
    pub fn tip(&self) -> u32 {
        (self.blocks.len() - 1) as u32
    }

    fn next_nonce(&mut self) -> u64 {
        self.nonce += 1;
        self.nonce
    }

    fn coinbase(&mut self, height: u32, outputs: Vec<TxOut>) -> Transaction {
        let mut script_sig = bitcoin::ScriptBuf::new();
        // BIP-34 height plus a nonce: every coinbase has its own txid.
        let mut bytes = height.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.next_nonce().to_le_bytes());
        script_sig.push_slice(<&bitcoin::script::PushBytes>::try_from(bytes.as_slice()).expect("12 bytes"));
        Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn { previous_output: OutPoint::null(), script_sig, ..Default::default() }],
            output: outputs,
        }
    }

    /// An external (user) transaction paying `outputs`, queued for the next block; returns its txid.
    pub fn pay(&mut self, outputs: Vec<TxOut>) -> Txid {
        let mut prev = [0u8; 32];
        prev[..8].copy_from_slice(&self.next_nonce().to_le_bytes());
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn {
                previous_output: OutPoint { txid: Txid::from_byte_array(prev), vout: 0 },
                ..Default::default()
            }],
            output: outputs,
        };
        let txid = tx.compute_txid();
        self.external.insert(txid);
        self.mempool.push((tx, true));
        txid
    }

    /// Where `outpoint` was created in the best chain: (its output, height, from a coinbase), whether spent
    /// or not.
    pub fn created(&self, outpoint: &OutPoint) -> Option<(TxOut, u32, bool)> {
        self.created_upto(outpoint, self.tip())
    }

    /// [`SimBitcoin::created`] as a bitcoind whose best chain stops at `tip` (one lagging behind) sees it.
    pub fn created_upto(&self, outpoint: &OutPoint, tip: u32) -> Option<(TxOut, u32, bool)> {
        for (h, b) in self.blocks.iter().enumerate().take(tip as usize + 1) {
            if let Some(i) = b.txids.iter().position(|t| *t == outpoint.txid) {
                let tx = &b.txs[i];
                let out = tx.output.get(outpoint.vout as usize)?.clone();
                return Some((out, h as u32, tx.is_coinbase()));
            }
        }
        None
    }

    /// Whether a transaction of the best chain spends `outpoint`.
    pub fn spent(&self, outpoint: &OutPoint) -> bool {
        self.blocks.iter().flat_map(|b| &b.txs).any(|t| t.input.iter().any(|i| i.previous_output == *outpoint))
    }

    /// Height of the block holding `txid` in the best chain.
    pub fn confirmed_at(&self, txid: &Txid) -> Option<u32> {
        self.blocks.iter().position(|b| b.txids.contains(txid)).map(|h| h as u32)
    }

    /// Checks a federation transaction as Bitcoin would for the next block.
    pub fn check(&self, tx: &Transaction) -> Result<(), BtcReject> {
        let next = self.tip() + 1;
        let mut prevouts = Vec::with_capacity(tx.input.len());
        for i in &tx.input {
            let o = i.previous_output;
            let Some((out, h, coinbase)) = self.created(&o) else { return Err(BtcReject::MissingInput(o)) };
            if self.spent(&o) {
                return Err(BtcReject::MissingInput(o));
            }
            if coinbase && next - h < 100 {
                return Err(BtcReject::ImmatureCoinbase { outpoint: o, depth: next - h });
            }
            prevouts.push(out);
        }
        peg::verify_spends(tx, &prevouts)?;
        Ok(())
    }

    /// Queues a federation transaction after [`SimBitcoin::check`]; a known one is not queued twice.
    pub fn submit(&mut self, tx: Transaction) -> Result<(), BtcReject> {
        self.check(&tx)?;
        let txid = tx.compute_txid();
        if !self.mempool.iter().any(|(t, _)| t.compute_txid() == txid) && self.confirmed_at(&txid).is_none() {
            self.mempool.push((tx, false));
        }
        Ok(())
    }

    /// Mines a block: a coinbase paying `coinbase_outputs`, then every external transaction and each
    /// federation transaction that is still valid and `take_federation` accepts (a fee spike keeps some out).
    pub fn mine(&mut self, coinbase_outputs: Vec<TxOut>, mut take_federation: impl FnMut() -> bool) {
        let height = self.tip() + 1;
        let coinbase = self.coinbase(height, coinbase_outputs);
        let mut txs = vec![coinbase];
        let mut keep = Vec::new();
        let mut spent_here: HashSet<OutPoint> = HashSet::new();
        for (tx, external) in std::mem::take(&mut self.mempool) {
            if external {
                txs.push(tx);
                continue;
            }
            let conflicts = tx.input.iter().any(|i| spent_here.contains(&i.previous_output));
            if conflicts || self.check(&tx).is_err() {
                continue; // A conflicting version confirmed, or a reorg took its coin: Bitcoin drops it.
            }
            if take_federation() {
                spent_here.extend(tx.input.iter().map(|i| i.previous_output));
                txs.push(tx);
            } else {
                keep.push((tx, false));
            }
        }
        self.mempool = keep;
        let txids: Vec<Txid> = txs.iter().map(Transaction::compute_txid).collect();
        let hash = self.block_hash(height, &txids);
        self.blocks.push(SimBlock { hash, txs, txids });
    }

    fn block_hash(&mut self, height: u32, txids: &[Txid]) -> BlockHash {
        let parent = self.blocks.get(height as usize - 1).map_or(BlockHash::all_zeros(), |b| b.hash);
        let mut bytes = height.to_le_bytes().to_vec();
        bytes.extend_from_slice(parent.as_byte_array());
        bytes.extend_from_slice(&self.next_nonce().to_le_bytes());
        for t in txids {
            bytes.extend_from_slice(t.as_byte_array());
        }
        BlockHash::from_raw_hash(sha256d::Hash::hash(&bytes))
    }

    /// A reorg deeper than the anchor: a competing branch replaces the top `depth` blocks (never genesis)
    /// with blocks holding the same transactions at the same heights, under new hashes. Every fact the
    /// sidechain recorded stays true in content (so the run can go on after the agreed resume) while every
    /// anchored hash above the fork is gone, which is what the halt procedure reacts to.
    pub fn replace_top(&mut self, depth: u32) {
        let tip = self.tip();
        for h in tip + 1 - depth.clamp(1, tip)..=tip {
            let txids = self.blocks[h as usize].txids.clone();
            let hash = self.block_hash(h, &txids);
            self.blocks[h as usize].hash = hash;
        }
    }

    /// Removes the top `depth` blocks (never genesis); their non-coinbase transactions go back to the mempool.
    pub fn reorg(&mut self, depth: u32) {
        for _ in 0..depth.min(self.tip()) {
            let b = self.blocks.pop().expect("above genesis");
            for (tx, txid) in b.txs.into_iter().zip(b.txids).skip(1) {
                let external = self.external.contains(&txid);
                self.mempool.push((tx, external));
            }
        }
    }
}
