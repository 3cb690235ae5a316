//! The adversarial peg simulation: the tool that finds the next way to freeze, poison or stall the peg.
//!
//! Why: every peg hole the review found (a required mint execution refuses, a coin recorded with the wrong
//! keys, a coinbase spent too early) is a disagreement between two parts that are each right on their own.
//! Such disagreements show only when hostile inputs meet the real rules, so this runs the real rules:
//! the pure ledger (execution, batching, bumps, sweeps, federation changes, the halt), the node's peg rules
//! ([`crate::pegin`]: the proposer's anchor and plan, the validators' check) and Bitcoin Core's interpreter,
//! over a simulated Bitcoin ([`btc::SimBitcoin`]) with reorgs of the unanchored tip, fee spikes and coinbase
//! outputs. Hostile users register at random, pay any script of any epoch any amount (zero, dust, coinbase),
//! peg out to any script (their own and others' deposit addresses, the federation's), and claim any output
//! for anyone, or flood one BTC transaction with more outputs to a federation script than a block holds
//! (`BLOCK_MAX_TXS` is small here); up to f validators propose junk (a mint Bitcoin does not show, a move
//! without its required mints, an early mint naming a forked BTC block, a settlement of an unconfirmed
//! batch), vote nil on honest blocks and withhold their signature shares. Proposers build as the node does: the anchor move that fits, else early peg
//! items of the next BTC block (`ledger::peg_cursor`), plus late settlements in round 0.
//!
//! Each validator has its own bitcoind ([`views`]), which may lag the tip by a few blocks, so a proposal
//! built on one view is judged by validators with another, and a block commits only with 2f+1 votes.
//! Seeds also play one episode ([`Episode`]): a Bitcoin reorg deeper than the anchor (f+1 reports halt the
//! peg, 2f+1 `ResumePeg` votes resume it), or federation changes (4 -> 5, or 4 -> 7 -> 4) with deposits to
//! old-epoch addresses, migration sweeps signed by the old keys and refreshes before the emergency delay.
//!
//! Checked at every height: the anchor follows Bitcoin within a bound (peg liveness; while early peg items
//! of the next BTC block go in, a longer one: [`EARLY_ITEMS_BOUND`]), every honest
//! proposal builds and is accepted by every honest validator that sees as much of Bitcoin as its proposer,
//! no junk is accepted, every transaction the federation signs is valid on Bitcoin, every coin state records
//! exists on Bitcoin with the script its record says, every batch version collecting shares passes the
//! share-time breaker (`ledger::breaker`), no batch confirms twice, and the federation epochs are the
//! approved ones. At the end, a quiet tail (Bitcoin mines, no new hostile input) checks peg-out
//! liveness ([`payout`]): every burn within the rolling limit is paid exactly once, or the run names the burn
//! and why it waits. Deterministic: a seed gives one run; a failure names the seed.

pub mod btc;
mod check;
mod episodes;
mod failure;
mod federation;
mod payout;
mod views;

pub use failure::{SimFailure, StuckReason};

use crate::btc_follow::BtcSnapshot;
use crate::pegin::Registry;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, TxOut};
use btc::SimBitcoin;
use ledger::testkit::{self, user_key};
use ledger::{BtcAnchor, Chain, MemStore, SignedUserTx, StateReader, Tx, UserTx, UserTxKind};
use primitives::{AccountId, Hash32};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashSet};

/// Validators at genesis (f = 1).
const VALIDATORS: u32 = 4;
/// Test keys a federation change may bring in (a 7-member set uses keys 0..7).
const IDENTITIES: u32 = 7;
/// Users with a genesis balance (they can pay fees and burn before pegging in).
const USERS: u32 = 6;
/// Heights the anchor may lag a Bitcoin that a quorum of bitcoinds is ready for, with no early peg items
/// going in either, before the run fails.
pub const LIVENESS_BOUND: u64 = 12;
/// Heights the anchor may lag a ready Bitcoin while early peg items go in, before the run fails. Early
/// items are progress toward the move (`pegin::early`): a BTC block with `k` outputs to federation scripts
/// needs `ceil(k / room)` honest round-0 blocks of them, and with f of n proposers Byzantine about
/// `n / (n - f)` times that many heights. Three floods in one BTC block (`3 * FLOOD_OUTPUTS` = 144 outputs,
/// 16 a block, 4/3) take about 12 heights with nothing else in the blocks (seed 16299 took 14), so
/// [`LIVENESS_BOUND`] alone would call a working peg stuck; this bound still catches early items that never
/// end in a move.
pub const EARLY_ITEMS_BOUND: u64 = 4 * LIVENESS_BOUND;
/// Heights from a deep reorg to the agreed resume before the run fails.
pub const HALT_BOUND: u64 = 30;
/// Most heights of the quiet tail (it ends as soon as every burn is paid).
pub const TAIL_BOUND: u64 = 60;
/// `Params::block_max_txs` of the simulated chain: small, so one BTC block can pay the federation more
/// outputs than one block holds.
pub const BLOCK_MAX_TXS: u32 = 16;
/// Outputs of a hostile user's flood: one transaction paying three blocks' worth of outputs.
const FLOOD_OUTPUTS: u32 = 3 * BLOCK_MAX_TXS;

/// What a seed does besides the hostile users and the Byzantine validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Episode {
    /// Nothing more.
    Plain,
    /// A Bitcoin reorg deeper than the anchor: reports, a halt, and the resume 2f+1 vote for.
    DeepReorg,
    /// A federation change from 4 to 5 validators.
    Grow,
    /// A change from 4 to 7 validators, then back to the first 4 (same keys at the same indices).
    GrowShrink,
}

/// One run's settings.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// The seed: everything random comes from it.
    pub seed: u64,
    /// Sidechain heights with hostile users (the quiet tail comes after).
    pub heights: u64,
    /// Byzantine validators (at most f = 1): junk proposals, nil votes on honest blocks, withheld shares.
    pub byzantine: u32,
    /// The episode this seed plays.
    pub episode: Episode,
    /// Whether validators' bitcoinds may lag the tip (each its own view of Bitcoin).
    pub lagging: bool,
    /// Whether to end with the quiet tail and the peg-out liveness check.
    pub tail: bool,
    /// After a deep reorg, the operators resume this many blocks above the old anchor's height (0: at it).
    /// Batches confirmed between the two anchors are then settled only by late settlements
    /// (`pegin::late_settles`, finding 6); without them the quiet tail names the stuck burn.
    pub resume_above: u32,
    /// Switches the fix for finding 1 off: the old rule that required a mint for every output to a live
    /// deposit script, computed apart from execution, with mints before settlements. For the test that
    /// shows the simulation catches it.
    pub naive_required: bool,
    /// Switches early peg items off (see `ledger::peg_cursor`): a BTC block with more outputs than a block
    /// holds then freezes the anchor. For the test that shows the simulation catches it.
    pub no_early_items: bool,
}

impl SimConfig {
    /// The settings CI uses for `seed`: 32 heights, one Byzantine validator on odd seeds, the episodes in
    /// turn by `seed / 2`, lagging bitcoinds, the quiet tail.
    pub fn for_seed(seed: u64) -> Self {
        let episode = match (seed / 2) % 4 {
            0 => Episode::Plain,
            1 => Episode::DeepReorg,
            2 => Episode::Grow,
            _ => Episode::GrowShrink,
        };
        SimConfig {
            seed,
            heights: 32,
            byzantine: (seed % 2) as u32,
            episode,
            lagging: true,
            tail: true,
            resume_above: 0,
            naive_required: false,
            no_early_items: false,
        }
    }
}

/// What a run did (and its trace hash, equal for equal seeds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimOutcome {
    /// Sidechain height reached (the quiet tail included).
    pub height: u64,
    /// The anchor's BTC height at the end, and Bitcoin's tip.
    pub anchor: u32,
    /// Bitcoin's tip at the end.
    pub btc_tip: u32,
    /// Outputs minted (deposits, plain outputs, re-pegs, claims).
    pub mints: u64,
    /// Burns paid on Bitcoin and settled.
    pub burns_paid: u64,
    /// Burns made.
    pub burns: u64,
    /// Burns still waiting on the rolling limit at the end (not a failure).
    pub burns_waiting_on_limit: u64,
    /// Junk proposals the validators refused, by kind: a mint Bitcoin does not show, a move without its
    /// required mints, an early mint naming a forked BTC block, a settlement of an unconfirmed batch.
    pub junk_refused: [u64; 4],
    /// Honest proposals refused by a validator whose bitcoind lagged the proposer's.
    pub lag_refusals: u64,
    /// Halts (f+1 reports) and resumes (2f+1 votes).
    pub halts: u64,
    /// Resumes.
    pub resumes: u64,
    /// Federation changes that took effect.
    pub epochs: u64,
    /// Sweeps of earlier epochs' coins settled on Bitcoin.
    pub sweeps_settled: u64,
    /// Refreshes (coins nearing the emergency delay) settled on Bitcoin.
    pub refreshes_settled: u64,
    /// Heights of the quiet tail.
    pub tail_heights: u64,
    /// Hash of every committed state root in order.
    pub trace_hash: Hash32,
}

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

/// The snapshot cache's key: (anchor height, registry version, view tip's hash, claims, batch versions).
type SnapKey = (u32, u64, Option<bitcoin::BlockHash>, usize, usize);

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
    /// Snapshots by what they were built from (validators with the same view share one).
    snap_cache: std::cell::RefCell<BTreeMap<SnapKey, std::rc::Rc<BtcSnapshot>>>,
    /// Signature shares made so far, by (batch, version txid, signer position).
    #[allow(clippy::type_complexity)]
    share_cache: std::cell::RefCell<BTreeMap<(u64, Hash32, usize), Option<Tx>>>,
    /// Deposit scripts of the users and the fee pool in each epoch's wallet (an EC tweak each: computed once).
    scripts: BTreeMap<(u32, AccountId), ScriptBuf>,
    /// Consensus keys of the test identities, to map a validator list to identities.
    identities: Vec<primitives::PublicKey>,
    /// Identities (test key indices) of the validators in force for the next height, by position.
    members: Vec<u32>,
    /// How many blocks each identity's bitcoind lags Bitcoin's tip.
    lag: Vec<u32>,
    /// Federation changes offered to proposers (any node relays them).
    pool: Vec<Tx>,
    /// The episode's progress.
    episode: episodes::EpisodeState,
    /// In the quiet tail: no user acts, Bitcoin mines every height, no reorg, no lag.
    quiet: bool,
    /// (batch, txid) pairs already handed to Bitcoin.
    submitted: HashSet<(u64, Hash32)>,
    /// Batch ids by the txid of each of their versions.
    versions: BTreeMap<Hash32, u64>,
    /// Heights since the anchor last moved or early peg items last went in, while a quorum of bitcoinds
    /// was ready for a move.
    waiting: u64,
    /// Heights since the anchor last moved while a quorum of bitcoinds was ready for a move.
    since_move: u64,
    /// Whether the last block carried early peg items (of the BTC block right above its anchor).
    early_in_last: bool,
    outcome: SimOutcome,
    trace: Vec<u8>,
}

/// Runs one seed.
pub fn run(cfg: SimConfig) -> Result<SimOutcome, SimFailure> {
    let mut w = World::new(cfg);
    for _ in 0..cfg.heights {
        w.step()?;
    }
    if cfg.tail {
        w.quiet_tail()?;
    }
    w.outcome.height = w.height;
    w.outcome.anchor = w.anchor().height.get();
    w.outcome.btc_tip = w.btc.tip();
    w.outcome.trace_hash = Hash32(bitcoin::hashes::sha256::Hash::hash(&w.trace).to_byte_array());
    Ok(w.outcome)
}

/// The emergency keys of the simulated wallets (delay 30 BTC blocks, so refreshes happen within a run).
fn emergency_keys() -> ledger::EmergencyKeys {
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let keys = (0..3u8)
        .map(|i| {
            let sk = bitcoin::secp256k1::SecretKey::from_slice(&[0x51 + i; 32]).expect("a valid scalar");
            bitcoin::PublicKey::new(sk.public_key(&secp))
        })
        .collect();
    ledger::EmergencyKeys { threshold: 2, keys, delay: 30 }
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
        // Refreshes 20 blocks after a coin confirms; old epochs' deposits watched for 8 heights, then claims.
        g.params.refresh_margin = 10;
        g.params.deposit_window = 8;
        g.params.federation_change_min_lead = 3;
        // The circuit breaker bites within a run: 0.008 BTC per 12 BTC blocks (burns are up to 0.002 BTC).
        g.params.pegout_limit = Amount::from_sat(800_000);
        g.params.pegout_limit_window = 12;
        g.emergency = Some(emergency_keys());
        let chain = Chain::new(g).expect("simulation genesis is valid");
        let mut store = MemStore::new();
        store.apply(&chain.genesis_state(&store).expect("in memory"));
        let fs = ledger::federation_state(&chain, &store.snapshot(0)).expect("genesis federation");
        let registry = Registry::new(&chain, &fs, primitives::Height(1), &[]);
        let mut w = World {
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
            share_cache: Default::default(),
            secp: bitcoin::secp256k1::Secp256k1::new(),
            scripts: BTreeMap::new(),
            identities: (0..IDENTITIES).map(|i| testkit::validator_key(i).public()).collect(),
            members: (0..VALIDATORS).collect(),
            lag: vec![0; IDENTITIES as usize],
            pool: Vec::new(),
            episode: episodes::EpisodeState::default(),
            quiet: false,
            submitted: HashSet::new(),
            versions: BTreeMap::new(),
            waiting: 0,
            since_move: 0,
            early_in_last: false,
            outcome: SimOutcome::default(),
            trace: Vec::new(),
        };
        w.learn_epoch_scripts();
        w.episode = episodes::EpisodeState::plan(&mut w.rng, cfg.episode);
        w
    }

    fn state_err(&self, source: ledger::StateError) -> SimFailure {
        SimFailure::State { seed: self.cfg.seed, source }
    }

    fn anchor(&self) -> BtcAnchor {
        self.store.snapshot(self.height).chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default()
    }

    /// The wallet of epoch `epoch` (every epoch's is in the registry).
    fn wallet(&self, epoch: u32) -> &peg::Federation {
        self.registry.wallets.iter().find(|(e, _)| *e == epoch).map(|(_, w)| w).expect("every epoch's wallet is kept")
    }

    /// Deposit scripts of every account the simulation uses, in every epoch's wallet not seen yet.
    fn learn_epoch_scripts(&mut self) {
        let accounts: Vec<AccountId> =
            (0..USERS).map(|u| user_key(u).public().account_id()).chain([ledger::fee_pool_id()]).collect();
        for (epoch, wallet) in &self.registry.wallets {
            if self.scripts.contains_key(&(*epoch, accounts[0])) {
                continue;
            }
            for a in &accounts {
                let d = crate::pegin::deposit_descriptor(&self.chain, wallet, a).expect("script");
                self.scripts.insert((*epoch, *a), d.script_pubkey());
            }
        }
    }

    /// One sidechain height: users act, Bitcoin maybe mines (or reorgs), the episode goes on, the
    /// federation commits a block, signed batches go to Bitcoin, and every property is checked.
    fn step(&mut self) -> Result<(), SimFailure> {
        if !self.quiet {
            for _ in 0..self.rng.gen_range(0..4) {
                self.user_acts();
            }
        }
        self.bitcoin_moves();
        self.episode_acts();
        self.commit_next()?;
        self.hand_signed_batches_to_bitcoin()?;
        self.check_invariants()
    }

    // ---- hostile users --------------------------------------------------------------------------------

    fn deposit_script(&self, epoch: u32, who: &AccountId) -> ScriptBuf {
        self.scripts.get(&(epoch, *who)).cloned().expect("scripts of every epoch are learnt when it appears")
    }

    /// A script a hostile user might name: anyone's deposit address (their own, the fee pool's) or the
    /// plain federation script of any epoch so far, or an ordinary address; with its owner if it is a
    /// deposit script.
    fn any_script(&mut self, me: u32) -> (ScriptBuf, Option<Option<AccountId>>) {
        let user = user_key(self.rng.gen_range(0..USERS)).public().account_id();
        let epochs = self.registry.wallets.len();
        // The epoch in force most of the time, an older one otherwise.
        let epoch = if self.rng.gen_bool(0.6) { epochs - 1 } else { self.rng.gen_range(0..epochs) } as u32;
        match self.rng.gen_range(0..6) {
            0 => {
                let own = user_key(me).public().account_id();
                (self.deposit_script(epoch, &own), Some(Some(own)))
            }
            1 => (self.deposit_script(epoch, &user), Some(Some(user))),
            2 => (self.deposit_script(epoch, &ledger::fee_pool_id()), Some(Some(ledger::fee_pool_id()))),
            3 => (self.wallet(epoch).script_pubkey(), Some(None)),
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

    /// Pays `out` on Bitcoin (a coinbase mined at once now and then), remembering it for claims.
    fn pay(&mut self, out: TxOut, owner: Option<Option<AccountId>>, coinbase: bool) {
        let txid = if coinbase {
            self.btc.mine(vec![out], || true);
            self.btc.blocks.last().expect("mined").txids[0]
        } else {
            self.btc.pay(vec![out])
        };
        if let Some(owner) = owner {
            self.paid.push((bitcoin::OutPoint { txid, vout: 0 }, owner));
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
                let coinbase = self.rng.gen_bool(0.15);
                self.pay(TxOut { value: amount, script_pubkey: script }, owner, coinbase);
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

    /// One transaction paying more outputs to one federation script of the epoch in force (the user's own
    /// deposit address, or the plain one) than a block holds: dust (recorded, below the minimum) or real
    /// deposits.
    fn flood(&mut self, me: u32) {
        let own = user_key(me).public().account_id();
        let epoch = self.registry.wallets.last().expect("genesis wallet").0;
        let (script, owner) = if self.rng.gen_bool(0.5) {
            (self.deposit_script(epoch, &own), Some(own))
        } else {
            (self.wallet(epoch).script_pubkey(), None)
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
        if self.quiet {
            self.btc.mine(Vec::new(), || true);
            self.lag.iter_mut().for_each(|l| *l = 0);
            return;
        }
        // A reorg only of blocks the sidechain has not anchored, nor named in early peg items (deeper ones
        // are the halt episode's).
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
        if self.cfg.lagging {
            self.lags_move();
        }
    }
}
