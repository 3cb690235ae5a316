//! Test-only fault hooks for the e2e fault scenarios: crash points (the process dies at an exact step,
//! as a kill -9 would, to test that a restart from disk never signs differently), a partition switch
//! that acts on the running node from outside it, and a Byzantine proposal flood ([`junk_proposals`]).
//!
//! Why a partition file: a partition test needs to cut and heal links of live processes at chosen instants, with
//! the daemon's real transport in between. The harness writes the peer ids a node must drop into the file
//! named by `[fault] partition_file` (honoured only with `SIDECHAIND_ALLOW_FAULTS=1`), and removes it to
//! heal; the node polls it and hands the set to the transport ([`net::NetHandle::set_isolated`]). Nothing
//! here runs unless that switch is on.

use crate::chain::FullBlock;

use consensus::{Proposal, SignedProposal, ValidatorSet};
use net::{NetHandle, PeerId};
use primitives::{GenesisHash, Height, Keypair, Round, ValidatorIndex};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{info, warn};

/// Whether this build has the fault switches (the `faults` cargo feature: the workspace's tests and test
/// networks turn it on; `cargo build -p sidechain-node` and `cargo install` do not). Without it every switch
/// is inert and the daemon refuses a config that asks for one; the code behind the switches is dead and
/// the optimizer drops it.
pub const ENABLED: bool = cfg!(feature = "faults");

/// Where a validator with `[fault] crash_point` kills itself (at the first such step at or above
/// `crash_height`). Each is a step whose interruption a restart must survive without double-signing or
/// losing a committed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoint {
    /// Our precommit is signed and fsynced in the WAL, and has not been sent.
    PrecommitPersisted,
    /// Our precommit has been handed to the network (the process dies 50 ms later, so it goes out).
    PrecommitSent,
    /// A block is decided; the one atomic write of block, certificate and state has not started.
    BeforeCommitWrite,
    /// That write is done; nothing after it (mempool, status, the next height) has run.
    AfterCommitWrite,
    /// A peg-out batch version this validator is about to sign is recorded (synced) as signed; the share
    /// itself has not been made or sent. On restart the record must keep it from signing a version that
    /// would not conflict with this one.
    BatchSignatureRecorded,
    /// This validator's FROST commitments (taproot key path) have been handed to the network, their nonces
    /// persisted (the process dies 50 ms later, so they go out). On restart the nonces are destroyed and the
    /// validator never shares for that attempt.
    FrostCommitmentSent,
}

/// Dies like a kill -9 (no destructors, no flush beyond what was already fsynced) if `point` at `height`
/// is the configured crash point.
pub fn maybe_crash(configured: Option<CrashPoint>, from_height: u64, point: CrashPoint, height: u64) {
    if !ENABLED || configured != Some(point) || height < from_height {
        return;
    }
    tracing::error!(?point, height, "FAULT: crash point reached, aborting");
    if matches!(point, CrashPoint::PrecommitSent | CrashPoint::FrostCommitmentSent) {
        // Let the publish task put the vote on the wire first.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            std::process::abort()
        });
    } else {
        std::process::abort()
    }
}

/// Test-only Byzantine flood (`[fault] flood_proposals`): `count` proposals signed by `me` of junk blocks
/// (`template` with its height and time changed, so each is a distinct, well-formed but invalid block) for
/// the `(height, round)` slots `me` is the proposer of at `heights`, three per slot (one more than a node
/// keeps), rounds in order. `salt` makes each call's blocks new content, so gossip does not drop them as
/// already seen.
#[allow(clippy::too_many_arguments)]
pub fn junk_proposals(
    template: &FullBlock,
    key: &Keypair,
    genesis: &GenesisHash,
    me: ValidatorIndex,
    set: &ValidatorSet,
    heights: &[Height],
    salt: u64,
    count: usize,
) -> Vec<(SignedProposal, FullBlock)> {
    let mut out = Vec::new();
    let per_height = count.div_ceil(heights.len().max(1));
    for &height in heights {
        let mut made = 0;
        // A validator of n is the proposer of about one round in n: this many rounds hold enough slots.
        for round in (0..=u32::MAX).take(per_height * set.len().max(1)).map(Round) {
            if set.proposer(height, round) != me {
                continue;
            }
            for copy in 0..3u64 {
                if made == per_height || out.len() == count {
                    break;
                }
                let mut fb = template.clone();
                fb.block.header.height = height;
                fb.block.header.time_ms = salt.wrapping_mul(1_000_003).wrapping_add(u64::from(round.get()) * 3 + copy);
                let value = fb.hash();
                let proposal = Proposal { height, round, value, pol_round: None, proposer: me }.sign(key, genesis);
                out.push((proposal, fb));
                made += 1;
            }
        }
    }
    out
}

/// How often the partition file is read.
pub const PARTITION_POLL: Duration = Duration::from_millis(100);

/// The peer ids listed in `text` (separated by whitespace or commas; `#` starts a comment). Entries that
/// are not peer ids are returned apart, to be logged.
pub fn parse_partition(text: &str) -> (HashSet<PeerId>, Vec<String>) {
    let mut peers = HashSet::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for word in line.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
            match word.parse() {
                Ok(p) => {
                    peers.insert(p);
                }
                Err(_) => bad.push(word.to_string()),
            }
        }
    }
    (peers, bad)
}

/// The set the file asks for now: empty when it does not exist (healed).
fn read_partition(path: &Path) -> HashSet<PeerId> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (peers, bad) = parse_partition(&text);
            if !bad.is_empty() {
                warn!(path = %path.display(), ?bad, "partition file: entries that are not peer ids ignored");
            }
            peers
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "partition file unreadable: treated as empty");
            HashSet::new()
        }
    }
}

/// Spawns the task that follows `path` and tells the transport whenever the set changes; it ends when
/// the transport stops.
pub fn follow_partition_file(path: PathBuf, net: NetHandle) {
    if !ENABLED {
        return;
    }
    tokio::spawn(async move {
        let mut current = HashSet::new();
        let mut tick = tokio::time::interval(PARTITION_POLL);
        loop {
            tick.tick().await;
            let wanted = read_partition(&path);
            if wanted == current {
                continue;
            }
            info!(path = %path.display(), isolated = wanted.len(), "FAULT: partition file changed");
            if net.set_isolated(wanted.clone()).is_err() {
                return;
            }
            current = wanted;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{BlockId, Hash32, StateRoot};

    #[test]
    fn partition_file_lists_peer_ids_and_reports_the_rest() {
        let a = PeerId::random();
        let b = PeerId::random();
        let (peers, bad) = parse_partition(&format!("# cut from\n{a}\n{b}, nonsense # trailing\n\n"));
        assert_eq!(peers, [a, b].into_iter().collect());
        assert_eq!(bad, vec!["nonsense".to_string()]);
        assert!(parse_partition("").0.is_empty());
    }

    #[test]
    fn junk_proposals_are_signed_for_the_floods_own_slots_and_are_all_distinct() {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_secret([i; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| (k.public(), 1)).collect()).expect("set");
        let me = ValidatorIndex(3);
        let genesis = GenesisHash(Hash32([5; 32]));
        let header = ledger::BlockHeader {
            genesis_hash: genesis,
            height: Height(1),
            prev_hash: BlockId(Hash32([0; 32])),
            time_ms: 0,
            proposer: me,
            btc_anchor: ledger::BtcAnchor::default(),
            tx_root: Hash32([0; 32]),
            state_root: StateRoot(Hash32([0; 32])),
            last_commit_hash: Hash32([0; 32]),
        };
        let template = FullBlock { block: ledger::Block { header, txs: Vec::new() }, last_commit: None };
        let junk = junk_proposals(&template, &keys[3], &genesis, me, &set, &[Height(7), Height(8)], 1, 64);
        assert_eq!(junk.len(), 64);
        let mut values = HashSet::new();
        for (p, fb) in &junk {
            assert_eq!(p.proposal.proposer, me);
            assert_eq!(set.proposer(p.proposal.height, p.proposal.round), me);
            assert!(p.verify(&set, &genesis).is_ok());
            assert_eq!((fb.hash(), fb.height()), (p.proposal.value, p.proposal.height));
            assert!(values.insert(fb.hash()));
        }
        let again = junk_proposals(&template, &keys[3], &genesis, me, &set, &[Height(7)], 2, 4);
        assert!(again.iter().all(|(_, fb)| !values.contains(&fb.hash())), "another salt, other blocks");
    }

    #[test]
    fn a_missing_file_is_no_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_partition(&dir.path().join("none")).is_empty());
        let p = PeerId::random();
        std::fs::write(dir.path().join("cut"), p.to_string()).expect("write");
        assert_eq!(read_partition(&dir.path().join("cut")), [p].into_iter().collect());
    }
}

/// The vote faults of `[fault]` (`equivocate`, `precommit_nil`), applied to each vote this validator sends.
#[derive(Clone, Default)]
pub struct VoteFaults {
    /// With every prevote for a block, also send a nil prevote for the same round.
    pub equivocate: bool,
    /// Send a nil precommit in place of each of ours.
    pub precommit_nil: bool,
    /// Signs the altered votes (only when a fault is on).
    pub key: Option<(Keypair, GenesisHash)>,
}

impl VoteFaults {
    /// The vote to send in place of `vote`, and a second one to send before it (equivocation).
    pub fn apply(&self, vote: consensus::SignedVote) -> (consensus::SignedVote, Option<consensus::SignedVote>) {
        let Some((key, genesis)) = &self.key else { return (vote, None) };
        let v = vote.vote;
        if self.precommit_nil && v.kind == consensus::VoteKind::Precommit {
            return (consensus::Vote { value: None, ..v }.sign(key, genesis), None);
        }
        if self.equivocate && v.kind == consensus::VoteKind::Prevote && v.value.is_some() {
            let twin = consensus::Vote { value: None, ..v }.sign(key, genesis);
            return (vote, Some(twin));
        }
        (vote, None)
    }
}

/// Where this node crashes on purpose (`[fault] crash_point` from `crash_height`), for the components that
/// hold a crash point of their own.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrashConfig {
    /// The configured point, if any.
    pub point: Option<CrashPoint>,
    /// Lowest height at which it fires.
    pub from_height: u64,
}

impl CrashConfig {
    /// Dies here if `point` at `height` is the configured one (see [`maybe_crash`]).
    pub fn at(&self, point: CrashPoint, height: Height) {
        maybe_crash(self.point, self.from_height, point, height.get());
    }
}
