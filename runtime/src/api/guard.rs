//! What a listener lets in, decided without IO: which connections it keeps open ([`Slots`]),
//! which unauthenticated WebSockets it holds ([`Pool`]), and which `Host` and `Origin` it
//! answers to ([`Hosts`]). The server loop (`api::server`) and the handlers carry the decisions
//! out; everything here is a plain value and is tested without sockets.
//!
//! Why: a client that opens a connection and sends half a request costs the daemon a file
//! descriptor for as long as it waits. Without a bound a thousand of them (no token needed) used
//! up the descriptors of the common `ulimit -n 1024`, and the REST API and the app channel stopped
//! answering (issue 20). Each listener now has its own cap, so a flood on one never takes the
//! descriptors another needs, and a connection that has no request in flight is the first to go
//! when a new one needs its place, so a real client still gets in during a flood. A browser page
//! from anywhere can reach a loopback port (DNS rebinding gives it a name that resolves to
//! 127.0.0.1), so the API answers only to the names of its listener, and never to another origin.
//!
//! Invariant: a listener holds at most its [`Limits::connections`] connections (and, where
//! there is a per-peer cap, at most that many of one peer's); a connection with a request in
//! flight is never evicted.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Longest a connection may take to send a request's head (request line and headers), counted
/// from when it is ready for one: just opened, or its previous answer sent. A client that sends
/// half a request and waits is closed then, and so is a keep-alive connection left idle (hyper
/// runs the one timer for both: see [`KEEP_ALIVE_IDLE_MS`]). Ten seconds is far more than any
/// client on loopback or a LAN needs to send a few hundred bytes.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Longest a keep-alive connection may sit idle between requests. The same timer as
/// [`HEADER_READ_TIMEOUT_MS`] enforces it (hyper starts it whenever a connection waits for a
/// request head), so the two are equal by construction. Long polls are not idle: a request in
/// flight has no such limit.
pub const KEEP_ALIVE_IDLE_MS: u64 = HEADER_READ_TIMEOUT_MS;

/// Longest a listener waits, after evicting a connection, for it to close before it accepts the
/// next: its descriptor is released first, so a flood that keeps reconnecting never holds more
/// descriptors than the caps say (without the wait, evicted sockets closed only when their task
/// next ran, and 829 of 1,024 were open at a peak). A connection slow to end delays the listener
/// this long at most.
pub const EVICTED_CLOSE_WAIT_MS: u64 = 1_000;
/// Connections the loopback API listener keeps open at once. With [`PHONE_CONNECTIONS_MAX`]
/// and [`APP_CONNECTIONS_MAX`] this is 448 descriptors at most, under half of the common
/// `ulimit -n 1024`: the rest is the agents' terminals, the state files and git's.
pub const API_CONNECTIONS_MAX: usize = 256;
/// Connections the phone listener (on every interface) keeps open at once.
pub const PHONE_CONNECTIONS_MAX: usize = 128;
/// Connections one peer address may keep open on the phone listener: a page needs a handful
/// (its WebSocket, a few asset requests), so one machine on the LAN cannot take them all.
pub const PHONE_PEER_CONNECTIONS_MAX: usize = 16;
/// Connections the app channel (the owner-only Unix socket) keeps open at once.
pub const APP_CONNECTIONS_MAX: usize = 64;
/// Unauthenticated WebSockets a listener holds at once (each for at most the auth window,
/// `core::ws::WS_AUTH_WINDOW_MS`). They have a pool of their own: tokenless upgrades from a web
/// page never take an authenticated client's place (`core::ws::WS_CONNECTIONS_MAX`).
pub const WS_UNAUTHENTICATED_MAX: usize = 8;
/// Unauthenticated WebSockets one peer address may hold on the phone listener.
pub const WS_UNAUTHENTICATED_PEER_MAX: usize = 2;

/// A listener's caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub connections: usize,
    /// Connections open at once from one peer address (`None`: no such cap).
    pub connections_per_peer: Option<usize>,
    /// Unauthenticated WebSockets at once.
    pub ws_unauthenticated: usize,
    /// Unauthenticated WebSockets at once from one peer address.
    pub ws_unauthenticated_per_peer: Option<usize>,
}

impl Limits {
    /// The loopback API listener's: every client there is this machine.
    pub const API: Limits = Limits {
        connections: API_CONNECTIONS_MAX,
        connections_per_peer: None,
        ws_unauthenticated: WS_UNAUTHENTICATED_MAX,
        ws_unauthenticated_per_peer: None,
    };
    /// The phone listener's: reachable from the LAN, so each peer has a share.
    pub const PHONE: Limits = Limits {
        connections: PHONE_CONNECTIONS_MAX,
        connections_per_peer: Some(PHONE_PEER_CONNECTIONS_MAX),
        ws_unauthenticated: WS_UNAUTHENTICATED_MAX,
        ws_unauthenticated_per_peer: Some(WS_UNAUTHENTICATED_PEER_MAX),
    };
    /// The app channel's (its WebSockets are the app's own, on an owner-only socket).
    pub const APP: Limits = Limits {
        connections: APP_CONNECTIONS_MAX,
        connections_per_peer: None,
        ws_unauthenticated: WS_UNAUTHENTICATED_MAX,
        ws_unauthenticated_per_peer: None,
    };
}

/// What [`Slots::admit`] decided for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Open, as this slot.
    Open(u64),
    /// Open as `slot`, once `evict` (idle: no request in flight) is closed to make room.
    OpenEvicting {
        /// The new connection's slot.
        slot: u64,
        /// The connection to close.
        evict: u64,
    },
    /// Full of connections with requests in flight: close the new one at once.
    Refuse,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    peer: Option<IpAddr>,
    /// Requests in flight.
    busy: usize,
}

/// The connections one listener has open. Slots are numbered in the order they opened, so the
/// oldest idle one is the first evicted.
#[derive(Debug)]
pub struct Slots {
    limits: Limits,
    open: BTreeMap<u64, Slot>,
    next: u64,
}

impl Slots {
    /// None open yet.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Slots {
            limits,
            open: BTreeMap::new(),
            next: 0,
        }
    }

    /// A connection from `peer` arrived: open it, make room for it by closing the oldest idle
    /// connection (of that peer, when the peer is at its own cap), or refuse it.
    pub fn admit(&mut self, peer: Option<IpAddr>) -> Admit {
        let of_peer = |slot: &Slot| peer.is_some() && slot.peer == peer;
        let peer_full = self.limits.connections_per_peer.is_some_and(|cap| {
            peer.is_some() && self.open.values().filter(|s| of_peer(s)).count() >= cap
        });
        let evict = if peer_full {
            let found = self.oldest_idle(|slot| of_peer(slot));
            let Some(found) = found else {
                return Admit::Refuse;
            };
            Some(found)
        } else if self.open.len() >= self.limits.connections {
            // The peer holding the most pays first: many sources flooding a listener evict
            // each other before they reach a peer with a connection or two.
            let busiest = self.busiest_peer();
            let found = self
                .oldest_idle(|slot| slot.peer == busiest)
                .or_else(|| self.oldest_idle(|_| true));
            let Some(found) = found else {
                return Admit::Refuse;
            };
            Some(found)
        } else {
            None
        };
        if let Some(evict) = evict {
            self.open.remove(&evict);
        }
        let slot = self.next;
        self.next += 1;
        self.open.insert(slot, Slot { peer, busy: 0 });
        match evict {
            Some(evict) => Admit::OpenEvicting { slot, evict },
            None => Admit::Open(slot),
        }
    }

    /// The peer with the most connections open (the first to open one, among equals).
    fn busiest_peer(&self) -> Option<IpAddr> {
        let mut held: BTreeMap<Option<IpAddr>, (usize, u64)> = BTreeMap::new();
        for (id, slot) in &self.open {
            let entry = held.entry(slot.peer).or_insert((0, *id));
            entry.0 += 1;
        }
        held.into_iter()
            .max_by_key(|(_, (count, first))| (*count, std::cmp::Reverse(*first)))
            .and_then(|(peer, _)| peer)
    }

    fn oldest_idle(&self, mut also: impl FnMut(&Slot) -> bool) -> Option<u64> {
        self.open
            .iter()
            .find(|(_, slot)| slot.busy == 0 && also(slot))
            .map(|(id, _)| *id)
    }

    /// `slot` started a request.
    pub fn busy(&mut self, slot: u64) {
        if let Some(slot) = self.open.get_mut(&slot) {
            slot.busy += 1;
        }
    }

    /// `slot` answered a request.
    pub fn idle(&mut self, slot: u64) {
        if let Some(slot) = self.open.get_mut(&slot) {
            slot.busy = slot.busy.saturating_sub(1);
        }
    }

    /// `slot` closed (or was evicted: then this does nothing).
    pub fn close(&mut self, slot: u64) {
        self.open.remove(&slot);
    }

    /// Connections open now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// A pool of places with a cap, and a cap per peer address: the unauthenticated WebSockets.
#[derive(Debug)]
pub struct Pool {
    total: usize,
    per_peer: Option<usize>,
    taken: usize,
    by_peer: BTreeMap<IpAddr, usize>,
}

impl Pool {
    /// An empty pool of `total` places, at most `per_peer` of them for one peer.
    #[must_use]
    pub fn new(total: usize, per_peer: Option<usize>) -> Self {
        Pool {
            total,
            per_peer,
            taken: 0,
            by_peer: BTreeMap::new(),
        }
    }

    /// Takes a place for `peer`; `false` (and nothing changes) when the pool, or the peer's
    /// share, is full.
    pub fn take(&mut self, peer: Option<IpAddr>) -> bool {
        if self.taken >= self.total {
            return false;
        }
        if let (Some(cap), Some(peer)) = (self.per_peer, peer) {
            let held = self.by_peer.entry(peer).or_default();
            if *held >= cap {
                return false;
            }
            *held += 1;
        }
        self.taken += 1;
        true
    }

    /// Gives back a place `peer` took.
    pub fn give(&mut self, peer: Option<IpAddr>) {
        self.taken = self.taken.saturating_sub(1);
        if let (Some(_), Some(peer)) = (self.per_peer, peer)
            && let Some(held) = self.by_peer.get_mut(&peer)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.by_peer.remove(&peer);
            }
        }
    }

    /// Places taken now.
    #[must_use]
    pub fn taken(&self) -> usize {
        self.taken
    }
}

/// The `Host` values a listener answers to: its names (for loopback: `localhost`, `127.0.0.1`,
/// `[::1]`), with its port; and, for a listener on every interface, the address the connection
/// arrived at (the phone typed it, or scanned it from the QR code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    names: Vec<String>,
    port: u16,
    own_address: bool,
}

/// The loopback names every listener answers to.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Why a request is refused before anything else is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// Its `Host` does not name this listener (421).
    Host,
    /// It carries an `Origin` other than the page's own (403).
    Origin,
}

impl Hosts {
    /// The loopback listener on `port`.
    #[must_use]
    pub fn loopback(port: u16) -> Self {
        Hosts {
            names: LOOPBACK_NAMES.iter().map(|&n| n.to_owned()).collect(),
            port,
            own_address: false,
        }
    }

    /// A listener on every interface at `port`: loopback's names and the address each
    /// connection arrived at.
    #[must_use]
    pub fn every_interface(port: u16) -> Self {
        Hosts {
            own_address: true,
            ..Hosts::loopback(port)
        }
    }

    /// The same, answering to `name` too (the simulator's daemon host is called `daemon`).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.names.push(name.to_ascii_lowercase());
        self
    }

    /// Whether `host` (a `Host` header's value) names this listener, for a connection that
    /// arrived at `local`. A name without a port is taken for loopback's names (the MCP
    /// processes of earlier versions send `host: 127.0.0.1`; a browser always names the port it
    /// connected to unless it is 80, which is never this listener's).
    #[must_use]
    pub fn names(&self, host: &str, local: Option<IpAddr>) -> bool {
        let host = host.to_ascii_lowercase();
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port))
                if !name.is_empty() && (!name.contains(':') || name.ends_with(']')) =>
            {
                match port.parse::<u16>() {
                    Ok(port) => (name.to_owned(), Some(port)),
                    Err(_) => return false,
                }
            }
            _ => (host.clone(), None),
        };
        if port.is_some_and(|port| port != self.port) {
            return false;
        }
        if self.names.contains(&name) {
            return true;
        }
        // The address the connection arrived at, only with the port (a browser names it).
        let arrived = local.filter(|_| self.own_address && port.is_some());
        arrived.is_some_and(|local| match local {
            IpAddr::V4(v4) => name == v4.to_string(),
            IpAddr::V6(v6) => name == format!("[{v6}]"),
        })
    }

    /// Whether a request with `host` and `origin` headers (as sent; `None` when absent, or sent
    /// more than once) arriving at `local` is served. A request without a `Host` is refused; one
    /// with an `Origin` is served only when that origin is `http://` and its own `Host`: the
    /// page this listener served.
    ///
    /// # Errors
    /// Which of the two is foreign.
    pub fn check(
        &self,
        host: Option<&[u8]>,
        origin: Option<&[u8]>,
        local: Option<IpAddr>,
    ) -> Result<(), Foreign> {
        let host = host
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| self.names(h, local))
            .ok_or(Foreign::Host)?;
        match origin {
            None => Ok(()),
            Some(origin) => {
                let own = format!("http://{host}");
                if origin.eq_ignore_ascii_case(own.as_bytes()) {
                    Ok(())
                } else {
                    Err(Foreign::Origin)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::{Admit, Foreign, Hosts, Limits, Pool, Slots};

    const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));

    fn limits(connections: usize, per_peer: Option<usize>) -> Limits {
        Limits {
            connections,
            connections_per_peer: per_peer,
            ..Limits::API
        }
    }

    #[test]
    fn a_full_listener_evicts_its_oldest_idle_connection_and_never_a_busy_one() {
        let mut slots = Slots::new(limits(2, None));
        assert_eq!(slots.admit(None), Admit::Open(0));
        assert_eq!(slots.admit(None), Admit::Open(1));
        slots.busy(0);
        assert_eq!(slots.admit(None), Admit::OpenEvicting { slot: 2, evict: 1 });
        assert_eq!(slots.len(), 2);
        slots.busy(2);
        assert_eq!(slots.admit(None), Admit::Refuse, "every slot has a request");
        slots.idle(0);
        assert_eq!(slots.admit(None), Admit::OpenEvicting { slot: 3, evict: 0 });
        slots.close(2);
        slots.close(0); // already evicted: nothing happens
        assert_eq!(slots.len(), 1);
        assert_eq!(slots.admit(None), Admit::Open(4));
    }

    #[test]
    fn a_peer_at_its_cap_makes_room_among_its_own_connections_only() {
        let other = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 21));
        let mut slots = Slots::new(limits(10, Some(2)));
        assert_eq!(slots.admit(Some(other)), Admit::Open(0));
        assert_eq!(slots.admit(Some(LAN)), Admit::Open(1));
        assert_eq!(slots.admit(Some(LAN)), Admit::Open(2));
        assert_eq!(
            slots.admit(Some(LAN)),
            Admit::OpenEvicting { slot: 3, evict: 1 }
        );
        slots.busy(2);
        slots.busy(3);
        assert_eq!(slots.admit(Some(LAN)), Admit::Refuse);
        assert_eq!(slots.admit(Some(other)), Admit::Open(4));
    }

    #[test]
    fn a_full_listener_makes_room_among_the_busiest_peers_connections() {
        let flooder = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 66));
        let mut slots = Slots::new(limits(4, Some(3)));
        assert_eq!(slots.admit(Some(LAN)), Admit::Open(0));
        for slot in 1..=3 {
            assert_eq!(slots.admit(Some(flooder)), Admit::Open(slot));
        }
        // A third peer arrives at a full listener: the flooder's oldest idle goes, not the
        // older connection of the peer holding one.
        let third = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 30));
        assert_eq!(
            slots.admit(Some(third)),
            Admit::OpenEvicting { slot: 4, evict: 1 }
        );
        // The flooder's connections all busy: the oldest idle of anyone's makes room.
        slots.busy(2);
        slots.busy(3);
        assert_eq!(
            slots.admit(Some(third)),
            Admit::OpenEvicting { slot: 5, evict: 0 }
        );
    }

    #[test]
    fn a_pool_has_a_cap_and_a_share_per_peer() {
        let mut pool = Pool::new(3, Some(2));
        assert!(pool.take(Some(LAN)));
        assert!(pool.take(Some(LAN)));
        assert!(!pool.take(Some(LAN)), "the peer's share is full");
        assert!(pool.take(None));
        assert!(!pool.take(None), "the pool is full");
        pool.give(Some(LAN));
        assert!(pool.take(Some(LAN)));
        assert_eq!(pool.taken(), 3);
    }

    #[test]
    fn the_loopback_listener_answers_to_its_names_and_port_only() {
        let hosts = Hosts::loopback(7777);
        for good in [
            "127.0.0.1:7777",
            "localhost:7777",
            "LOCALHOST:7777",
            "[::1]:7777",
            "127.0.0.1",
            "localhost",
        ] {
            assert_eq!(
                hosts.check(Some(good.as_bytes()), None, None),
                Ok(()),
                "{good}"
            );
        }
        for bad in [
            "evil.example",
            "evil.example:7777",
            "127.0.0.1:7778",
            "127.0.0.1:x",
            "localhost.evil.example:7777",
            "192.168.1.20:7777",
            "",
        ] {
            let local = Some(LAN);
            assert_eq!(
                hosts.check(Some(bad.as_bytes()), None, local),
                Err(Foreign::Host),
                "{bad}"
            );
        }
        assert_eq!(hosts.check(None, None, None), Err(Foreign::Host));
    }

    #[test]
    fn the_phone_listener_answers_to_the_address_the_connection_arrived_at() {
        let hosts = Hosts::every_interface(7801);
        let host = |h: &str, local| hosts.check(Some(h.as_bytes()), None, local);
        assert_eq!(host("192.168.1.20:7801", Some(LAN)), Ok(()));
        assert_eq!(host("192.168.1.20", Some(LAN)), Err(Foreign::Host));
        assert_eq!(host("192.168.1.21:7801", Some(LAN)), Err(Foreign::Host));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(host("[::1]:7801", Some(v6)), Ok(()));
        assert_eq!(host("127.0.0.1:7801", Some(LAN)), Ok(()));
        assert_eq!(
            Hosts::loopback(7801).check(Some(b"192.168.1.20:7801"), None, Some(LAN)),
            Err(Foreign::Host),
            "only a listener on every interface names its arrival address"
        );
    }

    #[test]
    fn an_origin_is_served_only_when_it_is_the_page_of_the_same_host() {
        let hosts = Hosts::every_interface(7801);
        let check = |origin: &str| {
            hosts.check(
                Some(b"192.168.1.20:7801"),
                Some(origin.as_bytes()),
                Some(LAN),
            )
        };
        assert_eq!(check("http://192.168.1.20:7801"), Ok(()));
        for foreign in [
            "http://evil.example",
            "http://192.168.1.20:7802",
            "https://192.168.1.20:7801",
            "null",
            "http://localhost:7801",
        ] {
            assert_eq!(check(foreign), Err(Foreign::Origin), "{foreign}");
        }
        assert_eq!(
            Hosts::loopback(7777)
                .with_name("daemon")
                .check(Some(b"daemon:7777"), None, None),
            Ok(())
        );
    }
}
