//! Each validator's own bitcoind: a view of the simulated chain that may lag the tip by a few blocks.
//!
//! Why: on a real federation no two bitcoinds see the same tip at the same moment. A proposal built on one
//! view is judged by validators with another, so the rules must hold across views: a validator that sees
//! at least as much as the proposer accepts its honest block; one that sees less may vote nil (its index
//! cannot tell), and the anchor still moves once 2f+1 views are ready. A view here is the best chain up to
//! `tip - lag` (a lagging node has not heard of the newest blocks yet).

use super::world::World;
use crate::btc_follow::{from_peg, BtcSnapshot};
use rand::Rng;
use std::rc::Rc;

/// Lags a bitcoind may have, drawn with these odds (most are at the tip).
const LAGS: [u32; 8] = [0, 0, 0, 0, 1, 1, 2, 3];

impl World {
    /// Every height, each bitcoind now and then catches up or falls behind.
    pub(super) fn lags_move(&mut self) {
        for l in 0..self.lag.len() {
            if self.rng.gen_bool(0.25) {
                self.lag[l] = LAGS[self.rng.gen_range(0..LAGS.len())];
            }
        }
    }

    /// The best height identity `id`'s bitcoind shows.
    pub(super) fn view_tip(&self, id: u32) -> u32 {
        self.btc.tip().saturating_sub(self.lag[id as usize])
    }

    /// The best height at least 2f+1 (by count, every member has power 1) of the honest validators in force
    /// see: the view a block needs to be judged ready by a quorum when the Byzantine ones vote nil.
    pub(super) fn quorum_tip(&self) -> u32 {
        let mut tips: Vec<u32> =
            self.members.iter().filter(|id| !self.is_byzantine(**id)).map(|id| self.view_tip(*id)).collect();
        tips.sort_unstable_by(|a, b| b.cmp(a));
        let need = self.quorum_size().min(tips.len()).max(1);
        tips[need - 1]
    }

    /// Votes a block needs: more than two thirds of the members (power 1 each).
    pub(super) fn quorum_size(&self) -> usize {
        self.members.len() * 2 / 3 + 1
    }

    /// What the bitcoind whose best chain stops at `tip` shows: the follower's snapshot over the simulated
    /// chain, cached by what it is built from (validators with the same view share one).
    pub(super) fn snapshot_at(&self, tip: u32, anchor: u32) -> Rc<BtcSnapshot> {
        let tip = tip.min(self.btc.tip());
        let hash = self.btc.blocks.get(tip as usize).map(|b| b.hash);
        let key = (anchor, self.registry.version, hash, self.claims.len(), self.versions.len());
        if let Some(snap) = self.snap_cache.borrow().get(&key) {
            return Rc::clone(snap);
        }
        let snap = Rc::new(self.build_snapshot(tip, anchor));
        let mut cache = self.snap_cache.borrow_mut();
        if cache.len() > 16 {
            cache.clear();
        }
        cache.insert(key, Rc::clone(&snap));
        snap
    }

    /// [`World::snapshot_at`] for the bitcoind of identity `id`.
    pub(super) fn snapshot_of(&self, id: u32, anchor: u32) -> Rc<BtcSnapshot> {
        self.snapshot_at(self.view_tip(id), anchor)
    }

    fn build_snapshot(&self, tip: u32, anchor: u32) -> BtcSnapshot {
        let mut snap =
            BtcSnapshot { best: Some(tip), registry_version: self.registry.version, ..BtcSnapshot::default() };
        for (h, b) in self.btc.blocks.iter().enumerate().take(tip as usize + 1) {
            snap.hashes.insert(h as u32, b.hash);
        }
        let top = tip.min(anchor + self.chain.params().max_anchor_step);
        for h in anchor + 1..=top {
            let b = &self.btc.blocks[h as usize];
            let scan = peg::scan_transactions(&b.txs, b.hash, h, &self.registry);
            let txids = b.txids.clone();
            snap.deposits.insert(h, crate::bitcoin::IndexedBlock { hash: b.hash, scan, txids });
        }
        // Where this bitcoind's best chain holds the batch versions the federation signed (the follower asks
        // about those in flight), for late settlements.
        for (h, b) in self.btc.blocks.iter().enumerate().take(tip as usize + 1) {
            for t in &b.txids {
                let txid = *t;
                if self.versions.contains_key(&txid) {
                    snap.batch_confirmations.insert(txid, from_peg((h as u32, b.hash)));
                }
            }
        }
        // Claims this bitcoind confirms: the output is in its best chain and pays the named account's
        // deposit script of some epoch (the one the mint names).
        for (outpoint, recipient) in &self.claims {
            let Some((out, h, coinbase)) = self.btc.created_upto(outpoint, tip) else { continue };
            let Some(epoch) = self
                .registry
                .wallets
                .iter()
                .map(|(e, _)| *e)
                .find(|e| self.scripts.get(&(*e, *recipient)) == Some(&out.script_pubkey))
            else {
                continue;
            };
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
}
