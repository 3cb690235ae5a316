//! The simulation's state, [`World`], and the helpers every concern uses (the anchor, a wallet, a deposit
//! script, who is Byzantine). Why here, below the files that act on it: the driver (`mod.rs`) calls down
//! into each concern, and each concern reads and writes this state, so data flows one way.

use super::btc::SimBitcoin;
use super::config::{SimConfig, SimOutcome, BLOCK_MAX_TXS, IDENTITIES, USERS, VALIDATORS};
use super::episodes;
use super::failure::SimFailure;
use crate::btc_follow::BtcSnapshot;
use crate::pegin::Registry;
use bitcoin::{Amount, ScriptBuf};
use ledger::testkit::{self, user_key};
use ledger::{BtcAnchor, Chain, MemStore, SignedUserTx, StateReader, Tx};
use primitives::AccountId;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashSet};

/// The snapshot cache's key: (anchor height, registry version, view tip's hash, claims, batch versions).
pub(super) type SnapKey = (u32, u64, Option<bitcoin::BlockHash>, usize, usize);

/// (batch, version txid, attempt, signer position): one FROST signing turn.
pub(super) type FrostKey = (u64, bitcoin::Txid, u32, usize);

/// The simulated world: the sidechain's chain and state, Bitcoin, the federation's views of it, the hostile
/// users' doings and the run's record. Each concern's file (views, federation, checks, payouts) adds its
/// methods, calling down only: to this file's helpers and to the files below it.
pub(super) struct World {
    pub(super) cfg: SimConfig,
    pub(super) rng: rand_chacha::ChaCha8Rng,
    pub(super) chain: Chain,
    pub(super) store: MemStore,
    pub(super) height: u64,
    pub(super) btc: SimBitcoin,
    pub(super) registry: Registry,
    pub(super) mempool: Vec<SignedUserTx>,
    /// Every output users paid toward the federation (for claims): outpoint, script owner (None: plain).
    pub(super) paid: Vec<(bitcoin::OutPoint, Option<AccountId>)>,
    /// Claims users made: (outpoint, recipient named).
    pub(super) claims: std::collections::BTreeSet<(bitcoin::OutPoint, AccountId)>,
    /// One signing context for the run (creating one is costly).
    pub(super) secp: bitcoin::secp256k1::Secp256k1<bitcoin::secp256k1::All>,
    /// Snapshots by what they were built from (validators with the same view share one).
    pub(super) snap_cache: std::cell::RefCell<BTreeMap<SnapKey, std::rc::Rc<BtcSnapshot>>>,
    /// Signature shares made so far, by (batch, version txid, signer position).
    #[allow(clippy::type_complexity)]
    pub(super) share_cache: std::cell::RefCell<BTreeMap<(u64, bitcoin::Txid, usize), Option<Tx>>>,
    /// Taproot custody: each genesis validator's FROST key share (empty for the wsh wallet).
    pub(super) frost_shares: Vec<peg::frost::KeyShare>,
    /// FROST commitments made, by (batch, version, attempt, signer position).
    pub(super) frost_commits: std::cell::RefCell<BTreeMap<FrostKey, Tx>>,
    /// The nonces behind them, until their share is made.
    pub(super) frost_nonces: std::cell::RefCell<BTreeMap<FrostKey, Vec<peg::frost::SigningNonces>>>,
    /// FROST shares made.
    pub(super) frost_share_cache: std::cell::RefCell<BTreeMap<FrostKey, Tx>>,
    /// Deposit scripts of the users and the fee pool in each epoch's wallet (an EC tweak each: computed once).
    pub(super) scripts: BTreeMap<(u32, AccountId), ScriptBuf>,
    /// Consensus keys of the test identities, to map a validator list to identities.
    pub(super) identities: Vec<primitives::PublicKey>,
    /// Identities (test key indices) of the validators in force for the next height, by position.
    pub(super) members: Vec<u32>,
    /// How many blocks each identity's bitcoind lags Bitcoin's tip.
    pub(super) lag: Vec<u32>,
    /// Federation changes offered to proposers (any node relays them).
    pub(super) pool: Vec<Tx>,
    /// The episode's progress.
    pub(super) episode: episodes::EpisodeState,
    /// In the quiet tail: no user acts, Bitcoin mines every height, no reorg, no lag.
    pub(super) quiet: bool,
    /// (batch, txid) pairs already handed to Bitcoin.
    pub(super) submitted: HashSet<(u64, bitcoin::Txid)>,
    /// Batch ids by the txid of each of their versions.
    pub(super) versions: BTreeMap<bitcoin::Txid, u64>,
    /// Heights since the anchor last moved or early peg items last went in, while a quorum of bitcoinds
    /// was ready for a move.
    pub(super) waiting: u64,
    /// Heights since the anchor last moved while a quorum of bitcoinds was ready for a move.
    pub(super) since_move: u64,
    /// Whether the last block carried early peg items (of the BTC block right above its anchor).
    pub(super) early_in_last: bool,
    pub(super) outcome: SimOutcome,
    pub(super) trace: Vec<u8>,
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
    pub(super) fn new(cfg: SimConfig) -> Self {
        let balance = Amount::from_sat(5_000_000);
        let (mut g, frost_shares) = match cfg.taproot {
            true => testkit::taproot_genesis(VALIDATORS, USERS, balance),
            false => (testkit::genesis(VALIDATORS, USERS, balance), Vec::new()),
        };
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
            frost_shares,
            frost_commits: Default::default(),
            frost_nonces: Default::default(),
            frost_share_cache: Default::default(),
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

    pub(super) fn state_err(&self, source: ledger::StateError) -> SimFailure {
        SimFailure::State { seed: self.cfg.seed, source }
    }

    pub(super) fn anchor(&self) -> BtcAnchor {
        self.store.snapshot(self.height).chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default()
    }

    /// The wallet of epoch `epoch` (every epoch's is in the registry).
    pub(super) fn wallet(&self, epoch: u32) -> &peg::Federation {
        self.registry.wallets.iter().find(|(e, _)| *e == epoch).map(|(_, w)| w).expect("every epoch's wallet is kept")
    }

    /// Deposit scripts of every account the simulation uses, in every epoch's wallet not seen yet.
    pub(super) fn learn_epoch_scripts(&mut self) {
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

    pub(super) fn deposit_script(&self, epoch: u32, who: &AccountId) -> ScriptBuf {
        self.scripts.get(&(epoch, *who)).cloned().expect("scripts of every epoch are learnt when it appears")
    }

    pub(super) fn is_byzantine(&self, id: u32) -> bool {
        id < self.cfg.byzantine
    }

    /// The test identity whose consensus key is `key`.
    pub(super) fn identity(&self, key: &primitives::PublicKey) -> u32 {
        self.identities.iter().position(|k| k == key).expect("every validator is a test identity") as u32
    }
}
