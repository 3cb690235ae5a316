//! The gossip message ids gossipsub holds in its duplicate cache, mirrored here so that publishing the same
//! content again is refused before gossipsub is asked.
//!
//! Why: message ids are content hashes, so a node re-announcing what it (or a peer) published within the
//! cache time publishes a duplicate. Gossipsub refuses it, which is right, but logs a WARN each time
//! ("Not publishing a message that has already been published"), hundreds a minute, which buries what an
//! operator must act on. A duplicate is normal here: the driver checks this mirror and answers
//! [`crate::NetError::Duplicate`] without calling gossipsub.
//!
//! Invariant owned here: an id is held from when the driver first saw it (published or received) for
//! `ttl`, which is gossipsub's own `duplicate_cache_time`; the driver sees each id no earlier than
//! gossipsub caches it, so the mirror never forgets an id gossipsub still holds because of its age.

use libp2p::gossipsub::MessageId;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long gossipsub remembers a message id (set in its config, mirrored here).
pub const DUPLICATE_CACHE_TIME: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct RecentIds {
    ttl: Duration,
    expiry: HashMap<MessageId, Instant>,
    order: VecDeque<(Instant, MessageId)>,
}

impl RecentIds {
    pub(crate) fn new(ttl: Duration) -> Self {
        RecentIds { ttl, expiry: HashMap::new(), order: VecDeque::new() }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if *at > now {
                break;
            }
            if let Some((at, id)) = self.order.pop_front() {
                if self.expiry.get(&id) == Some(&at) {
                    self.expiry.remove(&id);
                }
            }
        }
    }

    /// Records `id` as seen at `now` (an id already held keeps its first time, as gossipsub's does).
    pub(crate) fn insert(&mut self, id: MessageId, now: Instant) {
        self.expire(now);
        if !self.expiry.contains_key(&id) {
            let at = now + self.ttl;
            self.expiry.insert(id.clone(), at);
            self.order.push_back((at, id));
        }
    }

    /// Whether `id` was seen less than `ttl` ago.
    pub(crate) fn contains(&mut self, id: &MessageId, now: Instant) -> bool {
        self.expire(now);
        self.expiry.contains_key(id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_held_for_the_ttl_from_its_first_sighting_only() {
        let t0 = Instant::now();
        let mut recent = RecentIds::new(Duration::from_secs(60));
        let id = MessageId::from(b"a".to_vec());
        assert!(!recent.contains(&id, t0));
        recent.insert(id.clone(), t0);
        assert!(recent.contains(&id, t0 + Duration::from_secs(59)));
        // Seen again later: the first time still counts, as in gossipsub.
        recent.insert(id.clone(), t0 + Duration::from_secs(30));
        assert!(!recent.contains(&id, t0 + Duration::from_secs(60)));
        assert_eq!(recent.len(), 0, "expired ids are dropped, memory stays bounded by the rate");
        recent.insert(id.clone(), t0 + Duration::from_secs(61));
        assert!(recent.contains(&id, t0 + Duration::from_secs(62)));
    }
}
