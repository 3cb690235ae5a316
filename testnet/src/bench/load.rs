//! The open-loop load generator of `scripts/bench`: many accounts send signed transfers over JSON-RPC to
//! every validator at a fixed offered rate, while a follower watches validator 0's committed blocks and
//! times each transfer from the moment it was handed to RPC to the moment its block was seen committed.
//!
//! Open loop (the rate does not slow down when the chain does) is what exposes saturation: committed/s stops
//! following the offered rate and latency grows with the queue. Each account has at most one transfer in
//! flight over RPC and always talks to the same validator, so its nonces arrive in order; a transfer the
//! mempool refuses leaves the nonce to the next one.

use anyhow::Result;
use bitcoin::Amount;
use jsonrpsee::http_client::HttpClient;
use ledger::{UserTx, UserTxKind};
use primitives::{canonical_bytes, GenesisHash, Height, Keypair, TxId};
use rpc::client::SidechainApiClient;
use rpc::types::{BlockTxs, GetBlockResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the follower asks validator 0 for its height (the resolution of every latency).
pub const FOLLOW_POLL: Duration = Duration::from_millis(10);

/// Requests in flight per validator. Each is one HTTP connection, kept alive afterwards in the client's
/// pool, and a node serves at most 100 connections (`RpcServerConfig::max_connections`; more get 429), so
/// the load queues here, in the client, and that wait counts in its latency (the load stays open-loop).
pub const IN_FLIGHT_PER_VALIDATOR: usize = 48;

/// A committed block as the follower saw it: (seen at, round it was decided in, transactions, bytes).
type SeenBlock = (Instant, u32, usize, usize);

/// The accounts and validators the load uses.
pub struct LoadGen {
    clients: Vec<HttpClient>,
    /// One per client: [`IN_FLIGHT_PER_VALIDATOR`] permits.
    slots: Vec<Arc<tokio::sync::Semaphore>>,
    keys: Arc<Vec<Keypair>>,
    nonces: Arc<Vec<AtomicU64>>,
    busy: Arc<Vec<AtomicBool>>,
    genesis: GenesisHash,
    fee: Amount,
    /// Transfers in flight or committed-but-unmatched: txid -> (submitted at, step).
    sent: Arc<Mutex<HashMap<TxId, (Instant, usize)>>>,
    /// Committed blocks seen so far.
    blocks: Arc<Mutex<Vec<SeenBlock>>>,
    /// Latencies of committed transfers: (step, latency).
    latencies: Arc<Mutex<Vec<(usize, Duration)>>>,
    next_account: AtomicUsize,
    stop: Arc<AtomicBool>,
}

/// What one step of offered load gave.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// Offered transfers/s asked for.
    pub offered: f64,
    /// Transfers/s actually handed to RPC (lower when every account already had one in flight).
    pub sent_rate: f64,
    /// Transfers the mempools refused.
    pub rejected: u64,
    /// First refusal message, if any.
    pub first_error: Option<String>,
    /// Committed transactions/s over the step's window (blocks seen on validator 0).
    pub committed: f64,
    /// Blocks committed in the window and their mean transactions and bytes.
    pub blocks: usize,
    /// Blocks of the window decided in a round after 0 (a round failed: a timeout, not a vote, moved on).
    pub late_round_blocks: usize,
    /// Mean transactions per block in the window.
    pub mean_block_txs: f64,
    /// Mean encoded bytes per block in the window.
    pub mean_block_bytes: f64,
    /// Latency percentiles (p50, p99) of the transfers sent in the window; those still uncommitted at the
    /// end of the drain count with the drain's bound (so p99 is then a lower bound).
    pub p50: Duration,
    /// See `p50`.
    pub p99: Duration,
    /// Transfers of the window not committed by the end of the drain.
    pub uncommitted: usize,
    /// CPU seconds per wall second over the step, by process (validators..., the bench itself).
    pub cpu: Vec<(String, f64)>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// utime + stime of a process in seconds (`/proc/<pid>/stat`, fields 14 and 15, in clock ticks of 100 Hz).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

impl LoadGen {
    /// A generator over `keys` (funded in genesis), sending to `clients` (one per validator).
    pub fn new(clients: Vec<HttpClient>, keys: Vec<Keypair>, genesis: GenesisHash, fee: Amount) -> Self {
        let n = keys.len();
        LoadGen {
            slots: clients.iter().map(|_| Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_VALIDATOR))).collect(),
            clients,
            keys: Arc::new(keys),
            nonces: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
            busy: Arc::new((0..n).map(|_| AtomicBool::new(false)).collect()),
            genesis,
            fee,
            sent: Arc::default(),
            blocks: Arc::default(),
            latencies: Arc::default(),
            next_account: AtomicUsize::new(0),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts the follower on validator 0 from height `from` (exclusive); it runs until [`LoadGen::stop`].
    pub fn follow(&self, from: u64) -> tokio::task::JoinHandle<Result<()>> {
        let c = self.clients[0].clone();
        let (sent, blocks, latencies, stop) =
            (self.sent.clone(), self.blocks.clone(), self.latencies.clone(), self.stop.clone());
        tokio::spawn(async move {
            let mut h = from;
            while !stop.load(Ordering::Relaxed) {
                let tip = c.get_block_count().await?.get();
                while h < tip {
                    h += 1;
                    let GetBlockResult::Json(b) = c.get_block(rpc::BlockRef::Height(Height(h)), Some(1)).await? else {
                        anyhow::bail!("getblock verbosity 1 gave hex");
                    };
                    let seen = Instant::now();
                    if let BlockTxs::Ids(ids) = &b.tx {
                        let mut sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        let mut lat = latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        for id in ids {
                            if let Some((at, step)) = sent.remove(id) {
                                lat.push((step, seen.saturating_duration_since(at)));
                            }
                        }
                    }
                    blocks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((
                        seen,
                        b.commit.round.0,
                        b.tx_count,
                        b.size,
                    ));
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
            Ok(())
        })
    }

    /// Stops the follower.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Offers `rate` transfers/s for `duration`; the window measured is `duration` minus `warmup`; then
    /// waits up to `drain` for the step's transfers to commit. `pids` are the processes whose CPU is
    /// reported (name, pid).
    pub async fn step(
        &self,
        index: usize,
        rate: f64,
        duration: Duration,
        warmup: Duration,
        drain: Duration,
        pids: &[(String, String)],
    ) -> Result<StepResult> {
        let rejected = Arc::new(AtomicU64::new(0));
        let first_error: Arc<Mutex<Option<String>>> = Arc::default();
        let start = Instant::now();
        let cpu_before: Vec<Option<f64>> = pids.iter().map(|(_, p)| cpu_seconds(p)).collect();
        let (win_start, win_end) = (start + warmup, start + duration);
        let mut handed = 0u64;
        let mut handed_in_window = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut tasks = tokio::task::JoinSet::new();
        while Instant::now() < win_end {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            while handed < due {
                let Some(account) = self.free_account() else { break };
                handed += 1;
                let now = Instant::now();
                if now >= win_start {
                    handed_in_window += 1;
                }
                let step = if now >= win_start { index } else { usize::MAX };
                tasks.spawn(self.send(account, step, rejected.clone(), first_error.clone()));
            }
            while tasks.try_join_next().is_some() {}
        }
        let window = (win_end - win_start).as_secs_f64();
        let cpu_wall = start.elapsed().as_secs_f64();
        let cpu: Vec<(String, f64)> = pids
            .iter()
            .zip(cpu_before)
            .map(|((name, p), before)| {
                (name.clone(), cpu_seconds(p).zip(before).map(|(a, b)| (a - b) / cpu_wall).unwrap_or(f64::NAN))
            })
            .collect();
        while tasks.join_next().await.is_some() {}
        // Drain: until every transfer of the window is committed (or the bound).
        let drain_end = Instant::now() + drain;
        loop {
            let pending = self.pending(index)?;
            if pending == 0 || Instant::now() >= drain_end {
                break;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
        let uncommitted = self.pending(index)?;
        let in_window: Vec<SeenBlock> = self
            .blocks
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|(seen, ..)| *seen >= win_start && *seen < win_end)
            .copied()
            .collect();
        let txs: usize = in_window.iter().map(|b| b.2).sum();
        let bytes: usize = in_window.iter().map(|b| b.3).sum();
        let mut lat: Vec<Duration> = self
            .latencies
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|(s, _)| *s == index)
            .map(|(_, d)| *d)
            .collect();
        // The stragglers count with the least time any of them has waited (a lower bound).
        let waited = Instant::now().saturating_duration_since(win_end);
        lat.extend(std::iter::repeat_n(waited, uncommitted));
        lat.sort();
        self.forget(index)?;
        let first_error = first_error.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
        let nblocks = in_window.len().max(1);
        Ok(StepResult {
            offered: rate,
            sent_rate: handed_in_window as f64 / window,
            rejected: rejected.load(Ordering::Relaxed),
            first_error,
            committed: txs as f64 / window,
            blocks: in_window.len(),
            late_round_blocks: in_window.iter().filter(|b| b.1 > 0).count(),
            mean_block_txs: txs as f64 / nblocks as f64,
            mean_block_bytes: bytes as f64 / nblocks as f64,
            p50: percentile(&lat, 0.50),
            p99: percentile(&lat, 0.99),
            uncommitted,
            cpu,
        })
    }

    /// Transfers of `step` not yet seen committed.
    fn pending(&self, step: usize) -> Result<usize> {
        Ok(self.sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.values().filter(|(_, s)| *s == step).count())
    }

    /// Drops what is left of `step` (and of warm-ups) from the table, so later steps do not match them.
    fn forget(&self, step: usize) -> Result<()> {
        self.sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.retain(|_, (_, s)| *s != step && *s != usize::MAX);
        Ok(())
    }

    /// The next account (round robin) without a transfer in flight, marked busy.
    fn free_account(&self) -> Option<usize> {
        let n = self.keys.len();
        for _ in 0..n {
            let i = self.next_account.fetch_add(1, Ordering::Relaxed) % n;
            if !self.busy[i].swap(true, Ordering::AcqRel) {
                return Some(i);
            }
        }
        None
    }

    /// Signs and sends `account`'s next transfer to its validator; the nonce moves on only if accepted.
    fn send(
        &self,
        account: usize,
        step: usize,
        rejected: Arc<AtomicU64>,
        first_error: Arc<Mutex<Option<String>>>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (keys, nonces, busy, sent) = (self.keys.clone(), self.nonces.clone(), self.busy.clone(), self.sent.clone());
        let client = self.clients[account % self.clients.len()].clone();
        let slot = self.slots[account % self.slots.len()].clone();
        let (genesis, fee) = (self.genesis, self.fee);
        async move {
            let k = &keys[account];
            let nonce = nonces[account].load(Ordering::Acquire);
            let to = keys[(account + 1) % keys.len()].public().account_id();
            let tx = UserTx {
                signer: k.public(),
                nonce,
                fee,
                kind: UserTxKind::Transfer { to, amount: Amount::from_sat(1) },
            }
            .sign(k, &genesis);
            let txid = tx.txid();
            let raw = hex::encode(canonical_bytes(&tx));
            if let Ok(mut s) = sent.lock() {
                s.insert(txid, (Instant::now(), step));
            }
            let permit = slot.acquire_owned().await;
            let result = client.send_raw_transaction(raw).await;
            drop(permit);
            match result {
                Ok(_) => nonces[account].store(nonce + 1, Ordering::Release),
                Err(e) => {
                    rejected.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut s) = sent.lock() {
                        s.remove(&txid);
                    }
                    if let Ok(mut f) = first_error.lock() {
                        f.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            busy[account].store(false, Ordering::Release);
        }
    }
}
