//! Test fixture for the server layer: an in-memory [`RpcBackend`] built from `ledger::testkit` (real
//! genesis, real blocks from `ledger::build_block`, real signed commit certificates), a running server on
//! 127.0.0.1:0, and a raw HTTP/1.1 client for requests a typed client cannot make (bad auth, bad
//! Host, oversized bodies). End-to-end tests against real `sidechaind` processes live in `testnet/`.
#![allow(dead_code)]

use bitcoin::Amount;
use consensus::{CommitCertificate, Vote, VoteKind};
use ledger::testkit::{self, transfer, user_key, validator_key};
use ledger::{build_block, check_tx, Block, BlockTemplate, Chain, MemStore, SignedUserTx, StateReader, Tx};
use primitives::{canonical_bytes, tagged_hash, AccountId, BlockId, Hash32, Height, Round, TxId, ValidatorIndex};
use rpc::backend::{BackendError, ClaimError, OperatorError, RpcBackend, SubmitError};
use rpc::types::*;
use rpc::{start_server, RpcServerConfig, RpcServerHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

pub const VALIDATORS: u32 = 4;
pub const FEE: Amount = Amount::from_sat(100);

pub fn acct(i: u32) -> AccountId {
    user_key(i).public().account_id()
}

struct Inner {
    store: MemStore,
    blocks: Vec<StoredBlock>,
    mempool: Vec<SignedUserTx>,
    /// Pending peg-in claims: (outpoint, recipient, BTC block).
    claims: Vec<(ledger::BtcOutPoint, AccountId, bitcoin::BlockHash)>,
    /// Every committed block's history entries, oldest first (`ledger::history`, as the node indexes them).
    history: Vec<(AccountId, ledger::history::HistoryEntry)>,
}

/// The BTC height the mock's "bitcoind" puts every claimed deposit at, its best height, and the amount.
pub const CLAIM_BTC_HEIGHT: u32 = 101;
pub const MOCK_BTC_BEST: u32 = 103;
pub const CLAIM_AMOUNT: Amount = Amount::from_sat(50_000);

/// The in-memory node.
pub struct MemBackend {
    pub chain: Chain,
    inner: Mutex<Inner>,
    blocks_tx: broadcast::Sender<BlockSummary>,
    /// When set, every call fails as if storage broke.
    pub fail: AtomicBool,
    /// When set, the node keeps no account history.
    pub history_off: AtomicBool,
}

fn storage_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> BackendError {
    BackendError::storage(e)
}

impl MemBackend {
    fn pegout_view(&self) -> rpc::types::PegOutView {
        rpc::types::PegOutView {
            network: bitcoin::Network::Regtest,
            confirmed: Default::default(),
            chain: self.chain.clone(),
        }
    }

    /// A chain with 4 validators and 3 users of 10 BTC; block 1 (user 0 -> user 1) and block 2
    /// (user 1 -> user 2) are committed.
    pub fn new() -> Arc<Self> {
        let (chain, store) = testkit::chain_and_store(VALIDATORS, 3, Amount::from_sat(1_000_000_000));
        let (blocks_tx, _) = broadcast::channel(16);
        let b = Arc::new(MemBackend {
            chain,
            inner: Mutex::new(Inner {
                store,
                blocks: Vec::new(),
                mempool: Vec::new(),
                claims: Vec::new(),
                history: Vec::new(),
            }),
            blocks_tx,
            fail: AtomicBool::new(false),
            history_off: AtomicBool::new(false),
        });
        let t1 = transfer(&b.chain, &user_key(0), 0, acct(1), Amount::from_sat(5_000), FEE);
        b.commit_block(vec![t1]);
        let t2 = transfer(&b.chain, &user_key(1), 0, acct(2), Amount::from_sat(7_000), FEE);
        b.commit_block(vec![t2]);
        b
    }

    fn check(&self) -> Result<(), BackendError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError::storage(std::io::Error::other("disk on fire (test fault)")));
        }
        Ok(())
    }

    /// Builds, certifies and stores the next block with `txs`, then announces it.
    pub fn commit_block(&self, txs: Vec<SignedUserTx>) -> Block {
        let mut inner = self.inner.lock().unwrap();
        let height = Height(inner.blocks.len() as u64 + 1);
        let (prev_hash, last_commit_hash) = match inner.blocks.last() {
            Some(p) => (p.block.hash(), tagged_hash("test/commit", &[&canonical_bytes(&p.commit)])),
            None => (self.chain.genesis_hash().as_block_id(), Hash32::ZERO),
        };
        let template = BlockTemplate {
            height,
            prev_hash,
            time_ms: self.chain.genesis().genesis_time_ms + height.get() * 1000,
            proposer: ValidatorIndex(0),
            btc_anchor: self.chain.genesis().btc_anchor,
            last_commit_hash,
        };
        let txs: Vec<Tx> = txs.into_iter().map(Tx::from).collect();
        let (block, outcome) = build_block(&self.chain, &inner.store, template, txs).unwrap();
        inner.store.apply(&outcome.write_set);
        let (pre, post) = (inner.store.snapshot(height.get() - 1), inner.store.snapshot(height.get()));
        let entries = ledger::history::block_history(&pre, &post, height, &block).unwrap();
        inner.history.extend(entries);
        let hash = block.hash();
        let signatures = (0..VALIDATORS)
            .map(|i| {
                let idx = ValidatorIndex(i as u16);
                let vote =
                    Vote { kind: VoteKind::Precommit, height, round: Round(0), value: Some(hash), validator: idx };
                (idx, vote.sign(&validator_key(i), self.chain.genesis_hash()).signature)
            })
            .collect();
        let commit = CommitCertificate { height, round: Round(0), value: hash, signatures };
        let ids: Vec<TxId> = block.txs.iter().map(Tx::txid).collect();
        inner.mempool.retain(|t| !ids.contains(&t.txid()));
        inner.blocks.push(StoredBlock { block: block.clone(), commit });
        drop(inner);
        let _ = self.blocks_tx.send(BlockSummary::from(&block));
        block
    }

    pub fn tip_block(&self) -> StoredBlock {
        self.inner.lock().unwrap().blocks.last().unwrap().clone()
    }
}

impl RpcBackend for MemBackend {
    async fn account_history(
        &self,
        account: AccountId,
        count: usize,
        skip: usize,
    ) -> Result<Option<Vec<rpc::types::HistoryEntryInfo>>, BackendError> {
        self.check()?;
        if self.history_off.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let inner = self.inner.lock().unwrap();
        let mine = inner.history.iter().rev().filter(|(a, _)| *a == account).skip(skip).take(count);
        Ok(Some(mine.map(|(_, e)| rpc::types::HistoryEntryInfo::new(e, bitcoin::Network::Regtest)).collect()))
    }

    async fn chain_info(&self) -> Result<ChainInfo, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let version = inner.store.latest_version().unwrap_or(0);
        let snap = inner.store.snapshot(version);
        let meta =
            snap.chain_meta().map_err(storage_err)?.ok_or_else(|| storage_err(std::io::Error::other("no genesis")))?;
        let totals = snap.peg_totals().map_err(storage_err)?;
        Ok(ChainInfo {
            chain_id: self.chain.genesis().chain_id.clone(),
            genesis_hash: *self.chain.genesis_hash(),
            height: meta.height,
            best_block_hash: inner.blocks.last().map_or(self.chain.genesis_hash().as_block_id(), |b| b.block.hash()),
            time_ms: meta.time_ms,
            state_root: snap.root().map_err(storage_err)?,
            btc_anchor: meta.btc_anchor.into(),
            peg_status: PegStatus::Active,
            peg: ChainPegInfo::new(&totals, self.chain.genesis_supply(), false),
            min_fee: self.chain.params().min_fee,
            validator: false,
            syncing: false,
            signing: SigningInfo::default(),
            alerts: Vec::new(),
        })
    }

    async fn block_by_height(&self, height: Height) -> Result<Option<StoredBlock>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let i = height.get().checked_sub(1).map(|i| i as usize);
        Ok(i.and_then(|i| inner.blocks.get(i).cloned()))
    }

    async fn block_height_by_hash(&self, hash: BlockId) -> Result<Option<Height>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        Ok(inner.blocks.iter().find(|b| b.block.hash() == hash).map(|b| b.block.header.height))
    }

    async fn transaction(&self, txid: TxId) -> Result<Option<TxLookup>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        if let Some(t) = inner.mempool.iter().find(|t| t.txid() == txid) {
            return Ok(Some(TxLookup { tx: Tx::from(t.clone()), location: TxLocation::Mempool }));
        }
        for b in &inner.blocks {
            if let Some(i) = b.block.txs.iter().position(|t| t.txid() == txid) {
                return Ok(Some(TxLookup {
                    tx: b.block.txs[i].clone(),
                    location: TxLocation::Block {
                        height: b.block.header.height,
                        block_hash: b.block.hash(),
                        index: i as u32,
                    },
                }));
            }
        }
        Ok(None)
    }

    async fn account(&self, id: AccountId) -> Result<Option<ledger::Account>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let snap = inner.store.snapshot(inner.store.latest_version().unwrap_or(0));
        snap.get_account(&id).map_err(storage_err)
    }

    async fn submit_tx(&self, tx: SignedUserTx) -> Result<TxId, SubmitError> {
        self.check()?;
        let mut inner = self.inner.lock().unwrap();
        let txid = tx.txid();
        if inner.mempool.iter().any(|t| t.txid() == txid) {
            return Err(SubmitError::Duplicate(txid));
        }
        let snap = inner.store.snapshot(inner.store.latest_version().unwrap_or(0));
        check_tx(&self.chain, &snap, &tx).map_err(SubmitError::Invalid)?;
        inner.mempool.push(tx);
        Ok(txid)
    }

    async fn mempool_info(&self) -> Result<MempoolInfo, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let bytes = inner.mempool.iter().map(|t| canonical_bytes(t).len() as u64).sum();
        Ok(MempoolInfo { size: inner.mempool.len(), bytes, max_bytes: 64 << 20 })
    }

    async fn mempool_txids(&self) -> Result<Vec<TxId>, BackendError> {
        self.check()?;
        Ok(self.inner.lock().unwrap().mempool.iter().map(SignedUserTx::txid).collect())
    }

    async fn peers(&self) -> Result<Vec<PeerInfo>, BackendError> {
        self.check()?;
        Ok(vec![PeerInfo {
            peer_id: "12D3KooWtest".into(),
            addr: "/ip4/127.0.0.1/tcp/26657".into(),
            validator_index: Some(ValidatorIndex(1)),
            height: Some(Height(2)),
            score: -3,
        }])
    }

    async fn network(&self) -> Result<NetworkInfo, BackendError> {
        self.check()?;
        Ok(NetworkInfo {
            version: "sidechaind/test".into(),
            peer_id: "12D3KooWself".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/26656".into()],
            connections: 1,
        })
    }

    async fn validators(&self) -> Result<Vec<ValidatorInfo>, BackendError> {
        self.check()?;
        Ok(ValidatorInfo::from_genesis(self.chain.genesis()))
    }

    async fn federation(&self) -> Result<FederationInfo, BackendError> {
        self.check()?;
        let (totals, changes, pegout_limit) = {
            let inner = self.inner.lock().unwrap();
            let snap = inner.store.snapshot(inner.store.latest_version().unwrap_or(0));
            let view = rpc::types::FederationView::read(&self.chain, &snap, bitcoin::Network::Regtest);
            let limit = rpc::types::PegOutLimitInfo::read(self.chain.params(), &snap).map_err(storage_err)?;
            (snap.peg_totals().map_err(storage_err)?, view.map_err(storage_err)?, limit)
        };
        Ok(FederationInfo {
            descriptor: "wsh(sortedmulti(3,...))".into(),
            threshold: 3,
            keys: 4,
            script_pubkey: "0020".to_string() + &"ab".repeat(32),
            address: "bcrt1qtest".into(),
            network: "regtest".into(),
            pegin_confirmations: 6,
            pegin_min_amount: Amount::from_sat(10_000),
            pegin_fee: self.chain.pegin_fee(),
            pegout_fee_rate_sat_vb: self.chain.params().pegin_fee_rate_sat_vb,
            pegout_batch_share_vbytes: ledger::pegout::pegout_share_vbytes(self.chain.genesis_wallet()).unwrap(),
            fee_rate_votes: Vec::new(),
            peg_totals: totals.into(),
            pegout_limit,
            changes,
        })
    }

    async fn pegouts(&self, count: usize, skip: usize) -> Result<Vec<PegOutInfo>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let snap = inner.store.snapshot(inner.store.latest_version().unwrap_or(0));
        read_pegouts(&snap, count, skip, &self.pegout_view()).map_err(storage_err)
    }

    async fn pegout_by_txid(&self, txid: TxId) -> Result<Option<PegOutInfo>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let snap = inner.store.snapshot(inner.store.latest_version().unwrap_or(0));
        read_pegout_by_txid(&snap, &txid, &self.pegout_view()).map_err(storage_err)
    }

    /// The ledger's record from state; the mock's "bitcoind" confirms every claim submitted to it (at
    /// [`CLAIM_BTC_HEIGHT`], worth [`CLAIM_AMOUNT`]).
    async fn pegin_facts(&self, outpoint: ledger::BtcOutPoint) -> Result<PegInFacts, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let snap = inner.store.snapshot(inner.store.latest_version().unwrap_or(0));
        let record = snap.get_pegin(&outpoint).map_err(storage_err)?;
        let claim_confirmed = inner.claims.iter().find(|c| c.0 == outpoint).map(|(o, r, b)| peg::Deposit {
            outpoint: btc_outpoint(o),
            amount: CLAIM_AMOUNT,
            script_pubkey: bitcoin::ScriptBuf::new(),
            recipient: r.0 .0,
            epoch: 0,
            btc_block_hash: *b,
            btc_height: CLAIM_BTC_HEIGHT,
            coinbase: false,
        });
        let registration_live = match claim_confirmed.as_ref() {
            Some(d) => Some(snap.get_registration(&AccountId(Hash32(d.recipient))).map_err(storage_err)?.is_some()),
            None => None,
        };
        Ok(PegInFacts {
            record,
            claim_confirmed,
            btc_best_height: Some(MOCK_BTC_BEST),
            registration_live,
            confirmations_required: 6,
            ..PegInFacts::default()
        })
    }

    async fn state_proof(
        &self,
        height: Option<Height>,
        keys: Vec<ledger::StateKey>,
    ) -> Result<Option<StateProofInfo>, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let tip = inner.store.latest_version().unwrap_or(0);
        let h = height.map_or(tip, Height::get);
        if h > tip {
            return Ok(None);
        }
        StateProofInfo::read(&inner.store.snapshot(h), &keys).map(Some).map_err(BackendError::storage)
    }

    fn federation_change_min_lead(&self) -> u64 {
        self.chain.params().federation_change_min_lead
    }

    async fn reserve_proof(&self) -> Result<rpc::types::ReserveProofInfo, BackendError> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let v = inner.store.latest_version().unwrap_or(0);
        let proof = ledger::batching::reserve_proof(&inner.store.snapshot(v)).map_err(BackendError::storage)?;
        Ok(rpc::types::ReserveProofInfo::new(primitives::Height(v), &proof, self.chain.genesis_supply()))
    }

    async fn set_signing_paused(&self, paused: bool) -> Result<SigningInfo, BackendError> {
        self.check()?;
        Ok(SigningInfo { paused, paused_since_ms: paused.then_some(1), ..SigningInfo::default() })
    }

    async fn resume_peg(&self, _anchor: ledger::BtcAnchor) -> Result<(), OperatorError> {
        self.check()?;
        Err(OperatorError::Refused(rpc::backend::refusal(std::io::Error::other("this node is not a validator"))))
    }

    async fn claim_pegin(
        &self,
        outpoint: ledger::BtcOutPoint,
        recipient: AccountId,
        btc_block: bitcoin::BlockHash,
    ) -> Result<(), ClaimError> {
        self.check()?;
        let mut inner = self.inner.lock().unwrap();
        if inner.claims.iter().any(|c| c.0 == outpoint) {
            return Err(ClaimError::AlreadyPending { outpoint });
        }
        inner.claims.push((outpoint, recipient, btc_block));
        Ok(())
    }

    async fn pegin_address(&self, recipient: AccountId) -> Result<PegInAddressInfo, BackendError> {
        self.check()?;
        Ok(PegInAddressInfo {
            recipient,
            address: "bcrt1qdeposit".into(),
            script_pubkey: "0020".to_string() + &"cd".repeat(32),
            descriptor: "wsh(sortedmulti(3,...))".into(),
            network: "regtest".into(),
            confirmations_required: 6,
            min_amount: Amount::from_sat(10_000),
            registration_fee: self.chain.params().registration_fee,
        })
    }

    async fn consensus_state(&self) -> Result<ConsensusStateInfo, BackendError> {
        self.check()?;
        Ok(ConsensusStateInfo {
            height: Height(3),
            round: 1,
            step: "precommit".into(),
            locked_round: Some(0),
            locked_block: Some(BlockId(Hash32([9; 32]))),
            validator_index: None,
        })
    }

    async fn evidence(&self) -> Result<Vec<EvidenceInfo>, BackendError> {
        self.check()?;
        let g = self.chain.genesis_hash();
        let vote = |v: Option<BlockId>| {
            Vote { kind: VoteKind::Prevote, height: Height(1), round: Round(0), value: v, validator: ValidatorIndex(3) }
                .sign(&validator_key(3), g)
        };
        let e =
            consensus::Equivocation::Votes(vote(Some(BlockId(Hash32([1; 32])))), vote(Some(BlockId(Hash32([2; 32])))));
        Ok(vec![EvidenceInfo::from(&e)])
    }

    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockSummary> {
        self.blocks_tx.subscribe()
    }
}

/// A server over a fresh [`MemBackend`].
pub struct Fixture {
    pub backend: Arc<MemBackend>,
    pub server: RpcServerHandle,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut RpcServerConfig)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RpcServerConfig::new(dir.path());
        config.bind = "127.0.0.1:0".parse().unwrap();
        adjust(&mut config);
        let backend = MemBackend::new();
        let server = start_server(config, backend.clone()).await.unwrap();
        Fixture { backend, server, dir }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.server.local_addr())
    }

    pub fn cookie_auth(&self) -> rpc::ClientAuth {
        rpc::ClientAuth::Cookie(self.server.cookie_path().to_path_buf())
    }

    pub fn client(&self) -> jsonrpsee::http_client::HttpClient {
        rpc::connect(&self.http_url(), &self.cookie_auth()).unwrap()
    }

    /// The `Authorization` header value of the cookie.
    pub fn cookie_header(&self) -> String {
        let (u, p) = rpc::auth::Cookie::read(self.server.cookie_path()).unwrap();
        rpc::auth::basic_auth_header(&u, &p)
    }

    /// POSTs `body` with the cookie and a loopback Host; returns (status, headers, body).
    pub async fn post(&self, body: &str) -> HttpReply {
        let auth = self.cookie_header();
        raw_post(self.server.local_addr(), body, &[("Host", "127.0.0.1"), ("Authorization", &auth)]).await
    }

    /// A JSON-RPC call with positional params; returns the whole response object.
    pub async fn call(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let reply = self.post(&body.to_string()).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    /// The error code of a call that must fail (panics on success).
    pub async fn error_code(&self, method: &str, params: serde_json::Value) -> (i64, String) {
        let v = self.call(method, params.clone()).await;
        let e = v.get("error").unwrap_or_else(|| panic!("{method} {params} succeeded: {v}"));
        (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_string())
    }
}

pub use rpc::testkit::HttpReply;

/// A POST of `body` to `/` on a fresh connection with exactly `headers`, bounded by a timeout.
pub async fn raw_post(addr: std::net::SocketAddr, body: &str, headers: &[(&str, &str)]) -> HttpReply {
    let request = rpc::testkit::request(addr, "POST", "/", headers, body);
    tokio::time::timeout(Duration::from_secs(20), request).await.expect("http request timed out").expect("http request")
}
