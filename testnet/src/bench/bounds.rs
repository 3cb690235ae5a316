//! The bounds every figure of `scripts/bench` is divided by, measured in the same run on the same machine
//! (a noisy 2-core box makes absolute numbers meaningless across runs; ratios to a same-run floor are not).
//!
//! Each function measures one physical or algorithmic floor with the same code the daemon runs (our crates
//! built with the same profile as `sidechaind`): ed25519 batch verification, a loopback one-way message
//! delay, a synced small write on the datadirs' disk, a commit certificate's quorum check, executing a block
//! of transfers, and a raw RocksDB write batch of a block's shape.

use anyhow::{Context, Result};
use bitcoin::Amount;
use ledger::testkit::{self, transfer, user_key};
use ledger::{build_block, execute_block, BlockTemplate, Chain, MemStore, Tx, WriteSet};
use primitives::{
    verify_batch, BlockId, GenesisHash, Hash32, Height, Keypair, PublicKey, Round, Signature, ValidatorIndex,
};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Median of `runs` timings of `f`.
pub fn median_time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed());
    }
    t.sort();
    Ok(t[t.len() / 2])
}

/// ed25519 batch verifications per second of `items` (signatures of user transactions), best of 5 rounds
/// (the machine is shared: the best round is the one least disturbed).
pub fn ed25519_batch_rate(items: &[(PublicKey, Vec<u8>, Signature)]) -> Result<f64> {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        verify_batch(items).context("batch verify")?;
        best = best.min(start.elapsed());
    }
    Ok(items.len() as f64 / best.as_secs_f64())
}

/// One-way delay of a vote-sized (200 bytes) message over loopback TCP: half the median round trip of a
/// ping-pong with Nagle off.
pub fn loopback_one_way() -> Result<Duration> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 200];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut c = std::net::TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut buf = [7u8; 200];
    let rtt = median_time(2000, || {
        c.write_all(&buf)?;
        c.read_exact(&mut buf)?;
        Ok(())
    })?;
    drop(c);
    echo.join().map_err(|_| anyhow::anyhow!("echo thread panicked"))??;
    Ok(rtt / 2)
}

/// Median time of one fsync of a small (4 KiB) file written in `dir`, and of one synced single-key RocksDB
/// write in `dir` (what the consensus WAL does before a vote leaves the node).
pub fn fsyncs(dir: &Path) -> Result<(Duration, Duration)> {
    let path = dir.join("bench-fsync");
    let mut f = std::fs::File::create(&path)?;
    let page = [1u8; 4096];
    let file = median_time(30, || {
        f.write_all(&page)?;
        f.sync_data()?;
        Ok(())
    })?;
    std::fs::remove_file(&path)?;
    let db_dir = dir.join("bench-rocksdb-wal");
    let db = rocksdb::DB::open_default(&db_dir)?;
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    let mut n = 0u64;
    let rocks = median_time(30, || {
        n += 1;
        db.put_opt(n.to_be_bytes(), [2u8; 300], &opts)?;
        Ok(())
    })?;
    drop(db);
    std::fs::remove_dir_all(&db_dir)?;
    Ok((file, rocks))
}

/// Median time to verify one commit certificate of a quorum (3 of 4 equal-power validators), the check
/// every node makes before it commits a block.
pub fn quorum_verify() -> Result<Duration> {
    let g = GenesisHash(Hash32([1; 32]));
    let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_secret([i + 1; 32])).collect();
    let set = consensus::ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect())?;
    let mut cert = consensus::CommitCertificate {
        height: Height(5),
        round: Round(0),
        value: BlockId(Hash32([7; 32])),
        signatures: vec![],
    };
    for (i, k) in keys.iter().enumerate().take(3) {
        let idx = ValidatorIndex(i as u16);
        cert.signatures.push((idx, cert.precommit(idx).sign(k, &g).signature));
    }
    median_time(200, || cert.verify(&set, &g, Height(5)).map_err(Into::into))
}

/// A block of `n` signed transfers (n >= 1) built on an in-memory state of `n` funded accounts, with the
/// chain it belongs to and its write set.
pub struct BlockFixture {
    chain: Chain,
    store: MemStore,
    block: ledger::Block,
    /// What committing the block writes to the state tree.
    pub write_set: WriteSet,
    /// The block's canonical encoding.
    pub bytes: Vec<u8>,
}

impl BlockFixture {
    /// Builds it (the state has `n` accounts, far fewer than a bench federation's: node writes per block
    /// are then fewer too, which makes the raw-write bound built from it an optimistic one).
    pub fn new(n: u32) -> Result<Self> {
        let n = n.max(1);
        let mut g = testkit::genesis(4, n, Amount::from_sat(1_000_000));
        g.params.block_max_txs = n;
        g.params.block_max_bytes = 300 * n.max(10);
        let chain = Chain::new(g)?;
        let mut store = MemStore::new();
        store.apply(&chain.genesis_state(&store)?);
        let txs: Vec<Tx> = (0..n)
            .map(|i| {
                let to = user_key((i + 1) % n).public().account_id();
                transfer(&chain, &user_key(i), 0, to, Amount::from_sat(1_000), chain.params().min_fee).into()
            })
            .collect();
        let template = BlockTemplate {
            height: Height(1),
            prev_hash: BlockId::ZERO,
            time_ms: chain.genesis().genesis_time_ms + 1_000,
            proposer: ValidatorIndex(0),
            btc_anchor: chain.genesis().btc_anchor,
            last_commit_hash: Hash32::ZERO,
        };
        let (block, outcome) = build_block(&chain, &store, template, txs)?;
        let bytes = primitives::canonical_bytes(&block);
        Ok(BlockFixture { chain, store, block, write_set: outcome.write_set, bytes })
    }

    /// Median time of `execute_block` (signatures, state reads and writes, the new root) over 3 runs.
    pub fn execute_time(&self) -> Result<Duration> {
        median_time(3, || execute_block(&self.chain, &self.store, &self.block).map(|_| ()).map_err(Into::into))
    }

    /// Transactions in the block.
    pub fn txs(&self) -> usize {
        self.block.txs.len()
    }
}

/// Synced raw RocksDB write batches per second in `dir`, each with the keys and bytes committing `block`
/// writes (the block, one index entry per transaction, its state tree nodes and values): the disk's and
/// the database's floor for a node that commits one block per batch.
pub fn rocksdb_batch_rate(dir: &Path, block: &BlockFixture, batches: usize) -> Result<f64> {
    let db_dir = dir.join("bench-rocksdb-raw");
    let db = rocksdb::DB::open_default(&db_dir)?;
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    let nodes: Vec<Vec<u8>> =
        block.write_set.tree.node_batch.nodes().values().map(borsh::to_vec).collect::<Result<_, _>>()?;
    let values: Vec<Vec<u8>> = block
        .write_set
        .tree
        .node_batch
        .values()
        .values()
        .map(|v| v.as_ref().map(|v| v.len()).unwrap_or(0))
        .map(|len| vec![3u8; len])
        .collect();
    let start = Instant::now();
    for n in 0..batches {
        let mut wb = rocksdb::WriteBatch::default();
        wb.put((n as u64).to_be_bytes(), &block.bytes);
        for i in 0..block.txs() {
            wb.put(format!("t{n}-{i}"), (i as u64).to_be_bytes());
        }
        for (i, node) in nodes.iter().enumerate() {
            wb.put(format!("n{n}-{i}"), node);
        }
        for (i, value) in values.iter().enumerate() {
            wb.put(format!("v{n}-{i}"), value);
        }
        db.write_opt(wb, &opts)?;
    }
    let rate = batches as f64 / start.elapsed().as_secs_f64();
    drop(db);
    std::fs::remove_dir_all(&db_dir)?;
    Ok(rate)
}

/// The finality budget of one block: three one-way message delays (proposal, prevotes, precommits), two
/// fsyncs (the WAL before a vote, the block commit), verifying a quorum's certificate, executing the block.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// One-way loopback delay.
    pub one_way: Duration,
    /// One synced write.
    pub fsync: Duration,
    /// One quorum certificate check.
    pub quorum: Duration,
    /// Executing the block.
    pub execute: Duration,
}

impl Budget {
    /// The sum.
    pub fn total(&self) -> Duration {
        self.one_way * 3 + self.fsync * 2 + self.quorum + self.execute
    }

    /// As JSON (milliseconds).
    pub fn json(&self) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        serde_json::json!({
            "one_way_ms": ms(self.one_way), "fsync_ms": ms(self.fsync), "quorum_verify_ms": ms(self.quorum),
            "execute_ms": ms(self.execute), "total_ms": ms(self.total()),
        })
    }
}
