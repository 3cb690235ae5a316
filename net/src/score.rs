//! Node-level peer scores and bans, kept apart from libp2p so the rules are plain data and testable.
//!
//! Invariant: a peer is banned exactly when its score has reached `-ban_threshold`, and stays banned until
//! `ban_duration` has passed; bans are lifted only by [`Scoreboard::tick`], which also lets scores of
//! well-behaved peers recover toward 0. The driver mirrors bans into libp2p's block list.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

use crate::config::ScoreConfig;

/// What a penalty did to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// The peer keeps its connections; this is its new score.
    Scored(i64),
    /// The penalty crossed the threshold: disconnect and refuse the peer.
    Banned(i64),
    /// The peer was already banned; nothing changes.
    AlreadyBanned,
}

/// Scores of every peer that misbehaved recently, and current bans.
#[derive(Debug)]
pub struct Scoreboard {
    cfg: ScoreConfig,
    scores: HashMap<PeerId, i64>,
    bans: HashMap<PeerId, Instant>,
}

impl Scoreboard {
    /// An empty scoreboard.
    pub fn new(cfg: ScoreConfig) -> Self {
        Self { cfg, scores: HashMap::new(), bans: HashMap::new() }
    }

    /// The current score of `peer` (0 when it never misbehaved).
    pub fn score(&self, peer: &PeerId) -> i64 {
        self.scores.get(peer).copied().unwrap_or(0)
    }

    /// Whether `peer` is currently banned.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    /// Subtracts `points` from `peer`'s score, banning it until `now + ban_duration` at the threshold.
    pub fn penalize(&mut self, peer: PeerId, points: u32, now: Instant) -> Penalty {
        if self.is_banned(&peer) {
            return Penalty::AlreadyBanned;
        }
        let score = self.scores.entry(peer).or_insert(0);
        *score = score.saturating_sub(i64::from(points));
        let score = *score;
        if score <= -i64::from(self.cfg.ban_threshold) {
            self.bans.insert(peer, now + self.cfg.ban_duration);
            Penalty::Banned(score)
        } else {
            Penalty::Scored(score)
        }
    }

    /// Recovers scores by `recovery_per_sec * elapsed` and returns the peers whose ban expired at `now`
    /// (their score restarts at 0).
    pub fn tick(&mut self, elapsed: Duration, now: Instant) -> Vec<PeerId> {
        let recovered = i64::from(self.cfg.recovery_per_sec).saturating_mul(elapsed.as_secs() as i64);
        if recovered > 0 {
            let bans = &self.bans;
            for (peer, score) in self.scores.iter_mut() {
                if !bans.contains_key(peer) {
                    *score = (*score + recovered).min(0);
                }
            }
        }
        let expired: Vec<PeerId> = self.bans.iter().filter(|(_, until)| **until <= now).map(|(p, _)| *p).collect();
        for peer in &expired {
            self.bans.remove(peer);
            self.scores.remove(peer);
        }
        self.scores.retain(|peer, score| *score < 0 || self.bans.contains_key(peer));
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ScoreConfig {
        ScoreConfig {
            ban_threshold: 50,
            ban_duration: Duration::from_secs(10),
            recovery_per_sec: 2,
            ..Default::default()
        }
    }

    #[test]
    fn penalties_accumulate_until_ban() {
        let mut s = Scoreboard::new(cfg());
        let p = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(s.penalize(p, 20, t0), Penalty::Scored(-20));
        assert_eq!(s.penalize(p, 20, t0), Penalty::Scored(-40));
        assert_eq!(s.penalize(p, 20, t0), Penalty::Banned(-60));
        assert!(s.is_banned(&p));
        assert_eq!(s.penalize(p, 20, t0), Penalty::AlreadyBanned);
        assert_eq!(s.score(&PeerId::random()), 0);
    }

    #[test]
    fn scores_recover_and_bans_expire() {
        let mut s = Scoreboard::new(cfg());
        let (good, bad) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        s.penalize(good, 10, t0);
        s.penalize(bad, 60, t0);
        assert!(s.tick(Duration::from_secs(3), t0 + Duration::from_secs(3)).is_empty());
        assert_eq!(s.score(&good), -4);
        assert_eq!(s.score(&bad), -60, "a banned peer does not recover");
        assert_eq!(s.tick(Duration::from_secs(7), t0 + Duration::from_secs(10)), vec![bad]);
        assert!(!s.is_banned(&bad));
        assert_eq!(s.score(&bad), 0);
        assert_eq!(s.score(&good), 0, "recovery stops at 0");
    }
}
