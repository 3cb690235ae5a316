//! `sidechain-bench`: what `scripts/bench` runs. Brings up a local federation (4 validators + 1 full node,
//! real processes, RocksDB, libp2p on loopback) whose genesis holds 100,000 accounts, and measures, each
//! figure next to a bound measured in the same run on the same machine (`testnet::bench`):
//! 1. throughput: open-loop load stepped up until committed transfers/s stops growing (saturation), next
//!    to this machine's ed25519 batch-verification rate divided by the nodes that verify each transfer;
//! 2. finality latency p50/p99 at 50% and 90% of saturation, next to its budget (three loopback one-way
//!    delays, two synced writes, a quorum certificate check, executing a block of that size);
//! 3. a full node's sync from genesis, next to RocksDB's raw synced write-batch rate on the same disk;
//! 4. peg-out batch sizes and peg-in fee coverage (pure computation);
//! 5. peg-in latency in blocks on a second federation with real bitcoinds;
//! 6. peak memory of a validator with 100,000 accounts, idle and after saturation;
//!
//! plus the RPC rates of `getblockcount`, `getblock` and `sendrawtransaction`. Prints a table and writes
//! `summary.json` (git commit, cores, settings, figures) and `latency.svg` next to it.

use anyhow::{Context, Result};
use clap::Parser;
use primitives::{Height, Keypair};
use rpc::client::SidechainApiClient;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testnet::bench::{bounds, load, pegin, plot, rss, Row};
use testnet::federation::{Federation, FederationConfig};

#[derive(Parser, Debug, Clone)]
#[command(name = "sidechain-bench", about)]
struct Args {
    /// Accounts sending transfers (funded in genesis).
    #[arg(long, default_value_t = 4000)]
    accounts: u32,
    /// Accounts in genesis in all (the senders plus idle ones).
    #[arg(long, default_value_t = 100_000)]
    genesis_accounts: u32,
    /// First offered load, transfers/s.
    #[arg(long, default_value_t = 100.0)]
    start_rate: f64,
    /// Each step offers this many times the previous one.
    #[arg(long, default_value_t = 1.6)]
    step_factor: f64,
    /// At most this many steps.
    #[arg(long, default_value_t = 9)]
    max_steps: usize,
    /// Seconds per step (the first `warmup_secs` are not measured).
    #[arg(long, default_value_t = 12)]
    step_secs: u64,
    /// Seconds of each step left out of its window.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Seconds a step's transfers may take to commit after it ends.
    #[arg(long, default_value_t = 20)]
    drain_secs: u64,
    /// Seconds at 50% and at 90% of saturation.
    #[arg(long, default_value_t = 20)]
    point_secs: u64,
    /// Deposits timed for the peg-in latency (0: skip the bitcoind federation).
    #[arg(long, default_value_t = 3)]
    pegin_deposits: u8,
    /// Where the JSON summary goes (`latency.svg` goes next to it).
    #[arg(long, default_value = "target/bench/summary.json")]
    out: PathBuf,
    /// Only print the peg cost figures (pure computation, no federation).
    #[arg(long)]
    peg_costs_only: bool,
}

fn key(i: u32) -> Keypair {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&i.to_le_bytes());
    s[31] = 0xbe;
    Keypair::from_secret(s)
}

/// An idle genesis account that no one holds a key for (its id is a hash, which is all state needs).
fn idle_account(i: u32) -> primitives::AccountId {
    primitives::AccountId(primitives::tagged_hash("bench/idle-account", &[&i.to_le_bytes()]))
}

/// Runs `n` calls of `f` with `concurrency` in flight; returns calls/s.
async fn rate<F, Fut>(n: usize, concurrency: usize, f: F) -> Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                f(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(m: &str, f: String, b: String, r: String) -> Row {
    (m.to_string(), f, b, r)
}

fn print_table(rows: &[Row]) {
    println!("\n{:<26} {:<58} {:<50} ratio", "measure", "figure", "bound (same run)");
    for (m, f, b, r) in rows {
        println!("{m:<26} {f:<58} {b:<50} {r}");
    }
}

/// Starts the bench federation with every node deferred, writes the genesis accounts straight into the
/// genesis file (100,000 of them do not fit on a command line), then starts the validators.
async fn start_federation(args: &Args, sidechaind: PathBuf, keys: &[Keypair]) -> Result<Federation> {
    let mut fed = Federation::start(FederationConfig {
        binary: Some(sidechaind),
        validators: 4,
        full_nodes: 1,
        deferred: vec![0, 1, 2, 3, 4],
        env: vec![("RUST_LOG".into(), "warn".into())],
        ..Default::default()
    })?;
    let text = std::fs::read_to_string(&fed.genesis_path)?;
    let mut genesis: serde_json::Value = serde_json::from_str(&text)?;
    let sats = bitcoin::Amount::from_sat(100_000_000);
    let mut accounts: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::to_value(ledger::InitialAccount { account: k.public().account_id(), balance: sats }))
        .collect::<Result<_, _>>()?;
    for i in keys.len() as u32..args.genesis_accounts {
        accounts.push(serde_json::to_value(ledger::InitialAccount { account: idle_account(i), balance: sats })?);
    }
    genesis["initial_accounts"] = serde_json::Value::Array(accounts);
    std::fs::write(&fed.genesis_path, serde_json::to_string(&genesis)?)?;
    for i in 0..4 {
        fed.nodes[i].process.restart()?;
    }
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(180)).await?;
    Ok(fed)
}

async fn run(args: Args) -> Result<()> {
    if args.peg_costs_only {
        let (mut rows, json) = testnet::bench::peg_costs()?;
        let (custody_rows, custody_json) = testnet::bench::custody::custody_costs()?;
        rows.extend(custody_rows);
        print_table(&rows);
        println!("{}", serde_json::to_string_pretty(&json)?);
        println!("{}", serde_json::to_string_pretty(&custody_json)?);
        return Ok(());
    }
    let run_start = Instant::now();
    let here = std::env::current_exe()?;
    let sidechaind = here.parent().context("binary dir")?.join("sidechaind");
    let keys: Vec<Keypair> = (0..args.accounts).map(key).collect();
    println!(
        "starting 4 validators + 1 full node, genesis with {} accounts ({} of them sending)",
        args.genesis_accounts, args.accounts
    );
    let fed = start_federation(&args, sidechaind.clone(), &keys).await?;
    println!("[{:>4.0}s] federation up", run_start.elapsed().as_secs_f64());
    let pid = |i: usize| fed.nodes[i].process.pid().map(|p| p.to_string()).unwrap_or_default();
    let mem_idle = rss(&pid(0)).context("validator0's /proc status")?;
    let clients: Vec<_> = (0..4).map(|i| fed.nodes[i].client()).collect::<Result<_, _>>()?;
    let info = clients[0].get_blockchain_info().await?;
    let genesis = info.genesis_hash;

    // Bounds that do not depend on the load.
    let items: Vec<_> = keys
        .iter()
        .take(1024)
        .enumerate()
        .map(|(i, k)| {
            let tx = ledger::UserTx {
                signer: k.public(),
                nonce: 0,
                fee: info.min_fee,
                kind: ledger::UserTxKind::Transfer { to: idle_account(i as u32), amount: bitcoin::Amount::from_sat(1) },
            }
            .sign(k, &genesis);
            (tx.tx.signer, tx.tx.signing_bytes(&genesis), tx.signature)
        })
        .collect();
    let verify_rate = bounds::ed25519_batch_rate(&items)?;
    let one_way = bounds::loopback_one_way()?;
    let (fsync_file, fsync_rocks) = bounds::fsyncs(fed.path())?;
    let quorum = bounds::quorum_verify()?;

    // RPC: the trivial method.
    let c = Arc::new(clients.clone());
    let cc = c.clone();
    let trivial = rate(2000, 16, move |i| {
        let c = cc.clone();
        async move { c[i % 4].get_block_count().await.map(|_| ()).map_err(Into::into) }
    })
    .await?;

    // Throughput: step the offered load up until committed/s stops growing.
    let gen = load::LoadGen::new(clients.clone(), keys.clone(), genesis, info.min_fee);
    let follower = gen.follow(fed.nodes[0].height().await?);
    let mut pids: Vec<(String, String)> = (0..4).map(|i| (fed.nodes[i].name.clone(), pid(i))).collect();
    pids.push(("bench".into(), std::process::id().to_string()));
    let (step_d, warm, drain) = (
        Duration::from_secs(args.step_secs),
        Duration::from_secs(args.warmup_secs),
        Duration::from_secs(args.drain_secs),
    );
    let mut steps: Vec<load::StepResult> = Vec::new();
    let mut offered = args.start_rate;
    for i in 0..args.max_steps {
        let s = gen.step(i, offered, step_d, warm, drain, &pids).await?;
        println!(
            "[{:>4.0}s] step {i}: offered {:.0}/s sent {:.0}/s committed {:.0}/s, p50 {:.0} ms p99 {:.0} ms, {} blocks ({} decided after round 0) of {:.0} txs, {} uncommitted, {} refused{}; cpu {}",
            run_start.elapsed().as_secs_f64(),
            s.offered,
            s.sent_rate,
            s.committed,
            ms(s.p50),
            ms(s.p99),
            s.blocks,
            s.late_round_blocks,
            s.mean_block_txs,
            s.uncommitted,
            s.rejected,
            s.first_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            s.cpu.iter().map(|(n, c)| format!("{n} {c:.2}")).collect::<Vec<_>>().join(", ")
        );
        let best = steps.iter().map(|s| s.committed).fold(0.0, f64::max);
        let first_p50 = steps.first().map(|s| s.p50).unwrap_or(s.p50);
        let flat = s.committed < best * 1.05;
        let behind = s.committed < 0.9 * s.offered;
        let exploded = s.p50 > first_p50 * 10 || s.uncommitted > 0;
        steps.push(s);
        if (flat && behind) || exploded {
            break;
        }
        offered *= args.step_factor;
    }
    let sat_step =
        steps.iter().max_by(|a, b| a.committed.total_cmp(&b.committed)).cloned().context("no load step ran")?;
    let saturation = sat_step.committed;
    let mem_sat = rss(&pid(0)).context("validator0's /proc status")?;

    // Latency at 50% and 90% of saturation, each next to its budget.
    let point_d = Duration::from_secs(args.point_secs);
    let mut points = Vec::new();
    for (k, frac) in [0.5, 0.9].into_iter().enumerate() {
        let s = gen.step(100 + k, saturation * frac, point_d, warm, drain, &pids).await?;
        let fixture = bounds::BlockFixture::new(s.mean_block_txs.round() as u32)?;
        let budget = bounds::Budget { one_way, fsync: fsync_rocks, quorum, execute: fixture.execute_time()? };
        println!(
            "[{:>4.0}s] {:.0}% of saturation: offered {:.0}/s committed {:.0}/s, p50 {:.0} ms p99 {:.0} ms, blocks of {:.0} txs, {} uncommitted, {} refused{}; budget {:.1} ms",
            run_start.elapsed().as_secs_f64(),
            frac * 100.0,
            s.offered,
            s.committed,
            ms(s.p50),
            ms(s.p99),
            s.mean_block_txs,
            s.uncommitted,
            s.rejected,
            s.first_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            ms(budget.total())
        );
        points.push((frac, s, budget));
    }

    // RPC rates under no load: getblock (verbosity 2) of a full block, sendrawtransaction (pre-signed).
    let busy = {
        let tip = fed.nodes[0].height().await?;
        let mut best = (tip, 0usize);
        for h in tip.saturating_sub(300).max(1)..=tip {
            if let rpc::types::GetBlockResult::Json(b) =
                c[0].get_block(rpc::BlockRef::Height(Height(h)), Some(1)).await?
            {
                if b.tx_count > best.1 {
                    best = (h, b.tx_count);
                }
            }
        }
        best
    };
    let cc = c.clone();
    let getblock = rate(100, 8, move |i| {
        let c = cc.clone();
        async move {
            c[i % 4].get_block(rpc::BlockRef::Height(Height(busy.0)), Some(2)).await.map(|_| ()).map_err(Into::into)
        }
    })
    .await?;
    // History and light-client figures: `listtransactions` of a busy sender's account (100 entries) next to
    // the trivial method, and what a light client downloads and checks for the first 1,000 blocks (one
    // `getheaders` answer: JSON with proved federation entries) next to the bare borsh headers and
    // certificates.
    let busy_account = keys[0].public().account_id();
    let cc = c.clone();
    let history =
        rate(500, 8, move |i| {
            let c = cc.clone();
            async move {
                c[i % 4].list_transactions(busy_account, Some(100), None, None).await.map(|_| ()).map_err(Into::into)
            }
        })
        .await?;
    let light_figures = {
        let genesis: ledger::Genesis = serde_json::from_str(&std::fs::read_to_string(&fed.genesis_path)?)?;
        let mut light = light::LightClient::from_genesis(&ledger::Chain::new(genesis)?);
        let answer = c[0].get_headers(Height(1), Some(1000)).await?;
        let n = answer.headers.len().max(1);
        let json = serde_json::to_vec(&answer)?.len();
        let bare: usize = answer.headers.iter().map(|h| (h.header.len() + h.commit.len()) / 2).sum();
        let check_start = Instant::now();
        light.extend(&answer.decode()?)?;
        let headers_per_s = n as f64 / check_start.elapsed().as_secs_f64();
        (n, json * 1000 / n, bare * 1000 / n, headers_per_s)
    };
    gen.stop();
    follower.await??;

    // Full node sync from genesis, next to raw synced RocksDB write batches of the mean block's shape.
    let tip = fed.nodes[0].height().await?;
    let mut chain_txs = 0usize;
    for h in 1..=tip {
        if let rpc::types::GetBlockResult::Json(b) = c[0].get_block(rpc::BlockRef::Height(Height(h)), Some(1)).await? {
            chain_txs += b.tx_count;
        }
    }
    let mut fed = fed;
    let sync_start = Instant::now();
    fed.nodes[4].process.restart()?;
    fed.wait_height(&[4], tip, Duration::from_secs(600)).await?;
    let sync_wall = sync_start.elapsed();
    let mem_full = fed.nodes[4].process.pid().and_then(|p| rss(&p.to_string()));
    let mean_txs = chain_txs as f64 / tip.max(1) as f64;
    let sync_fixture = bounds::BlockFixture::new(mean_txs.round() as u32)?;
    let raw_batches = bounds::rocksdb_batch_rate(fed.path(), &sync_fixture, 200)?;
    let sync_bps = tip as f64 / sync_wall.as_secs_f64();
    let sync_tps = chain_txs as f64 / sync_wall.as_secs_f64();
    println!(
        "[{:>4.0}s] full node synced {tip} blocks in {:.1}s",
        run_start.elapsed().as_secs_f64(),
        sync_wall.as_secs_f64()
    );
    drop(fed);

    // Peg-in latency on a second federation with real bitcoinds.
    let pegin = if args.pegin_deposits > 0 {
        let r = pegin::measure(sidechaind, args.pegin_deposits).await.context("peg-in latency")?;
        println!("[{:>4.0}s] peg-in latency measured", run_start.elapsed().as_secs_f64());
        Some(r)
    } else {
        None
    };

    // The table.
    // Every node verifies every transfer once at best, and every node may use every core: the bound is
    // cores x one core's batch rate / nodes (issue 22; earlier runs divided one core's rate by the nodes).
    let nodes_verifying = 5.0;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let per_node = cores * verify_rate / nodes_verifying;
    let mut rows: Vec<Row> = vec![
        row(
            "rpc getblockcount",
            format!("{trivial:.0} req/s"),
            "(the trivial method is the bound)".into(),
            "1.00".into(),
        ),
        row(
            "rpc getblock v2",
            format!("{getblock:.0} req/s (block of {} txs)", busy.1),
            format!("{trivial:.0} req/s"),
            format!("{:.3}", getblock / trivial),
        ),
        row(
            "committed transfers",
            format!(
                "{saturation:.0} tx/s at {:.0} offered (p50 {:.0} ms, {:.0} txs/block)",
                sat_step.offered,
                ms(sat_step.p50),
                sat_step.mean_block_txs
            ),
            format!("{cores} cores x {verify_rate:.0} sig/s / {nodes_verifying} nodes = {per_node:.0}"),
            format!("{:.3}", saturation / per_node),
        ),
    ];
    for (frac, s, budget) in &points {
        let b = ms(budget.total());
        rows.push(row(
            &format!("finality @{:.0}% sat", frac * 100.0),
            format!(
                "p50 {:.0} ms, p99 {:.0} ms ({:.0} tx/s, {:.0} txs/block)",
                ms(s.p50),
                ms(s.p99),
                s.committed,
                s.mean_block_txs
            ),
            format!(
                "{b:.1} ms = 3x{:.3} + 2x{:.2} + {:.2} + exec {:.1}",
                ms(budget.one_way),
                ms(budget.fsync),
                ms(budget.quorum),
                ms(budget.execute)
            ),
            format!("p50 {:.1}x, p99 {:.1}x", ms(s.p50) / b, ms(s.p99) / b),
        ));
    }
    rows.push(row(
        "rpc listtransactions",
        format!("{history:.0} req/s (100 entries of a sending account)"),
        format!("{trivial:.0} req/s"),
        format!("{:.3}", history / trivial),
    ));
    let (light_n, light_json, light_bare, light_rate) = light_figures;
    rows.push(row(
        "light client, 1000 blocks",
        format!(
            "{} KB downloaded (getheaders JSON), checked at {light_rate:.0} headers/s (first {light_n} blocks)",
            light_json / 1000
        ),
        format!("bare borsh headers + certificates {} KB", light_bare / 1000),
        format!("{:.2}", light_json as f64 / light_bare.max(1) as f64),
    ));
    rows.push(row(
        "full node sync",
        format!("{sync_bps:.1} blocks/s, {sync_tps:.0} tx/s ({tip} blocks, {chain_txs} txs)"),
        format!("raw synced RocksDB batch {raw_batches:.0}/s ({:.0} txs/block shape)", mean_txs),
        format!("{:.3}", sync_bps / raw_batches),
    ));
    let (peg_rows, peg_json) = testnet::bench::peg_costs()?;
    rows.extend(peg_rows);
    let (custody_rows, custody_json) = testnet::bench::custody::custody_costs()?;
    rows.extend(custody_rows);
    if let Some((n, samples)) = &pegin {
        let blocks: Vec<u64> = samples.iter().map(pegin::PegInSample::blocks).collect();
        rows.push(row(
            "peg-in latency",
            format!(
                "{blocks:?} blocks after the {n}th confirmation ({:.2}s mean)",
                samples.iter().map(|s| s.wall.as_secs_f64()).sum::<f64>() / samples.len().max(1) as f64
            ),
            "goal: <= 2 blocks".into(),
            format!("max {}", blocks.iter().max().copied().unwrap_or(0)),
        ));
    }
    rows.push(row(
        "memory validator0",
        format!(
            "{} accounts idle: peak {:.0} MiB; after saturation: peak {:.0} MiB",
            args.genesis_accounts, mem_idle.0, mem_sat.0
        ),
        "-".into(),
        "-".into(),
    ));
    if let Some((peak, _)) = mem_full {
        rows.push(row("memory full node", format!("after sync: peak {peak:.0} MiB"), "-".into(), "-".into()));
    }
    print_table(&rows);

    // The curve.
    let mut curve: Vec<plot::Point> = steps
        .iter()
        .chain(points.iter().map(|(_, s, _)| s))
        .map(|s| plot::Point { offered: s.offered, committed: s.committed, p50_ms: ms(s.p50), p99_ms: ms(s.p99) })
        .collect();
    curve.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    let budget_ms = points.first().map(|(_, _, b)| ms(b.total())).unwrap_or(0.0);
    let svg_path = args.out.with_file_name("latency.svg");

    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let step_json = |s: &load::StepResult| {
        serde_json::json!({
            "offered_tps": s.offered, "sent_tps": s.sent_rate, "committed_tps": s.committed, "p50_ms": ms(s.p50),
            "p99_ms": ms(s.p99), "blocks": s.blocks, "mean_block_txs": s.mean_block_txs,
            "mean_block_bytes": s.mean_block_bytes, "blocks_after_round_0": s.late_round_blocks, "uncommitted": s.uncommitted, "refused": s.rejected,
            "first_refusal": s.first_error, "cpu_cores_by_process": s.cpu.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        })
    };
    let summary = serde_json::json!({
        "git_commit": commit,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "build_profile": if cfg!(debug_assertions) { "dev (workspace crates unoptimised, dependencies opt-level 2)" } else { "release" },
        "settings": {
            "validators": 4, "full_nodes": 1, "sending_accounts": args.accounts, "genesis_accounts": args.genesis_accounts,
            "start_rate": args.start_rate, "step_factor": args.step_factor, "max_steps": args.max_steps,
            "step_secs": args.step_secs, "warmup_secs": args.warmup_secs, "drain_secs": args.drain_secs,
            "point_secs": args.point_secs, "pegin_deposits": args.pegin_deposits,
            "latency_resolution_ms": ms(load::FOLLOW_POLL), "empty_block_interval_ms": 100,
        },
        "bounds": {
            "ed25519_batch_verify_per_s": verify_rate, "loopback_one_way_ms": ms(one_way),
            "fsync_small_file_ms": ms(fsync_file), "rocksdb_synced_put_ms": ms(fsync_rocks),
            "quorum_certificate_verify_ms": ms(quorum),
        },
        "rpc": {
            "getblockcount_rps": trivial, "getblock_v2_rps": getblock, "getblock_txs": busy.1,
            "listtransactions_100_rps": history,
        },
        "light_client": {
            "blocks": light_figures.0, "json_bytes_per_1000_blocks": light_figures.1,
            "bare_borsh_bytes_per_1000_blocks": light_figures.2, "headers_checked_per_s": light_figures.3,
        },
        "throughput": {
            "saturation_committed_tps": saturation, "at_offered_tps": sat_step.offered,
            "nodes_verifying_each_transfer": nodes_verifying, "ratio_to_bound_per_node": saturation / per_node,
            "steps": steps.iter().map(step_json).collect::<Vec<_>>(),
        },
        "finality": points.iter().map(|(frac, s, b)| serde_json::json!({
            "fraction_of_saturation": frac, "step": step_json(s), "budget": b.json(),
            "p50_over_budget": ms(s.p50) / ms(b.total()), "p99_over_budget": ms(s.p99) / ms(b.total()),
        })).collect::<Vec<_>>(),
        "sync": {
            "blocks": tip, "transfers": chain_txs, "wall_s": sync_wall.as_secs_f64(), "blocks_per_s": sync_bps,
            "transfers_per_s": sync_tps, "raw_rocksdb_synced_batches_per_s": raw_batches,
            "raw_batch_shape_txs": sync_fixture.txs(), "ratio": sync_bps / raw_batches,
        },
        "peg": peg_json,
        "custody": custody_json,
        "pegin_latency": pegin.as_ref().map(|(n, samples)| serde_json::json!({
            "confirmations": n,
            "samples": samples.iter().map(|s| serde_json::json!({
                "confirmed_at": s.confirmed_at, "minted_at": s.minted_at, "blocks": s.blocks(), "wall_s": s.wall.as_secs_f64(),
            })).collect::<Vec<_>>(),
        })),
        "memory_mib": {
            "validator0_idle_with_genesis_accounts": { "peak": mem_idle.0, "rss": mem_idle.1 },
            "validator0_after_saturation": { "peak": mem_sat.0, "rss": mem_sat.1 },
            "full_node_after_sync": mem_full.map(|(p, r)| serde_json::json!({ "peak": p, "rss": r })),
        },
        "latency_svg": svg_path.display().to_string(),
        "wall_s": run_start.elapsed().as_secs_f64(),
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(&svg_path, plot::svg(&curve, budget_ms, "finality latency and committed rate vs offered load"))?;
    println!("summary written to {}, curve to {}", args.out.display(), svg_path.display());
    Ok(())
}
