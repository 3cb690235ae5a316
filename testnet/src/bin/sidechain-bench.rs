//! `sidechain-bench`: what `scripts/bench` runs. Brings up a local federation (4 validators + 1 full node,
//! real processes, RocksDB, libp2p on loopback) and measures, each figure next to a bound measured in the
//! same run on the same machine:
//! - JSON-RPC requests/s of `getblock` (verbosity 2) and `sendrawtransaction`, next to the trivial
//!   `getblockcount`;
//! - committed transfers/s under a load of pre-signed transfers from many accounts sent to every
//!   validator, next to this machine's ed25519 batch-verification rate divided by the nodes that verify
//!   each transfer;
//! - a full node's sync from genesis (blocks/s, transfers/s replayed and verified).
//!
//! Prints a table and writes `target/bench/summary.json` (git commit, cores, settings, figures).

use anyhow::{Context, Result};
use clap::Parser;
use ledger::{SignedUserTx, UserTx, UserTxKind};
use primitives::{canonical_bytes, Height, Keypair, SignDomain};
use rpc::client::SidechainApiClient;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};

#[derive(Parser, Debug)]
#[command(name = "sidechain-bench", about)]
struct Args {
    /// Accounts sending transfers.
    #[arg(long, default_value_t = 1000)]
    accounts: u32,
    /// Transfers per account (consecutive nonces).
    #[arg(long, default_value_t = 10)]
    per_account: u64,
    /// Concurrent RPC clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Where the JSON summary goes.
    #[arg(long, default_value = "target/bench/summary.json")]
    out: std::path::PathBuf,
    /// Only print the peg cost figures (pure computation, no federation).
    #[arg(long)]
    peg_costs_only: bool,
}

/// One line of the table: measure, figure, bound, ratio.
type Row = (&'static str, String, String, String);

fn key(i: u32) -> Keypair {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&i.to_le_bytes());
    s[31] = 0xbe;
    Keypair::from_secret(s)
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

async fn run(args: Args) -> Result<()> {
    if args.peg_costs_only {
        let (rows, json) = peg_costs()?;
        for (m, f, b, r) in &rows {
            println!("{m:<24} {f:<52} {b:<34} {r}");
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let here = std::env::current_exe()?;
    let dir = here.parent().context("binary dir")?.to_path_buf();
    let keys: Vec<Keypair> = (0..args.accounts).map(key).collect();
    let initial: Vec<(String, u64)> = keys.iter().map(|k| (k.public().account_id().to_string(), 100_000_000)).collect();
    println!("starting 4 validators + 1 full node with {} funded accounts", args.accounts);
    let mut fed = Federation::start(FederationConfig {
        binary: Some(dir.join("sidechaind")),
        validators: 4,
        full_nodes: 1,
        deferred: vec![4],
        initial_accounts: initial,
        env: vec![("RUST_LOG".into(), "warn".into())],
        ..Default::default()
    })?;
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(120)).await?;
    let clients: Vec<_> = (0..4).map(|i| fed.nodes[i].client()).collect::<Result<_, _>>()?;
    let info = clients[0].get_blockchain_info().await?;
    let genesis = info.genesis_hash;

    // The bound: ed25519 batch verification of the same kind of signatures, on this machine, now.
    let total = args.accounts as usize * args.per_account as usize;
    let sign_start = Instant::now();
    let txs: Vec<SignedUserTx> = (0..args.per_account)
        .flat_map(|nonce| keys.iter().enumerate().map(move |(i, k)| (nonce, i, k)))
        .map(|(nonce, i, k)| {
            let to = keys[(i + 1) % keys.len()].public().account_id();
            UserTx {
                signer: k.public(),
                nonce,
                fee: info.min_fee,
                kind: UserTxKind::Transfer { to, amount: bitcoin::Amount::from_sat(1) },
            }
            .sign(k, &genesis)
        })
        .collect();
    let signed_in = sign_start.elapsed();
    let items: Vec<_> = txs
        .iter()
        .take(4096)
        .map(|t| {
            (t.tx.signer, primitives::signing_bytes(SignDomain::UserTx, &genesis, &canonical_bytes(&t.tx)), t.signature)
        })
        .collect();
    let v_start = Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        primitives::verify_batch(&items).context("batch verify")?;
    }
    let verify_rate = (items.len() * rounds) as f64 / v_start.elapsed().as_secs_f64();
    let verifying_nodes = 5.0;

    // RPC: trivial method.
    let c = Arc::new(clients.clone());
    let cc = c.clone();
    let trivial = rate(2000, args.concurrency, move |i| {
        let c = cc.clone();
        async move { c[i % 4].get_block_count().await.map(|_| ()).map_err(Into::into) }
    })
    .await?;

    // Load: every account's transfers go, in nonce order, to one validator.
    let raw: Arc<Vec<String>> = Arc::new(txs.iter().map(|t| hex::encode(canonical_bytes(t))).collect());
    let h0 = fed.nodes[0].height().await?;
    let load_start = Instant::now();
    let (cc, raws) = (c.clone(), raw.clone());
    let accounts = args.accounts as usize;
    let send_rate = rate(total, args.concurrency.min(accounts), move |i| {
        let (c, raws) = (cc.clone(), raws.clone());
        // Index i walks nonce-major, so an account's nonce n is sent after its nonce n-1 was accepted
        // as long as concurrency <= accounts.
        let node = (i % accounts) % 4;
        async move { c[node].send_raw_transaction(raws[i].clone()).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    // Committed: until the blocks since h0 hold every transfer.
    let mut committed = 0usize;
    let mut h = h0;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut busiest = (0u64, 0usize);
    while committed < total {
        anyhow::ensure!(Instant::now() < deadline, "only {committed} of {total} transfers committed in 300 s");
        let tip = fed.nodes[0].height().await?;
        while h < tip {
            h += 1;
            if let rpc::types::GetBlockResult::Json(b) =
                c[0].get_block(rpc::BlockRef::Height(Height(h)), Some(1)).await?
            {
                committed += b.tx_count;
                if b.tx_count > busiest.1 {
                    busiest = (h, b.tx_count);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let load_wall = load_start.elapsed();
    let tps = total as f64 / load_wall.as_secs_f64();

    // RPC: getblock (verbosity 2) of the busiest block.
    let cc = c.clone();
    let busy_height = busiest.0;
    let getblock = rate(200, args.concurrency, move |i| {
        let c = cc.clone();
        async move {
            c[i % 4]
                .get_block(rpc::BlockRef::Height(Height(busy_height)), Some(2))
                .await
                .map(|_| ())
                .map_err(Into::into)
        }
    })
    .await?;

    // Full node sync from genesis.
    let tip = fed.nodes[0].height().await?;
    let sync_start = Instant::now();
    fed.nodes[4].process.restart()?;
    fed.wait_height(&[4], tip, Duration::from_secs(600)).await?;
    let sync_wall = sync_start.elapsed();

    let mut rows: Vec<Row> = vec![
        ("rpc getblockcount", format!("{trivial:.0} req/s"), "(the trivial method is the bound)".into(), "1.00".into()),
        (
            "rpc getblock v2",
            format!("{getblock:.0} req/s ({} txs)", busiest.1),
            format!("{trivial:.0} req/s"),
            format!("{:.3}", getblock / trivial),
        ),
        (
            "rpc sendrawtransaction",
            format!("{send_rate:.0} req/s"),
            format!("{trivial:.0} req/s"),
            format!("{:.2}", send_rate / trivial),
        ),
        (
            "committed transfers",
            format!("{tps:.0} tx/s ({total} in {:.1}s, busiest block {})", load_wall.as_secs_f64(), busiest.1),
            format!("{:.0} sig/s / {verifying_nodes} nodes = {:.0}", verify_rate, verify_rate / verifying_nodes),
            format!("{:.3}", tps / (verify_rate / verifying_nodes)),
        ),
        (
            "full node sync",
            format!(
                "{:.0} blocks/s, {:.0} tx/s ({tip} blocks)",
                tip as f64 / sync_wall.as_secs_f64(),
                total as f64 / sync_wall.as_secs_f64()
            ),
            format!("{:.0} sig/s", verify_rate),
            format!("{:.3}", (total as f64 / sync_wall.as_secs_f64()) / verify_rate),
        ),
    ];
    let (peg_rows, peg_json) = peg_costs()?;
    rows.extend(peg_rows);
    println!("\n{:<24} {:<52} {:<34} ratio", "measure", "figure", "bound (same run)");
    for (m, f, b, r) in &rows {
        println!("{m:<24} {f:<52} {b:<34} {r}");
    }
    println!("(signing {total} transfers took {:.2}s on the bench client)", signed_in.as_secs_f64());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let summary = serde_json::json!({
        "git_commit": commit,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "settings": { "accounts": args.accounts, "per_account": args.per_account, "concurrency": args.concurrency, "validators": 4, "full_nodes": 1 },
        "rpc": { "getblockcount_rps": trivial, "getblock_v2_rps": getblock, "getblock_txs": busiest.1, "sendrawtransaction_rps": send_rate },
        "throughput": { "committed_tps": tps, "transfers": total, "wall_s": load_wall.as_secs_f64(), "ed25519_batch_verify_per_s": verify_rate, "ratio_to_bound_per_node": tps / (verify_rate / verifying_nodes) },
        "sync": { "blocks": tip, "wall_s": sync_wall.as_secs_f64(), "blocks_per_s": tip as f64 / sync_wall.as_secs_f64() },
        "peg": peg_json,
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&summary)?)?;
    println!("summary written to {}", args.out.display());
    Ok(())
}

/// Peg costs of this federation's shape (3-of-4, the bench's): vbytes of peg-out batches of 1, 10 and 100
/// P2WPKH payouts from the deterministic builder, the marginal vbytes per payout next to the payout output's
/// own size, and the peg-in fee next to what spending one deposit input costs at the same rate.
fn peg_costs() -> Result<(Vec<Row>, serde_json::Value)> {
    use bitcoin::hashes::Hash as _;
    let chain = ledger::Chain::new(ledger::testkit::genesis(4, 0, bitcoin::Amount::ZERO))?;
    let fed = chain.federation();
    let rate = bitcoin::FeeRate::from_sat_per_vb(chain.params().pegin_fee_rate_sat_vb).context("fee rate")?;
    let input_vb = peg::input_vbytes(fed.descriptor())?;
    let payout_script = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]));
    let coin = peg::BatchInput {
        outpoint: bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([1; 32]), vout: 0 },
        amount: bitcoin::Amount::from_btc(100.0)?,
        tweak: Some([9; 32]),
    };
    let mut sizes = Vec::new();
    for n in [1usize, 10, 100] {
        let payouts =
            vec![peg::Payout { script_pubkey: payout_script.clone(), amount: bitcoin::Amount::from_sat(50_000) }; n];
        let plan = peg::plan_batch(
            fed,
            chain.genesis_hash().0,
            &[coin],
            &payouts,
            rate,
            peg::BatchLimits::STANDARD,
            &fed.script_pubkey(),
        )?;
        sizes.push((n, plan.vbytes));
    }
    let marginal = (sizes[2].1 - sizes[1].1) as f64 / 90.0;
    let output_vb = peg::output_vbytes(&payout_script);
    let fee = chain.pegin_fee().to_sat();
    let input_cost = rate.fee_vb(input_vb).context("fee")?.to_sat();
    let rows = vec![
        (
            "peg-out batch vbytes",
            format!("1: {} vB, 10: {} vB, 100: {} vB", sizes[0].1, sizes[1].1, sizes[2].1),
            "-".to_string(),
            "-".to_string(),
        ),
        (
            "peg-out marginal payout",
            format!("{marginal:.1} vB per extra P2WPKH payout"),
            format!("P2WPKH output {output_vb} vB"),
            format!("{:.3}", marginal / output_vb as f64),
        ),
        (
            "peg-in fee vs input cost",
            format!("{fee} sat per deposit"),
            format!("{input_vb} vB input at {} sat/vB = {input_cost} sat", chain.params().pegin_fee_rate_sat_vb),
            format!("{:.3}", fee as f64 / input_cost as f64),
        ),
    ];
    let json = serde_json::json!({
        "batch_vbytes": sizes.iter().map(|(n, v)| serde_json::json!({"payouts": n, "vbytes": v})).collect::<Vec<_>>(),
        "marginal_vbytes_per_payout": marginal,
        "payout_output_vbytes": output_vb,
        "pegin_fee_sat": fee,
        "deposit_input_vbytes": input_vb,
        "deposit_input_cost_sat": input_cost,
    });
    Ok((rows, json))
}
