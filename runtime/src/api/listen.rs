//! Where the API listens in production: TCP on loopback (or on every IPv4 interface when phone
//! access asks for it) with the reference's port selection, and an owner-only Unix socket for
//! the app. [`super::serve`] takes any of them (and turmoil's listener in the simulator).
//!
//! Port selection (REST spec §1.4): a port asked for is taken or the bind fails (0 is an
//! ephemeral port); otherwise [`PORT_DEFAULT`] to [`PORT_LAST`] are tried in order, moving on
//! only while a port is in use, and any other error ends the search at once. URLs are built
//! from the port actually bound, never the one asked for. The range is defined in
//! [`crate::endpoints`], beside the app channel's socket name, for the clients to read too.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use tokio::net::TcpListener;

use crate::endpoints::{PORT_DEFAULT, PORT_LAST};

/// Which interfaces the API listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interfaces {
    /// `127.0.0.1` only: the MCP processes on this machine (the default).
    Loopback,
    /// Every IPv4 interface (`0.0.0.0`): phone access on the LAN was asked for.
    All,
}

impl Interfaces {
    const fn address(self) -> Ipv4Addr {
        match self {
            Interfaces::Loopback => Ipv4Addr::LOCALHOST,
            Interfaces::All => Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// Which port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// This one or fail (0: any free port).
    Exactly(u16),
    /// The first free one of `first..=last`.
    Range {
        /// Tried first.
        first: u16,
        /// Tried last.
        last: u16,
    },
}

impl Default for Port {
    /// [`PORT_DEFAULT`] to [`PORT_LAST`].
    fn default() -> Self {
        Port::Range {
            first: PORT_DEFAULT,
            last: PORT_LAST,
        }
    }
}

/// Why no listener could be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Every port of the range is in use.
    #[error("No free port found in range {first}–{last}")]
    NoFreePort {
        /// The range's first port.
        first: u16,
        /// The range's last port.
        last: u16,
    },
    /// The range is empty.
    #[error("the port range {first}–{last} is empty")]
    EmptyRange {
        /// Its first port.
        first: u16,
        /// Its last port.
        last: u16,
    },
    /// Binding failed for another reason.
    #[error("cannot listen on {address}: {source}")]
    Io {
        /// Where.
        address: String,
        /// Why.
        source: io::Error,
    },
}

/// Binds a TCP listener on `interfaces` at `port` (see the module documentation).
///
/// # Errors
/// See [`BindError`].
pub async fn bind_tcp(interfaces: Interfaces, port: Port) -> Result<TcpListener, BindError> {
    let address = interfaces.address();
    let io = |port: u16, source| BindError::Io {
        address: SocketAddr::from((address, port)).to_string(),
        source,
    };
    match port {
        Port::Exactly(port) => TcpListener::bind((address, port))
            .await
            .map_err(|source| io(port, source)),
        Port::Range { first, last } if first > last => Err(BindError::EmptyRange { first, last }),
        Port::Range { first, last } => {
            for port in first..=last {
                match TcpListener::bind((address, port)).await {
                    Ok(listener) => return Ok(listener),
                    Err(error) if error.kind() == io::ErrorKind::AddrInUse => {}
                    Err(source) => return Err(io(port, source)),
                }
            }
            Err(BindError::NoFreePort { first, last })
        }
    }
}

/// Where the phone finds the API: the addresses of this machine's interfaces (REST spec §1.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneUrls {
    /// The URL to show: the LAN's, else Tailscale's, else loopback's.
    pub url: String,
    /// On the LAN (Wi-Fi or wired), if an address is there.
    pub wifi_url: Option<String>,
    /// On Tailscale (a `100.` address), if one is there.
    pub tailscale_url: Option<String>,
}

/// The phone's URLs for `port` with `mobile_token`, from this machine's non-loopback IPv4
/// addresses in interface order: the first `100.*` is Tailscale's; the first that is neither
/// `100.*` nor `172.*` (taken for a container bridge) is the LAN's. Only the phone's token ever
/// goes into a URL.
#[must_use]
pub fn phone_urls(addresses: &[Ipv4Addr], port: u16, mobile_token: &str) -> PhoneUrls {
    let usable = || addresses.iter().filter(|a| !a.is_loopback());
    let tailscale = usable().find(|a| a.octets()[0] == 100);
    let wifi = usable().find(|a| !matches!(a.octets()[0], 100 | 172));
    let at = |address: &Ipv4Addr| format!("http://{address}:{port}?token={mobile_token}");
    PhoneUrls {
        url: at(wifi.or(tailscale).unwrap_or(&Ipv4Addr::LOCALHOST)),
        wifi_url: wifi.map(at),
        tailscale_url: tailscale.map(at),
    }
}

/// `url` with its `token` query parameter taken out, for a log line.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some("token"))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Binds the app's Unix socket at `path`, readable and writable by its owner only. A socket
/// file left there by a daemon that died (nobody answers on it) is replaced; a live one is not.
///
/// # Errors
/// Another process listens at `path`, something else is there, or binding failed.
#[cfg(unix)]
pub fn bind_unix(path: &Path) -> io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another daemon listens on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::{BindError, Interfaces, Port, bind_tcp, phone_urls, redact};

    #[tokio::test]
    async fn a_port_asked_for_is_taken_or_the_bind_fails() {
        let taken = bind_tcp(Interfaces::Loopback, Port::Exactly(0))
            .await
            .unwrap();
        let port = taken.local_addr().unwrap().port();
        assert_ne!(port, 0, "the port bound, not the one asked for");
        let error = bind_tcp(Interfaces::Loopback, Port::Exactly(port))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot listen on 127.0.0.1:{port}")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_range_moves_past_ports_in_use_and_says_when_none_is_free() {
        let taken = bind_tcp(Interfaces::Loopback, Port::Exactly(0))
            .await
            .unwrap();
        let port = taken.local_addr().unwrap().port();
        let none = bind_tcp(
            Interfaces::Loopback,
            Port::Range {
                first: port,
                last: port,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(none, BindError::NoFreePort { .. }), "{none}");
        assert_eq!(
            none.to_string(),
            format!("No free port found in range {port}–{port}")
        );
        if let Some(last) = port.checked_add(20) {
            let next = bind_tcp(Interfaces::Loopback, Port::Range { first: port, last })
                .await
                .unwrap();
            let bound = next.local_addr().unwrap().port();
            assert!(bound > port && bound <= last, "{bound} in {port}..={last}");
        }
        let empty = bind_tcp(Interfaces::Loopback, Port::Range { first: 9, last: 8 })
            .await
            .unwrap_err();
        assert!(matches!(empty, BindError::EmptyRange { .. }));
    }

    #[test]
    fn phone_urls_prefer_the_lan_then_tailscale_and_skip_bridges() {
        let lan = Ipv4Addr::new(192, 168, 1, 20);
        let tailnet = Ipv4Addr::new(100, 64, 0, 7);
        let bridge = Ipv4Addr::new(172, 17, 0, 1);
        let urls = phone_urls(&[Ipv4Addr::LOCALHOST, bridge, tailnet, lan], 7778, "tok");
        assert_eq!(urls.url, "http://192.168.1.20:7778?token=tok");
        assert_eq!(
            urls.wifi_url.as_deref(),
            Some("http://192.168.1.20:7778?token=tok")
        );
        assert_eq!(
            urls.tailscale_url.as_deref(),
            Some("http://100.64.0.7:7778?token=tok")
        );
        let only_tailnet = phone_urls(&[bridge, tailnet], 7777, "t");
        assert_eq!(only_tailnet.url, "http://100.64.0.7:7777?token=t");
        assert_eq!(only_tailnet.wifi_url, None);
        let nothing = phone_urls(&[bridge], 0, "t");
        assert_eq!(nothing.url, "http://127.0.0.1:0?token=t");
        assert_eq!((nothing.wifi_url, nothing.tailscale_url), (None, None));
    }

    #[test]
    fn redaction_takes_the_token_out_and_keeps_the_rest() {
        assert_eq!(redact("http://h:1?token=secret"), "http://h:1");
        assert_eq!(
            redact("http://h:1?a=1&token=secret&b=2"),
            "http://h:1?a=1&b=2"
        );
        assert_eq!(redact("http://h:1/ws"), "http://h:1/ws");
        assert_eq!(redact("http://h:1?tokens=x"), "http://h:1?tokens=x");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_app_socket_is_owner_only_and_a_live_one_is_not_taken_over() {
        use std::os::unix::fs::PermissionsExt;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = std::env::temp_dir().join(format!("baton-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.sock");
        let _ = std::fs::remove_file(&path);
        let listener = super::bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            super::bind_unix(&path).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        // The API serves on it like on any listener.
        let (_publish, latest) = super::super::latest::channel(super::super::Directory::default());
        let state = super::super::ApiState::new(latest, crate::engine::AgentFeed::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listening = super::super::Listening::loopback(0);
        let server = tokio::spawn(super::super::serve(
            listener,
            state,
            listening,
            async move {
                let _ = stopped.await;
            },
        ));
        let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        stream
            .write_all(b"GET /api/tasks HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        drop(std::fs::remove_file(&path));
        // A socket file nobody listens on (a daemon that died) is replaced.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(super::bind_unix(&path).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
