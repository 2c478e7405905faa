//! The replay cache of `wait_for_signal_done`: a result delivered once is delivered again, not
//! recomputed, when the same request comes back.
//!
//! The MCP client gives every tool call one request id and retries it after a network error. If
//! the first answer was lost on the way, the retry must get that answer, not consume a second
//! signal. Entries are keyed by coordinator and request id (a request id of one coordinator never
//! replays for another), live [`REPLAY_TTL_MS`], and are at most [`REPLAY_ENTRIES_MAX`]: past that
//! the oldest goes first. Timeouts are cached like any other result (a retried wait that already
//! timed out answers at once instead of waiting a second time).

use std::collections::{BTreeMap, VecDeque};

use super::ids::CoordinatorId;
use super::time::Millis;

/// How long a delivered result can be replayed: longer than the MCP client's retry budget
/// between two attempts, short enough that the cache stays small.
pub const REPLAY_TTL_MS: u64 = 120_000;
/// Results kept at most by one coordinator's cache: a bound even against a client that sends a
/// fresh request id every few milliseconds.
pub const REPLAY_ENTRIES_MAX: usize = 4_096;
/// Longest request id accepted, in bytes: request ids are UUIDs in practice.
pub const REQUEST_ID_BYTES_MAX: usize = 128;

/// A client's id for one logical request, the same across its retries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(String);

/// A request id that is empty, too long, or has characters other than printable ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("requestId must be 1 to {REQUEST_ID_BYTES_MAX} printable ASCII characters")]
pub struct InvalidRequestId;

impl RequestId {
    /// Checks and wraps a client's request id.
    ///
    /// # Errors
    /// Empty, longer than [`REQUEST_ID_BYTES_MAX`], or not printable ASCII.
    pub fn new(text: &str) -> Result<Self, InvalidRequestId> {
        let printable = text.bytes().all(|b| b.is_ascii_graphic());
        if text.is_empty() || text.len() > REQUEST_ID_BYTES_MAX || !printable {
            return Err(InvalidRequestId);
        }
        Ok(RequestId(text.to_owned()))
    }

    /// The id as the client sent it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

type Key = (CoordinatorId, RequestId);

struct Entry<V> {
    value: V,
    expires_at: Millis,
    /// Which insertion made it: the order item with this number is its own.
    seq: u64,
}

/// An order item: a key, the insertion it records, and when that insertion expires.
type OrderItem = (Key, u64, Millis);

/// Results by coordinator and request id. See the module documentation.
pub struct ReplayCache<V> {
    entries: BTreeMap<Key, Entry<V>>,
    /// Keys in insertion order; an item whose insertion number no longer matches its entry's
    /// was overwritten and is skipped.
    order: VecDeque<OrderItem>,
    next_seq: u64,
}

impl<V> std::fmt::Debug for ReplayCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplayCache({} entries)", self.entries.len())
    }
}

impl<V> Default for ReplayCache<V> {
    fn default() -> Self {
        ReplayCache {
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }
}

impl<V> ReplayCache<V> {
    /// The result delivered for this request, if it has not expired at `now`.
    pub fn get(
        &mut self,
        now: Millis,
        coordinator: CoordinatorId,
        request: &RequestId,
    ) -> Option<&V> {
        let key = (coordinator, request.clone());
        let expired = self
            .entries
            .get(&key)
            .is_some_and(|entry| now >= entry.expires_at);
        if expired {
            self.entries.remove(&key);
            return None;
        }
        self.entries.get(&key).map(|entry| &entry.value)
    }

    /// Records the result delivered for this request at `now`, replacing an earlier one.
    pub fn insert(
        &mut self,
        now: Millis,
        coordinator: CoordinatorId,
        request: RequestId,
        value: V,
    ) {
        self.evict_expired(now);
        self.put(coordinator, request, value, now.plus(REPLAY_TTL_MS));
    }

    /// Takes back a result a restarted daemon had kept ([`Self::live`]), with its expiry; kept
    /// in the order given, within the same bound.
    pub fn restore(
        &mut self,
        coordinator: CoordinatorId,
        request: RequestId,
        value: V,
        expires_at: Millis,
    ) {
        self.put(coordinator, request, value, expires_at);
    }

    /// The results of `coordinator` not yet evicted, oldest first, with their expiry: what a
    /// restart must find ([`Self::restore`]). Some may have expired since; they are evicted as
    /// usual once restored.
    #[must_use]
    pub fn live(&self, coordinator: CoordinatorId) -> Vec<(RequestId, V, Millis)>
    where
        V: Clone,
    {
        // Every save asks for this: the entries are walked once and put in insertion order by
        // their numbers, without looking each order item up by its key (the request ids'
        // comparisons were most of a save's cost with thousands of entries).
        let mut live: Vec<(u64, &RequestId, &Entry<V>)> = self
            .entries
            .iter()
            .filter(|((owner, _), _)| *owner == coordinator)
            .map(|((_, request), entry)| (entry.seq, request, entry))
            .collect();
        live.sort_unstable_by_key(|(seq, _, _)| *seq);
        live.into_iter()
            .map(|(_, request, entry)| (request.clone(), entry.value.clone(), entry.expires_at))
            .collect()
    }

    fn put(
        &mut self,
        coordinator: CoordinatorId,
        request: RequestId,
        value: V,
        expires_at: Millis,
    ) {
        let key = (coordinator, request);
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            value,
            expires_at,
            seq,
        };
        let replaced = self.entries.insert(key.clone(), entry).is_some();
        self.order.push_back((key, seq, expires_at));
        if !replaced {
            while self.entries.len() > REPLAY_ENTRIES_MAX {
                self.pop_oldest();
            }
        }
        // Stale order items (left by overwritten keys) are dropped once they are as many as the
        // live ones could be, so the queue stays bounded without evicting a live entry.
        if self.order.len() > 2 * REPLAY_ENTRIES_MAX {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq, _)| entries.get(key).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Forgets the result of one request (it turned out undeliverable and was taken back),
    /// returning it if it was held.
    pub fn take(&mut self, coordinator: CoordinatorId, request: &RequestId) -> Option<V> {
        self.entries
            .remove(&(coordinator, request.clone()))
            .map(|entry| entry.value)
    }

    /// Forgets every result of `coordinator` (it was deregistered).
    pub fn forget(&mut self, coordinator: CoordinatorId) {
        self.entries.retain(|(owner, _), _| *owner != coordinator);
        self.order
            .retain(|((owner, _), _, _)| *owner != coordinator);
    }

    /// Results held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no result is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_expired(&mut self, now: Millis) {
        while self
            .order
            .front()
            .is_some_and(|(_, _, expires_at)| *expires_at <= now)
        {
            self.pop_oldest();
        }
    }

    /// Drops the oldest order item, and its entry if the item is still that entry's.
    fn pop_oldest(&mut self) {
        if let Some((key, seq, _)) = self.order.pop_front()
            && self.entries.get(&key).is_some_and(|entry| entry.seq == seq)
        {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{InvalidRequestId, REPLAY_ENTRIES_MAX, REPLAY_TTL_MS, ReplayCache, RequestId};
    use crate::core::ids::CoordinatorId;
    use crate::core::time::Millis;

    fn coordinator(n: u8) -> CoordinatorId {
        CoordinatorId::from_random([n; 16])
    }

    fn request(text: &str) -> RequestId {
        RequestId::new(text).unwrap()
    }

    #[test]
    fn live_lists_a_coordinators_held_results_in_insertion_order_each_once() {
        let mut cache = ReplayCache::default();
        // Request ids out of key order, one overwritten, one taken back, one of another
        // coordinator: what a restart finds is the held ones, by their last insertion.
        cache.insert(Millis(1), coordinator(1), request("z"), "z1");
        cache.insert(Millis(2), coordinator(1), request("a"), "a1");
        cache.insert(Millis(3), coordinator(2), request("m"), "other");
        cache.insert(Millis(4), coordinator(1), request("b"), "b1");
        cache.insert(Millis(5), coordinator(1), request("z"), "z2");
        assert_eq!(cache.take(coordinator(1), &request("b")), Some("b1"));
        let live = cache.live(coordinator(1));
        let expiry = |at: u64| Millis(at + REPLAY_TTL_MS);
        assert_eq!(
            live,
            vec![
                (request("a"), "a1", expiry(2)),
                (request("z"), "z2", expiry(5)),
            ]
        );
        assert_eq!(
            cache.live(coordinator(2)),
            vec![(request("m"), "other", expiry(3))]
        );
    }

    #[test]
    fn a_result_replays_until_its_time_is_up() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(1_000), coordinator(1), request("r1"), "signal");
        assert_eq!(
            cache.get(
                Millis(1_000 + REPLAY_TTL_MS - 1),
                coordinator(1),
                &request("r1")
            ),
            Some(&"signal")
        );
        assert_eq!(
            cache.get(
                Millis(1_000 + REPLAY_TTL_MS),
                coordinator(1),
                &request("r1")
            ),
            None
        );
        assert!(
            cache.is_empty(),
            "an expired entry is dropped when looked up"
        );
    }

    #[test]
    fn a_request_id_of_one_coordinator_never_replays_for_another() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), coordinator(1), request("same"), 1);
        assert_eq!(cache.get(Millis(1), coordinator(2), &request("same")), None);
        assert_eq!(
            cache.get(Millis(1), coordinator(1), &request("same")),
            Some(&1)
        );
    }

    #[test]
    fn inserting_again_replaces_the_result_and_restarts_its_time() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), coordinator(1), request("r"), 1);
        cache.insert(Millis(100_000), coordinator(1), request("r"), 2);
        assert_eq!(
            cache.get(Millis(150_000), coordinator(1), &request("r")),
            Some(&2)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_holds_at_most_its_bound_dropping_the_oldest() {
        let mut cache = ReplayCache::default();
        for n in 0..REPLAY_ENTRIES_MAX + 10 {
            cache.insert(
                Millis(n as u64),
                coordinator(1),
                request(&format!("r{n}")),
                n,
            );
        }
        assert_eq!(cache.len(), REPLAY_ENTRIES_MAX);
        let now = Millis(REPLAY_ENTRIES_MAX as u64 + 10);
        assert_eq!(
            cache.get(now, coordinator(1), &request("r9")),
            None,
            "among the oldest, dropped"
        );
        assert_eq!(cache.get(now, coordinator(1), &request("r10")), Some(&10));
    }

    #[test]
    fn overwriting_one_key_many_times_stays_bounded() {
        let mut cache = ReplayCache::default();
        for n in 0..10 * REPLAY_ENTRIES_MAX {
            cache.insert(Millis(n as u64), coordinator(1), request("hot"), n);
        }
        assert_eq!(cache.len(), 1);
        assert!(cache.order.len() <= 2 * REPLAY_ENTRIES_MAX);
        let last = 10 * REPLAY_ENTRIES_MAX - 1;
        assert_eq!(
            cache.get(Millis(last as u64), coordinator(1), &request("hot")),
            Some(&last)
        );
    }

    #[test]
    fn a_hot_key_answered_within_one_millisecond_stays_bounded() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), coordinator(1), request("live"), 0);
        for n in 0..3 * REPLAY_ENTRIES_MAX {
            cache.insert(Millis(0), coordinator(1), request("hot"), n);
            assert!(cache.order.len() <= 2 * REPLAY_ENTRIES_MAX + 1);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get(Millis(1), coordinator(1), &request("live")),
            Some(&0)
        );
    }

    #[test]
    fn a_hot_key_never_evicts_live_entries() {
        let mut cache = ReplayCache::default();
        for n in 0..100 {
            cache.insert(Millis(0), coordinator(1), request(&format!("live{n}")), n);
        }
        for n in 0..3 * REPLAY_ENTRIES_MAX {
            cache.insert(Millis(n as u64), coordinator(1), request("hot"), n);
        }
        let now = Millis(3 * REPLAY_ENTRIES_MAX as u64);
        assert_eq!(cache.get(now, coordinator(1), &request("live0")), Some(&0));
        assert_eq!(
            cache.get(now, coordinator(1), &request("live99")),
            Some(&99)
        );
    }

    #[test]
    fn expired_entries_go_when_something_new_comes() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), coordinator(1), request("old"), 0);
        cache.insert(Millis(REPLAY_TTL_MS), coordinator(1), request("new"), 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn forgetting_a_coordinator_drops_only_its_results() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), coordinator(1), request("a"), 1);
        cache.insert(Millis(0), coordinator(2), request("a"), 2);
        cache.forget(coordinator(1));
        assert_eq!(cache.get(Millis(1), coordinator(1), &request("a")), None);
        assert_eq!(
            cache.get(Millis(1), coordinator(2), &request("a")),
            Some(&2)
        );
    }

    #[test]
    fn request_ids_are_short_printable_ascii() {
        assert!(RequestId::new("0b6f2c1e-8f8a-4c57-9d6e-2f3a1b0c9d8e").is_ok());
        for bad in ["", " ", "a b", "é", "line\n"] {
            assert_eq!(RequestId::new(bad), Err(InvalidRequestId), "{bad:?}");
        }
        assert_eq!(RequestId::new(&"x".repeat(129)), Err(InvalidRequestId));
        assert!(RequestId::new(&"x".repeat(128)).is_ok());
    }
}
