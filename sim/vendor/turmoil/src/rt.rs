use std::future::Future;
use std::mem;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use rand::rngs::SmallRng;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio::task::LocalSet;
use tokio::time::{sleep, Duration, Instant};

use super::Result;

// To support re-creation, we need to store a factory of the future that
// represents the software. This is somewhat annoying in that it requires
// boxxing to avoid generics.
type Software<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result>>> + 'a>;

/// Runtime kinds.
pub enum Kind<'a> {
    /// A runtime for executing test code.
    Client,

    /// A runtime that is running simulated host software.
    Host { software: Software<'a> },

    /// A runtime without any software. The network topology uses this for
    /// time tracking and message delivery.
    NoSoftware,
}

/// Runtime configuration.
#[derive(Clone, Default)]
pub struct Config {
    /// Whether io is enabled on the runtime.
    pub enable_io: bool,

    /// Rng used to seed the tokio runtime.
    ///
    /// Only used if the `tokio_unstable` cfg flag is set.
    #[cfg_attr(not(tokio_unstable), expect(dead_code))]
    pub rng: Option<SmallRng>,
}

/// Per host simulated runtime.
///
/// The tokio runtime is paused (see [`Builder::start_paused`]), which gives us
/// control over when and how to advance time. In particular, see [`Rt::tick`],
/// which lets the runtime do a bit more work.
pub struct Rt<'a> {
    pub kind: Kind<'a>,

    /// Handle to the Tokio runtime driving this simulated host. Each runtime
    /// may have a different sense of "now" which simulates clock skew.
    tokio: Runtime,

    /// Local task set used for running !Send tasks.
    local: LocalSet,

    /// A user readable name to identify the node.
    pub nodename: Arc<str>,

    /// Optional handle to a host's software. When software finishes, the handle is
    /// consumed to check for error, which is propagated up to fail the simulation.
    handle: Option<JoinHandle<Result>>,

    /// Runtime configuration.
    config: Config,

    /// baton: whether a task of the host's `LocalSet` was woken and has not run yet (see
    /// [`LocalWakes`]).
    local_wakes: Arc<LocalWakes>,
}

/// baton: the waker the host's `LocalSet` is given (it wakes it when one of its tasks is woken
/// from outside it: by the time driver, another host, the network), which notes the wake
/// before passing it on to the runtime's own. The tick's own sleep is polled with the
/// runtime's waker, so a noted wake is always a task's.
#[derive(Default)]
struct LocalWakes {
    /// A task was woken since the `LocalSet` last ran its tasks.
    woken: AtomicBool,
    /// The runtime's `block_on` waker, to pass wakes on to.
    runtime: Mutex<Option<Waker>>,
    /// How many times the `LocalSet` was polled (to run its woken tasks, or to start or end a
    /// tick).
    polls: AtomicU64,
}

impl LocalWakes {
    fn runtime_waker(&self) -> Option<Waker> {
        self.runtime.lock().ok().and_then(|waker| waker.clone())
    }
}

impl Wake for LocalWakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
        if let Some(waker) = self.runtime_waker() {
            waker.wake();
        }
    }
}

/// baton: the `LocalSet`'s `run_until`, polled with [`LocalWakes`] as its waker.
struct NotingWakes<'f, F> {
    run: Pin<&'f mut F>,
    wakes: Arc<LocalWakes>,
}

impl<F: Future> Future for NotingWakes<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Ok(mut runtime) = self.wakes.runtime.lock() {
            if !runtime.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *runtime = Some(cx.waker().clone());
            }
        }
        self.wakes.polls.fetch_add(1, Ordering::Relaxed);
        let woken = self.wakes.woken.swap(false, Ordering::Relaxed);
        let waker = Waker::from(self.wakes.clone());
        let polled = self.run.as_mut().poll(&mut Context::from_waker(&waker));
        if polled.is_ready() && woken {
            // `run_until` polls its own future first and returns as soon as it is done: the
            // tasks woken since the last poll have not run.
            self.wakes.woken.store(true, Ordering::Relaxed);
        }
        polled
    }
}

/// baton: the tick's sleep, polled with the runtime's own waker (not [`LocalWakes`]).
struct TickSleep<'s> {
    sleep: Pin<&'s mut tokio::time::Sleep>,
    wakes: Arc<LocalWakes>,
}

impl Future for TickSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.wakes.runtime_waker() {
            Some(waker) => self.sleep.as_mut().poll(&mut Context::from_waker(&waker)),
            None => self.sleep.as_mut().poll(cx),
        }
    }
}

impl<'a> Rt<'a> {
    pub(crate) fn client<F>(nodename: Arc<str>, client: F, mut config: Config) -> Self
    where
        F: Future<Output = Result> + 'static,
    {
        let (tokio, local) = init(&mut config);

        let handle = with(&tokio, &local, || tokio::task::spawn_local(client));

        Self {
            kind: Kind::Client,
            tokio,
            local,
            nodename,
            handle: Some(handle),
            config,
            local_wakes: LocalWakes::woken(),
        }
    }

    pub(crate) fn host<F, Fut>(nodename: Arc<str>, software: F, mut config: Config) -> Self
    where
        F: Fn() -> Fut + 'a,
        Fut: Future<Output = Result> + 'static,
    {
        let (tokio, local) = init(&mut config);

        let software: Software = Box::new(move || Box::pin(software()));
        let handle = with(&tokio, &local, || tokio::task::spawn_local(software()));

        Self {
            kind: Kind::Host { software },
            tokio,
            local,
            nodename,
            handle: Some(handle),
            config,
            local_wakes: LocalWakes::woken(),
        }
    }

    pub(crate) fn no_software() -> Self {
        let mut config = Config::default();
        let (tokio, local) = init(&mut config);

        Self {
            kind: Kind::NoSoftware,
            tokio,
            local,
            nodename: String::new().into(),
            handle: None,
            config,
            local_wakes: Arc::default(),
        }
    }

    pub(crate) fn is_client(&self) -> bool {
        matches!(self.kind, Kind::Client)
    }

    fn is_host(&self) -> bool {
        matches!(self.kind, Kind::Host { .. })
    }

    pub(crate) fn is_software_running(&self) -> bool {
        self.handle.is_some()
    }

    pub(crate) fn now(&self) -> Instant {
        let _guard = self.tokio.enter();
        Instant::now()
    }

    // This method is called by [`Sim::run`], which iterates through all the
    // runtimes and ticks each one. The magic of this method is described in the
    // documentation for [`LocalSet::run_until`], but it may not be entirely
    // obvious how things fit together.
    //
    // A [`LocalSet`] tracks the tasks to run, which may in turn spawn more
    // tasks. `run_until` drives a top level task to completion, but not its
    // children. If you look below, you may be confused. The task we run here
    // just sleeps and has no children! However, it's the _same `LocalSet`_ that
    // is used to run software on the host.
    //
    // In this way, every time `tick` is called, the following unfolds:
    //
    // 1. Time advances on the runtime
    // 2. We schedule a new task that simply sleeps
    // 3. Other tasks on the `LocalSet` get a chance to run
    // 4. The sleep finishes
    // 5. The runtime pauses
    //
    // Returns whether the software has finished successfully or the error
    // that caused failure. Subsequent calls do not return the error as it is
    // expected to fail the simulation.
    pub(crate) fn tick(&mut self, duration: Duration) -> Result<bool> {
        // baton: the same `run_until(sleep(duration))`, with the `LocalSet`'s wakes noted.
        let sleep = {
            let _runtime = self.tokio.enter();
            sleep(duration)
        };
        let sleep = pin!(sleep);
        let run = pin!(self.local.run_until(TickSleep {
            sleep,
            wakes: self.local_wakes.clone(),
        }));
        self.tokio.block_on(NotingWakes {
            run,
            wakes: self.local_wakes.clone(),
        });

        // pull for software completion
        match &self.handle {
            Some(handle) if handle.is_finished() => {
                // Consume handle to extract task result
                if let Some(h) = self.handle.take() {
                    match self.tokio.block_on(h) {
                        // If the host was crashed the JoinError is cancelled, which
                        // needs to be handled to not fail the simulation.
                        Err(je) if je.is_cancelled() => {}
                        res => res??,
                    }
                };
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Ok(true),
        }
    }

    /// baton: whether a task of this host was woken and has not run yet: one of its
    /// `LocalSet` (see [`LocalWakes`]) or one spawned on its runtime and woken from outside it
    /// (by another host, the network, the simulation's loop: tokio's injection queue). A task
    /// woken by this host's own timer at the very end of a tick is not seen here when it was
    /// spawned on the runtime (tokio keeps those in a queue it does not count): timers are the
    /// simulator's to know.
    pub(crate) fn has_woken_task(&self) -> bool {
        self.local_wakes.woken.load(Ordering::Relaxed)
            || self.tokio.metrics().global_queue_depth() > 0
    }

    /// baton: how many times the host's `LocalSet` has been polled: twice per tick in which
    /// none of its tasks was woken before the tick's end (to start the tick, and when its sleep
    /// fired), once more each time some were. (The runtime's park count says nothing of the
    /// kind: its clock also stops where tokio's timer wheel moves far timers down a level.)
    pub(crate) fn local_polls(&self) -> u64 {
        self.local_wakes.polls.load(Ordering::Relaxed)
    }

    pub(crate) fn crash(&mut self) {
        if !self.is_host() {
            panic!("can only crash host's software");
        }

        if self.handle.take().is_some() {
            self.cancel_tasks();
        };
        // baton: nothing is left to run.
        self.local_wakes.woken.store(false, Ordering::Relaxed);
    }

    pub(crate) fn bounce(&mut self) {
        if !self.is_host() {
            panic!("can only bounce host's software");
        }

        self.cancel_tasks();

        if let Kind::Host { software } = &self.kind {
            let handle = with(&self.tokio, &self.local, || {
                tokio::task::spawn_local(software())
            });
            self.handle.replace(handle);
            // baton: the restarted software has not run yet.
            self.local_wakes.woken.store(true, Ordering::Relaxed);
        };
    }

    /// Cancel all tasks within the [`Rt`] by dropping the current tokio
    /// [`Runtime`].
    ///
    /// Dropping the runtime blocks the calling thread until all futures have
    /// completed, which is desired here to ensure host software completes and
    /// all resources are dropped.
    ///
    /// Both the [`Runtime`] and [`LocalSet`] are replaced with new instances.
    fn cancel_tasks(&mut self) {
        let (tokio, local) = init(&mut self.config);

        _ = mem::replace(&mut self.tokio, tokio);
        drop(mem::replace(&mut self.local, local));
    }
}

impl LocalWakes {
    /// Noting a wake already: a new host's software has not run yet.
    fn woken() -> Arc<Self> {
        let wakes = Arc::new(Self::default());
        wakes.woken.store(true, Ordering::Relaxed);
        wakes
    }
}

fn init(config: &mut Config) -> (Runtime, LocalSet) {
    let mut tokio_builder = tokio::runtime::Builder::new_current_thread();

    #[cfg(tokio_unstable)]
    tokio_builder.unhandled_panic(tokio::runtime::UnhandledPanic::ShutdownRuntime);

    if config.enable_io {
        tokio_builder.enable_io();
    }

    #[cfg(tokio_unstable)]
    if let Some(rng) = &mut config.rng {
        let bytes: [u8; 32] = rand::Rng::random(rng);
        let seed = tokio::runtime::RngSeed::from_bytes(&bytes);
        tokio_builder.rng_seed(seed);
    }

    let tokio = tokio_builder
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();

    tokio.block_on(async {
        // Sleep to "round" `Instant::now()` to the closest `ms`
        tokio::time::sleep(Duration::from_millis(1)).await;
    });

    (tokio, new_local())
}

fn new_local() -> LocalSet {
    #[cfg(not(tokio_unstable))]
    let local = LocalSet::new();

    #[cfg(tokio_unstable)]
    let mut local = LocalSet::new();

    #[cfg(tokio_unstable)]
    local.unhandled_panic(tokio::runtime::UnhandledPanic::ShutdownRuntime);

    local
}

fn with<R>(tokio: &Runtime, local: &LocalSet, f: impl FnOnce() -> R) -> R {
    tokio.block_on(async { local.run_until(async { f() }).await })
}
