//! The JSON-RPC backend of `sidechaind`: answers the `rpc` crate's [`RpcBackend`] from the RocksDB store
//! (read-only, never blocking the consensus loop) and from the event loop for what only it knows
//! (mempool, evidence, pending peg-in claims). What a validator's bitcoind shows about a deposit comes from
//! the follower's latest snapshot ([`ServiceHandle::btc_snapshot`]), never from a call to bitcoind here.

use crate::chain::FullBlock;
use crate::mempool::MempoolError;
use crate::service::{Command, CommandError, ServiceHandle};
use consensus::CommitCertificate;
use ledger::{Account, BtcOutPoint, SignedUserTx, Snapshot, StateReader, Tx};
use primitives::{AccountId, BlockId, Hash32, Height, TxId};
use rpc::backend::{refusal, BackendError, ClaimError, OperatorError, RpcBackend, SubmitError};
use rpc::types::{
    BlockSummary, ChainInfo, ChainPegInfo, ConsensusStateInfo, EvidenceInfo, FederationInfo, MempoolInfo, NetworkInfo,
    PeerInfo, PegInAddressInfo, PegInFacts, PegOutInfo, PegStatus, StoredBlock, TxLocation, TxLookup, ValidatorInfo,
};
use tokio::sync::broadcast;

/// The signing breakers as the API shows them.
fn signing_info(s: &crate::breaker::SigningStatus) -> rpc::types::SigningInfo {
    rpc::types::SigningInfo {
        paused: s.paused_since_ms.is_some(),
        paused_since_ms: s.paused_since_ms,
        refusals: s.refusals,
        refused: s
            .refused
            .iter()
            .map(|r| rpc::types::RefusalInfo {
                batch: r.batch,
                btc_txid: r.txid.to_string(),
                kind: r.kind.to_string(),
                reason: r.reason.clone(),
            })
            .collect(),
    }
}

/// The backend over a running service.
pub struct NodeRpc {
    handle: ServiceHandle,
    summaries: broadcast::Sender<BlockSummary>,
    mempool_max_bytes: u64,
    network: bitcoin::Network,
    history: crate::chain::HistoryIndex,
}

impl NodeRpc {
    /// Wraps the service handle; block summaries are forwarded from the service's block stream. `history`:
    /// whether the node keeps the account history (`listtransactions`).
    pub fn new(
        handle: ServiceHandle,
        mempool_max_bytes: u64,
        network: bitcoin::Network,
        history: crate::chain::HistoryIndex,
    ) -> Self {
        let (summaries, _) = broadcast::channel(256);
        let tx = summaries.clone();
        let mut blocks = handle.subscribe_blocks();
        tokio::spawn(async move {
            loop {
                match blocks.recv().await {
                    Ok(b) => {
                        let _ = tx.send(BlockSummary::from(&b));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        NodeRpc { handle, summaries, mempool_max_bytes, network, history }
    }

    fn storage<E: std::error::Error + Send + Sync + 'static>(e: E) -> BackendError {
        BackendError::storage(e)
    }

    fn full_block(&self, h: Height) -> Result<Option<FullBlock>, BackendError> {
        // No check against the published tip: a block in the store is committed (its write is atomic), and
        // the status may lag the store by one event-loop step (a tx just left the mempool must be found).
        if h == Height(0) {
            return Ok(None);
        }
        match self.handle.store().block(h).map_err(Self::storage)? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(Self::storage),
        }
    }

    /// A transaction in a committed block, with where it is.
    fn committed_tx(&self, txid: &TxId) -> Result<Option<TxLookup>, BackendError> {
        let Some((h, index)) = self.handle.store().tx_location(txid).map_err(Self::storage)? else {
            return Ok(None);
        };
        let Some(fb) = self.full_block(h)? else { return Ok(None) };
        Ok(fb.block.txs.get(index as usize).map(|tx| TxLookup {
            tx: tx.clone(),
            location: TxLocation::Block { height: h, block_hash: fb.hash(), index },
        }))
    }

    /// What the peg-out views need besides state: the threshold, the network, and the batch versions our
    /// bitcoind shows confirmed (validators with a bitcoind only).
    fn pegout_view<S: StateReader>(&self, state: &S) -> Result<rpc::types::PegOutView, BackendError> {
        let mut confirmed = std::collections::BTreeMap::new();
        if let Some(snap) = self.handle.btc_snapshot() {
            let index = ledger::batching::batch_index(state).map_err(Self::storage)?;
            for id in index.in_flight {
                let Some(b) = ledger::batching::batch(state, id).map_err(Self::storage)? else { continue };
                for version in b.version_txids() {
                    if let Some((h, _)) = snap.deposits.iter().find(|(_, blk)| blk.txids.contains(&version)) {
                        confirmed.insert(version, *h);
                    }
                }
            }
        }
        Ok(rpc::types::PegOutView { network: self.network, confirmed, chain: self.handle.chain().clone() })
    }

    /// The state after the committed tip.
    fn tip_state(&self) -> Snapshot<'_, crate::storage::Store> {
        Snapshot::new(&**self.handle.store(), self.handle.status().height.get())
    }

    fn cert(&self, h: Height) -> Result<Option<CommitCertificate>, BackendError> {
        match self.handle.store().cert(h).map_err(Self::storage)? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(Self::storage),
        }
    }
}

impl RpcBackend for NodeRpc {
    async fn chain_info(&self) -> Result<ChainInfo, BackendError> {
        let s = self.handle.status();
        let chain = self.handle.chain();
        let state = Snapshot::new(&**self.handle.store(), s.height.get());
        let meta = state.chain_meta().map_err(Self::storage)?;
        let totals = state.peg_totals().map_err(Self::storage)?;
        let dust = ledger::economic::uneconomic_coins(chain, &state).map_err(Self::storage)?;
        Ok(ChainInfo {
            chain_id: chain.genesis().chain_id.clone(),
            genesis_hash: *chain.genesis_hash(),
            height: s.height,
            best_block_hash: s.tip_hash,
            time_ms: s.tip_time_ms,
            state_root: s.state_root,
            btc_anchor: meta.map(|m| m.btc_anchor).unwrap_or(chain.genesis().btc_anchor).into(),
            peg_status: if s.peg.halted { PegStatus::Halted } else { PegStatus::Active },
            peg: ChainPegInfo::new(&totals, chain.genesis_supply(), s.peg.halted)
                .with_uneconomic(dust.coins, dust.amount),
            min_fee: chain.params().min_fee,
            validator: s.validator_index.is_some(),
            syncing: s.best_peer_height > s.height.next(),
            signing: signing_info(&s.signing),
            alerts: s.alerts.iter().map(crate::alerts::alert_info).collect(),
        })
    }

    async fn block_by_height(&self, height: Height) -> Result<Option<StoredBlock>, BackendError> {
        let Some(fb) = self.full_block(height)? else { return Ok(None) };
        let Some(commit) = self.cert(height)? else { return Ok(None) };
        Ok(Some(StoredBlock { block: fb.block, commit }))
    }

    async fn block_height_by_hash(&self, hash: BlockId) -> Result<Option<Height>, BackendError> {
        Ok(self.handle.store().height_of(&hash).map_err(Self::storage)?.filter(|h| *h > Height(0)))
    }

    async fn transaction(&self, txid: TxId) -> Result<Option<TxLookup>, BackendError> {
        if let Some(found) = self.committed_tx(&txid)? {
            return Ok(Some(found));
        }
        let pending = self.handle.ask(|d| Command::MempoolTx(txid, d)).await.ok_or(BackendError::ShuttingDown)?;
        if let Some(tx) = pending {
            return Ok(Some(TxLookup { tx: Tx::User(tx), location: TxLocation::Mempool }));
        }
        // Its block may have been committed between the two reads: the store is written before the
        // mempool lets go of the transaction, so a second look finds it (never a -5 for an accepted tx).
        self.committed_tx(&txid)
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, BackendError> {
        let tip = self.handle.status().height;
        Snapshot::new(&**self.handle.store(), tip.get()).get_account(&id).map_err(Self::storage)
    }

    async fn submit_tx(&self, tx: SignedUserTx) -> Result<TxId, SubmitError> {
        self.handle.submit_tx(tx).await.map_err(submit_error)
    }

    async fn mempool_info(&self) -> Result<MempoolInfo, BackendError> {
        let (size, bytes) = self.handle.ask(Command::MempoolInfo).await.ok_or(BackendError::ShuttingDown)?;
        Ok(MempoolInfo { size, bytes: bytes as u64, max_bytes: self.mempool_max_bytes })
    }

    async fn mempool_txids(&self) -> Result<Vec<TxId>, BackendError> {
        self.handle.ask(Command::MempoolTxids).await.ok_or(BackendError::ShuttingDown)
    }

    async fn peers(&self) -> Result<Vec<PeerInfo>, BackendError> {
        let peers = self.handle.net().peers().await.map_err(|_| BackendError::ShuttingDown)?;
        let status = self.handle.status();
        // A validator's libp2p identity is its consensus key, so its peer id names it.
        let fs = ledger::federation_state(self.handle.chain(), &self.tip_state()).map_err(Self::storage)?;
        let validators: Vec<Option<net::PeerId>> =
            fs.in_force().validators.iter().map(|v| net::peer_id_from_ed25519(&v.consensus_key.0)).collect();
        Ok(peers
            .into_iter()
            .map(|p| PeerInfo {
                peer_id: p.peer_id.to_string(),
                addr: p.addr.to_string(),
                validator_index: validators
                    .iter()
                    .position(|v| *v == Some(p.peer_id))
                    .map(|i| primitives::ValidatorIndex(i as u16)),
                height: status.peer_heights.get(&p.peer_id.to_string()).copied(),
                score: p.score,
            })
            .collect())
    }

    async fn network(&self) -> Result<NetworkInfo, BackendError> {
        let s = self.handle.status();
        Ok(NetworkInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            peer_id: s.peer_id,
            listen_addrs: s.listen_addrs,
            connections: s.peers,
        })
    }

    async fn validators(&self) -> Result<Vec<ValidatorInfo>, BackendError> {
        let fs = ledger::federation_state(self.handle.chain(), &self.tip_state()).map_err(Self::storage)?;
        Ok(rpc::types::validator_infos(fs.in_force()))
    }

    async fn federation(&self) -> Result<FederationInfo, BackendError> {
        let chain = self.handle.chain();
        let state = self.tip_state();
        let fs = ledger::federation_state(chain, &state).map_err(Self::storage)?;
        let fed = chain.wallet(fs.in_force()).map_err(Self::storage)?;
        let totals = state.peg_totals().map_err(Self::storage)?;
        let rates = ledger::fee_rate::fee_rates(&state).map_err(Self::storage)?;
        let agreed = ledger::fee_rate::agreed_fee_rate(chain, &state).map_err(Self::storage)?;
        Ok(FederationInfo {
            descriptor: fed.descriptor().to_string(),
            threshold: fed.threshold() as u32,
            keys: fed.keys().len() as u32,
            script_pubkey: hex::encode(fed.script_pubkey().as_bytes()),
            address: fed.address(self.network).to_string(),
            network: self.network.to_string(),
            pegin_confirmations: chain.params().pegin_confirmations,
            pegin_min_amount: chain.params().pegin_min_amount,
            pegin_fee: chain.pegin_fee_in(&fed, agreed),
            pegout_fee_rate_sat_vb: agreed,
            pegout_batch_share_vbytes: ledger::pegout::pegout_share_vbytes(&fed).map_err(Self::storage)?,
            fee_rate_votes: rpc::types::FeeRateVoteInfo::from_rates(&rates),
            peg_totals: totals.into(),
            pegout_limit: rpc::types::PegOutLimitInfo::read(chain.params(), &state).map_err(Self::storage)?,
            changes: rpc::types::FederationView::read(chain, &state, self.network).map_err(Self::storage)?,
        })
    }

    async fn pegin_facts(&self, outpoint: BtcOutPoint) -> Result<PegInFacts, BackendError> {
        let tip = self.handle.status().height;
        let state = Snapshot::new(&**self.handle.store(), tip.get());
        let record = state.get_pegin(&outpoint).map_err(Self::storage)?;
        let minted_time_ms = match &record {
            Some(r) => self.full_block(r.minted_at)?.map(|b| b.block.header.time_ms),
            None => None,
        };
        let snap = self.handle.btc_snapshot();
        let is_it = |d: &&peg::Deposit| rpc::types::ledger_outpoint(&d.outpoint) == outpoint;
        let indexed =
            snap.as_ref().and_then(|s| s.deposits.values().flat_map(|b| b.scan.deposits.iter()).find(is_it).cloned());
        let claim_confirmed = snap.as_ref().and_then(|s| s.claims.iter().find(is_it).cloned());
        let claim_rejected = snap.as_ref().and_then(|s| {
            s.rejected_claims.iter().find(|(c, _)| c.outpoint == outpoint).map(|(_, why)| why.to_string())
        });
        let recipient = record
            .as_ref()
            .map(|r| r.recipient)
            .or_else(|| claim_confirmed.as_ref().or(indexed.as_ref()).map(|d| AccountId(Hash32(d.recipient))));
        let registration_live = match recipient {
            Some(r) => Some(ledger::pegin::registration_is_live(&state, &r, tip.next()).map_err(Self::storage)?),
            None => None,
        };
        Ok(PegInFacts {
            record,
            minted_time_ms,
            indexed,
            claim_confirmed,
            claim_rejected,
            btc_best_height: snap.and_then(|s| s.best),
            registration_live,
            confirmations_required: self.handle.chain().params().pegin_confirmations,
        })
    }

    async fn account_history(
        &self,
        account: AccountId,
        count: usize,
        skip: usize,
    ) -> Result<Option<Vec<rpc::types::HistoryEntryInfo>>, BackendError> {
        if self.history == crate::chain::HistoryIndex::Off {
            return Ok(None);
        }
        let entries = self.handle.store().account_history(&account, skip, count).map_err(Self::storage)?;
        Ok(Some(entries.iter().map(|e| rpc::types::HistoryEntryInfo::new(e, self.network)).collect()))
    }

    async fn pegouts(&self, count: usize, skip: usize) -> Result<Vec<PegOutInfo>, BackendError> {
        let state = self.tip_state();
        let view = self.pegout_view(&state)?;
        rpc::types::read_pegouts(&state, count, skip, &view).map_err(Self::storage)
    }

    async fn pegout_by_txid(&self, txid: TxId) -> Result<Option<PegOutInfo>, BackendError> {
        let state = self.tip_state();
        let view = self.pegout_view(&state)?;
        rpc::types::read_pegout_by_txid(&state, &txid, &view).map_err(Self::storage)
    }

    async fn state_proof(
        &self,
        height: Option<Height>,
        keys: Vec<ledger::StateKey>,
    ) -> Result<Option<rpc::types::StateProofInfo>, BackendError> {
        let tip = self.handle.status().height;
        let height = height.unwrap_or(tip);
        if height > tip {
            return Ok(None);
        }
        let state = Snapshot::new(&**self.handle.store(), height.get());
        rpc::types::StateProofInfo::read(&state, &keys).map(Some).map_err(Self::storage)
    }

    fn federation_change_min_lead(&self) -> u64 {
        self.handle.chain().params().federation_change_min_lead
    }

    async fn reserve_proof(&self) -> Result<rpc::types::ReserveProofInfo, BackendError> {
        let tip = self.handle.status().height;
        let state = Snapshot::new(&**self.handle.store(), tip.get());
        let proof = ledger::batching::reserve_proof(&state).map_err(Self::storage)?;
        Ok(rpc::types::ReserveProofInfo::new(tip, &proof, self.handle.chain().genesis_supply()))
    }

    async fn set_signing_paused(&self, paused: bool) -> Result<rpc::types::SigningInfo, BackendError> {
        match self.handle.ask(|done| Command::SetSigningPaused(paused, done)).await {
            None => Err(BackendError::ShuttingDown),
            Some(res) => res.map(|s| signing_info(&s)).map_err(Self::storage),
        }
    }

    async fn resume_peg(&self, anchor: ledger::BtcAnchor) -> Result<(), OperatorError> {
        self.handle.resume_peg(anchor).await.map_err(operator_error)
    }

    async fn approve_federation(
        &self,
        proposal: ledger::FederationProposal,
    ) -> Result<ledger::Approval, OperatorError> {
        self.handle.approve_federation(proposal).await.map_err(operator_error)
    }

    async fn submit_federation_change(&self, change: ledger::ReconfigureTx) -> Result<TxId, OperatorError> {
        self.handle.submit_federation_change(change).await.map_err(operator_error)
    }

    async fn claim_pegin(
        &self,
        outpoint: BtcOutPoint,
        recipient: AccountId,
        btc_block: bitcoin::BlockHash,
    ) -> Result<(), ClaimError> {
        if let Some(record) = self.tip_state().get_pegin(&outpoint).map_err(Self::storage)? {
            return Err(already_minted(outpoint, &record));
        }
        let claim = crate::pegin::PegClaim { outpoint, recipient, btc_block };
        self.handle.claim_pegin(claim).await.map_err(|e| claim_error(outpoint, e))
    }

    async fn pegin_address(&self, recipient: AccountId) -> Result<PegInAddressInfo, BackendError> {
        let chain = self.handle.chain();
        // Deposits go to the wallet in force (an earlier wallet's address still works for a while, and is
        // claimable forever, but new deposits should not go there).
        let fs = ledger::federation_state(chain, &self.tip_state()).map_err(Self::storage)?;
        let wallet = chain.wallet(fs.in_force()).map_err(Self::storage)?;
        let d = crate::pegin::deposit_descriptor(chain, &wallet, &recipient).map_err(Self::storage)?;
        let address = d.address(self.network).map_err(Self::storage)?;
        Ok(PegInAddressInfo {
            recipient,
            address: address.to_string(),
            script_pubkey: hex::encode(d.script_pubkey().as_bytes()),
            descriptor: d.to_string(),
            network: self.network.to_string(),
            confirmations_required: chain.params().pegin_confirmations,
            min_amount: chain.params().pegin_min_amount,
            registration_fee: chain.params().registration_fee,
        })
    }

    async fn consensus_state(&self) -> Result<ConsensusStateInfo, BackendError> {
        let s = self.handle.status();
        Ok(ConsensusStateInfo {
            height: s.height.next(),
            round: s.round,
            step: s.step,
            locked_round: s.locked.map(|(r, _)| r),
            locked_block: s.locked.map(|(_, b)| b),
            validator_index: s.validator_index,
        })
    }

    async fn evidence(&self) -> Result<Vec<EvidenceInfo>, BackendError> {
        let ev = self.handle.ask(Command::Evidence).await.ok_or(BackendError::ShuttingDown)?;
        Ok(ev.iter().map(EvidenceInfo::from).collect())
    }

    async fn bitcoin_view(&self) -> Result<rpc::types::BitcoinViewInfo, BackendError> {
        crate::rpc_dashboard::bitcoin_view(&self.handle)
    }

    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockSummary> {
        self.summaries.subscribe()
    }
}

/// The service's answer to `sendrawtransaction` as the RPC's error.
fn submit_error(e: CommandError) -> SubmitError {
    match e {
        CommandError::ShuttingDown => SubmitError::Backend(BackendError::ShuttingDown),
        CommandError::Mempool(MempoolError::Duplicate(txid)) => SubmitError::Duplicate(txid),
        CommandError::Mempool(MempoolError::Invalid(tx)) => SubmitError::Invalid(tx),
        CommandError::State(e) => SubmitError::Backend(BackendError::storage(e)),
        other => SubmitError::Policy(refusal(other)),
    }
}

/// A deposit the ledger recorded already, as `claimpegin`'s error.
fn already_minted(outpoint: BtcOutPoint, record: &ledger::PegInRecord) -> ClaimError {
    ClaimError::AlreadyMinted {
        outpoint,
        at: record.minted_at,
        held: record.below_minimum(),
        mint_txid: Some(record.mint_txid),
    }
}

/// The service's answer to `claimpegin` for `outpoint` as the RPC's error.
fn claim_error(outpoint: BtcOutPoint, e: CommandError) -> ClaimError {
    match e {
        CommandError::ShuttingDown => ClaimError::Backend(BackendError::ShuttingDown),
        CommandError::AlreadyMinted { outpoint, record } => already_minted(outpoint, &record),
        CommandError::Claim(crate::claims::ClaimError::AlreadyPending) => ClaimError::AlreadyPending { outpoint },
        CommandError::State(e) => ClaimError::Backend(BackendError::storage(e)),
        other => ClaimError::Rejected(refusal(other)),
    }
}

/// The service's answer to an operator method as the RPC's error.
fn operator_error(e: CommandError) -> OperatorError {
    match e {
        CommandError::ShuttingDown => OperatorError::Backend(BackendError::ShuttingDown),
        CommandError::State(e) => OperatorError::Backend(BackendError::storage(e)),
        other => OperatorError::Refused(refusal(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use primitives::AccountId;

    fn outpoint() -> BtcOutPoint {
        BtcOutPoint { txid: bitcoin::Txid::from_byte_array([5; 32]), vout: 2 }
    }

    fn code(e: &rpc::ClaimError) -> i32 {
        rpc::errors::claim_error(e).code()
    }

    #[test]
    fn submit_refusals_keep_their_kind() {
        let id = TxId(Hash32([9; 32]));
        assert!(matches!(
            submit_error(CommandError::Mempool(MempoolError::Duplicate(id))),
            SubmitError::Duplicate(got) if got == id
        ));
        let live = ledger::TxError::RegistrationStillLive { account: AccountId(id.0), expires_at: Height(7) };
        let e = submit_error(CommandError::Mempool(MempoolError::Invalid(live.clone())));
        assert!(matches!(&e, SubmitError::Invalid(t) if *t == live), "{e}");
        assert_eq!(
            rpc::errors::TxRejectReason::of(&rpc::errors::submit_error(&e)),
            Some(rpc::errors::TxRejectReason::RegistrationStillLive)
        );
        let large = || MempoolError::TooLarge { size: 10, max: 5 };
        let e = submit_error(CommandError::Mempool(large()));
        assert!(matches!(&e, SubmitError::Policy(_)), "{e}");
        assert_eq!(e.to_string(), large().to_string(), "the mempool's words reach the user");
        assert!(matches!(submit_error(CommandError::ShuttingDown), SubmitError::Backend(BackendError::ShuttingDown)));
    }

    #[test]
    fn claim_refusals_map_to_their_codes() {
        use rpc::errors::{ALREADY_IN_CHAIN, INTERNAL_ERROR, VERIFY_REJECTED};
        let pending = claim_error(outpoint(), CommandError::Claim(crate::claims::ClaimError::AlreadyPending));
        assert!(matches!(pending, ClaimError::AlreadyPending { outpoint: o } if o == outpoint()));
        assert_eq!(code(&pending), ALREADY_IN_CHAIN);
        assert!(pending.to_string().contains("already pending"), "{pending}");
        let full = claim_error(outpoint(), CommandError::Claim(crate::claims::ClaimError::Full(256)));
        assert_eq!(code(&full), VERIFY_REJECTED);
        assert_eq!(full.to_string(), "256 claims pending; try again later");
        let rejected = claim_error(outpoint(), CommandError::Claim(crate::claims::ClaimError::Rejected));
        assert_eq!(code(&rejected), VERIFY_REJECTED);
        assert_eq!(code(&claim_error(outpoint(), CommandError::ShuttingDown)), INTERNAL_ERROR);
    }

    #[test]
    fn operator_refusals_map_to_their_codes() {
        use rpc::errors::{operator_error as to_rpc, INTERNAL_ERROR, VERIFY_REJECTED};
        for e in [CommandError::NotAValidator, CommandError::NotInSetInForce, CommandError::PegNotHalted] {
            let shown = e.to_string();
            let obj = to_rpc("resumepeg", &operator_error(e));
            assert_eq!(obj.code(), VERIFY_REJECTED);
            assert_eq!(obj.message(), format!("resumepeg refused: {shown}"));
        }
        assert_eq!(to_rpc("resumepeg", &operator_error(CommandError::ShuttingDown)).code(), INTERNAL_ERROR);
    }
}
