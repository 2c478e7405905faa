//! Target `ws`: a WebSocket client's messages (`core::ws::parse` and a session's decision on
//! them), from arbitrary bytes, mutated real messages and arbitrary JSON.
//!
//! Properties: a message read is within its limits; what is not read changes nothing about the
//! session; no request is carried before authentication, and none that writes for the phone;
//! every message the protocol knows, written out, reads back as itself.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{bytes_or_mutated, config, corpus, json_value};
use crate::core::auth::{Credentials, Holder, Secret};
use crate::core::ids::CoordinatorId;
use crate::core::ws::{
    Decision, Inbound, Request, Session, WS_AGENT_ID_CHARS_MAX, WS_INPUT_CHARS_MAX,
    WS_TERMINAL_SIZE_MAX, WS_TOKEN_CHARS_MAX, parse,
};

/// The coordinator's and the phone's tokens in the corpus (`{"type":"auth","token":…}`).
const COORDINATOR_TOKEN: &str = "cccccccccccccccccccccccccccccccc";
const PHONE_TOKEN: &str = "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm";

const DICTIONARY: &[&[u8]] = &[
    b"\"type\":",
    b"\"auth\"",
    b"\"input\"",
    b"\"resize\"",
    b"\"kill\"",
    b"\"subscribe\"",
    b"\"unsubscribe\"",
    b"\"agentId\":",
    b"\"token\":",
    b"\"data\":",
    b"\"cols\":",
    b"\"rows\":",
    b"\"\\ud83d\\ude00\"",
    b"\"\\u0000\"",
    b"500",
    b"501",
    b"0.5",
    b"1e2",
    b"-1",
    b"null",
    b"{",
    b"}",
    b"[",
    b",",
];

const KEYS: &[&str] = &["type", "agentId", "token", "data", "cols", "rows"];

fn credentials() -> Credentials {
    let mut credentials = Credentials::new();
    credentials.register(
        CoordinatorId::from_random([1; 16]),
        Secret::from_text(COORDINATOR_TOKEN),
    );
    credentials.set_mobile(Some(Secret::from_text(PHONE_TOKEN)));
    credentials
}

fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// What holds of any frame: the parse's limits, and each kind of session's decision on it.
fn check(frame: &[u8]) -> Result<(), TestCaseError> {
    let parsed = parse(frame);
    match &parsed {
        None => {}
        Some(Inbound::Auth { token }) => prop_assert!(units(token) <= WS_TOKEN_CHARS_MAX),
        Some(Inbound::Request(request)) => match request {
            Request::Input { agent, data } => {
                prop_assert!(units(agent) <= WS_AGENT_ID_CHARS_MAX);
                prop_assert!(units(data) <= WS_INPUT_CHARS_MAX);
            }
            Request::Resize { agent, cols, rows } => {
                prop_assert!(units(agent) <= WS_AGENT_ID_CHARS_MAX);
                prop_assert!((1..=WS_TERMINAL_SIZE_MAX).contains(cols));
                prop_assert!((1..=WS_TERMINAL_SIZE_MAX).contains(rows));
            }
            Request::Kill { agent }
            | Request::Subscribe { agent }
            | Request::Unsubscribe { agent } => {
                prop_assert!(units(agent) <= WS_AGENT_ID_CHARS_MAX);
            }
        },
    }
    let credentials = credentials();
    let sessions = [
        Session::default(),
        Session::upgraded(Some(COORDINATOR_TOKEN.as_bytes()), &credentials),
        phone_session(&credentials),
    ];
    for before in sessions {
        let mut session = before.clone();
        let decision = session.on_frame(frame, &credentials);
        match (&decision, before.holder()) {
            (Decision::Ignore, _) => {
                prop_assert!(parsed.is_none());
                prop_assert_eq!(&session, &before, "a frame not read changes nothing");
            }
            (Decision::Carry(..), None) => {
                prop_assert!(false, "carried before authentication: {:?}", decision);
            }
            (Decision::Carry(Holder::Mobile, request), _) => prop_assert!(!request.writes()),
            (Decision::Carry(holder, _), Some(was)) => prop_assert_eq!(*holder, was),
            (Decision::Welcome, _) => {
                let authenticating = matches!(parsed, Some(Inbound::Auth { .. }));
                prop_assert!(authenticating);
                prop_assert!(session.holder().is_some());
            }
            (Decision::Close(_), _) => {}
        }
    }
    Ok(())
}

fn phone_session(credentials: &Credentials) -> Session {
    let mut session = Session::default();
    let auth = json!({ "type": "auth", "token": PHONE_TOKEN }).to_string();
    assert_eq!(
        session.on_frame(auth.as_bytes(), credentials),
        Decision::Welcome
    );
    assert_eq!(session.holder(), Some(Holder::Mobile));
    session
}

fn seeds() -> Vec<Vec<u8>> {
    corpus("ws").into_iter().map(|(_, bytes)| bytes).collect()
}

#[test]
fn every_message_of_the_corpus_holds_the_properties() {
    let mut read = 0;
    for (name, bytes) in corpus("ws") {
        check(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        read += usize::from(parse(&bytes).is_some());
    }
    assert!(read >= 6, "the corpus holds every kind of message");
}

fn agent() -> impl Strategy<Value = String> {
    prop_oneof![".{0,100}", "[a-z0-9-]{1,36}"]
}

/// Every message within its limits (the text limits count UTF-16 units; `.` may be astral).
fn message() -> impl Strategy<Value = Inbound> {
    let size = 1..=WS_TERMINAL_SIZE_MAX;
    prop_oneof![
        "[ -~]{0,200}".prop_map(|token| Inbound::Auth { token }),
        (agent(), ".{0,2048}")
            .prop_map(|(agent, data)| Inbound::Request(Request::Input { agent, data })),
        (agent(), size.clone(), size).prop_map(|(agent, cols, rows)| Inbound::Request(
            Request::Resize { agent, cols, rows }
        )),
        agent().prop_map(|agent| Inbound::Request(Request::Kill { agent })),
        agent().prop_map(|agent| Inbound::Request(Request::Subscribe { agent })),
        agent().prop_map(|agent| Inbound::Request(Request::Unsubscribe { agent })),
    ]
    .prop_filter("within the UTF-16 limits", |message| match message {
        Inbound::Auth { .. } => true,
        Inbound::Request(Request::Input { agent, data }) => {
            units(agent) <= WS_AGENT_ID_CHARS_MAX && units(data) <= WS_INPUT_CHARS_MAX
        }
        Inbound::Request(
            Request::Resize { agent, .. }
            | Request::Kill { agent }
            | Request::Subscribe { agent }
            | Request::Unsubscribe { agent },
        ) => units(agent) <= WS_AGENT_ID_CHARS_MAX,
    })
}

fn written(message: &Inbound) -> Value {
    match message {
        Inbound::Auth { token } => json!({ "type": "auth", "token": token }),
        Inbound::Request(Request::Input { agent, data }) => {
            json!({ "type": "input", "agentId": agent, "data": data })
        }
        Inbound::Request(Request::Resize { agent, cols, rows }) => {
            json!({ "type": "resize", "agentId": agent, "cols": cols, "rows": rows })
        }
        Inbound::Request(Request::Kill { agent }) => json!({ "type": "kill", "agentId": agent }),
        Inbound::Request(Request::Subscribe { agent }) => {
            json!({ "type": "subscribe", "agentId": agent })
        }
        Inbound::Request(Request::Unsubscribe { agent }) => {
            json!({ "type": "unsubscribe", "agentId": agent })
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_and_mutated_frames_hold_the_properties(
        frame in bytes_or_mutated(seeds(), DICTIONARY),
    ) {
        check(&frame)?;
    }

    #[test]
    fn arbitrary_json_frames_hold_the_properties(value in json_value(KEYS)) {
        check(value.to_string().as_bytes())?;
    }

    #[test]
    fn every_message_written_out_reads_back_as_itself(message in message()) {
        let frame = written(&message).to_string();
        prop_assert_eq!(parse(frame.as_bytes()), Some(message));
        check(frame.as_bytes())?;
    }
}
