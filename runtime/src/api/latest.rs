//! The latest value a publisher put out, read by any number of readers, who are woken in the
//! order they began to wait.
//!
//! Why not `tokio::sync::watch`: it spreads its receivers over eight notifiers picked with a
//! thread-local random number, so readers that wait for the same change wake in a different
//! order on every run, and a simulation that replays a seed bit for bit cannot use it. This
//! one keeps one `Notify`, whose waiters are woken first come, first served.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

struct Shared<T> {
    /// The version (how many values were published) and the value.
    current: Mutex<(u64, Arc<T>)>,
    changed: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, (u64, Arc<T>)> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Puts out new values. Cheap to clone.
pub struct Publisher<T>(Arc<Shared<T>>);

impl<T> Clone for Publisher<T> {
    fn clone(&self) -> Self {
        Publisher(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

/// Reads the latest value, and waits for the next one. Cheap to clone; a clone has seen what
/// its original had seen.
pub struct Latest<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl<T> Clone for Latest<T> {
    fn clone(&self) -> Self {
        Latest {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> std::fmt::Debug for Latest<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latest").field("seen", &self.seen).finish()
    }
}

/// A publisher of `value` and its first reader (which has seen it).
#[must_use]
pub fn channel<T>(value: T) -> (Publisher<T>, Latest<T>) {
    let shared = Arc::new(Shared {
        current: Mutex::new((0, Arc::new(value))),
        changed: Notify::new(),
    });
    let latest = Latest {
        shared: shared.clone(),
        seen: 0,
    };
    (Publisher(shared), latest)
}

impl<T> Publisher<T> {
    /// Replaces the value and wakes every reader waiting for a change, in the order they began
    /// to wait.
    pub fn publish(&self, value: T) {
        {
            let mut current = self.0.lock();
            current.0 += 1;
            current.1 = Arc::new(value);
        }
        self.0.changed.notify_waiters();
    }

    /// The value now.
    #[must_use]
    pub fn get(&self) -> Arc<T> {
        self.0.lock().1.clone()
    }

    /// A reader that has seen the value now.
    #[must_use]
    pub fn subscribe(&self) -> Latest<T> {
        Latest {
            shared: self.0.clone(),
            seen: self.0.lock().0,
        }
    }
}

impl<T> Latest<T> {
    /// The value now.
    #[must_use]
    pub fn get(&self) -> Arc<T> {
        self.shared.lock().1.clone()
    }

    /// Counts the value now as seen.
    pub fn mark_seen(&mut self) {
        self.seen = self.shared.lock().0;
    }

    /// Waits for a value this reader has not seen, and returns it (at once if one came since
    /// it last looked).
    pub async fn changed(&mut self) -> Arc<T> {
        self.wait_until(|_| true).await
    }

    /// Waits until a value this reader has not seen holds `wanted`, and returns it. The value
    /// now counts too, if unseen.
    pub async fn wait_until(&mut self, wanted: impl Fn(&T) -> bool) -> Arc<T> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a value published in between still wakes us.
            notified.as_mut().enable();
            let (version, value) = {
                let current = self.shared.lock();
                (current.0, current.1.clone())
            };
            if version != self.seen {
                self.seen = version;
                if wanted(&value) {
                    return value;
                }
            }
            notified.await;
        }
    }

    /// Waits until the value now, seen or not, holds `wanted`.
    pub async fn wait_for(&mut self, wanted: impl Fn(&T) -> bool) -> Arc<T> {
        let value = self.get();
        if wanted(&value) {
            return value;
        }
        self.wait_until(wanted).await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::channel;

    #[tokio::test(flavor = "current_thread")]
    async fn readers_see_each_change_and_wake_in_the_order_they_waited() {
        let (publisher, first) = channel(0u32);
        assert_eq!(*first.get(), 0);
        let woken = Rc::new(RefCell::new(Vec::new()));
        let local = tokio::task::LocalSet::new();
        for name in ["a", "b", "c", "d", "e"] {
            let mut reader = publisher.subscribe();
            let woken = woken.clone();
            local.spawn_local(async move {
                let value = reader.changed().await;
                woken.borrow_mut().push((name, *value));
            });
        }
        local
            .run_until(async {
                tokio::task::yield_now().await;
                publisher.publish(7);
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            })
            .await;
        assert_eq!(
            *woken.borrow(),
            [("a", 7), ("b", 7), ("c", 7), ("d", 7), ("e", 7)]
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_change_before_the_wait_is_not_missed_and_a_seen_one_is_not_repeated() {
        let (publisher, mut reader) = channel("start");
        publisher.publish("next");
        assert_eq!(*reader.changed().await, "next", "published before the wait");
        let mut flag = publisher.subscribe();
        assert_eq!(
            *flag.wait_for(|v| *v == "next").await,
            "next",
            "true already"
        );
        let waiting = crate::time::timeout(std::time::Duration::from_millis(1), reader.changed());
        assert!(waiting.await.is_err(), "nothing new yet");
        let mut copy = reader.clone();
        publisher.publish("last");
        assert_eq!(*copy.changed().await, "last");
        assert_eq!(*reader.wait_until(|v| *v == "last").await, "last");
    }
}
