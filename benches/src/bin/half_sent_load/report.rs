//! What a run measured, and the table printed from it: probe answers and latencies per phase,
//! each listener's flood connections by fate, the daemon's descriptors and its exit.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_runtime::api::guard::{
    API_CONNECTIONS_MAX, APP_CONNECTIONS_MAX, HEADER_READ_TIMEOUT_MS, PHONE_CONNECTIONS_MAX,
    PHONE_PEER_CONNECTIONS_MAX,
};

use super::flood::Fate;
use super::probe::Sample;
use super::{Args, TIMEOUT_SLACK_MS};

/// Which listener a flood connection went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Listener {
    Api,
    Phone,
}

/// When a probe was sent: before the flood, while it is held, or once the header-read timeout
/// has closed what the daemon kept of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Quiet,
    Held,
    PastTimeout,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Quiet, Phase::Held, Phase::PastTimeout];

    fn of(at_ms: i64, timeout_ms: i64) -> Phase {
        if at_ms < 0 {
            Phase::Quiet
        } else if at_ms < timeout_ms {
            Phase::Held
        } else {
            Phase::PastTimeout
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Quiet => "quiet (before)",
            Phase::Held => "flood, held",
            Phase::PastTimeout => "flood, past timeout",
        }
    }
}

/// Everything one run measured.
pub(super) struct Report {
    pub(super) fd_limit: Option<u64>,
    pub(super) hold: Duration,
    pub(super) surfaces: Vec<(&'static str, Vec<Sample>)>,
    pub(super) fates: BTreeMap<Listener, Vec<Fate>>,
    pub(super) fds: Vec<(i64, usize)>,
    pub(super) log_fd_errors: usize,
    pub(super) exit: String,
    /// `/proc/loadavg`'s 1-minute figure at the start and at the end: the figures are only as
    /// quiet as the machine.
    pub(super) load: (String, String),
}
/// The machine's 1-minute load average.
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The `q`-quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )] // a rank within a short list
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1_000.0)
}

impl Report {
    pub(super) fn print(&self, args: &Args, own_limit: u64) {
        let timeout = HEADER_READ_TIMEOUT_MS;
        println!(
            "half-sent load: {} half-sent requests ({} API from 127.0.0.1, {} phone from {} addresses 127.0.1.x){}",
            args.api + args.phone,
            args.api,
            args.phone,
            args.phone_sources,
            if args.reopen {
                ", each reopened whenever closed"
            } else {
                ""
            },
        );
        println!(
            "daemon: ulimit -n {} (read back: {}); caps API {API_CONNECTIONS_MAX}, phone {PHONE_CONNECTIONS_MAX} ({PHONE_PEER_CONNECTIONS_MAX} per peer), app {APP_CONNECTIONS_MAX}; header-read timeout {timeout} ms; flood held {} ms; generator fd limit {own_limit}",
            args.fd_limit,
            self.fd_limit
                .map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
            self.hold.as_millis(),
        );
        println!(
            "machine: {} cores, 1-minute load average {} at the start, {} at the end",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            self.load.0,
            self.load.1,
        );
        println!();
        println!(
            "{:<32} {:<20} {:>13} {:>7} {:>7} {:>7} {:>9}  failures",
            "probe", "phase", "answered", "p50 ms", "p99 ms", "max ms", "max at t"
        );
        let timeout_ms = i64::try_from(timeout).unwrap_or(i64::MAX);
        for (name, samples) in &self.surfaces {
            for phase in Phase::ALL {
                let chosen: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| Phase::of(s.at_ms, timeout_ms) == phase)
                    .collect();
                let mut latencies: Vec<Duration> = chosen
                    .iter()
                    .filter(|s| s.failure.is_none())
                    .map(|s| s.latency)
                    .collect();
                latencies.sort_unstable();
                let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
                for failure in chosen.iter().filter_map(|s| s.failure.as_deref()) {
                    *failures.entry(failure).or_default() += 1;
                }
                let failures: Vec<String> = failures
                    .iter()
                    .map(|(why, n)| format!("{n}× {why}"))
                    .collect();
                let rate = if chosen.is_empty() {
                    0.0
                } else {
                    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                    let rate = latencies.len() as f64 * 100.0 / chosen.len() as f64;
                    rate
                };
                let slowest = chosen
                    .iter()
                    .filter(|s| s.failure.is_none())
                    .max_by_key(|s| s.latency)
                    .map_or_else(|| "-".to_owned(), |s| format!("{} ms", s.at_ms));
                println!(
                    "{:<32} {:<20} {:>13} {:>7} {:>7} {:>7} {:>9}  {}",
                    name,
                    phase.name(),
                    format!("{}/{} {rate:.0}%", latencies.len(), chosen.len()),
                    ms(quantile(&latencies, 0.50)),
                    ms(quantile(&latencies, 0.99)),
                    ms(latencies.last().copied().unwrap_or_default()),
                    slowest,
                    if failures.is_empty() {
                        "-".to_owned()
                    } else {
                        failures.join("; ")
                    }
                );
            }
        }
        println!();
        println!(
            "{:<8} {:>9} {:>10} {:>13} {:>13} {:>12} {:>11}  lifetime of those closed at the timeout (min/p50/max ms)",
            "flood",
            "attempts",
            "connected",
            "closed early",
            "closed at to",
            "closed later",
            "open at end",
        );
        let slack = Duration::from_millis(TIMEOUT_SLACK_MS);
        let timeout = Duration::from_millis(timeout);
        for (listener, fates) in &self.fates {
            let connected = fates
                .iter()
                .filter(|f| !matches!(f, Fate::NotConnected))
                .count();
            let closed: Vec<Duration> = fates
                .iter()
                .filter_map(|f| match f {
                    Fate::Closed { after, .. } => Some(*after),
                    _ => None,
                })
                .collect();
            let early = closed.iter().filter(|d| **d + slack < timeout).count();
            let mut at_timeout: Vec<Duration> = closed
                .iter()
                .copied()
                .filter(|d| *d + slack >= timeout && *d <= timeout + slack)
                .collect();
            at_timeout.sort_unstable();
            let later = closed.iter().filter(|d| **d > timeout + slack).count();
            let open = fates.iter().filter(|f| matches!(f, Fate::Open)).count();
            let answered = fates
                .iter()
                .filter(|f| matches!(f, Fate::Closed { answered: true, .. }))
                .count();
            let lifetime = if at_timeout.is_empty() {
                "-".to_owned()
            } else {
                format!(
                    "{}/{}/{}",
                    ms(at_timeout[0]),
                    ms(quantile(&at_timeout, 0.5)),
                    ms(at_timeout[at_timeout.len() - 1])
                )
            };
            let answered = if answered == 0 {
                String::new()
            } else {
                format!(" ({answered} got bytes before the close)")
            };
            println!(
                "{:<8} {:>9} {:>10} {:>13} {:>13} {:>12} {:>11}  {lifetime}{answered}",
                format!("{listener:?}"),
                fates.len(),
                connected,
                early,
                at_timeout.len(),
                later,
                open,
            );
        }
        println!();
        let before = self
            .fds
            .iter()
            .filter(|(at, _)| *at < 0)
            .map(|(_, n)| *n)
            .max();
        let peak = self.fds.iter().max_by_key(|(_, n)| *n);
        let last = self.fds.last();
        let show = |n: Option<usize>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        println!(
            "daemon open fds: quiet {}, peak {}{}, at the hold's end {} (limit {}); \"Too many open files\" lines in its log: {}; {}",
            show(before),
            show(peak.map(|(_, n)| *n)),
            peak.map_or_else(String::new, |(at, _)| format!(" at t={at} ms")),
            show(last.map(|(_, n)| *n)),
            args.fd_limit,
            self.log_fd_errors,
            self.exit,
        );
    }
}
