//! The replay cache of `wait_for_signal_done`: a result delivered once is delivered again, not
//! recomputed, when the same request comes back.
//!
//! The MCP client gives every tool call one request id and retries it after a network error. If
//! the first answer was lost on the way, the retry must get that answer, not consume a second
//! signal. Each coordinator has a cache of its own (a request id of one coordinator never replays
//! for another); entries are keyed by request id, live [`REPLAY_TTL_MS`], and are at most
//! [`REPLAY_ENTRIES_MAX`]: past that the oldest goes first. Timeouts are cached like any other
//! result (a retried wait that already timed out answers at once instead of waiting a second
//! time).
//!
//! Every save persists the cache ([`ReplayCache::snapshot`]), and a busy coordinator's holds
//! thousands of entries: they are kept in insertion order in chunks of [`REPLAY_CHUNK`], and a
//! full chunk is never changed again, so a snapshot shares the full chunks and copies only the
//! last one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

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

/// One delivered result as a cache holds it, and as a restart finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed<V> {
    /// The client's request id.
    pub request: RequestId,
    /// What it was answered.
    pub outcome: V,
    /// Until when a retry gets it again.
    pub expires_at: Millis,
}

/// Insertions kept together in one chunk of a cache's log. Full chunks are sealed and shared
/// (not copied) by every [`ReplayLog`] taken; only the open chunk, under this many, is copied.
pub const REPLAY_CHUNK: usize = 64;

/// Every insertion not yet dropped from the front, in insertion order: sealed chunks of
/// [`REPLAY_CHUNK`], then the open one. An insertion's number is its place in this order, so it is
/// found without a search. Insertions that are no longer held (overwritten, taken back, expired
/// when looked up) stay in their chunk, named in `dead`, until the front passes them.
#[derive(Clone)]
struct Log<V> {
    /// The number of the first insertion of the first chunk.
    base: u64,
    /// Insertions of the first chunk already dropped.
    skip: usize,
    sealed: VecDeque<Arc<[Replayed<V>]>>,
    open: Vec<Replayed<V>>,
    /// Insertions after the front that are no longer held.
    dead: BTreeSet<u64>,
}

impl<V> Default for Log<V> {
    fn default() -> Self {
        Log {
            base: 0,
            skip: 0,
            sealed: VecDeque::new(),
            open: Vec::new(),
            dead: BTreeSet::new(),
        }
    }
}

impl<V> Log<V> {
    /// The number the next insertion gets.
    fn end(&self) -> u64 {
        self.base + (self.sealed.len() * REPLAY_CHUNK + self.open.len()) as u64
    }

    /// The number of the first insertion not yet dropped.
    fn front(&self) -> u64 {
        self.base + self.skip as u64
    }

    /// Insertions from the front to the end, held or not.
    fn items(&self) -> usize {
        (self.end() - self.front()) as usize
    }

    fn at(&self, seq: u64) -> &Replayed<V> {
        let place = (seq - self.base) as usize;
        match self.sealed.get(place / REPLAY_CHUNK) {
            Some(chunk) => &chunk[place % REPLAY_CHUNK],
            None => &self.open[place - self.sealed.len() * REPLAY_CHUNK],
        }
    }

    fn push(&mut self, item: Replayed<V>) -> u64 {
        let seq = self.end();
        self.open.push(item);
        if self.open.len() == REPLAY_CHUNK {
            let chunk: Arc<[Replayed<V>]> = std::mem::take(&mut self.open).into();
            self.sealed.push_back(chunk);
        }
        seq
    }

    /// The front insertion, held or not.
    fn peek_front(&self) -> Option<&Replayed<V>> {
        let seq = self.front();
        (seq < self.end()).then(|| self.at(seq))
    }

    /// Drops the front insertion (there is one).
    fn drop_front(&mut self) {
        let seq = self.front();
        self.dead.remove(&seq);
        self.skip += 1;
        if self.skip == REPLAY_CHUNK {
            // A whole chunk has been walked: it was sealed, and goes.
            self.sealed.pop_front();
            self.base += REPLAY_CHUNK as u64;
            self.skip = 0;
        }
    }

    /// The held insertions, oldest first.
    fn held(&self) -> impl Iterator<Item = &Replayed<V>> {
        let front = self.front();
        let sealed = self.sealed.iter().flat_map(|chunk| chunk.iter());
        sealed
            .chain(self.open.iter())
            .skip(self.skip)
            .zip(front..)
            .filter(|(_, seq)| !self.dead.contains(seq))
            .map(|(item, _)| item)
    }
}

/// One coordinator's results by request id. See the module documentation.
pub struct ReplayCache<V> {
    /// Each held request's insertion in `log`.
    index: BTreeMap<RequestId, u64>,
    log: Log<V>,
}

impl<V> std::fmt::Debug for ReplayCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplayCache({} entries)", self.index.len())
    }
}

impl<V> Default for ReplayCache<V> {
    fn default() -> Self {
        ReplayCache {
            index: BTreeMap::new(),
            log: Log::default(),
        }
    }
}

impl<V: Clone> ReplayCache<V> {
    /// The result delivered for this request, if it has not expired at `now`.
    pub fn get(&mut self, now: Millis, request: &RequestId) -> Option<&V> {
        let seq = *self.index.get(request)?;
        if now >= self.log.at(seq).expires_at {
            self.index.remove(request);
            self.log.dead.insert(seq);
            return None;
        }
        Some(&self.log.at(seq).outcome)
    }

    /// Records the result delivered for this request at `now`, replacing an earlier one.
    pub fn insert(&mut self, now: Millis, request: RequestId, outcome: V) {
        self.evict_expired(now);
        self.put(Replayed {
            request,
            outcome,
            expires_at: now.plus(REPLAY_TTL_MS),
        });
    }

    /// Takes back the results a restarted daemon had kept ([`Self::snapshot`]), with their
    /// expiry, in their order, within the same bound. Some may have expired since; they are
    /// evicted as usual.
    #[must_use]
    pub fn restored(log: &ReplayLog<V>) -> Self {
        let mut cache = ReplayCache::default();
        for item in log.iter() {
            cache.put(item.clone());
        }
        cache
    }

    /// The results not yet evicted, oldest first, with their expiry: what a restart must find
    /// ([`Self::restored`]). Cheap whatever the cache holds: full chunks are shared, not copied
    /// (every save takes one).
    #[must_use]
    pub fn snapshot(&self) -> ReplayLog<V> {
        ReplayLog(self.log.clone())
    }

    /// Forgets the result of one request (it turned out undeliverable and was taken back),
    /// returning it if it was held.
    pub fn take(&mut self, request: &RequestId) -> Option<V> {
        let seq = self.index.remove(request)?;
        self.log.dead.insert(seq);
        Some(self.log.at(seq).outcome.clone())
    }

    /// Forgets every result (its coordinator was deregistered).
    pub fn forget(&mut self) {
        *self = ReplayCache::default();
    }

    /// Results held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no result is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn put(&mut self, item: Replayed<V>) {
        let request = item.request.clone();
        let seq = self.log.push(item);
        match self.index.insert(request, seq) {
            Some(replaced) => {
                self.log.dead.insert(replaced);
            }
            None => {
                while self.index.len() > REPLAY_ENTRIES_MAX {
                    self.pop_oldest();
                }
            }
        }
        // Insertions no longer held (left by overwritten keys) are dropped once they are as
        // many as the held ones could be, so the log stays bounded without evicting a held one.
        if self.log.items() > 2 * REPLAY_ENTRIES_MAX {
            self.compact();
        }
    }

    /// The log again with only the held insertions, in their order.
    fn compact(&mut self) {
        let held: Vec<Replayed<V>> = self.log.held().cloned().collect();
        self.log = Log::default();
        self.index.clear();
        for item in held {
            let request = item.request.clone();
            let seq = self.log.push(item);
            self.index.insert(request, seq);
        }
    }

    fn evict_expired(&mut self, now: Millis) {
        while self
            .log
            .peek_front()
            .is_some_and(|item| item.expires_at <= now)
        {
            self.pop_oldest();
        }
    }

    /// Drops the front insertion, and its request's entry if it was still held.
    fn pop_oldest(&mut self) {
        let seq = self.log.front();
        if let Some(item) = self.log.peek_front()
            && !self.log.dead.contains(&seq)
        {
            self.index.remove(&item.request);
        }
        if seq < self.log.end() {
            self.log.drop_front();
        }
    }
}

/// A replay cache's held results at one moment, oldest first ([`ReplayCache::snapshot`]): what
/// a save persists. Cheap to take and to clone (full chunks are shared).
pub struct ReplayLog<V>(Log<V>);

impl<V> ReplayLog<V> {
    /// The held results, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Replayed<V>> {
        self.0.held()
    }

    /// How many results it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.items() - self.0.dead.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: Clone> Clone for ReplayLog<V> {
    fn clone(&self) -> Self {
        ReplayLog(self.0.clone())
    }
}

impl<V> Default for ReplayLog<V> {
    fn default() -> Self {
        ReplayLog(Log::default())
    }
}

impl<V> From<Vec<Replayed<V>>> for ReplayLog<V> {
    /// The results in their order, as a file read them (no bound applied: restoring applies it).
    fn from(items: Vec<Replayed<V>>) -> Self {
        let mut log = Log::default();
        for item in items {
            log.push(item);
        }
        ReplayLog(log)
    }
}

impl<V: PartialEq> PartialEq for ReplayLog<V> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        // Two snapshots of one cache with nothing inserted or dropped between them share their
        // chunks: equal without reading them.
        let same_log = a.base == b.base
            && a.skip == b.skip
            && a.dead == b.dead
            && a.sealed.len() == b.sealed.len()
            && a.sealed
                .iter()
                .zip(&b.sealed)
                .all(|(x, y)| Arc::ptr_eq(x, y))
            && a.open == b.open;
        same_log || (self.len() == other.len() && self.iter().eq(other.iter()))
    }
}

impl<V: Eq> Eq for ReplayLog<V> {}

impl<V: std::fmt::Debug> std::fmt::Debug for ReplayLog<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{
        InvalidRequestId, REPLAY_CHUNK, REPLAY_ENTRIES_MAX, REPLAY_TTL_MS, ReplayCache, ReplayLog,
        Replayed, RequestId,
    };
    use crate::core::time::Millis;

    fn request(text: &str) -> RequestId {
        RequestId::new(text).unwrap()
    }

    fn held(log: &ReplayLog<&'static str>) -> Vec<(RequestId, &'static str, Millis)> {
        log.iter()
            .map(|item| (item.request.clone(), item.outcome, item.expires_at))
            .collect()
    }

    #[test]
    fn a_snapshot_lists_the_held_results_in_insertion_order_each_once() {
        let mut cache = ReplayCache::default();
        // Request ids out of key order, one overwritten, one taken back: what a restart finds is
        // the held ones, by their last insertion.
        cache.insert(Millis(1), request("z"), "z1");
        cache.insert(Millis(2), request("a"), "a1");
        cache.insert(Millis(4), request("b"), "b1");
        cache.insert(Millis(5), request("z"), "z2");
        assert_eq!(cache.take(&request("b")), Some("b1"));
        let expiry = |at: u64| Millis(at + REPLAY_TTL_MS);
        let snapshot = cache.snapshot();
        assert_eq!(
            held(&snapshot),
            vec![
                (request("a"), "a1", expiry(2)),
                (request("z"), "z2", expiry(5)),
            ]
        );
        assert_eq!(snapshot.len(), 2);
    }

    #[test]
    fn snapshots_share_full_chunks_and_stay_as_they_were_taken() {
        let mut cache = ReplayCache::default();
        let total = 3 * REPLAY_CHUNK + 5;
        for n in 0..total {
            cache.insert(Millis(n as u64), request(&format!("r{n}")), n);
        }
        let before = cache.snapshot();
        assert_eq!(before, cache.snapshot(), "nothing changed: equal");
        // Later changes (a new result, one taken back, the oldest expired) leave it as it was.
        cache.take(&request("r7"));
        cache.insert(Millis(REPLAY_TTL_MS), request("late"), 999);
        let after = cache.snapshot();
        assert_ne!(before, after);
        let numbers = |log: &ReplayLog<usize>| log.iter().map(|i| i.outcome).collect::<Vec<_>>();
        assert_eq!(numbers(&before), (0..total).collect::<Vec<_>>());
        let expected: Vec<usize> = (1..total).filter(|n| *n != 7).chain([999]).collect();
        assert_eq!(numbers(&after), expected);
        assert_eq!(after.len(), expected.len());
        // A snapshot rebuilt from its own items (as a file read it) equals it.
        let read: ReplayLog<usize> = after.iter().cloned().collect::<Vec<_>>().into();
        assert_eq!(read, after);
    }

    #[test]
    fn a_restored_cache_answers_what_was_saved_within_the_bound() {
        let mut cache = ReplayCache::default();
        for n in 0..2 * REPLAY_CHUNK {
            cache.insert(Millis(n as u64), request(&format!("r{n}")), n);
        }
        cache.take(&request("r3"));
        let mut restored = ReplayCache::restored(&cache.snapshot());
        assert_eq!(restored.len(), 2 * REPLAY_CHUNK - 1);
        assert_eq!(restored.get(Millis(0), &request("r3")), None);
        assert_eq!(restored.get(Millis(0), &request("r4")), Some(&4));
        assert_eq!(restored.snapshot(), cache.snapshot());
        let many: Vec<Replayed<usize>> = (0..REPLAY_ENTRIES_MAX + 3)
            .map(|n| Replayed {
                request: request(&format!("r{n}")),
                outcome: n,
                expires_at: Millis(REPLAY_TTL_MS),
            })
            .collect();
        let mut bounded = ReplayCache::restored(&many.into());
        assert_eq!(bounded.len(), REPLAY_ENTRIES_MAX);
        assert_eq!(
            bounded.get(Millis(0), &request("r2")),
            None,
            "the oldest go"
        );
        assert_eq!(bounded.get(Millis(0), &request("r3")), Some(&3));
    }

    #[test]
    fn a_result_replays_until_its_time_is_up() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(1_000), request("r1"), "signal");
        assert_eq!(
            cache.get(Millis(1_000 + REPLAY_TTL_MS - 1), &request("r1")),
            Some(&"signal")
        );
        assert_eq!(
            cache.get(Millis(1_000 + REPLAY_TTL_MS), &request("r1")),
            None
        );
        assert!(
            cache.is_empty(),
            "an expired entry is dropped when looked up"
        );
    }

    #[test]
    fn inserting_again_replaces_the_result_and_restarts_its_time() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), request("r"), 1);
        cache.insert(Millis(100_000), request("r"), 2);
        assert_eq!(cache.get(Millis(150_000), &request("r")), Some(&2));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_holds_at_most_its_bound_dropping_the_oldest() {
        let mut cache = ReplayCache::default();
        for n in 0..REPLAY_ENTRIES_MAX + 10 {
            cache.insert(Millis(n as u64), request(&format!("r{n}")), n);
        }
        assert_eq!(cache.len(), REPLAY_ENTRIES_MAX);
        let now = Millis(REPLAY_ENTRIES_MAX as u64 + 10);
        assert_eq!(
            cache.get(now, &request("r9")),
            None,
            "among the oldest, dropped"
        );
        assert_eq!(cache.get(now, &request("r10")), Some(&10));
    }

    #[test]
    fn overwriting_one_key_many_times_stays_bounded() {
        let mut cache = ReplayCache::default();
        for n in 0..10 * REPLAY_ENTRIES_MAX {
            cache.insert(Millis(n as u64), request("hot"), n);
        }
        assert_eq!(cache.len(), 1);
        assert!(cache.log.items() <= 2 * REPLAY_ENTRIES_MAX);
        let last = 10 * REPLAY_ENTRIES_MAX - 1;
        assert_eq!(cache.get(Millis(last as u64), &request("hot")), Some(&last));
    }

    #[test]
    fn a_hot_key_answered_within_one_millisecond_stays_bounded() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), request("live"), 0);
        for n in 0..3 * REPLAY_ENTRIES_MAX {
            cache.insert(Millis(0), request("hot"), n);
            assert!(cache.log.items() <= 2 * REPLAY_ENTRIES_MAX);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(Millis(1), &request("live")), Some(&0));
    }

    #[test]
    fn a_hot_key_never_evicts_live_entries() {
        let mut cache = ReplayCache::default();
        for n in 0..100 {
            cache.insert(Millis(0), request(&format!("live{n}")), n);
        }
        for n in 0..3 * REPLAY_ENTRIES_MAX {
            cache.insert(Millis(n as u64), request("hot"), n);
        }
        let now = Millis(3 * REPLAY_ENTRIES_MAX as u64);
        assert_eq!(cache.get(now, &request("live0")), Some(&0));
        assert_eq!(cache.get(now, &request("live99")), Some(&99));
    }

    #[test]
    fn expired_entries_go_when_something_new_comes() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), request("old"), 0);
        cache.insert(Millis(REPLAY_TTL_MS), request("new"), 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn forgetting_drops_every_result() {
        let mut cache = ReplayCache::default();
        cache.insert(Millis(0), request("a"), 1);
        cache.forget();
        assert_eq!(cache.get(Millis(1), &request("a")), None);
        assert!(cache.snapshot().is_empty());
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

    /// What the cache must do, written the simplest way: held results in insertion order.
    #[derive(Default)]
    struct Model(Vec<(String, usize, Millis)>);

    impl Model {
        fn insert(&mut self, now: Millis, request: &str, value: usize) {
            self.0.retain(|(_, _, expires_at)| *expires_at > now);
            self.0.retain(|(held, _, _)| held != request);
            self.0
                .push((request.to_owned(), value, now.plus(REPLAY_TTL_MS)));
            if self.0.len() > REPLAY_ENTRIES_MAX {
                self.0.remove(0);
            }
        }

        fn get(&mut self, now: Millis, request: &str) -> Option<usize> {
            let at = self.0.iter().position(|(held, _, _)| held == request)?;
            if now >= self.0[at].2 {
                self.0.remove(at);
                return None;
            }
            Some(self.0[at].1)
        }

        fn take(&mut self, request: &str) -> Option<usize> {
            let at = self.0.iter().position(|(held, _, _)| held == request)?;
            Some(self.0.remove(at).1)
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u8),
        Get(u64, u8),
        Take(u8),
        Restart,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0..40_000u64, 0..24u8).prop_map(|(dt, r)| Op::Insert(dt, r)),
            3 => (0..40_000u64, 0..24u8).prop_map(|(dt, r)| Op::Get(dt, r)),
            2 => (0..24u8).prop_map(Op::Take),
            1 => Just(Op::Restart),
        ]
    }

    proptest::proptest! {
        /// Whatever is inserted, looked up, taken back or restored after a restart, across chunk
        /// boundaries, the chunked cache answers and persists what the simple model does.
        #[test]
        fn the_chunked_cache_behaves_as_the_simple_model(
            ops in proptest::collection::vec(op(), 1..400)
        ) {
            let mut cache = ReplayCache::default();
            let mut model = Model::default();
            let mut now = Millis(0);
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(dt, r) => {
                        now = now.plus(dt);
                        cache.insert(now, request(&format!("r{r}")), n);
                        model.insert(now, &format!("r{r}"), n);
                    }
                    Op::Get(dt, r) => {
                        now = now.plus(dt);
                        let got = cache.get(now, &request(&format!("r{r}"))).copied();
                        proptest::prop_assert_eq!(got, model.get(now, &format!("r{r}")));
                    }
                    Op::Take(r) => {
                        let taken = cache.take(&request(&format!("r{r}")));
                        proptest::prop_assert_eq!(taken, model.take(&format!("r{r}")));
                    }
                    Op::Restart => cache = ReplayCache::restored(&cache.snapshot()),
                }
                let snapshot = cache.snapshot();
                let expected: Vec<Replayed<usize>> = model
                    .0
                    .iter()
                    .map(|(r, value, expires_at)| Replayed {
                        request: request(r),
                        outcome: *value,
                        expires_at: *expires_at,
                    })
                    .collect();
                proptest::prop_assert_eq!(snapshot.len(), expected.len());
                proptest::prop_assert_eq!(cache.len(), expected.len());
                proptest::prop_assert_eq!(&snapshot, &ReplayLog::from(expected));
            }
        }
    }
}
