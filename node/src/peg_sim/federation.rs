//! The federation in the simulation: proposers build blocks with the node's rules, every honest validator
//! judges them against its own bitcoind, 2f+1 votes commit, and the signed batches go to Bitcoin.
//!
//! The proposer's choices mirror `Service::build_proposal` and `next_anchor` (in `crate::service`, which
//! needs a running node): its own validator transactions (reorg reports, resume votes), the federation
//! pool (signature shares, federation changes), then in round 0 the highest anchor its index can plan
//! (`pegin::anchor_with_plan`), the anchor 2f+1 agreed to resume from, or the kept anchor while halted.

use super::btc::BtcReject;
use super::failure::SimFailure;
use super::world::World;
use crate::btc_follow::{from_peg, to_peg, BtcSnapshot};
use crate::pegin;
use bitcoin::hashes::Hash as _;
use ledger::testkit::{self, user_key};
use ledger::{BlockTemplate, BtcAnchor, BtcOutPoint, PegHalt, PegPlan, StateReader, Tx};
use primitives::{BlockId, Hash32, Height, TxId, ValidatorIndex};
use rand::Rng;
use std::collections::{BTreeMap, HashSet};

/// A hostile proposal a Byzantine proposer tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Junk {
    /// A mint of an output Bitcoin does not have.
    FakeMint,
    /// The anchor moved without the mints it requires.
    OmitMints,
    /// An early mint (the anchor kept) naming the BTC block right above the anchor under a hash Bitcoin does
    /// not have there: a fork of the proposer's invention, to pin the cursor on it.
    ForkedEarlyMint,
    /// A settlement of a batch in flight in the anchor's block, where Bitcoin does not show it: the batch
    /// would leave flight unpaid (its coins counted as spent, the burns as paid).
    FakeSettle,
}

impl Junk {
    /// All of them, for a Byzantine proposer to pick from.
    const ALL: [Junk; 4] = [Junk::FakeMint, Junk::OmitMints, Junk::ForkedEarlyMint, Junk::FakeSettle];

    /// Its place in [`Junk::ALL`] and in `SimOutcome::junk_refused`.
    fn index(self) -> usize {
        Junk::ALL.iter().position(|j| *j == self).unwrap_or(0)
    }

    /// What it is, for a failure report.
    fn what(self) -> &'static str {
        match self {
            Junk::FakeMint => "a mint Bitcoin does not show",
            Junk::OmitMints => "an anchor move without its required mints",
            Junk::ForkedEarlyMint => "an early mint naming a BTC block Bitcoin does not have",
            Junk::FakeSettle => "a settlement Bitcoin does not show",
        }
    }
}

impl World {
    /// What the federation pool offers a proposer, as `ledger::select_pool_txs` keeps it: the honest
    /// signers' shares for every in-flight batch that lacks them (no more than a threshold), and the
    /// federation changes that apply.
    fn pool_txs(&self, state: &impl StateReader) -> Vec<Tx> {
        let mut all = self.all_shares(state);
        all.extend(self.pool.iter().cloned());
        ledger::select_pool_txs(&self.chain, state, &all).unwrap_or_default()
    }

    fn all_shares(&self, state: &impl StateReader) -> Vec<Tx> {
        let secp = &self.secp;
        let mut out = self.frost_messages(state);
        let Ok(index) = ledger::batching::batch_index(state) else { return out };
        let Ok(fs) = ledger::federation_state(&self.chain, state) else { return out };
        for id in index.in_flight {
            let Ok(Some(b)) = ledger::batching::batch(state, id) else { continue };
            let Ok(tx) = b.unsigned() else { continue };
            let Some(epoch) = fs.epoch(b.epoch) else { continue };
            // A taproot version on the key path is signed with FROST messages, never leaf shares.
            if epoch.validators.is_empty() || self.on_key_path(state, &b) {
                continue;
            }
            let wallet = self.wallet(b.epoch);
            // The batch's epoch signs, members who left since included (their keys are their authority).
            for (pos, v) in epoch.validators.iter().enumerate() {
                let who = self.identity(&v.consensus_key);
                let signer = ValidatorIndex(pos as u16);
                if self.is_byzantine(who) || b.shares.iter().any(|(s, _)| *s == signer) {
                    continue;
                }
                // Signing is deterministic (RFC 6979): each share is made once and kept for later rounds.
                let key = (id, b.txid, pos);
                if let Some(share) = self.share_cache.borrow().get(&key) {
                    out.extend(share.clone());
                    continue;
                }
                let secret = testkit::validator_peg_secret(who);
                let genesis = *self.chain.genesis_hash().as_bytes();
                let share =
                    peg::sign_batch(secp, wallet, genesis, &tx, &b.peg_inputs(), pos, &secret).ok().map(|share| {
                        Tx::PegShare(ledger::PegShareTx {
                            batch: id,
                            txid: b.txid,
                            signer,
                            signatures: share.signatures,
                        })
                    });
                self.share_cache.borrow_mut().insert(key, share.clone());
                out.extend(share);
            }
        }
        out
    }

    /// Whether `b`'s current version is signed by key path (a taproot batch that has not fallen back).
    fn on_key_path(&self, state: &impl StateReader, b: &ledger::batching::BatchRecord) -> bool {
        match ledger::frost_signing::frost_session(state, b.id) {
            Ok(Some(s)) => !(s.fell_back && s.version != b.txid),
            Ok(None) => !self.frost_shares.is_empty(),
            Err(_) => false,
        }
    }

    /// The honest validators' FROST messages for every taproot batch on the key path: commitments in the
    /// committing phase (nonces kept for the attempt), shares once the chain fixed the signers. Each message
    /// is made once and kept, as a node keeps what it gossiped.
    fn frost_messages(&self, state: &impl StateReader) -> Vec<Tx> {
        use ledger::frost_signing::{frost_session, restore_session, SessionStage};
        let mut out = Vec::new();
        if self.frost_shares.is_empty() {
            return out;
        }
        let Ok(index) = ledger::batching::batch_index(state) else { return out };
        let Ok(fs) = ledger::federation_state(&self.chain, state) else { return out };
        for id in index.in_flight {
            let Ok(Some(b)) = ledger::batching::batch(state, id) else { continue };
            let Ok(Some(stored)) = frost_session(state, id) else { continue };
            if stored.fell_back || stored.version != b.txid || b.is_signed() {
                continue;
            }
            let Some(epoch) = fs.epoch(b.epoch) else { continue };
            for (pos, v) in epoch.validators.iter().enumerate() {
                let who = self.identity(&v.consensus_key);
                let me = pos as u16;
                if self.is_byzantine(who) || stored.excluded.contains(&me) {
                    continue;
                }
                let key = (id, b.txid, stored.attempt, pos);
                let secret = testkit::validator_peg_secret(who);
                let sign = |round| {
                    let signer = ValidatorIndex(me);
                    let tx = ledger::FrostTx::sign(
                        id,
                        b.txid,
                        stored.attempt,
                        signer,
                        round,
                        &secret,
                        self.chain.genesis_hash(),
                    );
                    Tx::Frost(tx)
                };
                match stored.stage {
                    SessionStage::Committing => {
                        if stored.commitments.iter().any(|(s, _)| *s == me) {
                            continue;
                        }
                        let mut cache = self.frost_commits.borrow_mut();
                        let tx = cache.entry(key).or_insert_with(|| {
                            use rand::SeedableRng;
                            // Seeded by the run, the version and the turn: a nonce never serves two messages.
                            let turn = primitives::tagged_hash(
                                "sidechain/sim-frost-nonce",
                                &[
                                    &self.cfg.seed.to_be_bytes(),
                                    &id.to_be_bytes(),
                                    b.txid.as_byte_array(),
                                    &stored.attempt.to_be_bytes(),
                                    &(pos as u64).to_be_bytes(),
                                ],
                            );
                            let mut rng = rand_chacha::ChaCha20Rng::from_seed(turn.0);
                            let (nonces, commitments): (Vec<_>, Vec<_>) =
                                b.inputs.iter().map(|_| self.frost_shares[pos].commit(&mut rng)).unzip();
                            self.frost_nonces.borrow_mut().insert(key, nonces);
                            let bytes = commitments
                                .iter()
                                .filter_map(|c| peg::frost::wire::encode_commitments(c).ok().map(|b| b.to_vec()))
                                .collect();
                            sign(ledger::FrostRound::Commit(bytes))
                        });
                        out.push(tx.clone());
                    }
                    SessionStage::Sharing => {
                        let chosen = stored.commitments.iter().any(|(s, _)| *s == me);
                        if !chosen || stored.shares.iter().any(|(s, _)| *s == me) {
                            continue;
                        }
                        if let Some(tx) = self.frost_share_cache.borrow().get(&key) {
                            out.push(tx.clone());
                            continue;
                        }
                        // A nonce is used once: taken out before the share is made.
                        let Some(nonces) = self.frost_nonces.borrow_mut().remove(&key) else { continue };
                        let Ok(session) = restore_session(&self.chain, epoch, &b, &stored) else { continue };
                        let shares: Option<Vec<Vec<u8>>> = session
                            .packages()
                            .iter()
                            .zip(nonces)
                            .zip(session.inputs())
                            .map(|((p, n), input)| {
                                let share = self.frost_shares[pos].sign(p, input.sighash, n, input.merkle_root).ok()?;
                                peg::frost::wire::encode_share(&share).ok().map(|b| b.to_vec())
                            })
                            .collect();
                        let Some(shares) = shares else { continue };
                        let tx = sign(ledger::FrostRound::Share(shares));
                        self.frost_share_cache.borrow_mut().insert(key, tx.clone());
                        out.push(tx);
                    }
                    SessionStage::Signed(_) | SessionStage::FallBack => {}
                }
            }
        }
        out
    }

    /// As `Service::own_validator_txs`: a reorg report when this validator's bitcoind no longer has the
    /// anchor in force, and its resume vote once its operator asked for one.
    fn own_validator_txs(
        &self,
        halt: &PegHalt,
        snap: &BtcSnapshot,
        pos: usize,
        height: Height,
        prev: &BtcAnchor,
    ) -> Vec<Tx> {
        let me = ValidatorIndex(pos as u16);
        let mut kinds = Vec::new();
        let reported = halt.reported_anchor == Some(*prev) && halt.reports.contains(&me);
        if !reported && halt.resume_to.is_none() {
            if let Err(peg::AnchorRejection::PreviousAnchorReorged { .. }) =
                peg::check_in_best_chain(snap, to_peg(prev))
            {
                kinds.push(ledger::ValidatorTxKind::ReportReorg { anchor: *prev });
            }
        }
        if let Some(resume) = self.episode.resume_request {
            if halt.is_halted() && !halt.resume_votes.iter().any(|(_, v)| *v == me) {
                kinds.push(ledger::ValidatorTxKind::ResumePeg { anchor: resume });
            }
        }
        let key = testkit::validator_key(self.members[pos]);
        kinds
            .into_iter()
            .map(|kind| {
                Tx::Validator(ledger::ValidatorTx { validator: me, height, kind }.sign(&key, self.chain.genesis_hash()))
            })
            .collect()
    }

    /// The pre-fix rule (finding 1), for the regression test: every output to a live deposit script and
    /// every plain output not of an in-flight batch, not yet recorded; settlements after the mints.
    fn naive_plan(&self, state: &impl StateReader, snap: &BtcSnapshot, prev: &BtcAnchor, new: &BtcAnchor) -> PegPlan {
        let mut plan = PegPlan::default();
        let Ok(facts) = pegin::block_facts(snap, self.registry.version, prev, new) else { return plan };
        let index = ledger::batching::batch_index(state).unwrap_or_default();
        let mut batch_txids = Vec::new();
        for id in &index.in_flight {
            if let Ok(Some(b)) = ledger::batching::batch(state, *id) {
                batch_txids.extend(b.version_txids().map(|t| (t, *id)));
            }
        }
        for f in &facts {
            for m in &f.outputs {
                let live = m.kind == ledger::MintKind::Federation
                    || ledger::pegin::registration_is_live(state, &m.recipient, Height(self.height + 1))
                        .unwrap_or(false);
                let change =
                    m.kind == ledger::MintKind::Federation && batch_txids.iter().any(|(t, _)| *t == m.outpoint.txid);
                if live && !change && state.get_pegin(&m.outpoint).ok().flatten().is_none() {
                    plan.mints.push(m.clone());
                }
            }
            for (txid, id) in &batch_txids {
                if f.txids.contains(txid) {
                    plan.settles.push(ledger::SettleTx { batch: *id, txid: *txid, btc_block: f.block });
                }
            }
        }
        plan
    }

    /// Block `height` as the member at `pos` builds it in `round` (an honest one, or `junk` from a Byzantine
    /// one), on its own bitcoind's view.
    #[allow(clippy::type_complexity)]
    fn propose(
        &mut self,
        pos: usize,
        round: u32,
        junk: Option<Junk>,
    ) -> Result<Option<(ledger::Block, ledger::ExecutionOutcome)>, SimFailure> {
        let id = self.members[pos];
        let height = Height(self.height + 1);
        let state = self.store.snapshot(self.height);
        let meta = state.chain_meta().map_err(|e| self.state_err(e))?.expect("meta");
        let halt = ledger::peg_halt(&state).map_err(|e| self.state_err(e))?;
        let prev = meta.btc_anchor;
        let snap = self.snapshot_of(id, prev.height.get());
        let snap: &BtcSnapshot = &snap;
        let own = self.own_validator_txs(&halt, snap, pos, height, &prev);
        // As `Service::build_proposal`: the pool's transactions that fit beside this proposer's own.
        let mut pool = ledger::fit_prefix(self.chain.params(), &own, self.pool_txs(&state));
        let reserved: Vec<Tx> = own.iter().chain(&pool).cloned().collect();
        let room = pegin::Room::after(&self.chain, &reserved);
        let version = self.registry.version;
        let wanted = if round == 0 && !halt.is_halted() && halt.resume_to.is_none() {
            let p = self.chain.params();
            peg::choose_anchor(snap, to_peg(&prev), p.pegin_confirmations, p.max_anchor_step).map(from_peg)
        } else {
            None
        };
        // As the node does: claims ride only on round-0 blocks that keep the anchor, never while halted.
        let keep = || {
            let claims = pegin::peg_plan(&self.chain, &state, snap, version, &prev, &prev, height, true, room);
            let with_claims = round == 0 && !halt.is_halted();
            (prev, if with_claims { claims.unwrap_or_default() } else { PegPlan::default() })
        };
        let (anchor, mut plan) = match (halt.resume_to, wanted, self.cfg.naive_required) {
            (Some(agreed), _, _) => (agreed, PegPlan::default()),
            (None, None, _) => keep(),
            (None, Some(new), true) => (new, self.naive_plan(&state, snap, &prev, &new)),
            (None, Some(new), false) => {
                pegin::anchor_with_plan(&self.chain, &state, snap, version, &prev, &new, height, room)
                    .or_else(|| {
                        let early = (!self.cfg.no_early_items)
                            .then(|| pegin::early_plan(&self.chain, &state, snap, version, &prev, &new, height, room));
                        early.flatten().map(|e| (prev, e))
                    })
                    .unwrap_or_else(keep)
            }
        };
        // As `Service::build_proposal`: in round 0, settlements of batches confirmed at or below the anchor
        // that no move covers (after a resume), as this proposer's bitcoind shows them.
        if round == 0 && !self.cfg.naive_required {
            plan.settles.extend(pegin::late_settles(&state, snap, height, &anchor, &plan, room));
        }
        match junk {
            // Junk only when something was required (mints of a move; early ones are optional); otherwise
            // this proposer has nothing to attack with.
            Some(Junk::OmitMints) if anchor != prev && !plan.mints.is_empty() => plan.mints.clear(),
            Some(Junk::OmitMints) => return Ok(None),
            Some(Junk::FakeMint) => {
                let mut fake = [0u8; 32];
                self.rng.fill(&mut fake);
                plan.mints.push(ledger::MintTx {
                    outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array(fake), vout: 0 },
                    recipient: user_key(id).public().account_id(),
                    amount: bitcoin::Amount::from_sat(1_000_000),
                    btc_block: anchor,
                    epoch: 0,
                    kind: ledger::MintKind::Deposit,
                    coinbase: false,
                });
            }
            Some(Junk::ForkedEarlyMint) => {
                let mut fork = [0u8; 32];
                self.rng.fill(&mut fork);
                let Some(next) = prev.height.get().checked_add(1) else { return Ok(None) };
                plan.mints.push(ledger::MintTx {
                    outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array(fork), vout: 0 },
                    recipient: user_key(id).public().account_id(),
                    amount: bitcoin::Amount::from_sat(1_000_000),
                    btc_block: BtcAnchor {
                        height: primitives::BtcHeight(next),
                        hash: bitcoin::BlockHash::from_byte_array(fork),
                    },
                    epoch: 0,
                    kind: ledger::MintKind::Deposit,
                    coinbase: false,
                });
            }
            Some(Junk::FakeSettle) => {
                let index = ledger::batching::batch_index(&state).map_err(|e| self.state_err(e))?;
                let mut fake = None;
                for batch in index.in_flight {
                    let Some(b) = ledger::batching::batch(&state, batch).map_err(|e| self.state_err(e))? else {
                        continue;
                    };
                    // Only a lie is an attack: a batch one of whose versions Bitcoin confirmed anywhere is
                    // left alone (naming that block would be an honest settlement).
                    let on_chain = b.version_txids().any(|t| self.btc.confirmed_at(&t).is_some());
                    if !on_chain && !plan.settles.iter().any(|x| x.batch == batch) {
                        fake = Some(ledger::SettleTx { batch, txid: b.txid, btc_block: anchor });
                        break;
                    }
                }
                let Some(s) = fake else { return Ok(None) };
                plan.settles.push(s);
            }
            None => {}
        }
        let mut front = if self.cfg.naive_required {
            // The old order: mints, then settlements.
            let mut t: Vec<Tx> = plan.mints.iter().cloned().map(Tx::Mint).collect();
            t.extend(plan.settles.iter().cloned().map(Tx::Settle));
            t
        } else {
            plan.txs()
        };
        pool.retain(|t| !plan.supersedes(t));
        front.append(&mut pool);
        let selection = ledger::select_txs(&self.chain, &state, self.mempool.clone()).map_err(|e| self.state_err(e))?;
        // As `Service::build_proposal`: users get the bytes left, the proposer's own transactions go last.
        let block_txs = ledger::assemble_proposal(self.chain.params(), front, selection.txs, own);
        let template = BlockTemplate {
            height,
            prev_hash: BlockId::ZERO,
            time_ms: meta.time_ms + 1000,
            proposer: ValidatorIndex(pos as u16),
            btc_anchor: anchor,
            last_commit_hash: Hash32::ZERO,
        };
        match ledger::build_block(&self.chain, &self.store, template, block_txs) {
            Ok(built) => Ok(Some(built)),
            Err(e) if junk.is_none() => {
                if self.cfg.naive_required {
                    // The old node logged this and proposed nothing; liveness is what fails.
                    return Ok(None);
                }
                Err(SimFailure::BuildFailed { seed: self.cfg.seed, height: height.get(), reason: e.to_string() })
            }
            Err(_) => Ok(None),
        }
    }

    /// The peg verdict of an honest validator whose bitcoind's best chain stops at `tip`: the anchor check
    /// (the agreed resume anchor needs none) and the peg check. Re-execution is the same for everyone.
    fn peg_verdict(&self, tip: u32, block: &ledger::Block) -> Result<(), String> {
        let state = self.store.snapshot(self.height);
        let prev = state.chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default();
        let halt = ledger::peg_halt(&state).map_err(|e| e.to_string())?;
        let snap = self.snapshot_at(tip, prev.height.get());
        let snap: &BtcSnapshot = &snap;
        let p = self.chain.params();
        let new = block.header.btc_anchor;
        if new != prev && halt.resume_to != Some(new) {
            peg::check_anchor_move(snap, to_peg(&prev), to_peg(&new), p.pegin_confirmations, p.max_anchor_step)
                .map_err(|e| e.to_string())?;
        }
        if self.cfg.naive_required {
            let plan = self.naive_plan(&state, snap, &prev, &new);
            if plan.mints.iter().any(|m| !block.txs.contains(&Tx::Mint(m.clone()))) {
                return Err("leaves out a required mint (old rule)".into());
            }
            let minted: Vec<&ledger::MintTx> = block
                .txs
                .iter()
                .filter_map(|t| match t {
                    Tx::Mint(m) => Some(m),
                    _ => None,
                })
                .collect();
            if pegin::first_unconfirmed(snap, &minted).is_some() {
                return Err("mints what Bitcoin does not show".into());
            }
            return Ok(());
        }
        pegin::check_block_peg(&self.chain, &state, Some(snap), self.registry.version, &prev, block)
            .map_err(|e| e.to_string())
    }

    /// Rounds until a block commits: the round's proposer proposes on its view, every honest member judges
    /// on its own, and the block commits with 2f+1 yes votes (Byzantine members vote nil on honest blocks).
    pub(super) fn commit_next(&mut self) -> Result<(), SimFailure> {
        let height = self.height + 1;
        let seed = self.cfg.seed;
        let n = self.members.len();
        for round in 0..2 * n as u32 {
            let pos = ((height + u64::from(round)) % n as u64) as usize;
            let proposer = self.members[pos];
            let junk = self.is_byzantine(proposer).then(|| Junk::ALL[self.rng.gen_range(0..Junk::ALL.len())]);
            // Re-execution is the same for every validator and gives what building gave (one function
            // executes both), so the built outcome stands for it.
            let Some((block, executed)) = self.propose(pos, round, junk)? else { continue };
            let proposer_tip = self.view_tip(proposer);
            // Validators with the same view reach the same verdict: judge each view once.
            let mut verdicts: BTreeMap<u32, Result<(), String>> = BTreeMap::new();
            let mut yes = 0;
            let honest: Vec<u32> = self.members.iter().copied().filter(|v| !self.is_byzantine(*v)).collect();
            for v in honest {
                let tip = self.view_tip(v);
                let verdict = verdicts.entry(tip).or_insert_with(|| self.peg_verdict(tip, &block)).clone();
                match (verdict, junk) {
                    (Ok(()), None) => yes += 1,
                    (Ok(()), Some(j)) => return Err(SimFailure::JunkAccepted { seed, height, junk: j.what() }),
                    (Err(_), Some(_)) => {}
                    // Seeing at least what the proposer saw, an honest validator has no reason to refuse.
                    (Err(reason), None) if !self.cfg.naive_required && tip >= proposer_tip => {
                        return Err(SimFailure::HonestRefused { seed, height, validator: v, reason })
                    }
                    (Err(_), None) => self.outcome.lag_refusals += 1,
                }
            }
            if let Some(j) = junk {
                self.outcome.junk_refused[j.index()] += 1;
                continue;
            }
            if yes >= self.quorum_size() {
                return self.commit(block, executed);
            }
        }
        // No round produced a block (only possible with the old rule): an empty block keeping the anchor.
        let state = self.store.snapshot(self.height);
        let meta = state.chain_meta().map_err(|e| self.state_err(e))?.expect("meta");
        let halt = ledger::peg_halt(&state).map_err(|e| self.state_err(e))?;
        let template = BlockTemplate {
            height: Height(height),
            prev_hash: BlockId::ZERO,
            time_ms: meta.time_ms + 1000,
            proposer: ValidatorIndex(0),
            btc_anchor: halt.resume_to.unwrap_or(meta.btc_anchor),
            last_commit_hash: Hash32::ZERO,
        };
        let fail = |e: ledger::BlockError| SimFailure::BuildFailed { seed, height, reason: e.to_string() };
        let (block, outcome) = ledger::build_block(&self.chain, &self.store, template, Vec::new()).map_err(fail)?;
        self.commit(block, outcome)
    }

    fn commit(&mut self, block: ledger::Block, outcome: ledger::ExecutionOutcome) -> Result<(), SimFailure> {
        let before = self.store.snapshot(self.height);
        let settled_before = ledger::batching::batch_index(&before).map_err(|e| self.state_err(e))?;
        self.store.apply(&outcome.write_set);
        self.height += 1;
        self.trace.extend_from_slice(block.header.state_root.as_bytes());
        self.outcome.mints += block.txs.iter().filter(|t| matches!(t, Tx::Mint(_))).count() as u64;
        let anchor = block.header.btc_anchor;
        let early = |b: &BtcAnchor| ledger::peg_cursor::is_early(b, &anchor);
        self.early_in_last = block.txs.iter().any(|t| match t {
            Tx::Mint(m) => early(&m.btc_block),
            Tx::Settle(s) => early(&s.btc_block),
            _ => false,
        });
        for t in &block.txs {
            if let Tx::Reconfigure(r) = t {
                let members = r.proposal.validators.iter().map(|v| self.identity(&v.consensus_key)).collect();
                self.episode.approved(r.proposal.activation_height, members);
            }
        }
        // The registry follows registrations and federation changes, as `Service::follow_federation` does.
        self.registry.add(&self.chain, &pegin::registrations_in(&block));
        let fs =
            ledger::federation_state(&self.chain, &self.store.snapshot(self.height)).map_err(|e| self.state_err(e))?;
        if self.registry.set_epochs(&self.chain, &fs, Height(self.height + 1)) {
            self.learn_epoch_scripts();
        }
        let state = self.store.snapshot(self.height);
        let members: Vec<u32> = fs.in_force().validators.iter().map(|v| self.identity(&v.consensus_key)).collect();
        if members != self.members {
            self.outcome.epochs += 1;
            self.members = members;
        }
        let halt = ledger::peg_halt(&state).map_err(|e| self.state_err(e))?;
        if halt.halted_at == Some(Height(self.height)) {
            self.outcome.halts += 1;
        }
        if halt.resume_to.is_some() {
            self.outcome.resumes += 1;
            self.episode.resumed(self.height);
        }
        let included: HashSet<TxId> = block.txs.iter().map(Tx::txid).collect();
        self.mempool.retain(|t| {
            !included.contains(&Tx::User(t.clone()).txid()) && ledger::check_tx(&self.chain, &state, t).is_ok()
        });
        self.pool.retain(|t| !included.contains(&t.txid()));
        // Settled batches paid their burns (payouts) or moved the wallet (sweeps, refreshes).
        let settled_after = ledger::batching::batch_index(&state).map_err(|e| self.state_err(e))?;
        for id in settled_before.in_flight.iter().filter(|id| !settled_after.in_flight.contains(id)) {
            if let Ok(Some(b)) = ledger::batching::batch(&state, *id) {
                match b.kind {
                    ledger::batching::BatchKind::Payout => self.outcome.burns_paid += b.burns.len() as u64,
                    ledger::batching::BatchKind::Sweep => self.outcome.sweeps_settled += 1,
                    ledger::batching::BatchKind::Refresh => self.outcome.refreshes_settled += 1,
                }
            }
        }
        Ok(())
    }

    /// Every batch a threshold has signed goes to Bitcoin, which must accept it.
    pub(super) fn hand_signed_batches_to_bitcoin(&mut self) -> Result<(), SimFailure> {
        let state = self.store.snapshot(self.height);
        let index = ledger::batching::batch_index(&state).map_err(|e| self.state_err(e))?;
        for id in index.in_flight {
            let Some(b) = ledger::batching::batch(&state, id).map_err(|e| self.state_err(e))? else { continue };
            for t in b.version_txids() {
                self.versions.insert(t, id);
            }
            if !b.is_signed() || self.submitted.contains(&(id, b.txid)) {
                continue;
            }
            let wallet = self.wallet(b.epoch);
            let signed =
                ledger::frost_signing::finalize_version(&self.chain, wallet, id, &b.current_version()).map_err(
                    |e| SimFailure::BuildFailed { seed: self.cfg.seed, height: self.height, reason: e.to_string() },
                )?;
            self.submitted.insert((id, b.txid));
            if b.current_version().key_path_signatures().is_some() {
                self.outcome.key_path_versions += 1;
            }
            match self.btc.submit(signed) {
                Ok(()) => {}
                // An earlier version (or a conflicting one) already spent a coin: Bitcoin's normal answer.
                Err(BtcReject::MissingInput(o)) if self.btc.spent(&o) => {}
                Err(reason) => {
                    return Err(SimFailure::InvalidOnBitcoin {
                        seed: self.cfg.seed,
                        height: self.height,
                        batch: id,
                        reason,
                    })
                }
            }
        }
        Ok(())
    }
}
