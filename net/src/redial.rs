//! Keeps bootstrap peers connected: which bootstrap address to dial when, with exponential backoff.
//!
//! Invariant: each bootstrap address is in exactly one state (waiting until an instant, dialing with one
//! connection id, or connected to a known peer), so there is at most one dial in flight per address, and a
//! disconnect of a bootstrap peer always leads back to dialing it (a restarted or partitioned peer comes
//! back). Pure bookkeeping: the driver does the dialing.

use std::time::{Duration, Instant};

use libp2p::{multiaddr::Protocol, swarm::ConnectionId, Multiaddr, PeerId};

use crate::config::Backoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Dial when `at` has passed; `backoff` is the delay to use if that dial fails.
    Waiting {
        at: Instant,
        backoff: Duration,
    },
    Dialing {
        conn: ConnectionId,
        backoff: Duration,
    },
    /// Connected since `since`; `backoff` carries over if the connection turns out short-lived.
    Connected {
        since: Instant,
        backoff: Duration,
    },
}

/// A connection that lived this long was healthy: the next re-dial starts from the minimum backoff.
const STABLE: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Entry {
    addr: Multiaddr,
    peer: Option<PeerId>,
    state: State,
}

/// The re-dial schedule of all bootstrap addresses.
#[derive(Debug)]
pub struct Redialer {
    backoff: Backoff,
    entries: Vec<Entry>,
}

/// The peer id in a `/p2p/<id>` suffix, if any.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

impl Redialer {
    /// Every address due immediately.
    pub fn new(addrs: &[Multiaddr], backoff: Backoff, now: Instant) -> Self {
        let entries = addrs
            .iter()
            .map(|a| Entry {
                addr: a.clone(),
                peer: peer_of(a),
                state: State::Waiting { at: now, backoff: backoff.min },
            })
            .collect();
        Self { backoff, entries }
    }

    /// Addresses to dial now (index, address, known peer). Entries whose peer is already connected (e.g. it
    /// dialed us) switch to connected instead.
    pub fn due(
        &mut self,
        now: Instant,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Vec<(usize, Multiaddr, Option<PeerId>)> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let State::Waiting { at, .. } = e.state {
                if let (Some(true), State::Waiting { backoff, .. }) = (e.peer.as_ref().map(&connected), e.state) {
                    e.state = State::Connected { since: now, backoff };
                } else if at <= now {
                    out.push((i, e.addr.clone(), e.peer));
                }
            }
        }
        out
    }

    /// The dial for entry `idx` started with connection id `conn`.
    pub fn dialing(&mut self, idx: usize, conn: ConnectionId) {
        if let Some(e) = self.entries.get_mut(idx) {
            if let State::Waiting { backoff, .. } = e.state {
                e.state = State::Dialing { conn, backoff };
            }
        }
    }

    /// The dial for entry `idx` could not even start (or connection `conn` failed): wait and back off.
    pub fn failed(&mut self, idx: usize, now: Instant) {
        let max = self.backoff.max;
        if let Some(e) = self.entries.get_mut(idx) {
            let backoff = match e.state {
                State::Waiting { backoff, .. } | State::Dialing { backoff, .. } => backoff,
                State::Connected { .. } => return,
            };
            e.state = State::Waiting { at: now + backoff, backoff: (backoff * 2).min(max) };
        }
    }

    /// Outgoing connection `conn` failed.
    pub fn dial_failed(&mut self, conn: ConnectionId, now: Instant) {
        if let Some(idx) = self.index_of(conn) {
            self.failed(idx, now);
        }
    }

    /// A connection to `peer` was established (`conn` is its id). Returns whether it was a bootstrap dial.
    pub fn established(&mut self, conn: ConnectionId, peer: PeerId, now: Instant) -> bool {
        match self.index_of(conn) {
            Some(idx) => {
                let e = &mut self.entries[idx];
                e.peer = Some(peer);
                if let State::Dialing { backoff, .. } = e.state {
                    e.state = State::Connected { since: now, backoff };
                }
                true
            }
            None => false,
        }
    }

    /// The last connection to `peer` closed: its bootstrap entries are due again, right away after a
    /// healthy connection, after the (growing) backoff when it was short-lived (e.g. the peer refuses us).
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        let (min, max) = (self.backoff.min, self.backoff.max);
        for e in self.entries.iter_mut().filter(|e| e.peer.as_ref() == Some(peer)) {
            if let State::Connected { since, backoff } = e.state {
                e.state = if now.duration_since(since) >= STABLE {
                    State::Waiting { at: now, backoff: min }
                } else {
                    State::Waiting { at: now + backoff, backoff: (backoff * 2).min(max) }
                };
            }
        }
    }

    /// `peer`'s entries that wait to be re-dialed are due now, with the backoff back at its minimum (the
    /// reason they could not connect is gone, e.g. an isolation was lifted).
    pub fn reset(&mut self, peer: &PeerId, now: Instant) {
        let min = self.backoff.min;
        for e in self.entries.iter_mut().filter(|e| e.peer.as_ref() == Some(peer)) {
            if let State::Waiting { .. } = e.state {
                e.state = State::Waiting { at: now, backoff: min };
            }
        }
    }

    fn index_of(&self, conn: ConnectionId) -> Option<usize> {
        self.entries.iter().position(|e| matches!(e.state, State::Dialing { conn: c, .. } if c == conn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff { min: Duration::from_secs(1), max: Duration::from_secs(4) }
    }

    fn addr() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/4001".parse().unwrap()
    }

    #[test]
    fn failed_dials_back_off_exponentially_up_to_max() {
        let t0 = Instant::now();
        let mut r = Redialer::new(&[addr()], backoff(), t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let due = r.due(now, |_| false);
            assert_eq!(due.len(), 1);
            let conn = ConnectionId::new_unchecked(waits.len());
            r.dialing(0, conn);
            assert!(r.due(now, |_| false).is_empty(), "one dial in flight at a time");
            r.dial_failed(conn, now);
            let start = now;
            while r.due(now, |_| false).is_empty() {
                now += Duration::from_millis(500);
            }
            waits.push((now - start).as_secs());
        }
        assert_eq!(waits, vec![1, 2, 4, 4, 4]);
    }

    #[test]
    fn disconnect_makes_entry_due_again_with_reset_backoff() {
        let t0 = Instant::now();
        let mut r = Redialer::new(&[addr()], backoff(), t0);
        let peer = PeerId::random();
        r.dialing(0, ConnectionId::new_unchecked(7));
        assert!(r.established(ConnectionId::new_unchecked(7), peer, t0));
        assert!(r.due(t0, |_| false).is_empty());
        let later = t0 + STABLE;
        r.disconnected(&peer, later);
        assert_eq!(r.due(later, |_| false).len(), 1);
    }

    #[test]
    fn short_lived_connections_back_off() {
        let t0 = Instant::now();
        let mut r = Redialer::new(&[addr()], backoff(), t0);
        let peer = PeerId::random();
        let mut now = t0;
        for (i, wait) in [1u64, 2, 4].into_iter().enumerate() {
            r.dialing(0, ConnectionId::new_unchecked(i));
            assert!(r.established(ConnectionId::new_unchecked(i), peer, now));
            r.disconnected(&peer, now);
            assert!(r.due(now, |_| false).is_empty(), "a flapping peer is not re-dialed at once");
            now += Duration::from_secs(wait);
            assert_eq!(r.due(now, |_| false).len(), 1);
        }
    }

    #[test]
    fn reset_makes_a_backed_off_entry_due_at_once() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let mut r = Redialer::new(&[addr().with(Protocol::P2p(peer))], backoff(), t0);
        let mut now = t0;
        for i in 0..3 {
            while r.due(now, |_| false).is_empty() {
                now += Duration::from_millis(500);
            }
            r.dialing(0, ConnectionId::new_unchecked(i));
            r.dial_failed(ConnectionId::new_unchecked(i), now);
        }
        assert!(r.due(now, |_| false).is_empty(), "backed off");
        r.reset(&PeerId::random(), now);
        assert!(r.due(now, |_| false).is_empty(), "another peer's reset changes nothing");
        r.reset(&peer, now);
        assert_eq!(r.due(now, |_| false).len(), 1);
    }

    #[test]
    fn peer_connected_inbound_is_not_dialed() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let with_id = addr().with(Protocol::P2p(peer));
        let mut r = Redialer::new(&[with_id], backoff(), t0);
        assert!(r.due(t0, |p| *p == peer).is_empty());
        r.disconnected(&peer, t0 + STABLE);
        assert_eq!(r.due(t0 + STABLE, |_| false).len(), 1);
    }
}
