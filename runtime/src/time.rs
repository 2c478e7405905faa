//! Baton's timers: every sleep and timeout of the code the simulator runs is made here
//! ([`sleep`], [`sleep_until`], [`timeout`], [`timeout_at`], and [`HyperTimer`] for hyper's
//! own), so that a simulator can be told each deadline while it is pending.
//!
//! Why: a deterministic simulator (`baton-sim`) steps every host's tokio clock by a fixed tick,
//! and most steps have nothing to do. It can jump over them only if it knows the earliest
//! moment something could happen, and tokio does not tell a runtime's next timer. So a
//! simulator installs [`Deadlines`] on its thread ([`install`]) and is told each deadline
//! when a timer is made or reset, and forgotten when the timer fires, is reset or is dropped.
//!
//! Invariants: with nothing installed (production, every test that is not a simulation) each
//! function is tokio's own, plus one thread-local read when a timer is made; the timers fire
//! at the same instants as tokio's, whatever is installed (a hook only watches). A deadline
//! is told before its timer can fire and forgotten only when it can no longer fire; a timer
//! made outside this module is one the simulator cannot see: `sim/tests/timers_are_told.rs`
//! keeps tokio's timer functions out of the code the simulator runs.
//!
//! Depends on nothing of the crate.

use std::cell::RefCell;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tokio::time::error::Elapsed;

/// What a simulator is told of Baton's timers on its thread.
pub trait Deadlines {
    /// A timer will fire at `at` (on the current runtime's clock) unless it is forgotten
    /// first; the key names it for [`Deadlines::forget`].
    fn tell(&self, at: Instant) -> u64;
    /// The timer `key` names fired, was reset (it is told again) or was dropped.
    fn forget(&self, key: u64);
}

thread_local! {
    /// The deadlines installed on this thread, if any.
    static INSTALLED: RefCell<Option<Rc<dyn Deadlines>>> = const { RefCell::new(None) };
}

/// Installs `deadlines` on this thread until the returned guard is dropped: every timer made
/// here from now on is told to it.
#[must_use = "the deadlines are uninstalled when the guard is dropped"]
pub fn install(deadlines: Rc<dyn Deadlines>) -> Installed {
    INSTALLED.with(|installed| *installed.borrow_mut() = Some(deadlines));
    Installed(())
}

/// Uninstalls the thread's [`Deadlines`] when dropped (see [`install`]).
#[derive(Debug)]
pub struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = INSTALLED.try_with(|installed| installed.borrow_mut().take());
    }
}

/// One timer's deadline as told: forgotten when dropped.
#[derive(Debug)]
struct Told(Option<u64>);

impl Told {
    fn tell(at: Instant) -> Self {
        Self(
            INSTALLED
                .try_with(|installed| installed.borrow().as_ref().map(|d| d.tell(at)))
                .ok()
                .flatten(),
        )
    }

    fn forget(&mut self) {
        if let Some(key) = self.0.take() {
            let _ = INSTALLED.try_with(|installed| {
                if let Some(deadlines) = installed.borrow().as_ref() {
                    deadlines.forget(key);
                }
            });
        }
    }
}

impl Drop for Told {
    fn drop(&mut self) {
        self.forget();
    }
}

pin_project_lite::pin_project! {
    /// [`tokio::time::Sleep`], its deadline told (see the module documentation).
    #[derive(Debug)]
    #[must_use = "a sleep does nothing unless awaited"]
    pub struct Sleep {
        #[pin]
        inner: tokio::time::Sleep,
        told: Told,
    }
}

/// Waits until `duration` has passed ([`tokio::time::sleep`]).
pub fn sleep(duration: Duration) -> Sleep {
    let inner = tokio::time::sleep(duration);
    let told = Told::tell(inner.deadline());
    Sleep { inner, told }
}

/// Waits until `deadline` ([`tokio::time::sleep_until`]).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        inner: tokio::time::sleep_until(deadline),
        told: Told::tell(deadline),
    }
}

impl Sleep {
    /// When it fires.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.inner.deadline()
    }

    /// Fires at `deadline` instead ([`tokio::time::Sleep::reset`]).
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.project();
        *this.told = Told::tell(deadline);
        this.inner.reset(deadline);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let fired = this.inner.poll(cx);
        if fired.is_ready() {
            this.told.forget();
        }
        fired
    }
}

pin_project_lite::pin_project! {
    /// [`tokio::time::Timeout`], its deadline told (see the module documentation).
    #[derive(Debug)]
    #[must_use = "a timeout does nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        told: Told,
    }
}

/// `future`'s output, or [`Elapsed`] if `duration` passes first ([`tokio::time::timeout`]).
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    // tokio reads the clock the same way when it sets the timeout's deadline; a deadline past
    // tokio's far future never fires and is not told.
    let told = match Instant::now().checked_add(duration) {
        Some(at) => Told::tell(at),
        None => Told(None),
    };
    Timeout {
        inner: tokio::time::timeout(duration, future),
        told,
    }
}

/// `future`'s output, or [`Elapsed`] if `deadline` comes first ([`tokio::time::timeout_at`]).
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        inner: tokio::time::timeout_at(deadline, future),
        told: Told::tell(deadline),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let done = this.inner.poll(cx);
        if done.is_ready() {
            this.told.forget();
        }
        done
    }
}

/// hyper's timer (its header-read timeout) on tokio's clock, its deadlines told: what
/// `hyper_util::rt::TokioTimer` is, through this module.
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer;

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(sleep(duration))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(sleep_until(deadline.into()))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        if let Some(sleep) = sleep.as_mut().downcast_mut_pin::<Sleep>() {
            sleep.reset(new_deadline.into());
        }
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Deadlines, install, sleep, sleep_until, timeout};

    /// The deadlines pending now, by key.
    #[derive(Default)]
    struct Pending {
        next: RefCell<u64>,
        at: RefCell<BTreeMap<u64, Instant>>,
    }

    impl Deadlines for Pending {
        fn tell(&self, at: Instant) -> u64 {
            let key = *self.next.borrow();
            *self.next.borrow_mut() += 1;
            self.at.borrow_mut().insert(key, at);
            key
        }

        fn forget(&self, key: u64) {
            self.at.borrow_mut().remove(&key);
        }
    }

    fn pending(deadlines: &Pending) -> Vec<Instant> {
        deadlines.at.borrow().values().copied().collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_is_told_until_it_fires_and_a_dropped_one_is_forgotten() {
        let deadlines = Rc::new(Pending::default());
        let _installed = install(deadlines.clone());
        let start = Instant::now();
        let fires = sleep(Duration::from_millis(30));
        let dropped = sleep_until(start + Duration::from_millis(10));
        assert_eq!(
            pending(&deadlines),
            vec![
                start + Duration::from_millis(30),
                start + Duration::from_millis(10)
            ]
        );
        drop(dropped);
        assert_eq!(pending(&deadlines), vec![start + Duration::from_millis(30)]);
        fires.await;
        assert_eq!(Instant::now(), start + Duration::from_millis(30));
        assert!(pending(&deadlines).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_sleep_is_told_its_new_deadline_only() {
        let deadlines = Rc::new(Pending::default());
        let _installed = install(deadlines.clone());
        let start = Instant::now();
        let mut moved = std::pin::pin!(sleep(Duration::from_millis(30)));
        moved.as_mut().reset(start + Duration::from_millis(50));
        assert_eq!(pending(&deadlines), vec![start + Duration::from_millis(50)]);
        moved.await;
        assert_eq!(Instant::now(), start + Duration::from_millis(50));
        assert!(pending(&deadlines).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_is_told_until_its_future_or_its_deadline_comes() {
        let deadlines = Rc::new(Pending::default());
        let _installed = install(deadlines.clone());
        let start = Instant::now();
        let answered = timeout(Duration::from_millis(40), sleep(Duration::from_millis(10)));
        assert_eq!(pending(&deadlines).len(), 2);
        assert!(answered.await.is_ok());
        assert!(pending(&deadlines).is_empty());
        let elapsed = timeout(Duration::from_millis(5), std::future::pending::<()>());
        assert_eq!(pending(&deadlines), vec![start + Duration::from_millis(15)]);
        assert!(elapsed.await.is_err());
        assert!(pending(&deadlines).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_installed_a_timer_is_tokios_own() {
        let start = Instant::now();
        sleep(Duration::from_millis(7)).await;
        assert_eq!(Instant::now(), start + Duration::from_millis(7));
        let elapsed = timeout(Duration::from_millis(3), std::future::pending::<()>()).await;
        assert!(elapsed.is_err());
        assert_eq!(Instant::now(), start + Duration::from_millis(10));
    }
}
