//! The adversarial peg simulation: the tool that finds the next way to freeze, poison or stall the peg.
//!
//! Why: every peg hole the review found (a required mint execution refuses, a coin recorded with the wrong
//! keys, a coinbase spent too early) is a disagreement between two parts that are each right on their own.
//! Such disagreements show only when hostile inputs meet the real rules, so this runs the real rules:
//! the pure ledger (execution, batching, bumps), the node's peg rules ([`crate::pegin`]: the proposer's
//! anchor and plan, the validators' check) and Bitcoin Core's interpreter, over a simulated Bitcoin
//! ([`btc::SimBitcoin`]) with reorgs of the unanchored tip, fee spikes and coinbase outputs. Hostile users
//! register at random, pay any script any amount (zero, dust, coinbase), peg out to any script (their own
//! and others' deposit addresses, the federation's), and claim any output for anyone; up to f validators
//! propose junk and withhold their signature shares.
//!
//! Checked at every height: the anchor follows Bitcoin within a bound (peg liveness), every honest
//! proposal builds, no block with a fact Bitcoin does not show is accepted, every transaction the
//! federation signs is valid on Bitcoin, every coin state records exists on Bitcoin with the script its
//! record says, and no batch confirms twice. Deterministic: a seed gives one run; a failure names the seed.

pub mod btc;

use crate::btc_follow::{from_peg, to_peg, BtcSnapshot};
use crate::pegin::{self, Registry};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, TxOut};
use btc::{BtcReject, SimBitcoin};
use ledger::testkit::{self, user_key};
use ledger::{
    BlockTemplate, BtcAnchor, BtcOutPoint, Chain, MemStore, PegPlan, SignedUserTx, StateReader, Tx, UserTx, UserTxKind,
};
use primitives::{AccountId, Hash32, Height, ValidatorIndex};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashSet};

/// Validators (f = 1).
const VALIDATORS: u32 = 4;
/// Users with a genesis balance (they can pay fees and burn before pegging in).
const USERS: u32 = 6;
/// Heights the anchor may lag a Bitcoin that is ready for it before the run fails.
pub const LIVENESS_BOUND: u64 = 12;
/// `Params::block_max_txs` of the simulated chain: small, so one BTC block can pay the federation more
/// outputs than one block holds.
pub const BLOCK_MAX_TXS: u32 = 16;
/// Outputs of a hostile user's flood: one transaction paying three blocks' worth of outputs.
const FLOOD_OUTPUTS: u32 = 3 * BLOCK_MAX_TXS;

/// One run's settings.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// The seed: everything random comes from it.
    pub seed: u64,
    /// Sidechain heights to run.
    pub heights: u64,
    /// Byzantine validators (at most f = 1): junk proposals, withheld shares.
    pub byzantine: u32,
    /// Switches the fix for finding 1 off: the old rule that required a mint for every output to a live
    /// deposit script, computed apart from execution, with mints before settlements. For the test that
    /// shows the simulation catches it.
    pub naive_required: bool,
    /// Switches early peg items off (see `ledger::peg_cursor`): a BTC block with more outputs than a block
    /// holds then freezes the anchor. For the test that shows the simulation catches it.
    pub no_early_items: bool,
}

impl SimConfig {
    /// The settings CI uses for `seed`: 40 heights, one Byzantine validator on odd seeds.
    pub fn for_seed(seed: u64) -> Self {
        SimConfig { seed, heights: 40, byzantine: (seed % 2) as u32, naive_required: false, no_early_items: false }
    }
}

/// What a run did (and its trace hash, equal for equal seeds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimOutcome {
    /// Sidechain height reached.
    pub height: u64,
    /// The anchor's BTC height at the end, and Bitcoin's tip.
    pub anchor: u32,
    /// Bitcoin's tip at the end.
    pub btc_tip: u32,
    /// Outputs minted (deposits, plain outputs, re-pegs, claims).
    pub mints: u64,
    /// Burns paid on Bitcoin and settled.
    pub burns_paid: u64,
    /// Junk proposals the validators refused.
    pub junk_refused: u64,
    /// Hash of every committed block id in order.
    pub trace_hash: Hash32,
}

/// A broken property, with the seed and height to replay it.
#[derive(Debug, thiserror::Error)]
pub enum SimFailure {
    /// The anchor did not move for too long while Bitcoin was ready.
    #[error("seed {seed}, height {height}: the anchor is stuck at BTC {anchor} while Bitcoin is at {tip} ({heights} heights without a move)")]
    AnchorStuck {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The anchor.
        anchor: u32,
        /// Bitcoin's tip.
        tip: u32,
        /// Heights without a move.
        heights: u64,
    },
    /// An honest proposer's block did not build.
    #[error("seed {seed}, height {height}: an honest proposer could not build its block: {reason}")]
    BuildFailed {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// Honest validators refused an honest proposal.
    #[error("seed {seed}, height {height}: honest validators refused an honest proposal: {reason}")]
    HonestRefused {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// A junk proposal was accepted.
    #[error("seed {seed}, height {height}: a junk proposal was accepted ({junk})")]
    JunkAccepted {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// What the junk was.
        junk: &'static str,
    },
    /// A transaction the federation signed is invalid on Bitcoin.
    #[error("seed {seed}, height {height}: batch {batch} signed by the federation is invalid on Bitcoin: {reason}")]
    InvalidOnBitcoin {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The batch.
        batch: u64,
        /// Bitcoin's reason.
        reason: BtcReject,
    },
    /// An honest validator's share-time check (`ledger::breaker`) refused a batch execution built.
    #[error("seed {seed}, height {height}: the share-time breaker refused an honest batch: {reason}")]
    BreakerTripped {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// Why.
        reason: ledger::breaker::ShareCheckError,
    },
    /// A coin state holds is not on Bitcoin as recorded.
    #[error("seed {seed}, height {height}: federation coin {outpoint:?} is not on Bitcoin as recorded: {reason}")]
    CoinNotOnBitcoin {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The coin.
        outpoint: BtcOutPoint,
        /// What differs.
        reason: &'static str,
    },
    /// Two versions of one batch confirmed (a burn paid twice).
    #[error("seed {seed}, height {height}: batch {batch} confirmed twice on Bitcoin")]
    PaidTwice {
        /// Seed.
        seed: u64,
        /// Sidechain height.
        height: u64,
        /// The batch.
        batch: u64,
    },
    /// The state could not be read (a bug in the simulation or the ledger).
    #[error("seed {seed}: cannot read state: {source}")]
    State {
        /// Seed.
        seed: u64,
        /// The error.
        #[source]
        source: ledger::StateError,
    },
}

/// A hostile proposal a Byzantine proposer tries.
#[derive(Clone, Copy, Debug)]
enum Junk {
    /// A mint of an output Bitcoin does not have.
    FakeMint,
    /// The anchor moved without the mints it requires.
    OmitMints,
}

struct World {
    cfg: SimConfig,
    rng: rand_chacha::ChaCha8Rng,
    chain: Chain,
    store: MemStore,
    height: u64,
    btc: SimBitcoin,
    registry: Registry,
    mempool: Vec<SignedUserTx>,
    /// Every output users paid toward the federation (for claims): outpoint, script owner (None: plain).
    paid: Vec<(bitcoin::OutPoint, Option<AccountId>)>,
    /// Claims users made: (outpoint, recipient named).
    claims: std::collections::BTreeSet<(bitcoin::OutPoint, AccountId)>,
    /// One signing context for the run (creating one is costly).
    secp: bitcoin::secp256k1::Secp256k1<bitcoin::secp256k1::All>,
    /// The last snapshot and what it was built from.
    #[allow(clippy::type_complexity)]
    snap_cache: std::cell::RefCell<Option<((u32, u64, Option<bitcoin::BlockHash>, usize), BtcSnapshot)>>,
    /// Deposit scripts of the users and the fee pool (an EC tweak each: computed once).
    scripts: BTreeMap<AccountId, ScriptBuf>,
    /// (batch, txid) pairs already handed to Bitcoin.
    submitted: HashSet<(u64, Hash32)>,
    /// Batch ids by the txid of each of their versions.
    versions: BTreeMap<Hash32, u64>,
    /// Heights since the anchor last moved while Bitcoin was ready for a move.
    waiting: u64,
    outcome: SimOutcome,
    trace: Vec<u8>,
}

/// Runs one seed.
pub fn run(cfg: SimConfig) -> Result<SimOutcome, SimFailure> {
    let mut w = World::new(cfg);
    for _ in 0..cfg.heights {
        w.step()?;
    }
    w.outcome.height = w.height;
    w.outcome.anchor = w.anchor().height.get();
    w.outcome.btc_tip = w.btc.tip();
    w.outcome.trace_hash = Hash32(bitcoin::hashes::sha256::Hash::hash(&w.trace).to_byte_array());
    Ok(w.outcome)
}

impl World {
    fn new(cfg: SimConfig) -> Self {
        let mut g = testkit::genesis(VALIDATORS, USERS, Amount::from_sat(5_000_000));
        g.params.pegout_enabled = true;
        g.params.pegout_interval = 3;
        g.params.pegout_bump_after = 2;
        g.params.pegin_confirmations = 2;
        g.params.max_anchor_step = 4;
        g.params.block_max_txs = BLOCK_MAX_TXS;
        let chain = Chain::new(g).expect("simulation genesis is valid");
        let mut store = MemStore::new();
        store.apply(&chain.genesis_state(&store).expect("in memory"));
        let fs = ledger::federation_state(&chain, &store.snapshot(0)).expect("genesis federation");
        let registry = Registry::new(&chain, &fs, Height(1), &[]);
        let scripts = (0..USERS)
            .map(|u| user_key(u).public().account_id())
            .chain([ledger::fee_pool_id()])
            .map(|a| {
                let d = pegin::deposit_descriptor(&chain, chain.genesis_wallet(), &a).expect("script");
                (a, d.script_pubkey())
            })
            .collect();
        World {
            cfg,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed),
            chain,
            store,
            height: 0,
            btc: SimBitcoin::new(),
            registry,
            mempool: Vec::new(),
            paid: Vec::new(),
            claims: Default::default(),
            snap_cache: Default::default(),
            secp: bitcoin::secp256k1::Secp256k1::new(),
            scripts,
            submitted: HashSet::new(),
            versions: BTreeMap::new(),
            waiting: 0,
            outcome: SimOutcome::default(),
            trace: Vec::new(),
        }
    }

    fn state_err(&self, source: ledger::StateError) -> SimFailure {
        SimFailure::State { seed: self.cfg.seed, source }
    }

    fn anchor(&self) -> BtcAnchor {
        self.store.snapshot(self.height).chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default()
    }

    /// One sidechain height: users act, Bitcoin maybe mines (or reorgs), the federation commits a block,
    /// signed batches go to Bitcoin, and every property is checked.
    fn step(&mut self) -> Result<(), SimFailure> {
        for _ in 0..self.rng.gen_range(0..4) {
            self.user_acts();
        }
        self.bitcoin_moves();
        self.commit_next()?;
        self.hand_signed_batches_to_bitcoin()?;
        self.check()
    }

    // ---- hostile users --------------------------------------------------------------------------------

    fn deposit_script(&self, who: &AccountId) -> ScriptBuf {
        self.scripts.get(who).cloned().unwrap_or_else(|| {
            pegin::deposit_descriptor(&self.chain, self.chain.genesis_wallet(), who).expect("script").script_pubkey()
        })
    }

    /// A script a hostile user might name: anyone's deposit address (their own, the fee pool's), the plain
    /// federation script, or an ordinary address; with its owner if it is a deposit script.
    fn any_script(&mut self, me: u32) -> (ScriptBuf, Option<Option<AccountId>>) {
        let user = user_key(self.rng.gen_range(0..USERS)).public().account_id();
        match self.rng.gen_range(0..6) {
            0 => {
                let own = user_key(me).public().account_id();
                (self.deposit_script(&own), Some(Some(own)))
            }
            1 => (self.deposit_script(&user), Some(Some(user))),
            2 => (self.deposit_script(&ledger::fee_pool_id()), Some(Some(ledger::fee_pool_id()))),
            3 => (self.chain.genesis_wallet().script_pubkey(), Some(None)),
            _ => {
                let mut h = [0u8; 20];
                self.rng.fill(&mut h);
                (ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(h)), None)
            }
        }
    }

    fn any_amount(&mut self) -> Amount {
        const AMOUNTS: [u64; 7] = [0, 294, 5_000, 10_000, 50_000, 400_000, 2_000_000];
        Amount::from_sat(AMOUNTS[self.rng.gen_range(0..AMOUNTS.len())])
    }

    fn user_tx(&mut self, user: u32, fee: Amount, kind: UserTxKind) {
        let k = user_key(user);
        let id = k.public().account_id();
        let state = self.store.snapshot(self.height);
        let base = state.get_account(&id).ok().flatten().map_or(0, |a| a.nonce);
        let pending = self.mempool.iter().filter(|t| t.tx.sender() == id).count() as u64;
        let tx = UserTx { signer: k.public(), nonce: base + pending, fee, kind }.sign(&k, self.chain.genesis_hash());
        // The mempool's own check: what would not apply now is refused with its reason (as the node does).
        if pending > 0 || ledger::check_tx(&self.chain, &state, &tx).is_ok() {
            self.mempool.push(tx);
        }
    }

    fn user_acts(&mut self) {
        let me = self.rng.gen_range(0..USERS);
        if self.rng.gen_bool(0.02) {
            return self.flood(me);
        }
        match self.rng.gen_range(0..5) {
            0 => self.user_tx(me, self.chain.params().registration_fee, UserTxKind::RegisterDeposit),
            1 | 2 => {
                let (script, owner) = self.any_script(me);
                let amount = self.any_amount();
                let out = TxOut { value: amount, script_pubkey: script };
                if self.rng.gen_bool(0.15) {
                    // A coinbase paying the federation: mined at once.
                    self.btc.mine(vec![out], || true);
                    let txid = self.btc.blocks.last().expect("mined").txids[0];
                    if let Some(owner) = owner {
                        self.paid.push((bitcoin::OutPoint { txid, vout: 0 }, owner));
                    }
                } else {
                    let txid = self.btc.pay(vec![out]);
                    if let Some(owner) = owner {
                        self.paid.push((bitcoin::OutPoint { txid, vout: 0 }, owner));
                    }
                }
            }
            3 => {
                let (script, _) = self.any_script(me);
                let amount = Amount::from_sat(self.rng.gen_range(10_000..200_000));
                let fee = ledger::pegout::required_pegout_fee(&self.chain, &script);
                self.user_tx(me, fee, UserTxKind::PegOut { btc_script_pubkey: script.to_bytes(), amount });
            }
            _ => {
                // A claim for any output we paid, naming anyone.
                if !self.paid.is_empty() {
                    let (outpoint, owner) = self.paid[self.rng.gen_range(0..self.paid.len())];
                    let named = match (owner, self.rng.gen_bool(0.5)) {
                        (Some(o), true) => o,
                        _ => user_key(self.rng.gen_range(0..USERS)).public().account_id(),
                    };
                    self.claims.insert((outpoint, named));
                }
            }
        }
    }

    /// One transaction paying more outputs to one federation script (the user's own deposit address, or
    /// the plain one) than a block holds: dust (recorded, below the minimum) or real deposits.
    fn flood(&mut self, me: u32) {
        let own = user_key(me).public().account_id();
        let (script, owner) = if self.rng.gen_bool(0.5) {
            (self.deposit_script(&own), Some(own))
        } else {
            (self.chain.genesis_wallet().script_pubkey(), None)
        };
        let value = Amount::from_sat(if self.rng.gen_bool(0.5) { 294 } else { 20_000 });
        let outs = (0..FLOOD_OUTPUTS).map(|_| TxOut { value, script_pubkey: script.clone() }).collect();
        let txid = self.btc.pay(outs);
        for vout in 0..FLOOD_OUTPUTS {
            self.paid.push((bitcoin::OutPoint { txid, vout }, owner));
        }
    }

    // ---- Bitcoin ----------------------------------------------------------------------------------------

    fn bitcoin_moves(&mut self) {
        // A reorg only of blocks the sidechain has not anchored, nor named in early peg items (deeper ones
        // are the halt procedure's).
        let cursor = ledger::peg_cursor(&self.store.snapshot(self.height)).ok().flatten();
        let anchor = self.anchor().height.get().max(cursor.map_or(0, |c| c.btc_block.height.get()));
        if self.btc.tip() > anchor + 1 && self.rng.gen_bool(0.05) {
            let depth = self.rng.gen_range(1..=(self.btc.tip() - anchor).min(2));
            self.btc.reorg(depth);
        }
        if self.rng.gen_bool(0.6) {
            // A fee spike keeps the federation's transactions out now and then (so bumps happen).
            let spike = self.rng.gen_bool(0.3);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.rng.gen());
            self.btc.mine(Vec::new(), move || !spike || rng.gen_bool(0.2));
        }
    }

    /// What an honest validator's bitcoind shows: the follower's snapshot over the simulated chain (cached
    /// until the anchor, the registry, Bitcoin's tip or the claims change).
    fn snapshot(&self, anchor: u32) -> BtcSnapshot {
        let tip = self.btc.blocks.last().map(|b| b.hash);
        let key = (anchor, self.registry.version, tip, self.claims.len());
        if let Some((k, snap)) = &*self.snap_cache.borrow() {
            if *k == key {
                return snap.clone();
            }
        }
        let snap = self.build_snapshot(anchor);
        *self.snap_cache.borrow_mut() = Some((key, snap.clone()));
        snap
    }

    fn build_snapshot(&self, anchor: u32) -> BtcSnapshot {
        let mut snap = BtcSnapshot {
            best: Some(self.btc.tip()),
            registry_version: self.registry.version,
            ..BtcSnapshot::default()
        };
        for (h, b) in self.btc.blocks.iter().enumerate() {
            snap.hashes.insert(h as u32, b.hash);
        }
        let top = self.btc.tip().min(anchor + self.chain.params().max_anchor_step);
        for h in anchor + 1..=top {
            let b = &self.btc.blocks[h as usize];
            let scan = peg::scan_transactions(&b.txs, b.hash, h, &self.registry);
            let txids = b.txids.clone();
            snap.deposits.insert(h, crate::bitcoin::IndexedBlock { hash: b.hash, scan, txids });
        }
        // Claims our bitcoind confirms: the output is in the best chain and pays the named account's
        // deposit script of some epoch.
        for (outpoint, recipient) in &self.claims {
            let Some((out, h, coinbase)) = self.btc.created(outpoint) else { continue };
            // One epoch in this simulation: the claim holds iff the output pays the recipient's script.
            if out.script_pubkey != self.deposit_script(recipient) {
                continue;
            }
            let epoch = 0;
            snap.claims.push(peg::Deposit {
                outpoint: *outpoint,
                amount: out.value,
                script_pubkey: out.script_pubkey,
                recipient: recipient.0 .0,
                epoch,
                btc_block_hash: self.btc.blocks[h as usize].hash,
                btc_height: h,
                coinbase,
            });
        }
        snap
    }

    // ---- the federation ---------------------------------------------------------------------------------

    fn is_byzantine(&self, v: u32) -> bool {
        v < self.cfg.byzantine
    }

    /// Signature shares of the honest validators for every in-flight batch that lacks them, as the
    /// federation pool selects them for a block (`ledger::select_pool_txs`: no more than a threshold).
    fn shares(&self, state: &impl StateReader) -> Vec<Tx> {
        let all = self.all_shares(state);
        ledger::select_pool_txs(&self.chain, state, &all).unwrap_or_default()
    }

    fn all_shares(&self, state: &impl StateReader) -> Vec<Tx> {
        let secp = &self.secp;
        let mut out = Vec::new();
        let Ok(index) = ledger::batching::batch_index(state) else { return out };
        for id in index.in_flight {
            let Ok(Some(b)) = ledger::batching::batch(state, id) else { continue };
            let Ok(tx) = b.unsigned() else { continue };
            let wallet = self.chain.genesis_wallet();
            for v in (0..VALIDATORS).filter(|v| !self.is_byzantine(*v)) {
                let signer = ValidatorIndex(v as u16);
                if b.shares.iter().any(|(s, _)| *s == signer) {
                    continue;
                }
                let secret = testkit::validator_peg_secret(v);
                let genesis = self.chain.genesis_hash().0;
                if let Ok(share) = peg::sign_batch(secp, wallet, genesis, &tx, &b.peg_inputs(), v as usize, &secret) {
                    out.push(Tx::PegShare(ledger::PegShareTx {
                        batch: id,
                        txid: b.txid,
                        signer,
                        signatures: share.signatures,
                    }));
                }
            }
        }
        out
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

    /// Block `height` as proposer `v` builds it in `round` (an honest one, or `junk` from a Byzantine one).
    fn propose(&mut self, v: u32, round: u32, junk: Option<Junk>) -> Result<Option<ledger::Block>, SimFailure> {
        let height = Height(self.height + 1);
        let state = self.store.snapshot(self.height);
        let meta = state.chain_meta().map_err(|e| self.state_err(e))?.expect("meta");
        let prev = meta.btc_anchor;
        let snap = self.snapshot(prev.height.get());
        let mut txs = self.shares(&state);
        let wanted = if round == 0 {
            let p = self.chain.params();
            peg::choose_anchor(&snap, to_peg(&prev), p.pegin_confirmations, p.max_anchor_step).map(from_peg)
        } else {
            None
        };
        // As the node does: claims ride only on round-0 blocks that keep the anchor.
        let keep = || {
            let claims = pegin::peg_plan(&self.chain, &state, &snap, self.registry.version, &prev, &prev, height, true);
            (prev, if round == 0 { claims.unwrap_or_default() } else { PegPlan::default() })
        };
        // The federation pool's shares take at most half a block (a prefix applies as the whole does).
        txs.truncate(BLOCK_MAX_TXS as usize / 2);
        let room = pegin::Room::after(&self.chain, &txs);
        let version = self.registry.version;
        let (anchor, mut plan) = match (wanted, self.cfg.naive_required) {
            (None, _) => keep(),
            (Some(new), true) => (new, self.naive_plan(&state, &snap, &prev, &new)),
            (Some(new), false) => {
                pegin::anchor_with_plan(&self.chain, &state, &snap, version, &prev, &new, height, room)
                    .or_else(|| {
                        let early = (!self.cfg.no_early_items)
                            .then(|| pegin::early_plan(&self.chain, &state, &snap, version, &prev, &new, height, room));
                        early.flatten().map(|e| (prev, e))
                    })
                    .unwrap_or((prev, PegPlan::default()))
            }
        };
        match junk {
            // Junk only when something was required (mints of a move; early ones are optional); otherwise
            // this proposer has nothing to attack with.
            Some(Junk::OmitMints) if anchor != prev && !plan.mints.is_empty() => plan.mints.clear(),
            Some(Junk::OmitMints) => return Ok(None),
            Some(Junk::FakeMint) => {
                let mut fake = [0u8; 32];
                self.rng.fill(&mut fake);
                plan.mints.push(ledger::MintTx {
                    outpoint: BtcOutPoint { txid: Hash32(fake), vout: 0 },
                    recipient: user_key(v).public().account_id(),
                    amount: Amount::from_sat(1_000_000),
                    btc_block: anchor,
                    epoch: 0,
                    kind: ledger::MintKind::Deposit,
                    coinbase: false,
                });
            }
            None => {}
        }
        let mut block_txs = if self.cfg.naive_required {
            // The old order: mints, then settlements.
            let mut t: Vec<Tx> = plan.mints.iter().cloned().map(Tx::Mint).collect();
            t.extend(plan.settles.iter().cloned().map(Tx::Settle));
            t
        } else {
            plan.txs()
        };
        txs.retain(|t| !plan.supersedes(t));
        block_txs.append(&mut txs);
        let mut selection =
            ledger::select_txs(&self.chain, &state, self.mempool.clone()).map_err(|e| self.state_err(e))?;
        // As the node does: user transactions fill what the peg and the pool left, in count and bytes.
        let max_bytes = self.chain.params().block_max_bytes as usize;
        let mut bytes = ledger::txs_encoded_len(&block_txs);
        let fit = selection.txs.iter().take_while(|t| {
            bytes += t.encoded_len();
            bytes <= max_bytes
        });
        let fit = fit.count().min((BLOCK_MAX_TXS as usize).saturating_sub(block_txs.len()));
        selection.txs.truncate(fit);
        block_txs.extend(selection.txs);
        let template = BlockTemplate {
            height,
            prev_hash: Hash32::ZERO,
            time_ms: meta.time_ms + 1000,
            proposer: ValidatorIndex(v as u16),
            btc_anchor: anchor,
            last_commit_hash: Hash32::ZERO,
        };
        match ledger::build_block(&self.chain, &self.store, template, block_txs) {
            Ok((block, _)) => Ok(Some(block)),
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

    /// An honest validator's verdict on `block`: the anchor check, the peg check, re-execution.
    fn judge(&self, block: &ledger::Block) -> Result<(), String> {
        let state = self.store.snapshot(self.height);
        let prev = state.chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default();
        let snap = self.snapshot(prev.height.get());
        let p = self.chain.params();
        if block.header.btc_anchor != prev {
            peg::check_anchor_move(
                &snap,
                to_peg(&prev),
                to_peg(&block.header.btc_anchor),
                p.pegin_confirmations,
                p.max_anchor_step,
            )
            .map_err(|e| e.to_string())?;
        }
        if self.cfg.naive_required {
            let plan = self.naive_plan(&state, &snap, &prev, &block.header.btc_anchor);
            if plan.mints.iter().any(|m| !block.txs.contains(&Tx::Mint(m.clone()))) {
                return Err("leaves out a required mint (old rule)".into());
            }
            let minted = block.txs.iter().filter_map(|t| match t {
                Tx::Mint(m) => Some(m),
                _ => None,
            });
            if minted.into_iter().any(|m| !pegin::mint_is_confirmed(&snap, m)) {
                return Err("mints what Bitcoin does not show".into());
            }
        } else {
            pegin::check_block_peg(&self.chain, &state, Some(&snap), self.registry.version, &prev, block)
                .map_err(|e| e.to_string())?;
        }
        ledger::execute_block(&self.chain, &self.store, block).map(|_| ()).map_err(|e| e.to_string())
    }

    /// Rounds until a block commits: the round's proposer proposes, the honest validators (2f + 1 of them,
    /// all seeing the same Bitcoin) judge.
    fn commit_next(&mut self) -> Result<(), SimFailure> {
        let height = self.height + 1;
        for round in 0..2 * VALIDATORS {
            let v = ((height + u64::from(round)) % u64::from(VALIDATORS)) as u32;
            let junk =
                self.is_byzantine(v).then(|| if self.rng.gen_bool(0.5) { Junk::FakeMint } else { Junk::OmitMints });
            let Some(block) = self.propose(v, round, junk)? else { continue };
            match (self.judge(&block), junk) {
                (Ok(()), None) => return self.commit(block),
                (Ok(()), Some(j)) => {
                    let junk = match j {
                        Junk::FakeMint => "a mint Bitcoin does not show",
                        Junk::OmitMints => "an anchor move without its required mints",
                    };
                    return Err(SimFailure::JunkAccepted { seed: self.cfg.seed, height, junk });
                }
                (Err(_), Some(_)) => self.outcome.junk_refused += 1,
                (Err(reason), None) if !self.cfg.naive_required => {
                    return Err(SimFailure::HonestRefused { seed: self.cfg.seed, height, reason })
                }
                (Err(_), None) => {}
            }
        }
        // No round produced a block (only possible with the old rule): an empty block keeping the anchor.
        let state = self.store.snapshot(self.height);
        let meta = state.chain_meta().map_err(|e| self.state_err(e))?.expect("meta");
        let template = BlockTemplate {
            height: Height(height),
            prev_hash: Hash32::ZERO,
            time_ms: meta.time_ms + 1000,
            proposer: ValidatorIndex(0),
            btc_anchor: meta.btc_anchor,
            last_commit_hash: Hash32::ZERO,
        };
        let (block, _) = ledger::build_block(&self.chain, &self.store, template, Vec::new())
            .map_err(|e| SimFailure::BuildFailed { seed: self.cfg.seed, height, reason: e.to_string() })?;
        self.commit(block)
    }

    fn commit(&mut self, block: ledger::Block) -> Result<(), SimFailure> {
        let outcome = ledger::execute_block(&self.chain, &self.store, &block).map_err(|e| SimFailure::BuildFailed {
            seed: self.cfg.seed,
            height: self.height + 1,
            reason: e.to_string(),
        })?;
        self.store.apply(&outcome.write_set);
        self.height += 1;
        self.trace.extend_from_slice(&block.header.state_root.0);
        self.outcome.mints += block.txs.iter().filter(|t| matches!(t, Tx::Mint(_))).count() as u64;
        let registered = pegin::registrations_in(&block);
        self.registry.add(&self.chain, &registered);
        let included: HashSet<Hash32> = block.txs.iter().map(Tx::txid).collect();
        let state = self.store.snapshot(self.height);
        self.mempool.retain(|t| {
            !included.contains(&Tx::User(t.clone()).txid()) && ledger::check_tx(&self.chain, &state, t).is_ok()
        });
        // Settled batches paid their burns.
        for t in &block.txs {
            if let Tx::Settle(s) = t {
                if let Ok(Some(b)) = ledger::batching::batch(&state, s.batch) {
                    self.outcome.burns_paid += b.burns.len() as u64;
                }
            }
        }
        Ok(())
    }

    /// Every batch a threshold has signed goes to Bitcoin, which must accept it.
    fn hand_signed_batches_to_bitcoin(&mut self) -> Result<(), SimFailure> {
        let state = self.store.snapshot(self.height);
        let index = ledger::batching::batch_index(&state).map_err(|e| self.state_err(e))?;
        let secp = &self.secp;
        for id in index.in_flight {
            let Some(b) = ledger::batching::batch(&state, id).map_err(|e| self.state_err(e))? else { continue };
            for t in b.version_txids() {
                self.versions.insert(t, id);
            }
            if !b.is_signed() || self.submitted.contains(&(id, b.txid)) {
                continue;
            }
            let shares: Vec<peg::Share> =
                b.shares.iter().map(|(v, s)| peg::Share { signer: v.as_usize(), signatures: s.clone() }).collect();
            let tx = b.unsigned().map_err(|e| self.state_err(e))?;
            let wallet = self.chain.genesis_wallet();
            let signed =
                peg::finalize_batch(secp, wallet, self.chain.genesis_hash().0, &tx, &b.peg_inputs(), &shares).map_err(
                    |e| SimFailure::BuildFailed { seed: self.cfg.seed, height: self.height, reason: e.to_string() },
                )?;
            self.submitted.insert((id, b.txid));
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

    // ---- properties -------------------------------------------------------------------------------------

    fn check(&mut self) -> Result<(), SimFailure> {
        let seed = self.cfg.seed;
        let state = self.store.snapshot(self.height);
        let meta = state.chain_meta().map_err(|e| self.state_err(e))?.expect("meta");
        // Peg liveness: Bitcoin is ready for a move and the anchor does not make one for too long.
        let p = self.chain.params();
        let snap = self.snapshot(meta.btc_anchor.height.get());
        let ready = peg::choose_anchor(&snap, to_peg(&meta.btc_anchor), p.pegin_confirmations, p.max_anchor_step);
        let moved = self.trace_anchor_moved(meta.btc_anchor);
        self.waiting = if ready.is_some() && !moved { self.waiting + 1 } else { 0 };
        if self.waiting > LIVENESS_BOUND {
            return Err(SimFailure::AnchorStuck {
                seed,
                height: self.height,
                anchor: meta.btc_anchor.height.get(),
                tip: self.btc.tip(),
                heights: self.waiting,
            });
        }
        // Every coin state holds is on Bitcoin (at or below the anchor) with the script its record says.
        let mut coins = ledger::batching::spendable_utxos(&state).map_err(|e| self.state_err(e))?.0;
        let index = ledger::batching::batch_index(&state).map_err(|e| self.state_err(e))?;
        for id in &index.in_flight {
            if let Some(b) = ledger::batching::batch(&state, *id).map_err(|e| self.state_err(e))? {
                coins.extend(b.inputs.iter().map(|i| i.outpoint));
            }
        }
        // Every version still collecting shares passes the share-time breaker: honest batches never trip it.
        for id in &index.in_flight {
            let Some(b) = ledger::batching::batch(&state, *id).map_err(|e| self.state_err(e))? else { continue };
            if !b.is_signed() {
                ledger::breaker::check_batch(&self.chain, &state, &b).map_err(|reason| SimFailure::BreakerTripped {
                    seed,
                    height: self.height,
                    reason,
                })?;
            }
        }
        let wallet = self.chain.genesis_wallet();
        for o in coins {
            let Some(u) = state.get_federation_utxo(&o).map_err(|e| self.state_err(e))? else { continue };
            let fail = |reason| SimFailure::CoinNotOnBitcoin { seed, height: self.height, outpoint: o, reason };
            let Some((out, h, coinbase)) =
                self.btc.created(&bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array(o.txid.0), vout: o.vout })
            else {
                return Err(fail("no such output in the best chain"));
            };
            let script = match u.tweak {
                None => wallet.script_pubkey(),
                Some(r) => self.deposit_script(&r),
            };
            // Above the anchor only when minted early, in the block the peg cursor pins.
            let cursor = ledger::peg_cursor(&state).map_err(|e| self.state_err(e))?;
            let best = from_peg((h, self.btc.blocks[h as usize].hash));
            let early = cursor.is_some_and(|c| c.btc_block == u.btc_block && best == u.btc_block);
            if h > meta.btc_anchor.height.get() && !early {
                return Err(fail("above the anchor"));
            }
            if out.script_pubkey != script {
                return Err(fail("its script is not the one the record's tweak gives"));
            }
            if out.value != u.amount || coinbase != u.coinbase {
                return Err(fail("amount or coinbase flag differ"));
            }
        }
        // No batch confirms twice.
        let mut seen = HashSet::new();
        for b in &self.btc.blocks {
            for t in &b.txids {
                if let Some(id) = self.versions.get(&Hash32(t.to_byte_array())) {
                    if !seen.insert(*id) {
                        return Err(SimFailure::PaidTwice { seed, height: self.height, batch: *id });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the last block moved the anchor (compared with the block before it).
    fn trace_anchor_moved(&self, now: BtcAnchor) -> bool {
        let before =
            self.store.snapshot(self.height.saturating_sub(1)).chain_meta().ok().flatten().map(|m| m.btc_anchor);
        before != Some(now)
    }
}
