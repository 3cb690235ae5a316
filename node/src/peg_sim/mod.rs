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
mod config;
mod episodes;
mod failure;
mod federation;
mod payout;
mod views;
mod world;

pub use config::{
    Episode, SimConfig, SimOutcome, BLOCK_MAX_TXS, EARLY_ITEMS_BOUND, HALT_BOUND, LIVENESS_BOUND, TAIL_BOUND,
};
pub use failure::{SimFailure, StuckReason};

use crate::btc_follow::from_peg;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, TxOut};
use config::{FLOOD_OUTPUTS, USERS};
use ledger::testkit::{self, user_key};
use ledger::{StateReader, UserTx, UserTxKind};
use primitives::{AccountId, Hash32, Height, ValidatorIndex};
use rand::{Rng, SeedableRng};
use world::World;

/// What the quiet tail's honest deposit adds on top of the unpaid burns.
const MARGIN: Amount = Amount::from_sat(1_000_000);

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

/// The driver: each height's acts (users, Bitcoin, the episode), the federation's block, the checks; then
/// the quiet tail.
impl World {
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

    // ---- the episode ------------------------------------------------------------------------------------

    /// Before each block: the episode's next move.
    fn episode_acts(&mut self) {
        let state = self.store.snapshot(self.height);
        let halt = ledger::peg_halt(&state).unwrap_or_default();
        let anchor = self.anchor();
        // The deep reorg: from below the anchor to the tip, then one block more on the new branch.
        let due = self.episode.deep_reorg_from.is_some_and(|h| self.height >= h) && self.episode.reorged_at.is_none();
        if due && !self.quiet && anchor.height.get() > 0 {
            let depth = self.btc.tip() - anchor.height.get() + 1 + self.rng.gen_range(0..=1);
            self.btc.replace_top(depth);
            self.btc.mine(Vec::new(), || true);
            self.episode.reorged_at = Some(self.height);
        }
        // Halted: the operators agree to resume from the new branch's block at the old anchor's height (or
        // `resume_above` blocks higher, as deep as Bitcoin allows).
        if halt.is_halted() && self.episode.resume_request.is_none() {
            let h = (anchor.height.get() + self.cfg.resume_above)
                .min(self.btc.tip().saturating_sub(1))
                .max(anchor.height.get());
            self.episode.resume_request = Some(from_peg((h, self.btc.blocks[h as usize].hash)));
        }
        // A federation change whose height has come: 2f+1 honest members of the set in force approve it.
        if !self.quiet && self.episode.changes.first().is_some_and(|c| self.height >= c.at) {
            let c = self.episode.changes.remove(0);
            let Ok(fs) = ledger::federation_state(&self.chain, &state) else { return };
            let in_force = fs.in_force();
            let lead = self.chain.params().federation_change_min_lead;
            let proposal = ledger::FederationProposal {
                validators: c.members.iter().map(|i| sim_validator(*i)).collect(),
                peg_threshold: c.threshold,
                activation_height: Height(self.height + 1 + lead + 2),
            };
            let approvals = self
                .members
                .iter()
                .enumerate()
                .filter(|(_, id)| !self.is_byzantine(**id))
                .map(|(pos, id)| {
                    let key = testkit::validator_key(*id);
                    proposal.approve(ValidatorIndex(pos as u16), in_force.epoch, &key, self.chain.genesis_hash())
                })
                .collect();
            self.pool.push(ledger::Tx::Reconfigure(ledger::ReconfigureTx { proposal, approvals }));
        }
    }

    // ---- the quiet tail ---------------------------------------------------------------------------------

    /// The quiet tail and the peg-out liveness check.
    fn quiet_tail(&mut self) -> Result<(), SimFailure> {
        self.quiet = true;
        let mut funded = false;
        for _ in 0..TAIL_BOUND {
            if !funded {
                funded = self.fund_the_wallet()?;
            }
            self.step()?;
            self.outcome.tail_heights += 1;
            if funded && self.unpaid()?.0.is_empty() {
                break;
            }
        }
        let (unpaid, on_limit, burns) = self.unpaid()?;
        self.outcome.burns = burns;
        self.outcome.burns_waiting_on_limit = on_limit;
        if let Some(b) = unpaid.first() {
            let why = self.why_waiting(b)?;
            return Err(SimFailure::BurnStuck {
                seed: self.cfg.seed,
                height: self.height,
                burn: b.id,
                amount: b.amount,
                why,
            });
        }
        self.check_paid_once()
    }

    /// Pays the unpaid burns plus a margin to a registered user's deposit address in the wallet in force
    /// (registering user 0 first if nobody is); `true` once paid.
    fn fund_the_wallet(&mut self) -> Result<bool, SimFailure> {
        let state = self.store.snapshot(self.height);
        let next = Height(self.height + 1);
        let users: Vec<_> = (0..USERS).map(|u| user_key(u).public().account_id()).collect();
        let mut live = None;
        for u in &users {
            if ledger::pegin::registration_is_live(&state, u, next).map_err(|e| self.state_err(e))? {
                live = Some(*u);
                break;
            }
        }
        let Some(who) = live else {
            if !self.mempool.iter().any(|t| t.tx.kind == UserTxKind::RegisterDeposit) {
                self.user_tx(0, self.chain.params().registration_fee, UserTxKind::RegisterDeposit);
            }
            return Ok(false);
        };
        let (unpaid, _, _) = self.unpaid()?;
        let owed: Amount = unpaid.iter().map(|b| b.amount).sum();
        let epoch = ledger::federation_state(&self.chain, &state).map_err(|e| self.state_err(e))?.in_force().epoch;
        let script = self.deposit_script(epoch, &who);
        self.pay(TxOut { value: owed + MARGIN, script_pubkey: script }, Some(Some(who)), false);
        Ok(true)
    }
}

/// Test identity `i` as a validator (its consensus and peg keys).
fn sim_validator(i: u32) -> ledger::GenesisValidator {
    ledger::GenesisValidator {
        consensus_key: testkit::validator_key(i).public(),
        peg_key: testkit::validator_peg_key(i),
        p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", 26656 + i),
        power: 1,
    }
}
