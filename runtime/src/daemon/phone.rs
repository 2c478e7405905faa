//! Phone access: a second listener for the REST API and WebSocket, reachable from the LAN,
//! opened only when asked (`baton phone`, the app's "start phone access"), with a mobile token
//! of its own that reads the agents and writes nothing (REST spec §1.5, §3.6).
//!
//! The loopback listener the MCP processes use is separate and stays as it is: starting or
//! stopping phone access never changes a coordinator's URL or token (the reference rebinds its
//! one server and so must refuse while a coordinator is active; Baton need not). Stopping
//! revokes the token first, so every phone connection is refused or closed, then ends the
//! listener. Each start makes a new token: an old URL opens nothing.
//!
//! Phone access outlives a restart of the daemon: while it is on, `phone.json` (0600, in the
//! state directory) holds its interfaces, port and token, and the next start opens it again
//! with the same token, on the same port when it is free, so a phone's open page reconnects by
//! itself. Stopping it removes the file; a shutdown keeps it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::registry::RegistryDoor;
use crate::api::guard::{Hosts, Limits};
use crate::api::listen::{self, Interfaces, Port};
use crate::api::{ApiState, Listening};
use crate::core::auth::Secret;
use crate::ports::{Entropy, FileMode, Files};

/// The file phone access is kept in while it is on, in the state directory.
pub const PHONE_FILE: &str = "phone.json";
/// Largest `phone.json` read back; anything longer is not Baton's.
pub const PHONE_FILE_BYTES_MAX: usize = 4_096;

/// The ports phone access tries, in order, when none is asked for: after the API's own range.
pub const PHONE_PORTS: (u16, u16) = (7801, 7820);
/// How long stopping phone access lets its requests in flight finish (the API's own grace).
pub const PHONE_STOP_MS_MAX: u64 = crate::api::SHUTDOWN_GRACE_MS + 2_000;

/// Phone access as the app is told of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneInfo {
    /// The URL to open on the phone, with its token.
    pub url: String,
    /// The address it listens on.
    pub address: String,
    /// Its port.
    pub port: u16,
}

struct Running {
    /// On loopback only (else every interface).
    loopback: bool,
    info: PhoneInfo,
    stop: crate::api::latest::Publisher<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Phone access: off until started. Cheap to clone.
#[derive(Clone)]
pub struct Phone {
    api: ApiState,
    registry: RegistryDoor,
    entropy: Arc<dyn Entropy>,
    files: Arc<dyn Files>,
    /// The state directory, which holds it.
    dir: PathBuf,
    /// Where phone access is kept while on ([`PHONE_FILE`]).
    path: PathBuf,
    running: Arc<Mutex<Option<Running>>>,
}

/// Phone access as `phone.json` keeps it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Kept {
    format: u32,
    loopback: bool,
    port: u16,
    token: String,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone").finish_non_exhaustive()
    }
}

/// Why phone access could not start.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// No port could be bound.
    #[error(transparent)]
    Bind(#[from] listen::BindError),
    /// `phone.json` could not be written.
    #[error("keeping phone access in {PHONE_FILE}: {0}")]
    Files(String),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    Stopped,
    /// Phone access is off: there is no link to replace.
    #[error("phone access is off: there is no link to replace (start it with baton phone)")]
    Off,
}

impl Phone {
    /// Phone access for the API of `api`, its token published through `registry`, kept in
    /// `state_dir`'s [`PHONE_FILE`] while on.
    #[must_use]
    pub fn new(
        api: ApiState,
        registry: RegistryDoor,
        entropy: Arc<dyn Entropy>,
        files: Arc<dyn Files>,
        state_dir: &std::path::Path,
    ) -> Self {
        Phone {
            api,
            registry,
            entropy,
            files,
            dir: state_dir.to_owned(),
            path: state_dir.join(PHONE_FILE),
            running: Arc::default(),
        }
    }

    /// Opens phone access again as the last run left it on (same token; same port if free,
    /// else one of [`PHONE_PORTS`]). A file that is not Baton's is removed; failures are logged
    /// and leave phone access off.
    pub async fn resume(&self) {
        let kept = match self.files.read(&self.dir, &self.path).await {
            Ok(None) => return,
            Ok(Some(bytes)) if bytes.len() <= PHONE_FILE_BYTES_MAX => {
                serde_json::from_slice::<Kept>(&bytes)
                    .ok()
                    .filter(|kept| kept.format == 1)
            }
            Ok(Some(_)) => None,
            Err(error) => {
                tracing::warn!(%error, "reading the phone access kept from the last run failed");
                return;
            }
        };
        let Some(kept) = kept else {
            tracing::warn!("{PHONE_FILE} is not Baton's phone access: removed");
            let _ = self.files.remove(&self.dir, &self.path).await;
            return;
        };
        let token = Secret::from_text(&kept.token);
        let mut started = self
            .open(kept.loopback, Some(kept.port), token.clone())
            .await;
        if matches!(started, Err(PhoneError::Bind(_))) {
            started = self.open(kept.loopback, None, token).await;
        }
        match started {
            Ok(info) => tracing::info!(address = %info.address, "phone access resumed"),
            Err(error) => tracing::warn!(%error, "phone access could not be resumed"),
        }
    }

    /// Starts phone access (or tells the running one's URL again): on every interface, or on
    /// loopback only when `loopback` (for a browser on this machine, and tests); on `port`, or
    /// the first free one of [`PHONE_PORTS`].
    ///
    /// # Errors
    /// No port could be bound, or the daemon is stopping. Nothing changed then.
    pub async fn start(&self, loopback: bool, port: Option<u16>) -> Result<PhoneInfo, PhoneError> {
        self.open(loopback, port, self.new_token()).await
    }

    /// A fresh mobile token.
    fn new_token(&self) -> Secret {
        let mut bytes = [0u8; crate::core::auth::TOKEN_BYTES];
        self.entropy.fill(&mut bytes);
        Secret::from_random(bytes)
    }

    /// Keeps phone access (`loopback`, on `port`, with `token`) in [`PHONE_FILE`], 0600, for the
    /// next run.
    async fn keep(&self, loopback: bool, port: u16, token: &Secret) -> Result<(), PhoneError> {
        let kept = Kept {
            format: 1,
            loopback,
            port,
            token: token.expose().to_owned(),
        };
        let bytes = serde_json::to_vec(&kept).unwrap_or_default();
        self.files
            .write_atomic(&self.dir, &self.path, &bytes, FileMode::OwnerOnly)
            .await
            .map_err(|error| PhoneError::Files(error.to_string()))
    }

    /// Starts phone access with `token`, kept in [`PHONE_FILE`] before it is announced (a
    /// failure to keep it undoes the start).
    async fn open(
        &self,
        loopback: bool,
        port: Option<u16>,
        token: Secret,
    ) -> Result<PhoneInfo, PhoneError> {
        let mut running = self.running.lock().await;
        if let Some(running) = running.as_ref() {
            return Ok(running.info.clone());
        }
        let interfaces = if loopback {
            Interfaces::Loopback
        } else {
            Interfaces::All
        };
        let port = port.map_or(
            Port::Range {
                first: PHONE_PORTS.0,
                last: PHONE_PORTS.1,
            },
            Port::Exactly,
        );
        let listener = listen::bind_tcp(interfaces, port).await?;
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        self.keep(loopback, bound, &token).await?;
        let host = if loopback {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            lan_address()
        };
        let info = PhoneInfo {
            url: format!("http://{host}:{bound}/?token={}", token.expose()),
            address: format!("{}:{bound}", if loopback { "127.0.0.1" } else { "0.0.0.0" }),
            port: bound,
        };
        if self.registry.set_mobile(Some(token)).await.is_err() {
            let _ = self.files.remove(&self.dir, &self.path).await;
            return Err(PhoneError::Stopped);
        }
        let (stop, stopped) = crate::api::latest::channel(false);
        let until = async move {
            let mut stopped = stopped;
            stopped.wait_for(|stop| *stop).await;
        };
        let hosts = if loopback {
            Hosts::loopback(bound)
        } else {
            Hosts::every_interface(bound)
        };
        let listening = Listening::new(hosts, Limits::PHONE);
        let server = tokio::spawn(crate::api::serve(
            listener,
            self.api.clone(),
            listening,
            until,
        ));
        tracing::info!(address = %info.address, "phone access started");
        *running = Some(Running {
            loopback,
            info: info.clone(),
            stop,
            server,
        });
        Ok(info)
    }

    /// Replaces the running phone access's token (a leaked link opens nothing any more): kept
    /// in [`PHONE_FILE`] first, then published, which closes every page that used the old one
    /// (4001). The listener stays.
    ///
    /// # Errors
    /// Phone access is off, the new token could not be kept (the old one stays in force), or the
    /// daemon is stopping.
    pub async fn rotate(&self) -> Result<PhoneInfo, PhoneError> {
        let mut running = self.running.lock().await;
        let Some(current) = running.as_mut() else {
            return Err(PhoneError::Off);
        };
        let token = self.new_token();
        self.keep(current.loopback, current.info.port, &token)
            .await?;
        self.registry
            .set_mobile(Some(token.clone()))
            .await
            .map_err(|_| PhoneError::Stopped)?;
        let base = current
            .info
            .url
            .split_once("?token=")
            .map_or(current.info.url.as_str(), |(base, _)| base)
            .to_owned();
        current.info.url = format!("{base}?token={}", token.expose());
        tracing::info!("phone link replaced");
        Ok(current.info.clone())
    }

    /// Stops phone access: the token is revoked (every phone connection is closed with 4001, so
    /// an open page says its link is no longer valid), then the listener ends, and it is no
    /// longer kept for the next run. `false` if it was off.
    pub async fn stop(&self) -> bool {
        let stopped = self.end(true).await;
        if let Err(error) = self.files.remove(&self.dir, &self.path).await {
            tracing::warn!(%error, "removing {PHONE_FILE} failed");
        }
        stopped
    }

    /// Ends phone access for a shutdown: the listener ends (its WebSockets with 1001, going
    /// away, so an open page reconnects to the next run), the token stays valid and kept.
    pub async fn close(&self) -> bool {
        self.end(false).await
    }

    async fn end(&self, revoke: bool) -> bool {
        let Some(running) = self.running.lock().await.take() else {
            return false;
        };
        if revoke {
            let _ = self.registry.set_mobile(None).await;
        }
        running.stop.publish(true);
        let mut server = running.server;
        let limit = std::time::Duration::from_millis(PHONE_STOP_MS_MAX);
        if crate::time::timeout(limit, &mut server).await.is_err() {
            server.abort();
        }
        tracing::info!(revoked = revoke, "phone access stopped");
        true
    }

    /// Phone access now, if it is on.
    pub async fn status(&self) -> Option<PhoneInfo> {
        self.running.lock().await.as_ref().map(|r| r.info.clone())
    }

    /// Authenticated WebSocket clients now (the phone's and the MCP processes' alike).
    #[must_use]
    pub fn connected_clients(&self) -> usize {
        self.api.connected_clients()
    }
}

/// This machine's address on its LAN: the one a packet to the outside would leave from (a UDP
/// socket's connect sends nothing); loopback when there is none.
fn lan_address() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        // TEST-NET-1 (RFC 5737): never routed anywhere real; nothing is sent.
        socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        Ok(socket.local_addr()?.ip())
    };
    probe()
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
