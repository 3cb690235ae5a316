//! The server side of the API ([`SidechainApiServer`]) over any [`RpcBackend`]: parameter
//! checks, range checks against the tip, and the mapping of "not there" and backend failures to the
//! error codes of [`crate::errors`]. No storage and no JSON formatting decisions live here beyond that.

use crate::api::{BlockRef, SidechainApiServer};
use crate::backend::{BackendError, RpcBackend};
use crate::errors;
use crate::types::{
    ledger_outpoint, parse_account, parse_btc_block_hash, parse_btc_outpoint, AccountInfo, BitcoinViewInfo, BlockInfo,
    ChainInfo, ClaimPegInResult, ClaimStatus, CommitInfo, ConsensusStateInfo, EvidenceInfo, FederationInfo,
    GetBlockResult, HeaderRangeInfo, HistoryEntryInfo, MempoolInfo, NetworkInfo, PeerInfo, PegInAddressInfo,
    PegInStatus, PegOutInfo, PegParamError, ReserveProofInfo, SigningInfo, StateProofInfo, StoredBlock,
    TransactionInfo, TxInfo, TxLocation, TxProofInfo, TxStatus, ValidatorInfo,
};
use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::PendingSubscriptionSink;
use ledger::{SignedUserTx, StateKey};
use primitives::{canonical_bytes, AccountId, BlockId, Height, TxId};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The API implementation; `into_rpc()` (from the generated server trait) turns it into a module.
pub struct RpcImpl<B> {
    backend: Arc<B>,
}

impl<B> RpcImpl<B> {
    /// Serves `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        RpcImpl { backend }
    }
}

/// Most entries `listpegouts` and `listtransactions` return at once.
const MAX_LIST: u64 = 1000;

/// Most `listtransactions` entries proved at once (each reads its block; the method is open to the dashboard).
const MAX_PROVED_ENTRIES: u64 = 100;

/// Most headers (the default too) `getheaders` returns at once: about 600 KB of JSON with 4 validators.
const MAX_HEADERS: u64 = 1000;

/// `count` (default 100, at most [`MAX_LIST`]) and `skip` (default 0) of a listing.
fn page(count: Option<u64>, skip: Option<u64>) -> Result<(usize, usize), ErrorObjectOwned> {
    let count = count.unwrap_or(100);
    if count > MAX_LIST {
        return Err(errors::invalid_parameter(format!("count must be at most {MAX_LIST}, got {count}")));
    }
    Ok((count as usize, usize::try_from(skip.unwrap_or(0)).unwrap_or(usize::MAX)))
}

fn internal(e: BackendError) -> ErrorObjectOwned {
    errors::backend_error(&e)
}

/// The parameter of `sendrawtransaction`: hex (surrounding whitespace allowed) of a borsh `SignedUserTx`,
/// every byte used. A pure function, so the fuzz target (`rpc/tests/fuzz.rs`) reaches it without a server.
pub fn decode_raw_tx(tx_hex: &str) -> Result<SignedUserTx, ErrorObjectOwned> {
    let bytes =
        hex::decode(tx_hex.trim()).map_err(|e| errors::bad_tx_encoding(format!("parameter is not hex: {e}")))?;
    borsh::from_slice(&bytes)
        .map_err(|e| errors::bad_tx_encoding(format!("{} bytes are not a borsh SignedUserTx: {e}", bytes.len())))
}

fn bad_peg_param(e: PegParamError) -> ErrorObjectOwned {
    errors::invalid_parameter(e.to_string())
}

/// The value of entry `index` of a proof this node made (a failure to decode it is the node's own fault).
fn proved_value<T: borsh::BorshDeserialize>(proof: &StateProofInfo, index: usize) -> RpcResult<Option<T>> {
    let entry = proof
        .entries
        .get(index)
        .ok_or_else(|| errors::err(errors::INTERNAL_ERROR, "a proof without its entry".into()))?;
    let (_, proved) = entry.decode().map_err(|e| errors::err(errors::INTERNAL_ERROR, e.to_string()))?;
    proved
        .value
        .map(|v| borsh::from_slice(&v))
        .transpose()
        .map_err(|e| errors::err(errors::INTERNAL_ERROR, format!("a proved entry does not decode: {e}")))
}

impl<B: RpcBackend> RpcImpl<B> {
    /// `keys` at `height` (`None`: the tip) with their proofs; the height must exist.
    async fn prove(&self, height: Option<Height>, keys: Vec<StateKey>) -> RpcResult<StateProofInfo> {
        self.backend
            .state_proof(height, keys)
            .await
            .map_err(internal)?
            .ok_or_else(|| errors::err(errors::INTERNAL_ERROR, "the state to prove is above the tip".into()))
    }

    async fn tip(&self) -> RpcResult<Height> {
        Ok(self.backend.chain_info().await.map_err(internal)?.height)
    }

    /// `height` must name a block (1..=tip).
    async fn check_height(&self, height: Height) -> RpcResult<Height> {
        let tip = self.tip().await?;
        if height.get() == 0 || height > tip {
            return Err(errors::height_out_of_range(height, tip));
        }
        Ok(tip)
    }

    async fn stored_block(&self, block: BlockRef) -> RpcResult<(StoredBlock, Height)> {
        let (height, tip) = match block {
            BlockRef::Height(h) => (h, self.check_height(h).await?),
            BlockRef::Hash(hash) => {
                let h = self
                    .backend
                    .block_height_by_hash(hash)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| errors::block_not_found(&hash))?;
                (h, self.tip().await?)
            }
        };
        let stored = self.backend.block_by_height(height).await.map_err(internal)?.ok_or_else(|| {
            // Indexed but not loadable: report it as missing rather than guess.
            errors::internal(format!("block at height {height} is indexed but could not be loaded"))
        })?;
        Ok((stored, tip))
    }
}

#[async_trait]
impl<B: RpcBackend> SidechainApiServer for RpcImpl<B> {
    async fn get_blockchain_info(&self) -> RpcResult<ChainInfo> {
        self.backend.chain_info().await.map_err(internal)
    }

    async fn get_block_count(&self) -> RpcResult<Height> {
        self.tip().await
    }

    async fn get_block_hash(&self, height: Height) -> RpcResult<BlockId> {
        let tip = self.check_height(height).await?;
        self.backend.block_hash(height).await.map_err(internal)?.ok_or_else(|| errors::height_out_of_range(height, tip))
    }

    async fn get_block(&self, block: BlockRef, verbosity: Option<u8>) -> RpcResult<GetBlockResult> {
        let verbosity = verbosity.unwrap_or(1);
        if verbosity > 2 {
            return Err(errors::invalid_parameter(format!("verbosity must be 0, 1 or 2, got {verbosity}")));
        }
        let (stored, tip) = self.stored_block(block).await?;
        Ok(match verbosity {
            0 => GetBlockResult::Hex(hex::encode(canonical_bytes(&stored.block))),
            v => GetBlockResult::Json(Box::new(BlockInfo::new(&stored, v == 2, tip))),
        })
    }

    async fn get_commit(&self, height: Height) -> RpcResult<CommitInfo> {
        let tip = self.check_height(height).await?;
        let cert = self.backend.commit(height).await.map_err(internal)?;
        cert.map(|c| CommitInfo::from(&c)).ok_or_else(|| errors::height_out_of_range(height, tip))
    }

    async fn get_transaction(&self, txid: TxId) -> RpcResult<TransactionInfo> {
        let found =
            self.backend.transaction(txid).await.map_err(internal)?.ok_or_else(|| errors::tx_not_found(&txid))?;
        let tx = TxInfo::from(&found.tx);
        Ok(match found.location {
            TxLocation::Mempool => TransactionInfo {
                status: TxStatus::Mempool,
                height: None,
                block_hash: None,
                index: None,
                confirmations: 0,
                tx,
            },
            TxLocation::Block { height, block_hash, index } => {
                let tip = self.tip().await?;
                TransactionInfo {
                    status: TxStatus::Committed,
                    height: Some(height),
                    block_hash: Some(block_hash),
                    index: Some(index),
                    confirmations: tip.get().saturating_sub(height.get()).saturating_add(1),
                    tx,
                }
            }
        })
    }

    async fn get_account(&self, account: AccountId, prove: Option<bool>) -> RpcResult<AccountInfo> {
        if prove != Some(true) {
            let state = self.backend.account(account).await.map_err(internal)?;
            return Ok(AccountInfo::new(account, state));
        }
        // Read from the proved entry itself, so the answer and its proof cannot be of two heights.
        let key = StateKey::Account(account);
        let proof = self.prove(None, vec![key]).await?;
        let state = proved_value(&proof, 0)?;
        Ok(AccountInfo { proof: Some(proof), ..AccountInfo::new(account, state) })
    }

    async fn get_headers(&self, from: Height, count: Option<u64>) -> RpcResult<HeaderRangeInfo> {
        if from == Height(0) {
            return Err(errors::invalid_parameter(
                "from must be at least 1 (height 0 is the genesis, not a block)".into(),
            ));
        }
        let count = count.unwrap_or(MAX_HEADERS).clamp(1, MAX_HEADERS);
        let lead = self.backend.federation_change_min_lead().max(1);
        let tip = self.tip().await?;
        let last = Height(from.get().saturating_add(count - 1).min(tip.get()));
        let mut headers = Vec::new();
        for h in from.get()..=last.get() {
            let Some(b) = self.backend.block_by_height(Height(h)).await.map_err(internal)? else { break };
            // The federation entry wherever a light client needs one: every `lead` heights and at the end.
            let federation = if h % lead == 0 || h == last.get() {
                self.prove(Some(Height(h)), vec![StateKey::Federation]).await?.entries.pop()
            } else {
                None
            };
            headers.push((b.block.header, b.commit, federation));
        }
        Ok(HeaderRangeInfo::new(headers))
    }

    async fn list_transactions(
        &self,
        account: AccountId,
        count: Option<u64>,
        skip: Option<u64>,
        prove: Option<bool>,
    ) -> RpcResult<Vec<HistoryEntryInfo>> {
        let (count, skip) = page(count, skip)?;
        if prove == Some(true) && count as u64 > MAX_PROVED_ENTRIES {
            return Err(errors::invalid_parameter(format!(
                "with prove, count must be at most {MAX_PROVED_ENTRIES} (each entry reads its block), got {count}"
            )));
        }
        let mut entries = self
            .backend
            .account_history(account, count, skip)
            .await
            .map_err(internal)?
            .ok_or_else(errors::history_off)?;
        if prove == Some(true) {
            // Each entry's transaction and its branch to the block's root, one block read per height.
            let mut block: Option<(Height, ledger::Block, Vec<TxId>)> = None;
            for e in &mut entries {
                if block.as_ref().is_none_or(|(h, _, _)| *h != e.height) {
                    let b = self.backend.block_by_height(e.height).await.map_err(internal)?.ok_or_else(|| {
                        errors::err(errors::INTERNAL_ERROR, format!("history names block {} it lacks", e.height))
                    })?;
                    let txids = b.block.txs.iter().map(ledger::Tx::txid).collect();
                    block = Some((e.height, b.block, txids));
                }
                if let Some((_, b, txids)) = &block {
                    let index = e.index as usize;
                    let tx = b.txs.get(index).ok_or_else(|| {
                        errors::err(
                            errors::INTERNAL_ERROR,
                            format!("history names transaction {index} of block {}", e.height),
                        )
                    })?;
                    e.proof = Some(TxProofInfo::new(tx, txids.len(), ledger::tx_branch(txids, index)));
                }
            }
        }
        Ok(entries)
    }

    async fn send_raw_transaction(&self, tx_hex: String) -> RpcResult<TxId> {
        let tx = decode_raw_tx(&tx_hex)?;
        self.backend.submit_tx(tx).await.map_err(|e| errors::submit_error(&e))
    }

    async fn get_mempool_info(&self) -> RpcResult<MempoolInfo> {
        self.backend.mempool_info().await.map_err(internal)
    }

    async fn get_raw_mempool(&self) -> RpcResult<Vec<TxId>> {
        self.backend.mempool_txids().await.map_err(internal)
    }

    async fn get_peer_info(&self) -> RpcResult<Vec<PeerInfo>> {
        self.backend.peers().await.map_err(internal)
    }

    async fn get_network_info(&self) -> RpcResult<NetworkInfo> {
        self.backend.network().await.map_err(internal)
    }

    async fn get_validators(&self) -> RpcResult<Vec<ValidatorInfo>> {
        self.backend.validators().await.map_err(internal)
    }

    async fn get_evidence(&self) -> RpcResult<Vec<EvidenceInfo>> {
        self.backend.evidence().await.map_err(internal)
    }

    async fn get_federation_info(&self) -> RpcResult<FederationInfo> {
        self.backend.federation().await.map_err(internal)
    }

    async fn get_pegin_address(&self, account: AccountId) -> RpcResult<PegInAddressInfo> {
        self.backend.pegin_address(account).await.map_err(internal)
    }

    async fn get_peg_status(&self, outpoint: String, prove: Option<bool>) -> RpcResult<PegInStatus> {
        let outpoint = parse_btc_outpoint(&outpoint).map_err(bad_peg_param)?;
        let facts = self.backend.pegin_facts(ledger_outpoint(&outpoint)).await.map_err(internal)?;
        let mut status = PegInStatus::new(outpoint, &facts);
        if prove == Some(true) {
            status.proof = Some(self.prove(None, vec![StateKey::PegIn(ledger_outpoint(&outpoint))]).await?);
        }
        Ok(status)
    }

    async fn list_pegouts(&self, count: Option<u64>, skip: Option<u64>) -> RpcResult<Vec<PegOutInfo>> {
        let (count, skip) = page(count, skip)?;
        self.backend.pegouts(count, skip).await.map_err(internal)
    }

    async fn get_pegout_status(&self, burn_txid: String, prove: Option<bool>) -> RpcResult<PegOutInfo> {
        let txid = crate::types::parse_burn_txid(&burn_txid).map_err(bad_peg_param)?;
        let mut info = self.backend.pegout_by_txid(txid).await.map_err(internal)?.ok_or_else(|| {
            errors::err(errors::NOT_FOUND, format!("no burn (peg-out) with sidechain txid {txid} is committed"))
        })?;
        if prove == Some(true) {
            // The burn first, then (at the same height) the batch its record names there.
            let mut keys = vec![StateKey::BurnByTx(txid), StateKey::Burn(info.burn_id)];
            let mut proof = self.prove(None, keys.clone()).await?;
            let burn: Option<ledger::BurnRecord> = proved_value(&proof, 1)?;
            if let Some(batch) = burn.and_then(|b| b.batch) {
                keys.push(StateKey::Batch(batch));
                proof = self.prove(Some(proof.height), keys).await?;
            }
            info.proof = Some(proof);
        }
        Ok(info)
    }

    async fn claim_pegin(
        &self,
        outpoint: String,
        recipient: String,
        btc_block_hash: String,
    ) -> RpcResult<ClaimPegInResult> {
        let outpoint = parse_btc_outpoint(&outpoint).map_err(bad_peg_param)?;
        let recipient = parse_account(&recipient).map_err(bad_peg_param)?;
        let btc_block_hash = parse_btc_block_hash(&btc_block_hash).map_err(bad_peg_param)?;
        self.backend
            .claim_pegin(ledger_outpoint(&outpoint), recipient, btc_block_hash)
            .await
            .map_err(|e| errors::claim_error(&e))?;
        Ok(ClaimPegInResult { status: ClaimStatus::Submitted, outpoint, recipient, btc_block_hash })
    }

    async fn resume_peg(&self, btc_height: u32, btc_hash: String) -> RpcResult<String> {
        let hash = parse_btc_block_hash(&btc_hash).map_err(bad_peg_param)?;
        let anchor = ledger::BtcAnchor { height: primitives::BtcHeight(btc_height), hash };
        self.backend.resume_peg(anchor).await.map_err(|e| errors::operator_error("resumepeg", &e))?;
        Ok(format!("voting to resume the peg from BTC block {btc_height} {hash}"))
    }

    async fn pause_signing(&self) -> RpcResult<SigningInfo> {
        self.backend.set_signing_paused(true).await.map_err(internal)
    }

    async fn resume_signing(&self) -> RpcResult<SigningInfo> {
        self.backend.set_signing_paused(false).await.map_err(internal)
    }

    async fn approve_federation_change(&self, proposal: ledger::FederationProposal) -> RpcResult<ledger::Approval> {
        self.backend
            .approve_federation(proposal)
            .await
            .map_err(|e| errors::operator_error("approvefederationchange", &e))
    }

    async fn submit_federation_change(&self, change: ledger::ReconfigureTx) -> RpcResult<TxId> {
        self.backend
            .submit_federation_change(change)
            .await
            .map_err(|e| errors::operator_error("submitfederationchange", &e))
    }

    async fn get_reserve_proof(&self) -> RpcResult<ReserveProofInfo> {
        self.backend.reserve_proof().await.map_err(internal)
    }

    async fn get_consensus_state(&self) -> RpcResult<ConsensusStateInfo> {
        self.backend.consensus_state().await.map_err(internal)
    }

    async fn get_bitcoin_view(&self) -> RpcResult<BitcoinViewInfo> {
        self.backend.bitcoin_view().await.map_err(internal)
    }

    async fn subscribe_new_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        // Subscribe before accepting so no block committed in between is missed.
        let mut blocks = self.backend.subscribe_blocks();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => return Ok(()),
                next = blocks.recv() => match next {
                    Ok(summary) => {
                        let msg = serde_json::value::to_raw_value(&summary)?;
                        if sink.send(msg).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        return Err(format!(
                            "subscriber too slow: missed {missed} blocks; resubscribe and fill the gap with getblock"
                        )
                        .into());
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}
