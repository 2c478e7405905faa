//! Who is calling the REST API, and what they may reach: the gates as pure decisions.
//!
//! The shell (axum, in `api/`) hands in what it read off a request: the method, the raw path
//! (still percent-encoded), the `Authorization` header, the `token` query parameter and the
//! `X-Coordinator-Id` values. [`Credentials::authorize`] answers with an [`Access`] (what the
//! request may do, and as whom) or a [`Refusal`] (the status and the words of the error).
//!
//! Baton's credentials (where it departs from the reference, DESIGN "a token is a credential"):
//! - each registered coordinator has its own bearer token, which names it; `X-Coordinator-Id` is
//!   still accepted, and must name the same coordinator;
//! - a sub-task's credential is its task's own done token, presented as the bearer (or in
//!   `X-Done-Token`, as the reference's MCP server sends it) on its three routes only:
//!   `POST /api/tasks/:id/done`, `POST /api/tasks/:id/mcp-connected` (its MCP server tells the
//!   daemon it started, so the task's first prompt may go out) and `POST /api/tasks/:id/hook`
//!   (a hook of its agent fired: `baton hook`);
//!   the done route's handler checks it against that task, so a token of another task opens
//!   nothing; an `X-Coordinator-Id` sent with it must name the task's coordinator (else 403);
//! - the phone's token reads the agent routes only.
//!
//! Gate order: a path outside `/api/` is static (no token needed); no credential, or one that
//! is no coordinator's and no phone's, is 401, except on the done route where it may be a
//! sub-task's done token; the phone gets 403 on anything but `GET /api/agents[/:id]` and the
//! OpenAPI document; a
//! coordinator whose `X-Coordinator-Id` names another coordinator, or which sends it more than
//! once, gets 403; an unknown route is 404. Refusals never say which check failed: every 401 is
//! `unauthorized` and every credential 403 is `forbidden`.
//!
//! Comparisons are constant time on bytes, over every registered token (no early exit), and no
//! input can panic here.

use std::collections::BTreeMap;
use std::fmt;

use super::ids::{CoordinatorId, TaskId, base64url, constant_time_eq};
pub use super::routes::TaskOp;
use super::routes::{Callers, Endpoint, ROUTES};

/// Random bytes in a bearer token: 24, so its base64url form is 32 characters without padding.
pub const TOKEN_BYTES: usize = 24;
/// Longest task id accepted in a path, in bytes (percent-encoded); a UUID is 36.
pub const PATH_ID_BYTES_MAX: usize = 200;

/// A bearer token: a coordinator's or the phone's. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The token for `bytes` (random bytes from the caller), base64url without padding.
    #[must_use]
    pub fn from_random(bytes: [u8; TOKEN_BYTES]) -> Self {
        Secret(base64url(&bytes))
    }

    /// A token as stored (restored after a restart).
    #[must_use]
    pub fn from_text(text: &str) -> Self {
        Secret(text.to_owned())
    }

    /// The secret, to write into an MCP config or a phone URL.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What a request presented as its credential: the bearer token, else the `token` query
/// parameter (percent-decoded), per the reference's extraction; `None` when neither or empty.
///
/// An `Authorization` header that starts with the exact prefix `Bearer ` decides, even when
/// what follows is wrong: the query is then not looked at.
#[must_use]
pub fn presented(authorization: Option<&[u8]>, query: Option<&str>) -> Option<Vec<u8>> {
    let candidate = match authorization.and_then(|h| h.strip_prefix(b"Bearer ")) {
        Some(token) => token.to_vec(),
        None => query_token(query.unwrap_or_default())?,
    };
    (!candidate.is_empty()).then_some(candidate)
}

/// The `token` parameter of a query string, percent-decoded (`+` is a space).
fn query_token(query: &str) -> Option<Vec<u8>> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == "token")
        .and_then(|(_, value)| percent_decode(value.replace('+', " ").as_bytes()))
}

/// Percent-decodes `bytes`; `None` if an escape is malformed.
#[must_use]
pub fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes.iter();
    while let Some(&b) = rest.next() {
        if b == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            let (hi, lo) = (hex(rest.next())?, hex(rest.next())?);
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// The `X-Coordinator-Id` header as it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorHeader<'a> {
    /// Not sent.
    Absent,
    /// Sent once, with these bytes.
    One(&'a [u8]),
    /// Sent more than once: never honoured.
    Many,
}

/// A route of the API, from its method and raw path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Anything outside `/api/`: the phone page's static files.
    Static,
    /// `GET /api/agents`
    Agents,
    /// `GET /api/agents/:agentId` (the raw segment, not decoded).
    Agent(String),
    /// `GET /api/openapi.json`
    OpenApi,
    /// `POST /api/tasks`
    CreateTask,
    /// `GET /api/tasks`
    ListTasks,
    /// `POST /api/wait-signal`
    WaitSignal,
    /// `POST /api/mcp-connected`: the coordinator's own MCP server started.
    McpConnected,
    /// A route of one task.
    Task(TaskRef, TaskOp),
    /// A path the API has, with a method it does not take; the methods it takes, as a 405's
    /// `Allow` header names them.
    WrongMethod(String),
    /// An `/api/` path no route has.
    Unknown,
}

/// The task a path names: a task id, or an id no task can have (not a UUID), which is 404
/// once the caller is known to be allowed to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskRef {
    /// A well-formed id.
    Id(TaskId),
    /// Not a task id (kept for the error, with control characters replaced).
    NotAnId(String),
}

/// Why a request is turned away: its status, and the words of its error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credential, or one nobody issued.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: a credential that may not do this.
    #[error("forbidden")]
    Forbidden,
    /// 404: nothing here.
    #[error("{0}")]
    NotFound(&'static str),
    /// 405: the path takes other methods (these).
    #[error("method not allowed")]
    MethodNotAllowed(String),
}

impl Refusal {
    /// The HTTP status of this refusal.
    #[must_use]
    pub const fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Unauthorized => 401,
            Refusal::Forbidden => 403,
            Refusal::NotFound(_) => 404,
            Refusal::MethodNotAllowed(_) => 405,
        }
    }
}

/// What a request may do, and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Serve a static file.
    Static,
    /// A read-only route (the agents, the OpenAPI document) for any credential holder.
    Read(Route),
    /// A coordinator's call: the route, on its own tasks.
    Coordinator(CoordinatorId, Route),
    /// A sub-task's own route (`done`, `mcp-connected`): the handler checks `token` against
    /// `task`'s done token.
    SubTask {
        /// The task.
        task: TaskRef,
        /// The route.
        op: TaskOp,
        /// The done token presented.
        token: Vec<u8>,
        /// The registered coordinator `X-Coordinator-Id` named, if it was sent: the task must
        /// be that coordinator's (else 403).
        named: Option<CoordinatorId>,
    },
}

impl Route {
    /// Its line of the route table; `None` for a static file, a wrong method or no route.
    #[must_use]
    pub fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Route::Static | Route::WrongMethod(_) | Route::Unknown => return None,
            Route::Agents => Endpoint::Agents,
            Route::Agent(_) => Endpoint::Agent,
            Route::OpenApi => Endpoint::OpenApi,
            Route::CreateTask => Endpoint::CreateTask,
            Route::ListTasks => Endpoint::ListTasks,
            Route::WaitSignal => Endpoint::WaitSignal,
            Route::McpConnected => Endpoint::McpConnected,
            Route::Task(_, op) => Endpoint::Task(*op),
        })
    }

    /// Who may call it ([`Callers`]); `None` where no route answers.
    #[must_use]
    pub fn callers(&self) -> Option<Callers> {
        self.endpoint().map(|endpoint| endpoint.spec().callers)
    }
}

/// Reads a route off a method and a raw path, by the route table ([`ROUTES`]).
///
/// # Errors
/// A task id in the path with a malformed percent escape, or longer than
/// [`PATH_ID_BYTES_MAX`].
pub fn route(method: &str, raw_path: &str) -> Result<Route, Refusal> {
    if !raw_path.starts_with("/api/") {
        return Ok(Route::Static);
    }
    let mut methods: Vec<&str> = Vec::new();
    for spec in &ROUTES {
        let Some(id) = spec.capture(raw_path) else {
            continue;
        };
        if spec.method != method {
            methods.push(spec.method);
            continue;
        }
        let id = id.unwrap_or_default();
        return Ok(match spec.endpoint {
            Endpoint::Agents => Route::Agents,
            Endpoint::Agent => Route::Agent(id.to_owned()),
            Endpoint::OpenApi => Route::OpenApi,
            Endpoint::ListTasks => Route::ListTasks,
            Endpoint::CreateTask => Route::CreateTask,
            Endpoint::WaitSignal => Route::WaitSignal,
            Endpoint::McpConnected => Route::McpConnected,
            Endpoint::Task(op) => Route::Task(task_ref(id)?, op),
        });
    }
    Ok(match methods.is_empty() {
        true => Route::Unknown,
        false => Route::WrongMethod(methods.join(", ")),
    })
}

fn task_ref(raw: &str) -> Result<TaskRef, Refusal> {
    if raw.len() > PATH_ID_BYTES_MAX {
        return Err(Refusal::BadRequest(format!(
            "task id must be {PATH_ID_BYTES_MAX} bytes or fewer"
        )));
    }
    let decoded = percent_decode(raw.as_bytes())
        .ok_or_else(|| Refusal::BadRequest("task id is not valid percent-encoding".into()))?;
    let text = String::from_utf8_lossy(&decoded);
    Ok(match text.parse() {
        Ok(id) => TaskRef::Id(id),
        Err(_) => TaskRef::NotAnId(
            text.chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect(),
        ),
    })
}

/// Who a credential belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A registered coordinator.
    Coordinator(CoordinatorId),
    /// The phone.
    Mobile,
}

/// The bearer tokens the daemon issued: one per registered coordinator, and the phone's while
/// phone access is on.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    coordinators: BTreeMap<CoordinatorId, Secret>,
    mobile: Option<Secret>,
}

impl Credentials {
    /// No tokens issued.
    #[must_use]
    pub fn new() -> Self {
        Credentials::default()
    }

    /// Issues `secret` to the coordinator `id` (replacing any token it had).
    pub fn register(&mut self, id: CoordinatorId, secret: Secret) {
        self.coordinators.insert(id, secret);
    }

    /// Takes the coordinator's token back: it opens nothing any more.
    pub fn deregister(&mut self, id: CoordinatorId) {
        self.coordinators.remove(&id);
    }

    /// The coordinator's token, to write into its MCP config.
    #[must_use]
    pub fn token_of(&self, id: CoordinatorId) -> Option<&Secret> {
        self.coordinators.get(&id)
    }

    /// Turns phone access on with `secret`, or off with `None`.
    pub fn set_mobile(&mut self, secret: Option<Secret>) {
        self.mobile = secret;
    }

    /// The registered coordinator a header value names.
    fn registered(&self, value: &[u8]) -> Result<CoordinatorId, Refusal> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.parse::<CoordinatorId>().ok())
            .filter(|id| self.coordinators.contains_key(id))
            .ok_or(Refusal::Forbidden)
    }

    /// Whose credential `presented` is, comparing it with every token issued.
    #[must_use]
    pub fn holder(&self, presented: &[u8]) -> Option<Holder> {
        let mut found = None;
        for (id, secret) in &self.coordinators {
            if secret.matches(presented) && found.is_none() {
                found = Some(Holder::Coordinator(*id));
            }
        }
        let mobile = self.mobile.as_ref().is_some_and(|s| s.matches(presented));
        found.or(mobile.then_some(Holder::Mobile))
    }

    /// The gates, in order (see the module documentation).
    ///
    /// # Errors
    /// See [`Refusal`].
    pub fn authorize(
        &self,
        route: Route,
        presented: Option<&[u8]>,
        header: CoordinatorHeader<'_>,
    ) -> Result<Access, Refusal> {
        if route == Route::Static {
            return Ok(Access::Static);
        }
        let holder = presented.and_then(|p| self.holder(p));
        let callers = route.callers();
        match (holder, route) {
            (None, Route::Task(task, op)) if callers == Some(Callers::SubTask) => {
                let Some(token) = presented else {
                    return Err(Refusal::Unauthorized);
                };
                // A header, when sent, must name one registered coordinator: the task's.
                let named = match header {
                    CoordinatorHeader::Absent => None,
                    CoordinatorHeader::One(value) => Some(self.registered(value)?),
                    CoordinatorHeader::Many => return Err(Refusal::Forbidden),
                };
                Ok(Access::SubTask {
                    task,
                    op,
                    token: token.to_vec(),
                    named,
                })
            }
            (None, _) => Err(Refusal::Unauthorized),
            (Some(Holder::Mobile), route) if callers == Some(Callers::Readers) => {
                Ok(Access::Read(route))
            }
            (Some(Holder::Mobile), _) => Err(Refusal::Forbidden),
            (Some(Holder::Coordinator(id)), route) => {
                let named = match header {
                    CoordinatorHeader::Absent => true,
                    CoordinatorHeader::One(value) => {
                        constant_time_eq(value, id.to_string().as_bytes())
                    }
                    CoordinatorHeader::Many => false,
                };
                if !named {
                    return Err(Refusal::Forbidden);
                }
                match route {
                    Route::Unknown => Err(Refusal::NotFound("not found")),
                    Route::WrongMethod(allow) => Err(Refusal::MethodNotAllowed(allow)),
                    route if callers == Some(Callers::Readers) => Ok(Access::Read(route)),
                    route => Ok(Access::Coordinator(id, route)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
