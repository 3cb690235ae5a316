//! The fault-scenario runner: every e2e fault scenario ends with the same checks, so "the chain survived"
//! means one thing everywhere, and each scenario's wall time is measured the same way.
//!
//! The checks, run against the nodes over JSON-RPC and against the processes themselves:
//! 1. **one chain**: every checked node has the same block hash at every height up to a common tip (the
//!    laggards get a bounded time to catch up first), and the reference node's blocks hash to those
//!    hashes, link by `prev_hash` and commit to their transactions;
//! 2. **finality**: every node's commit certificate at every height verifies against the *genesis*
//!    validator set with the consensus crate, and names that height's block;
//! 3. **conservation**: on every node, `getreserveproof` verifies (proofs against the tip's state root)
//!    and `supply + unpaid burns - genesis supply <= BTC held`; across the chain each BTC outpoint is
//!    minted at most once and each peg-out batch settled at most once;
//! 4. **no double signing**: no node holds evidence against a validator the scenario says is honest;
//! 5. **no crash**: every process is running, or stopped because the test stopped it; no log shows a
//!    panic;
//! 6. with bitcoinds ([`btc_checks`]): **the anchor follows bitcoind** (each node's anchor is on its
//!    bitcoind's best chain, at most `N - 1 + slack` blocks below its tip) and **every batch the federation
//!    broadcast was accepted by bitcoind** (settled ones confirmed where the settlement says, signed ones in
//!    flight confirmed or in its mempool, or replaced there by a later version).
//!
//! [`Scenario::finish`] prints one line per scenario with its wall time and, when
//! `SIDECHAIN_SCENARIO_TIMES` names a file, appends the same figures to it as a JSON line (the test script
//! collects them into its summary).

use crate::federation::{Federation, FederationError};
use crate::process::{Health, Stopped};
use consensus::{CommitCertificate, ValidatorSet};
use primitives::{BlockId, GenesisHash, Height};
use rpc::client::SidechainApiClient;
use rpc::types::{BlockInfo, BlockTxs, GetBlockResult};
use rpc::BlockRef;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub mod btc_checks;

/// A check that failed, with what it saw.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Talking to the federation failed.
    #[error(transparent)]
    Federation(#[from] FederationError),
    /// Two nodes disagree on a block.
    #[error("fork at height {height}: {a} has {hash_a}, {b} has {hash_b}")]
    Fork { height: u64, a: String, hash_a: BlockId, b: String, hash_b: BlockId },
    /// A block or its certificate is wrong.
    #[error("{node} at height {height}: {reason}")]
    BadBlock { node: String, height: u64, reason: String },
    /// The reserves do not cover what is owed, or their proof is wrong.
    #[error("{node}: conservation: {reason}")]
    Conservation { node: String, reason: String },
    /// Something was minted or settled twice.
    #[error("{what} twice: at heights {first} and {second}")]
    Twice { what: String, first: u64, second: u64 },
    /// Evidence against a validator that was meant to be honest.
    #[error("{node} holds evidence against honest validator {offender}: {detail}")]
    DoubleSigned { node: String, offender: u16, detail: String },
    /// A process exited by itself, or its log shows a panic.
    #[error("{node} crashed: {detail}")]
    Crashed { node: String, detail: String },
    /// The genesis file does not give a validator set.
    #[error("genesis {0}")]
    Genesis(String),
    /// A bitcoind did not answer.
    #[error("bitcoind{index}: {source}")]
    Bitcoind {
        index: usize,
        #[source]
        source: crate::bitcoind::BitcoindError,
    },
    /// A node's BTC anchor is not a block of its bitcoind's best chain.
    #[error(
        "{node}: the BTC anchor {anchor} at height {height} is not on bitcoind{bitcoind}'s best chain ({})",
        shown.map(|h| format!("it has {h} there")).unwrap_or_else(|| "it is not that high".into())
    )]
    AnchorOffChain {
        node: String,
        height: u64,
        anchor: bitcoin::BlockHash,
        bitcoind: usize,
        shown: Option<bitcoin::BlockHash>,
    },
    /// A node's BTC anchor stopped following its bitcoind.
    #[error(
        "{node}: the BTC anchor is at {anchor}, bitcoind{bitcoind} at {best}: more than {allowed} blocks behind after \
         {after:?} (the peg no longer follows Bitcoin)"
    )]
    AnchorBehind { node: String, anchor: u64, bitcoind: usize, best: u64, allowed: u64, after: Duration },
    /// A batch version the federation fully signed (so broadcast) is not on Bitcoin, nor replaced there.
    #[error(
        "peg-out batch {batch} version {version} ({txid}) was fully signed, so broadcast by the federation, but it \
         is neither confirmed nor in bitcoind{bitcoind}'s mempool, and no later version is: bitcoind refused it"
    )]
    BatchNotAccepted { batch: u64, version: usize, txid: bitcoin::Txid, bitcoind: usize },
    /// A batch the chain settled is not confirmed on Bitcoin where the settlement says.
    #[error(
        "peg-out batch {batch} was settled by {txid} in BTC block {block}, but on bitcoind{bitcoind} it is {seen}"
    )]
    SettledNotConfirmed { batch: u64, txid: bitcoin::Txid, block: bitcoin::BlockHash, bitcoind: usize, seen: String },
    /// An honest node's share-time check refuses a batch version (`getblockchaininfo.signing.refused`).
    #[error("{node} refuses to sign peg-out batch {batch} version {btc_txid}: {kind} ({refused} refused in all)")]
    SigningRefused { node: String, batch: u64, btc_txid: String, kind: String, refused: usize },
    /// A bitcoind's transaction index is still catching up, so it cannot tell whether it knows a batch.
    #[error("bitcoind{bitcoind}: its transaction index is still catching up")]
    BtcIndexing { bitcoind: usize },
    /// A record read from a node or a bitcoind does not decode.
    #[error("{node}: {reason}")]
    BadRecord { node: String, reason: String },
}

fn rpc_err(node: &str) -> impl Fn(jsonrpsee::core::client::Error) -> ScenarioError + '_ {
    move |e| ScenarioError::Federation(FederationError::Rpc { node: node.to_string(), reason: e.to_string() })
}

/// Which nodes and validators the closing checks cover.
#[derive(Clone, Debug)]
pub struct Checks {
    /// Nodes whose chains are compared and checked (default: every node that is running).
    pub nodes: Option<Vec<usize>>,
    /// Validator indices that must have no evidence against them (default: all of them).
    pub honest_validators: Option<Vec<u16>>,
    /// How long lagging nodes get to reach the common tip before the chain is compared.
    pub catch_up: Duration,
    /// How far beyond `N - 1` blocks below its bitcoind's tip a node's anchor may be at the end.
    pub anchor_slack: u64,
    /// How long the anchor gets to come within that bound, and bitcoinds to show the batches.
    pub btc_bound: Duration,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            nodes: None,
            honest_validators: None,
            catch_up: Duration::from_secs(60),
            anchor_slack: 1,
            btc_bound: Duration::from_secs(60),
        }
    }
}

/// What the closing checks saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// From [`Scenario::begin`] to the end of the checks.
    pub wall: Duration,
    /// The checks alone.
    pub checks: Duration,
    /// Nodes compared.
    pub nodes: usize,
    /// Heights compared on every node (1..=heights).
    pub heights: u64,
    /// Certificates verified (one per node per height).
    pub certificates: usize,
    /// Mints seen on the chain (each outpoint once).
    pub mints: usize,
    /// Peg-out batches checked against the bitcoinds (settled and in flight).
    pub batches: usize,
}

impl std::fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scenario {}: ok in {:.1} s (checks {:.1} s): {} nodes on one chain of {} blocks, {} certificates \
             verified, {} mints, reserves proved, {} batches accepted by bitcoind",
            self.name,
            self.wall.as_secs_f64(),
            self.checks.as_secs_f64(),
            self.nodes,
            self.heights,
            self.certificates,
            self.mints,
            self.batches
        )
    }
}

/// One running scenario: started with [`Scenario::begin`], closed by [`Scenario::finish`].
#[derive(Debug)]
pub struct Scenario {
    name: String,
    started: Instant,
}

impl Scenario {
    /// Starts the clock (call it before the federation starts, so the wall time is the whole scenario).
    pub fn begin(name: &str) -> Scenario {
        Scenario { name: name.to_string(), started: Instant::now() }
    }

    /// Time since [`Scenario::begin`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs every closing check, then prints and records the wall time.
    pub async fn finish(self, fed: &mut Federation, checks: Checks) -> Result<ScenarioReport, ScenarioError> {
        let t = Instant::now();
        processes_alive(fed)?;
        let nodes = match checks.nodes.clone() {
            Some(n) => n,
            None => (0..fed.nodes.len()).filter(|&i| fed.nodes[i].process.is_running()).collect(),
        };
        let tip = common_tip(fed, &nodes, checks.catch_up).await?;
        let scan = check_chain(fed, &nodes, tip).await?;
        check_reserves(fed, &nodes).await?;
        let confirmations = u64::from(genesis_chain(fed)?.params().pegin_confirmations);
        btc_checks::check_anchor_follows(fed, &nodes, confirmations, checks.anchor_slack, checks.btc_bound).await?;
        let batches =
            btc_checks::check_batches_accepted(fed, &nodes, scan.settles.clone(), tip, checks.btc_bound).await?;
        let honest = match checks.honest_validators {
            Some(h) => h,
            None => (0..fed.config().validators as u16).collect(),
        };
        check_evidence(fed, &nodes, &honest).await?;
        // Last, so a crash during the checks is caught too.
        processes_alive(fed)?;
        let report = ScenarioReport {
            name: self.name,
            wall: self.started.elapsed(),
            checks: t.elapsed(),
            nodes: nodes.len(),
            heights: tip,
            certificates: scan.certificates,
            mints: scan.mints,
            batches,
        };
        println!("{report}");
        record_time(&report);
        Ok(report)
    }
}

/// Appends the report to `$SIDECHAIN_SCENARIO_TIMES` as a JSON line, if that is set (best effort: a
/// failure to record is printed, never a failed scenario).
fn record_time(r: &ScenarioReport) {
    let Some(path) = std::env::var_os("SIDECHAIN_SCENARIO_TIMES") else { return };
    let line = serde_json::json!({
        "scenario": r.name,
        "wall_s": (r.wall.as_secs_f64() * 10.0).round() / 10.0,
        "checks_s": (r.checks.as_secs_f64() * 10.0).round() / 10.0,
        "heights": r.heights,
        "nodes": r.nodes,
    });
    use std::io::Write;
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("could not record the scenario time in {}: {e}", std::path::Path::new(&path).display());
    }
}

/// Every process is running or was stopped by the test, and no log shows a panic.
pub fn processes_alive(fed: &mut Federation) -> Result<(), ScenarioError> {
    for n in &mut fed.nodes {
        match n.process.health() {
            Health::Running | Health::Stopped(Stopped::ByOwner) | Health::Stopped(Stopped::NeverStarted) => {}
            Health::Stopped(Stopped::Exited(status)) => {
                return Err(ScenarioError::Crashed {
                    node: n.name.clone(),
                    detail: format!("exited by itself ({status}); log tail:\n{}", n.process.log_tail(30)),
                });
            }
        }
        let log = std::fs::read_to_string(n.process.log_path()).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
            return Err(ScenarioError::Crashed { node: n.name.clone(), detail: format!("a thread panicked: {line}") });
        }
    }
    Ok(())
}

/// Waits (bounded) until every node in `nodes` has reached the highest tip any of them had at the start,
/// and returns that height.
pub async fn common_tip(fed: &Federation, nodes: &[usize], bound: Duration) -> Result<u64, ScenarioError> {
    let mut top = 0;
    for &i in nodes {
        top = top.max(fed.nodes[i].height().await?);
    }
    fed.wait_height(nodes, top, bound).await?;
    Ok(top)
}

/// The genesis validator set and genesis hash, read from the federation's genesis file (not from a node).
pub fn genesis_validators(fed: &Federation) -> Result<(ValidatorSet, GenesisHash), ScenarioError> {
    let chain = genesis_chain(fed)?;
    let set = consensus_set(&chain.genesis().validators).map_err(ScenarioError::Genesis)?;
    Ok((set, *chain.genesis_hash()))
}

/// The chain as the federation's genesis file defines it (not as a node says).
pub fn genesis_chain(fed: &Federation) -> Result<ledger::Chain, ScenarioError> {
    let text = std::fs::read_to_string(&fed.genesis_path).map_err(|e| ScenarioError::Genesis(e.to_string()))?;
    let genesis: ledger::Genesis = serde_json::from_str(&text).map_err(|e| ScenarioError::Genesis(e.to_string()))?;
    ledger::Chain::new(genesis).map_err(|e| ScenarioError::Genesis(e.to_string()))
}

fn consensus_set(validators: &[ledger::GenesisValidator]) -> Result<ValidatorSet, String> {
    ValidatorSet::new(validators.iter().map(|v| (v.consensus_key, v.power)).collect()).map_err(|e| e.to_string())
}

/// The validator set of each height, followed from the chain itself as a syncing node does: a committed
/// `Reconfigure` names the set that takes over at its activation height.
pub struct SetTracker {
    set: ValidatorSet,
    pending: Option<(Height, ValidatorSet)>,
}

impl SetTracker {
    /// Starts from the genesis set.
    pub fn new(genesis_set: ValidatorSet) -> Self {
        SetTracker { set: genesis_set, pending: None }
    }

    /// The set that decides height `h` (call with increasing heights).
    pub fn at(&mut self, h: Height) -> &ValidatorSet {
        if self.pending.as_ref().is_some_and(|(from, _)| *from <= h) {
            if let Some((_, next)) = self.pending.take() {
                self.set = next;
            }
        }
        &self.set
    }

    /// Takes note of a committed block's federation changes (`txs` as `getblock` verbosity 2 gives them).
    pub fn observe(&mut self, txs: &BlockTxs) -> Result<(), String> {
        let BlockTxs::Full(txs) = txs else { return Ok(()) };
        for t in txs {
            if let rpc::types::TxKindInfo::Reconfigure { .. } = t.kind {
                let bytes = hex::decode(&t.hex).map_err(|e| format!("reconfigure hex: {e}"))?;
                let tx: ledger::Tx = borsh::from_slice(&bytes).map_err(|e| format!("reconfigure bytes: {e}"))?;
                if let ledger::Tx::Reconfigure(r) = tx {
                    self.pending = Some((r.proposal.activation_height, consensus_set(&r.proposal.validators)?));
                }
            }
        }
        Ok(())
    }
}

/// What scanning the chain found.
#[derive(Debug, Default)]
struct Scan {
    certificates: usize,
    mints: usize,
    /// Every settlement, in chain order.
    settles: Vec<ledger::SettleTx>,
}

fn decode_cert(hex_text: &str) -> Result<CommitCertificate, String> {
    let bytes = hex::decode(hex_text).map_err(|e| format!("certificate hex: {e}"))?;
    borsh::from_slice(&bytes).map_err(|e| format!("certificate bytes: {e}"))
}

/// Every node's block hashes and certificates at heights 1..=tip (one `getblock` per height and node).
async fn node_chain(
    fed: &Federation,
    i: usize,
    tip: u64,
    set: &ValidatorSet,
    genesis: &GenesisHash,
) -> Result<Vec<BlockId>, ScenarioError> {
    let mut sets = SetTracker::new(set.clone());
    let node = &fed.nodes[i];
    let client = node.client()?;
    let bad = |height: u64, reason: String| ScenarioError::BadBlock { node: node.name.clone(), height, reason };
    let mut hashes = Vec::with_capacity(tip as usize);
    for h in 1..=tip {
        let got = client.get_block(BlockRef::Height(Height(h)), Some(2)).await.map_err(rpc_err(&node.name))?;
        let GetBlockResult::Json(info) = got else { return Err(bad(h, "verbosity 2 did not give JSON".into())) };
        let BlockInfo { hash, height, commit, tx, .. } = *info;
        if height != Height(h) {
            return Err(bad(h, format!("asked for height {h}, got {height}")));
        }
        let cert = decode_cert(&commit.hex).map_err(|e| bad(h, e))?;
        cert.verify(sets.at(Height(h)), genesis, Height(h)).map_err(|e| bad(h, format!("certificate: {e}")))?;
        sets.observe(&tx).map_err(|e| bad(h, e))?;
        if cert.value != hash {
            return Err(bad(h, format!("certificate is for {}, the block is {hash}", cert.value)));
        }
        hashes.push(hash);
    }
    Ok(hashes)
}

/// Same hash at every height on every node, every certificate verifies, and the reference node's blocks
/// are what their hashes say; mints and settlements happen once each.
async fn check_chain(fed: &Federation, nodes: &[usize], tip: u64) -> Result<Scan, ScenarioError> {
    let (set, genesis) = genesis_validators(fed)?;
    let mut chains = Vec::new();
    for &i in nodes {
        chains.push((i, node_chain(fed, i, tip, &set, &genesis).await?));
    }
    let mut scan = Scan { certificates: chains.len() * tip as usize, ..Default::default() };
    let Some((ref_i, reference)) = chains.first() else { return Ok(scan) };
    for (i, hashes) in &chains[1..] {
        for (h, (a, b)) in reference.iter().zip(hashes).enumerate() {
            if a != b {
                return Err(ScenarioError::Fork {
                    height: h as u64 + 1,
                    a: fed.nodes[*ref_i].name.clone(),
                    hash_a: *a,
                    b: fed.nodes[*i].name.clone(),
                    hash_b: *b,
                });
            }
        }
    }
    // The reference node's bodies: each hashes to the agreed hash, links to the previous one, and its
    // transactions are the ones its header commits to.
    let node = &fed.nodes[*ref_i];
    let client = node.client()?;
    let bad = |height: u64, reason: String| ScenarioError::BadBlock { node: node.name.clone(), height, reason };
    let mut minted: HashMap<ledger::BtcOutPoint, u64> = Default::default();
    let mut settled: HashMap<u64, u64> = Default::default();
    // The node takes the genesis hash as the parent of block 1 (`ChainState::open`).
    let mut prev = genesis.as_block_id();
    for (h, hash) in (1..=tip).zip(reference) {
        let got = client.get_block(BlockRef::Height(Height(h)), Some(0)).await.map_err(rpc_err(&node.name))?;
        let GetBlockResult::Hex(text) = got else { return Err(bad(h, "verbosity 0 did not give hex".into())) };
        let bytes = hex::decode(text).map_err(|e| bad(h, format!("block hex: {e}")))?;
        let block: ledger::Block = borsh::from_slice(&bytes).map_err(|e| bad(h, format!("block bytes: {e}")))?;
        if block.hash() != *hash {
            return Err(bad(h, format!("body hashes to {}, the chain says {hash}", block.hash())));
        }
        if block.header.prev_hash != prev {
            return Err(bad(h, format!("prev_hash {} is not the block below ({prev})", block.header.prev_hash)));
        }
        if block.compute_tx_root() != block.header.tx_root {
            return Err(bad(h, "transactions do not match the header's tx_root".into()));
        }
        prev = *hash;
        for tx in &block.txs {
            match tx {
                ledger::Tx::Mint(m) => {
                    scan.mints += 1;
                    if let Some(first) = minted.insert(m.outpoint, h) {
                        return Err(ScenarioError::Twice {
                            what: format!("deposit {:?} minted", m.outpoint),
                            first,
                            second: h,
                        });
                    }
                }
                ledger::Tx::Settle(s) => {
                    scan.settles.push(s.clone());
                    if let Some(first) = settled.insert(s.batch, h) {
                        return Err(ScenarioError::Twice {
                            what: format!("peg-out batch {} settled", s.batch),
                            first,
                            second: h,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(scan)
}

/// The settlements in node `i`'s blocks `from..=to` (bodies as the node serves them; [`check_chain`]
/// checks bodies against their hashes up to the common tip).
async fn settles_between(
    fed: &Federation,
    i: usize,
    from: u64,
    to: u64,
) -> Result<Vec<ledger::SettleTx>, ScenarioError> {
    let node = &fed.nodes[i];
    let client = node.client()?;
    let bad = |height: u64, reason: String| ScenarioError::BadBlock { node: node.name.clone(), height, reason };
    let mut out = Vec::new();
    for h in from..=to {
        let got = client.get_block(BlockRef::Height(Height(h)), Some(0)).await.map_err(rpc_err(&node.name))?;
        let GetBlockResult::Hex(text) = got else { return Err(bad(h, "verbosity 0 did not give hex".into())) };
        let bytes = hex::decode(text).map_err(|e| bad(h, format!("block hex: {e}")))?;
        let block: ledger::Block = borsh::from_slice(&bytes).map_err(|e| bad(h, format!("block bytes: {e}")))?;
        out.extend(block.txs.iter().filter_map(|t| match t {
            ledger::Tx::Settle(s) => Some(s.clone()),
            _ => None,
        }));
    }
    Ok(out)
}

/// On every node: the reserve proof verifies and the reserves cover what is owed.
pub async fn check_reserves(fed: &Federation, nodes: &[usize]) -> Result<(), ScenarioError> {
    for &i in nodes {
        let node = &fed.nodes[i];
        let bad = |reason: String| ScenarioError::Conservation { node: node.name.clone(), reason };
        let proof = node.client()?.get_reserve_proof().await.map_err(rpc_err(&node.name))?;
        proof.verify().map_err(|e| bad(format!("reserve proof at height {}: {e}", proof.height)))?;
        let owed = proof.supply.checked_add(proof.unpaid_burns).ok_or_else(|| bad("owed overflows".into()))?;
        let pegged = owed.checked_sub(proof.genesis_supply).ok_or_else(|| {
            bad(format!(
                "supply {} + unpaid burns {} is below the genesis supply {}",
                proof.supply, proof.unpaid_burns, proof.genesis_supply
            ))
        })?;
        if pegged > proof.btc_held || !proof.reserve_ok {
            return Err(bad(format!(
                "at height {}: supply {} + unpaid burns {} - genesis {} > BTC held {} (reserve_ok {})",
                proof.height, proof.supply, proof.unpaid_burns, proof.genesis_supply, proof.btc_held, proof.reserve_ok
            )));
        }
    }
    Ok(())
}

/// No node holds evidence against a validator in `honest`.
pub async fn check_evidence(fed: &Federation, nodes: &[usize], honest: &[u16]) -> Result<(), ScenarioError> {
    let honest: HashSet<u16> = honest.iter().copied().collect();
    for &i in nodes {
        let node = &fed.nodes[i];
        for e in node.client()?.get_evidence().await.map_err(rpc_err(&node.name))? {
            if honest.contains(&e.offender.get()) {
                return Err(ScenarioError::DoubleSigned {
                    node: node.name.clone(),
                    offender: e.offender.get(),
                    detail: format!("{e:?}"),
                });
            }
        }
    }
    Ok(())
}
