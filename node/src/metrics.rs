//! Prometheus metrics at `GET /metrics`, in the OpenMetrics text format (crate `prometheus-client`).
//!
//! The metrics are derived from the service's [`NodeStatus`] by a task of their own, so the consensus
//! loop never waits on a scrape. The HTTP side is `hyper`'s HTTP/1.1 server (already in the daemon through
//! the RPC server), one route, no keep-alive; no web framework for one read-only page.

use crate::service::NodeStatus;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    height: Gauge,
    round: Gauge,
    mempool_txs: Gauge,
    peers: Gauge,
    evidence: Gauge,
    blocks_synced: Counter,
    blocks_committed: Counter,
    block_executions: Counter,
    rounds_per_height: Histogram,
    finality_seconds: Histogram,
    peg: PegGauges,
}

/// Peg gauges, in satoshis where they are amounts.
#[derive(Default)]
struct PegGauges {
    btc_held: Gauge,
    supply: Gauge,
    minted: Gauge,
    pegin_fees: Gauge,
    below_minimum: Gauge,
    deposits: Gauge,
    deposits_seen: Gauge,
    claims_pending: Gauge,
    anchor_height: Gauge,
    bitcoind_best: Gauge,
    bitcoind_lag: Gauge,
    halted: Gauge,
    signing_paused: Gauge,
    shares_refused: Gauge,
    share_refusals: Counter,
    alerts: AlertGauges,
}

/// One gauge per alert kind (1 while it is up), and how many are up.
#[derive(Default)]
struct AlertGauges {
    active: Gauge,
    anchor_lag: Gauge,
    confirmed_batch_in_flight: Gauge,
    proposals_failing: Gauge,
    pegout_stuck: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `sidechain` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sidechain");
        let m = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            mempool_txs: Gauge::default(),
            peers: Gauge::default(),
            evidence: Gauge::default(),
            blocks_synced: Counter::default(),
            blocks_committed: Counter::default(),
            block_executions: Counter::default(),
            rounds_per_height: Histogram::new([1.0, 2.0, 3.0, 5.0, 10.0]),
            finality_seconds: Histogram::new([0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
            peg: PegGauges::default(),
            registry: Registry::default(),
        };
        let p = &m.peg;
        for (name, help, g) in [
            ("peg_btc_held_sats", "Value of the federation's BTC outputs as of the anchor", &p.btc_held),
            ("peg_supply_sats", "Sum of all sidechain balances, fee pool included", &p.supply),
            ("peg_minted_sats", "Credited to recipients by peg-in mints", &p.minted),
            ("peg_pegin_fees_sats", "Peg-in fees credited to the fee pool", &p.pegin_fees),
            ("peg_below_minimum_sats", "Deposits held but not minted (below the minimum)", &p.below_minimum),
            ("pegin_deposits", "Deposit outpoints recorded in state (minted or below the minimum)", &p.deposits),
            ("pegin_seen", "Deposits our bitcoind shows above the anchor, not minted yet", &p.deposits_seen),
            ("pegin_claims_pending", "Peg-in claims waiting to be minted", &p.claims_pending),
            ("btc_anchor_height", "BTC anchor height at the tip", &p.anchor_height),
            ("bitcoind_best_height", "Our bitcoind's best height (0 when unreachable or none)", &p.bitcoind_best),
            ("bitcoind_lag_blocks", "Our bitcoind's best height minus the anchor", &p.bitcoind_lag),
            ("peg_halted", "1 while peg operations are halted after a Bitcoin reorg deeper than N", &p.halted),
            ("peg_signing_paused", "1 while an operator has paused this validator's peg signing", &p.signing_paused),
            ("peg_shares_refused", "Batch versions the share-time check refuses to sign now", &p.shares_refused),
            ("alerts_active", "Alerts up (conditions an operator must look at)", &p.alerts.active),
            ("alert_anchor_lag", "1 while the anchor lags our bitcoind past the bound", &p.alerts.anchor_lag),
            (
                "alert_confirmed_batch_in_flight",
                "1 while a batch our bitcoind shows confirmed and deep enough is not settled",
                &p.alerts.confirmed_batch_in_flight,
            ),
            ("alert_proposals_failing", "1 while our proposals fail to build", &p.alerts.proposals_failing),
            (
                "alert_pegout_stuck",
                "1 while peg-outs wait on an operator (e.g. fee pool short)",
                &p.alerts.pegout_stuck,
            ),
        ] {
            registry.register(name, help, g.clone());
        }
        registry.register(
            "peg_share_refusals",
            "Batch versions the share-time check refused to sign since start",
            p.share_refusals.clone(),
        );
        registry.register("height", "Committed tip height", m.height.clone());
        registry.register("round", "Round of the height being decided", m.round.clone());
        registry.register("mempool_transactions", "Transactions in the mempool", m.mempool_txs.clone());
        registry.register("peers", "Connected p2p peers", m.peers.clone());
        registry.register("evidence", "Equivocations seen", m.evidence.clone());
        registry.register("blocks_synced", "Blocks committed through sync", m.blocks_synced.clone());
        registry.register("blocks_committed", "Blocks committed", m.blocks_committed.clone());
        registry.register(
            "block_executions",
            "Blocks executed (validity checks and commits; one per committed block is the goal)",
            m.block_executions.clone(),
        );
        registry.register("rounds_per_height", "Rounds needed to decide a height", m.rounds_per_height.clone());
        registry.register(
            "finality_seconds",
            "From the block's proposal time to its commit here",
            m.finality_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Applies a status change (and the commits it implies).
    pub fn observe(&self, old: &NodeStatus, new: &NodeStatus) {
        self.height.set(new.height.get() as i64);
        self.round.set(i64::from(new.round));
        self.mempool_txs.set(new.mempool_txs as i64);
        self.peers.set(new.peers as i64);
        self.evidence.set(new.evidence as i64);
        let (p, t) = (&self.peg, &new.peg.totals);
        let sats = |a: bitcoin::Amount| i64::try_from(a.to_sat()).unwrap_or(i64::MAX);
        p.btc_held.set(sats(t.btc_held));
        p.supply.set(sats(t.supply));
        p.minted.set(sats(t.minted));
        p.pegin_fees.set(sats(t.pegin_fees));
        p.below_minimum.set(sats(t.below_minimum));
        p.deposits.set(i64::try_from(t.deposits).unwrap_or(i64::MAX));
        p.deposits_seen.set(new.peg.deposits_seen as i64);
        p.claims_pending.set(new.peg.claims_pending as i64);
        p.anchor_height.set(i64::from(new.peg.anchor_height));
        p.halted.set(i64::from(new.peg.halted));
        p.signing_paused.set(i64::from(new.signing.paused_since_ms.is_some()));
        p.shares_refused.set(new.signing.refused.len() as i64);
        p.share_refusals.inc_by(new.signing.refusals.saturating_sub(old.signing.refusals));
        p.bitcoind_best.set(new.peg.bitcoind_best.map_or(0, i64::from));
        p.bitcoind_lag.set(new.peg.bitcoind_best.map_or(0, |b| i64::from(b) - i64::from(new.peg.anchor_height)));
        let up = |k: crate::alerts::AlertKind| i64::from(new.alerts.iter().any(|a| a.kind() == k));
        let a = &p.alerts;
        a.active.set(new.alerts.len() as i64);
        a.anchor_lag.set(up(crate::alerts::AlertKind::AnchorLag));
        a.confirmed_batch_in_flight.set(up(crate::alerts::AlertKind::ConfirmedBatchInFlight));
        a.proposals_failing.set(up(crate::alerts::AlertKind::ProposalsFailing));
        a.pegout_stuck.set(up(crate::alerts::AlertKind::PegOutStuck));
        self.block_executions.inc_by(new.block_executions.saturating_sub(old.block_executions));
        if new.height > old.height {
            self.blocks_committed.inc_by(new.height.get() - old.height.get());
            self.blocks_synced.inc_by(new.synced_blocks.saturating_sub(old.synced_blocks));
            if new.synced_blocks == old.synced_blocks {
                self.rounds_per_height.observe(f64::from(new.last_commit_round) + 1.0);
                let ms = new.tip_committed_ms.saturating_sub(new.tip_time_ms);
                self.finality_seconds.observe(ms as f64 / 1000.0);
            }
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Keeps `metrics` in step with the status channel until it closes.
pub async fn follow(metrics: Arc<Metrics>, mut status: watch::Receiver<NodeStatus>) {
    let mut last = status.borrow_and_update().clone();
    metrics.observe(&NodeStatus::default(), &last);
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        metrics.observe(&last, &now);
        last = now;
    }
}

/// Most time a client may take to send a request head before its connection is closed.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most time one connection may take in all (hyper has no write timeout: a client that never reads its
/// answer would otherwise hold the connection for good).
const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections served at once; more are closed at once. A scraper needs one; the room above that lets the
/// endpoint keep answering while a flood of half-open connections waits out its head timeout, and the cap
/// still bounds what they hold (a task, a socket and at most `MAX_BUF` bytes each).
pub const MAX_CONNECTIONS: usize = 256;

/// Bytes buffered per connection at most: hyper's least allowed buffer, far above a scrape's head.
const MAX_BUF: usize = 8192;

/// Serves `GET /metrics` on `listener` until the task is dropped, with `hyper`'s HTTP/1.1 server: a head
/// of at most `MAX_BUF` bytes read within `HEAD_TIMEOUT`, each connection closed after
/// `CONNECTION_TIMEOUT`, at most [`MAX_CONNECTIONS`] at once, a 4xx for anything that is not HTTP.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: wait a little instead of spinning on the error.
                tracing::debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics connections at their cap: closed");
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let route = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&req, &metrics)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_BUF)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(sock), route);
            match tokio::time::timeout(CONNECTION_TIMEOUT, served).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "malformed metrics request (or too slow): connection closed")
                }
                Err(_) => tracing::info!(%peer, "metrics connection over its time bound: closed"),
            }
        });
    }
}

/// The answer to one request: the metrics for `GET /metrics`, 404 for any other path, 405 for any other
/// method.
fn answer<B>(req: &hyper::Request<B>, metrics: &Metrics) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (hyper::StatusCode::OK, metrics.render()),
        (&hyper::Method::GET, _) => (hyper::StatusCode::NOT_FOUND, "only /metrics is served here\n".to_string()),
        _ => (hyper::StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics is served here\n".to_string()),
    };
    let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Binds the metrics listener (a clear error for a used port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Height;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn renders_and_serves_metrics_and_refuses_garbage() {
        let m = Arc::new(Metrics::new());
        let old = NodeStatus::default();
        let new = NodeStatus {
            height: Height(3),
            mempool_txs: 2,
            tip_committed_ms: 2_000,
            tip_time_ms: 1_500,
            ..old.clone()
        };
        m.observe(&old, &new);
        let text = m.render();
        assert!(text.contains("sidechain_height 3"), "{text}");
        assert!(text.contains("sidechain_mempool_transactions 2"), "{text}");
        assert!(text.contains("sidechain_finality_seconds_count 1"), "{text}");

        let listener = bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, m));
        let get = |req: &'static [u8]| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(req).await.expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        assert!(get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.contains("sidechain_height 3"));
        assert!(get(b"GET / HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(get(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        let garbage = get(b"\x00\x01garbage\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
        // Still serving after garbage.
        assert!(get(b"GET /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200"));
        // A head over the buffer cap is refused, not buffered.
        let big = format!("GET /metrics HTTP/1.1\r\nX-Junk: {}\r\n\r\n", "a".repeat(64 * 1024));
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = s.write_all(big.as_bytes()).await; // cut short when the server closes
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer).await; // or reset
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer:?}");
        // Idle connections up to the cap hold their slots; the next one is closed at once, unanswered.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        let mut over = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut out = Vec::new();
        let closed = tokio::time::timeout(std::time::Duration::from_secs(4), over.read_to_end(&mut out)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "over the cap: {closed:?} {out:?}");
        drop(idle);
        // Slots come back once those connections close.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if get(b"GET /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "slots never came back");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        server.abort();
    }
}
