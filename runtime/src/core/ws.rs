//! The WebSocket protocol's decisions: what a client's frame says, and what a connection does
//! with it (REST spec §3), as pure functions the shell (`api::ws`) carries out.
//!
//! A connection is authenticated by a coordinator's token on the upgrade request (header or
//! `?token=`), or by a first message `{"type":"auth","token":…}` with a coordinator's or the
//! phone's token within [`WS_AUTH_WINDOW_MS`]. A done token never authenticates. Every frame,
//! text or binary, is read as UTF-8 JSON; one that is not a known message with well-typed
//! fields inside their limits is dropped without a reply, even before authentication.
//! Otherwise, in order: `auth` (re)authenticates or closes 4001; anything else from an
//! unauthenticated client closes 4001; the phone's `input`, `resize` and `kill` close 4003
//! (the phone is read-only, DESIGN); the rest is carried out.
//!
//! Where Baton departs from the reference: a coordinator's `input`, `resize` and `kill` reach
//! its own agents only (the reference let any coordinator-class client drive every agent, REST
//! spec §5.11); the desktop-only `spawn_task`, `list_projects` and `list_branches` are not
//! served here (the app has its own channel), so they are dropped like unknown types.

use super::auth::{Credentials, Holder};

/// WebSocket connections open at once, authenticated or not; the next upgrade gets 429.
pub const WS_CONNECTIONS_MAX: usize = 10;
/// Largest message a client may send, in bytes; a larger one closes the connection (1009).
pub const WS_MESSAGE_BYTES_MAX: usize = 65_536;
/// How long an unauthenticated connection may stay open (then 4001 `Auth timeout`).
pub const WS_AUTH_WINDOW_MS: u64 = 5_000;
/// How often an authenticated connection hears a `{"type":"heartbeat"}`, so that a client can
/// tell a connection that died without a word (a network gone) from a quiet daemon: silence
/// past two of these means the connection is gone.
pub const WS_HEARTBEAT_MS: u64 = 15_000;
/// Longest token in an `auth` message, in UTF-16 units.
pub const WS_TOKEN_CHARS_MAX: usize = 200;
/// Longest `agentId`, in UTF-16 units.
pub const WS_AGENT_ID_CHARS_MAX: usize = 100;
/// Longest `input` data, in UTF-16 units.
pub const WS_INPUT_CHARS_MAX: usize = 4_096;
/// Largest terminal width or height a `resize` may ask for (the smallest is 1).
pub const WS_TERMINAL_SIZE_MAX: u16 = 500;

/// A message from a client, checked against its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// `{"type":"auth","token"}`
    Auth {
        /// The token presented.
        token: String,
    },
    /// A request an authenticated client makes.
    Request(Request),
}

/// What an authenticated client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Type into an agent's terminal.
    Input {
        /// The agent (as sent; unknown agents are ignored).
        agent: String,
        /// What to type.
        data: String,
    },
    /// Resize an agent's terminal.
    Resize {
        /// The agent.
        agent: String,
        /// Columns, 1 to [`WS_TERMINAL_SIZE_MAX`].
        cols: u16,
        /// Rows, 1 to [`WS_TERMINAL_SIZE_MAX`].
        rows: u16,
    },
    /// End an agent's process.
    Kill {
        /// The agent.
        agent: String,
    },
    /// Stream an agent's output, starting with its scrollback.
    Subscribe {
        /// The agent.
        agent: String,
    },
    /// Stop streaming an agent's output.
    Unsubscribe {
        /// The agent.
        agent: String,
    },
}

impl Request {
    /// Whether the request writes to a terminal (the phone may not).
    #[must_use]
    pub const fn writes(&self) -> bool {
        matches!(
            self,
            Request::Input { .. } | Request::Resize { .. } | Request::Kill { .. }
        )
    }
}

/// Reads a client's frame; `None` when it is not a known message within its limits.
#[must_use]
pub fn parse(frame: &[u8]) -> Option<Inbound> {
    let value: serde_json::Value = serde_json::from_slice(frame).ok()?;
    let text = |name: &str, max: usize| -> Option<String> {
        let text = value.get(name)?.as_str()?;
        (text.encode_utf16().count() <= max).then(|| text.to_owned())
    };
    let agent = || text("agentId", WS_AGENT_ID_CHARS_MAX);
    let size = |name: &str| -> Option<u16> {
        let number = value.get(name)?.as_f64()?;
        let whole =
            number.fract() == 0.0 && (1.0..=f64::from(WS_TERMINAL_SIZE_MAX)).contains(&number);
        // In range and whole, so the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        whole.then_some(number as u16)
    };
    Some(match value.get("type")?.as_str()? {
        "auth" => Inbound::Auth {
            token: text("token", WS_TOKEN_CHARS_MAX)?,
        },
        "input" => Inbound::Request(Request::Input {
            agent: agent()?,
            data: text("data", WS_INPUT_CHARS_MAX)?,
        }),
        "resize" => Inbound::Request(Request::Resize {
            agent: agent()?,
            cols: size("cols")?,
            rows: size("rows")?,
        }),
        "kill" => Inbound::Request(Request::Kill { agent: agent()? }),
        "subscribe" => Inbound::Request(Request::Subscribe { agent: agent()? }),
        "unsubscribe" => Inbound::Request(Request::Unsubscribe { agent: agent()? }),
        _ => return None,
    })
}

/// Why the server closes a connection: each has its close code and reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// A wrong token, or a request before authentication.
    Unauthorized,
    /// No authentication within [`WS_AUTH_WINDOW_MS`].
    AuthTimeout,
    /// The phone asked to write.
    Forbidden,
    /// A message over [`WS_MESSAGE_BYTES_MAX`].
    TooBig,
    /// The client did not read its messages fast enough.
    TooSlow,
    /// The daemon is stopping.
    GoingAway,
}

impl Close {
    /// The close code.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Close::Unauthorized | Close::AuthTimeout => 4001,
            Close::Forbidden => 4003,
            Close::TooBig => 1009,
            Close::TooSlow => 1013,
            Close::GoingAway => 1001,
        }
    }

    /// The close reason.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Close::Unauthorized => "Unauthorized",
            Close::AuthTimeout => "Auth timeout",
            Close::Forbidden => "Forbidden",
            Close::TooBig => "Message too big",
            Close::TooSlow => "Client too slow",
            Close::GoingAway => "Server stopping",
        }
    }
}

/// What the connection does with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (a dropped frame).
    Ignore,
    /// The client is (again) authenticated: send it the list of agents.
    Welcome,
    /// Close the connection.
    Close(Close),
    /// Carry out the request, as the client's holder.
    Carry(Holder, Request),
}

/// One connection's state: whom it is authenticated as, with which token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    holder: Option<Holder>,
    token: Vec<u8>,
}

impl Session {
    /// A connection whose upgrade request presented `presented`: a coordinator's token
    /// authenticates it; the phone's does not (it must send `auth`), nor does anything else.
    #[must_use]
    pub fn upgraded(presented: Option<&[u8]>, credentials: &Credentials) -> Self {
        match presented.map(|token| (token, credentials.holder(token))) {
            Some((token, Some(holder @ Holder::Coordinator(_)))) => Session {
                holder: Some(holder),
                token: token.to_vec(),
            },
            _ => Session::default(),
        }
    }

    /// Whom the connection is authenticated as.
    #[must_use]
    pub const fn holder(&self) -> Option<Holder> {
        self.holder
    }

    /// Whether the token it authenticated with opens nothing any more (its coordinator left,
    /// phone access was turned off or given a new token): the connection is then closed 4001.
    #[must_use]
    pub fn revoked(&self, credentials: &Credentials) -> bool {
        self.holder.is_some() && credentials.holder(&self.token) != self.holder
    }

    /// The decision for a frame, given the credentials issued now.
    pub fn on_frame(&mut self, frame: &[u8], credentials: &Credentials) -> Decision {
        match parse(frame) {
            None => Decision::Ignore,
            Some(Inbound::Auth { token }) => match credentials.holder(token.as_bytes()) {
                Some(holder) => {
                    self.holder = Some(holder);
                    self.token = token.into_bytes();
                    Decision::Welcome
                }
                None => Decision::Close(Close::Unauthorized),
            },
            Some(Inbound::Request(request)) => match self.holder {
                None => Decision::Close(Close::Unauthorized),
                Some(Holder::Mobile) if request.writes() => Decision::Close(Close::Forbidden),
                Some(holder) => Decision::Carry(holder, request),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Close, Credentials, Decision, Holder, Inbound, Request, Session, WS_AGENT_ID_CHARS_MAX,
        WS_INPUT_CHARS_MAX, WS_TOKEN_CHARS_MAX, parse,
    };
    use crate::core::auth::Secret;
    use crate::core::ids::{CoordinatorId, Uuid};

    fn coordinator() -> CoordinatorId {
        CoordinatorId(Uuid::from_random([1; 16]))
    }

    fn credentials() -> Credentials {
        let mut credentials = Credentials::new();
        credentials.register(coordinator(), Secret::from_text("c".repeat(32).as_str()));
        credentials.set_mobile(Some(Secret::from_text("m".repeat(32).as_str())));
        credentials
    }

    fn subscribe() -> Request {
        Request::Subscribe { agent: "a".into() }
    }

    #[test]
    fn messages_are_read_with_their_limits_and_extra_fields_ignored() {
        assert_eq!(
            parse(br#"{"type":"subscribe","agentId":"a","extra":1}"#),
            Some(Inbound::Request(subscribe()))
        );
        assert_eq!(
            parse(br#"{"type":"resize","agentId":"a","cols":80.0,"rows":500}"#),
            Some(Inbound::Request(Request::Resize {
                agent: "a".into(),
                cols: 80,
                rows: 500
            }))
        );
        let long_id = format!(
            r#"{{"type":"kill","agentId":"{}"}}"#,
            "x".repeat(WS_AGENT_ID_CHARS_MAX + 1)
        );
        let long_token = format!(
            r#"{{"type":"auth","token":"{}"}}"#,
            "x".repeat(WS_TOKEN_CHARS_MAX + 1)
        );
        // Limits count UTF-16 units: an astral character is two.
        let long_input = format!(
            r#"{{"type":"input","agentId":"a","data":"{}"}}"#,
            "😀".repeat(WS_INPUT_CHARS_MAX / 2 + 1)
        );
        let dropped = [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"type":5}"#,
            br#"{"type":"spawn_task"}"#,
            br#"{"type":"subscribe"}"#,
            br#"{"type":"subscribe","agentId":7}"#,
            br#"{"type":"resize","agentId":"a","cols":0,"rows":10}"#,
            br#"{"type":"resize","agentId":"a","cols":501,"rows":10}"#,
            br#"{"type":"resize","agentId":"a","cols":80.5,"rows":10}"#,
            br#"{"type":"resize","agentId":"a","cols":"80","rows":10}"#,
            br#"{"type":"input","agentId":"a"}"#,
            b"\xff\xfe",
            long_id.as_bytes(),
            long_token.as_bytes(),
            long_input.as_bytes(),
        ];
        for frame in dropped {
            assert_eq!(parse(frame), None, "{}", String::from_utf8_lossy(frame));
        }
        assert_eq!(
            parse(br#"{"type":"input","agentId":"","data":""}"#),
            Some(Inbound::Request(Request::Input {
                agent: String::new(),
                data: String::new()
            })),
            "empty strings pass the parser"
        );
    }

    #[test]
    fn only_a_coordinators_token_on_the_upgrade_authenticates() {
        let credentials = credentials();
        let upgraded = |token: Option<&str>| {
            Session::upgraded(token.map(str::as_bytes), &credentials).holder()
        };
        assert_eq!(
            upgraded(Some("c".repeat(32).as_str())),
            Some(Holder::Coordinator(coordinator()))
        );
        assert_eq!(upgraded(Some("m".repeat(32).as_str())), None);
        assert_eq!(upgraded(Some("wrong")), None);
        assert_eq!(upgraded(None), None);
    }

    #[test]
    fn a_session_is_revoked_with_the_token_it_used() {
        let mut credentials = credentials();
        let coordinator_session = Session::upgraded(Some("c".repeat(32).as_bytes()), &credentials);
        let mut phone_session = Session::default();
        let phone = format!(r#"{{"type":"auth","token":"{}"}}"#, "m".repeat(32));
        assert_eq!(
            phone_session.on_frame(phone.as_bytes(), &credentials),
            Decision::Welcome
        );
        assert!(!coordinator_session.revoked(&credentials));
        assert!(!phone_session.revoked(&credentials));
        assert!(
            !Session::default().revoked(&credentials),
            "nothing to revoke yet"
        );
        credentials.set_mobile(Some(Secret::from_text("n".repeat(32).as_str())));
        assert!(
            phone_session.revoked(&credentials),
            "the phone got a new token"
        );
        credentials.deregister(coordinator());
        assert!(
            coordinator_session.revoked(&credentials),
            "its coordinator left"
        );
    }

    #[test]
    fn the_gates_run_in_order() {
        let credentials = credentials();
        let mut session = Session::default();
        assert_eq!(session.on_frame(b"junk", &credentials), Decision::Ignore);
        assert_eq!(
            session.on_frame(br#"{"type":"subscribe","agentId":"a"}"#, &credentials),
            Decision::Close(Close::Unauthorized),
            "a request before auth"
        );
        let phone = format!(r#"{{"type":"auth","token":"{}"}}"#, "m".repeat(32));
        assert_eq!(
            session.on_frame(phone.as_bytes(), &credentials),
            Decision::Welcome
        );
        assert_eq!(
            session.on_frame(br#"{"type":"subscribe","agentId":"a"}"#, &credentials),
            Decision::Carry(Holder::Mobile, subscribe())
        );
        for write in [
            &br#"{"type":"input","agentId":"a","data":"x"}"#[..],
            br#"{"type":"resize","agentId":"a","cols":1,"rows":1}"#,
            br#"{"type":"kill","agentId":"a"}"#,
        ] {
            assert_eq!(
                session.clone().on_frame(write, &credentials),
                Decision::Close(Close::Forbidden)
            );
        }
        let coordinator_auth = format!(r#"{{"type":"auth","token":"{}"}}"#, "c".repeat(32));
        assert_eq!(
            session.on_frame(coordinator_auth.as_bytes(), &credentials),
            Decision::Welcome,
            "a good token re-sets the class"
        );
        assert!(matches!(
            session.on_frame(br#"{"type":"kill","agentId":"a"}"#, &credentials),
            Decision::Carry(Holder::Coordinator(_), Request::Kill { .. })
        ));
        assert_eq!(
            session.on_frame(br#"{"type":"auth","token":"wrong"}"#, &credentials),
            Decision::Close(Close::Unauthorized),
            "a wrong token closes even an authenticated connection"
        );
    }

    #[test]
    fn close_codes_and_reasons_are_the_protocols() {
        let table: Vec<(u16, &str)> = [
            Close::Unauthorized,
            Close::AuthTimeout,
            Close::Forbidden,
            Close::TooBig,
            Close::TooSlow,
            Close::GoingAway,
        ]
        .iter()
        .map(|c| (c.code(), c.reason()))
        .collect();
        assert_eq!(
            table,
            [
                (4001, "Unauthorized"),
                (4001, "Auth timeout"),
                (4003, "Forbidden"),
                (1009, "Message too big"),
                (1013, "Client too slow"),
                (1001, "Server stopping"),
            ]
        );
    }
}
