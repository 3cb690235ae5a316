//! RocksDB commit of whole blocks (block, certificate, tx index, state tree nodes, tip) in one synced
//! write batch, next to a raw RocksDB write batch of the same number of keys and bytes with sync on, on
//! the same disk in the same run. The ratio says how much our commit path costs over the database's own
//! floor (fsync dominates both). Then the same commits writing the account history too (`ledger::history`
//! entries, as a node keeping the history does): what the index costs per block.
//!
//! Run: `cargo bench -p sidechain-node --bench commit` (`NODE_BENCH_TXS=500` for bigger blocks).

use bitcoin::Amount;
use criterion::Criterion;
use ledger::testkit::{self, transfer, user_key};
use ledger::{build_block, BlockTemplate, Chain, MemStore, Tx, WriteSet};
use node::storage::{CommitBatch, Store};
use primitives::{canonical_bytes, BlockId, Hash32, Height, TxId, ValidatorIndex};
use std::time::{Duration, Instant};

/// One prepared height: what `Store::commit` writes.
struct Prepared {
    height: Height,
    hash: BlockId,
    block: Vec<u8>,
    state: WriteSet,
    txids: Vec<TxId>,
    /// The account history entries the block makes.
    history: Vec<(primitives::AccountId, ledger::history::HistoryEntry)>,
}

/// Executes `blocks` blocks of `txs` transfers each on an in-memory state, keeping each write set.
fn prepare(blocks: u64, txs: u32) -> (Chain, Vec<Prepared>) {
    let mut g = testkit::genesis(4, txs, Amount::from_sat(1_000_000_000));
    g.params.block_max_txs = txs;
    g.params.block_max_bytes = 300 * txs.max(10);
    let chain = Chain::new(g).expect("bench genesis");
    let mut mem = MemStore::new();
    mem.apply(&chain.genesis_state(&mem).expect("genesis state"));
    let mut out = Vec::new();
    for h in 1..=blocks {
        let list: Vec<Tx> = (0..txs)
            .map(|i| {
                let to = user_key((i + 1) % txs).public().account_id();
                transfer(&chain, &user_key(i), h - 1, to, Amount::from_sat(1), chain.params().min_fee).into()
            })
            .collect();
        let template = BlockTemplate {
            height: Height(h),
            prev_hash: BlockId::ZERO,
            time_ms: chain.genesis().genesis_time_ms + h,
            proposer: ValidatorIndex(0),
            btc_anchor: chain.genesis().btc_anchor,
            last_commit_hash: Hash32::ZERO,
        };
        let (block, outcome) = build_block(&chain, &mem, template, list).expect("bench block");
        mem.apply(&outcome.write_set);
        let history =
            ledger::history::block_history(&mem.snapshot(h - 1), &mem.snapshot(h), Height(h), &block).expect("history");
        out.push(Prepared {
            history,
            height: Height(h),
            hash: block.hash(),
            block: canonical_bytes(&block),
            txids: block.txs.iter().map(Tx::txid).collect(),
            state: outcome.write_set,
        });
    }
    (chain, out)
}

fn fresh_store(chain: &Chain) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    node::chain::write_genesis(chain, &store).expect("genesis");
    (dir, store)
}

/// Commits every prepared block to a fresh store; returns the time of the commits alone.
fn commit_all(chain: &Chain, blocks: &[Prepared], with_history: bool) -> Duration {
    let (_dir, store) = fresh_store(chain);
    let cert = vec![7u8; 400];
    let start = Instant::now();
    for p in blocks {
        let batch = CommitBatch {
            height: p.height,
            hash: p.hash,
            block: &p.block,
            cert: &cert,
            state: &p.state,
            txids: &p.txids,
            registrations: &[],
            history: with_history.then_some(p.history.as_slice()),
        };
        store.commit(&batch).expect("commit");
    }
    start.elapsed()
}

/// The same number of keys and bytes per block as raw RocksDB write batches with sync on.
fn raw_all(blocks: &[Prepared]) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = rocksdb::DB::open_default(dir.path()).expect("open raw");
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    let start = Instant::now();
    for (n, p) in blocks.iter().enumerate() {
        let mut wb = rocksdb::WriteBatch::default();
        wb.put((n as u64).to_be_bytes(), &p.block);
        for (i, id) in p.txids.iter().enumerate() {
            wb.put(id.as_bytes(), (i as u64).to_be_bytes());
        }
        for (i, (_, node)) in p.state.tree.node_batch.nodes().iter().enumerate() {
            wb.put(format!("n{n}-{i}"), borsh::to_vec(node).expect("encode"));
        }
        for (i, (_, value)) in p.state.tree.node_batch.values().iter().enumerate() {
            wb.put(format!("v{n}-{i}"), borsh::to_vec(value).expect("encode"));
        }
        db.write_opt(wb, &opts).expect("raw write");
    }
    start.elapsed()
}

fn main() {
    let txs: u32 = std::env::var("NODE_BENCH_TXS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let blocks = 50u64;
    let (chain, prepared) = prepare(blocks, txs);
    let mut c = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5)).configure_from_args();
    c.bench_function(&format!("store_commit_{blocks}_blocks_of_{txs}_transfers"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| commit_all(&chain, &prepared, false)).sum())
    });
    c.bench_function(&format!("raw_rocksdb_synced_batch_{blocks}_blocks"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_all(&prepared)).sum())
    });
    c.final_summary();

    let runs = 5;
    let mut ours: Vec<Duration> = (0..runs).map(|_| commit_all(&chain, &prepared, false)).collect();
    let mut raw: Vec<Duration> = (0..runs).map(|_| raw_all(&prepared)).collect();
    let mut indexed: Vec<Duration> = (0..runs).map(|_| commit_all(&chain, &prepared, true)).collect();
    ours.sort();
    raw.sort();
    indexed.sort();
    let per_s = |d: Duration| blocks as f64 / d.as_secs_f64();
    let (o, r) = (ours[runs / 2], raw[runs / 2]);
    println!(
        "\nsame-run comparison (median of {runs}, {blocks} blocks of {txs} transfers, sync on):\n  Store::commit {:.0} blocks/s \
         ({:.0} transfers/s), raw RocksDB synced write batch {:.0} batches/s; ratio commit/raw = {:.2}",
        per_s(o),
        per_s(o) * f64::from(txs),
        per_s(r),
        per_s(o) / per_s(r)
    );
    let i = indexed[runs / 2];
    let entries: usize = prepared.iter().map(|p| p.history.len()).sum();
    println!(
        "same-run comparison, account history: Store::commit with the history ({} entries per block) {:.0} \
         blocks/s; the index costs {:.3} ms per block; ratio commit with history / without = {:.2}",
        entries / prepared.len(),
        per_s(i),
        (i.as_secs_f64() - o.as_secs_f64()) * 1e3 / blocks as f64,
        per_s(i) / per_s(o)
    );
}
