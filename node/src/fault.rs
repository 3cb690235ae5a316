//! Test-only fault hooks for the e2e fault scenarios: crash points (the process dies at an exact step,
//! as a kill -9 would, to test that a restart from disk never signs differently), and a partition switch
//! that acts on the running node from outside it.
//!
//! Why a partition file: a partition test needs to cut and heal links of live processes at chosen instants, with
//! the daemon's real transport in between. The harness writes the peer ids a node must drop into the file
//! named by `[fault] partition_file` (honoured only with `SIDECHAIND_ALLOW_FAULTS=1`), and removes it to
//! heal; the node polls it and hands the set to the transport ([`net::NetHandle::set_isolated`]). Nothing
//! here runs unless that switch is on.

use net::{NetHandle, PeerId};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{info, warn};

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
}

/// Dies like a kill -9 (no destructors, no flush beyond what was already fsynced) if `point` at `height`
/// is the configured crash point.
pub fn maybe_crash(configured: Option<CrashPoint>, from_height: u64, point: CrashPoint, height: u64) {
    if configured != Some(point) || height < from_height {
        return;
    }
    tracing::error!(?point, height, "FAULT: crash point reached, aborting");
    if point == CrashPoint::PrecommitSent {
        // Let the publish task put the vote on the wire first.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            std::process::abort()
        });
    } else {
        std::process::abort()
    }
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
    fn a_missing_file_is_no_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_partition(&dir.path().join("none")).is_empty());
        let p = PeerId::random();
        std::fs::write(dir.path().join("cut"), p.to_string()).expect("write");
        assert_eq!(read_partition(&dir.path().join("cut")), [p].into_iter().collect());
    }
}
