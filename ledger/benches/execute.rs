//! Block execution of N signed transfers next to raw ed25519 batch verification of the same N
//! signatures, measured in the same run; prints the ratio (how much of execution is signature checks).
//!
//! Run: `cargo bench -p sidechain-ledger --bench execute` (add `-- --quick` style criterion flags as
//! usual). N defaults to 1000 and 4000; override with `LEDGER_BENCH_N=2000`.

mod common;
use bitcoin::Amount;
use common::median;
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use primitives::{verify_batch, BlockId, Hash32, Height, PublicKey, Signature, ValidatorIndex};
use sidechain_ledger::testkit::{self, transfer, user_key};
use sidechain_ledger::{build_block, execute_block, Block, BlockTemplate, BtcAnchor, Chain, MemStore, Tx};
use std::time::Duration;

struct Fixture {
    chain: Chain,
    store: MemStore,
    block: Block,
    items: Vec<(PublicKey, Vec<u8>, Signature)>,
}

fn fixture(n: u32) -> Fixture {
    let mut g = testkit::genesis(4, n, Amount::from_sat(1_000_000));
    g.params.block_max_txs = n.max(1);
    g.params.block_max_bytes = 200 * n.max(10);
    let chain = Chain::new(g).expect("bench genesis is valid");
    let mut store = MemStore::new();
    store.apply(&chain.genesis_state(&store).expect("in-memory genesis"));
    let txs: Vec<Tx> = (0..n)
        .map(|i| {
            let to = user_key((i + 1) % n).public().account_id();
            transfer(&chain, &user_key(i), 0, to, Amount::from_sat(1_000), Amount::from_sat(100)).into()
        })
        .collect();
    let template = BlockTemplate {
        height: Height(1),
        prev_hash: BlockId::ZERO,
        time_ms: chain.genesis().genesis_time_ms + 1_000,
        proposer: ValidatorIndex(0),
        btc_anchor: BtcAnchor::default(),
        last_commit_hash: Hash32::ZERO,
    };
    let (block, _) = build_block(&chain, &store, template, txs).expect("bench block is valid");
    let items = block
        .txs
        .iter()
        .filter_map(|t| match t {
            Tx::User(s) => Some((s.tx.signer, s.tx.signing_bytes(chain.genesis_hash()), s.signature)),
            _ => None,
        })
        .collect();
    Fixture { chain, store, block, items }
}

fn sizes() -> Vec<u32> {
    match std::env::var("LEDGER_BENCH_N") {
        Ok(v) => vec![v.parse().expect("LEDGER_BENCH_N is a number")],
        Err(_) => vec![1_000, 4_000],
    }
}

fn main() {
    let mut c = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5)).configure_from_args();
    let fixtures: Vec<(u32, Fixture)> = sizes().into_iter().map(|n| (n, fixture(n))).collect();
    {
        let mut group = c.benchmark_group("ledger");
        for (n, f) in &fixtures {
            group.throughput(Throughput::Elements(u64::from(*n)));
            group.bench_with_input(BenchmarkId::new("execute_block", n), f, |b, f| {
                b.iter(|| execute_block(&f.chain, &f.store, black_box(&f.block)).expect("valid"))
            });
            group.bench_with_input(BenchmarkId::new("ed25519_verify_batch", n), f, |b, f| {
                b.iter(|| verify_batch(black_box(&f.items)).expect("valid"))
            });
        }
        group.finish();
    }
    c.final_summary();

    println!("\nsame-run comparison (median of 7):");
    for (n, f) in &fixtures {
        let exec = median(
            || {
                execute_block(&f.chain, &f.store, &f.block).expect("valid");
            },
            7,
        );
        let verify = median(
            || {
                verify_batch(&f.items).expect("valid");
            },
            7,
        );
        let per_s = |d: Duration| f64::from(*n) / d.as_secs_f64();
        println!(
            "N={n}: execute_block {:.1} ms ({:.0} transfers/s, {n} signatures checked), \
             verify_batch {:.1} ms ({:.0} sigs/s), ratio execute/verify = {:.2}",
            exec.as_secs_f64() * 1e3,
            per_s(exec),
            verify.as_secs_f64() * 1e3,
            per_s(verify),
            exec.as_secs_f64() / verify.as_secs_f64()
        );
    }
}
