//! The REST API's routes, in one table ([`ROUTES`]): each route's method, its path as the
//! OpenAPI document spells it, whether it reads a body, and who may call it.
//!
//! Everything that knows a route reads it here: [`super::auth`] reads routes off requests and
//! decides who may call them, the handlers read a body only where the table says, a test holds
//! the OpenAPI document to the table (`api/tests.rs`), and `baton mcp`, `baton hook`, the CLI
//! and the simulator build their requests from it ([`Endpoint::path_for`]).

/// What a task route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOp {
    /// `GET /api/tasks/:id`
    Get,
    /// `DELETE /api/tasks/:id`
    Close,
    /// `POST /api/tasks/:id/prompt`
    Prompt,
    /// `POST /api/tasks/:id/wait`
    Wait,
    /// `GET /api/tasks/:id/diff`
    Diff,
    /// `GET /api/tasks/:id/output`
    Output,
    /// `POST /api/tasks/:id/merge`
    Merge,
    /// `POST /api/tasks/:id/review-merge`
    ReviewMerge,
    /// `POST /api/tasks/:id/done`
    Done,
    /// `POST /api/tasks/:id/mcp-connected`: the task's MCP server started.
    McpConnected,
    /// `POST /api/tasks/:id/hook`: a hook of the task's agent fired (`baton hook`).
    Hook,
}

/// One route of the API, without the ids its path carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/agents`
    Agents,
    /// `GET /api/agents/{agentId}`
    Agent,
    /// `GET /api/openapi.json`
    OpenApi,
    /// `GET /api/tasks`
    ListTasks,
    /// `POST /api/tasks`
    CreateTask,
    /// `POST /api/wait-signal`
    WaitSignal,
    /// `POST /api/mcp-connected`: the coordinator's own MCP server started.
    McpConnected,
    /// A route of one task (`/api/tasks/{id}…`).
    Task(TaskOp),
}

/// Who may call a route. A coordinator reaches only its own tasks; that is the handlers' to
/// check, once the task is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callers {
    /// Any credential holder: a coordinator or the phone (reads only).
    Readers,
    /// A coordinator.
    Coordinator,
    /// A coordinator, or the task's sub-task with the task's done token.
    SubTask,
}

/// A line of the route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// The route.
    pub endpoint: Endpoint,
    /// Its method.
    pub method: &'static str,
    /// Its path, ids as the OpenAPI document's parameters (`{id}`, `{agentId}`).
    pub path: &'static str,
    /// Whether it reads a JSON body (the others never read one: REST spec §2.1).
    pub body: bool,
    /// Who may call it.
    pub callers: Callers,
}

const fn line(
    endpoint: Endpoint,
    method: &'static str,
    path: &'static str,
    body: bool,
    callers: Callers,
) -> RouteSpec {
    RouteSpec {
        endpoint,
        method,
        path,
        body,
        callers,
    }
}

/// Every route of the REST API. Where one path takes several methods, they are listed in the
/// order a 405's `Allow` header names them.
pub const ROUTES: [RouteSpec; 18] = {
    use Callers::{Coordinator, Readers, SubTask};
    use Endpoint::{Agent, Agents, CreateTask, ListTasks, McpConnected, OpenApi, Task, WaitSignal};
    [
        line(Agents, "GET", "/api/agents", false, Readers),
        line(Agent, "GET", "/api/agents/{agentId}", false, Readers),
        line(OpenApi, "GET", "/api/openapi.json", false, Readers),
        line(ListTasks, "GET", "/api/tasks", false, Coordinator),
        line(CreateTask, "POST", "/api/tasks", true, Coordinator),
        line(WaitSignal, "POST", "/api/wait-signal", true, Coordinator),
        line(
            McpConnected,
            "POST",
            "/api/mcp-connected",
            false,
            Coordinator,
        ),
        line(
            Task(TaskOp::Get),
            "GET",
            "/api/tasks/{id}",
            false,
            Coordinator,
        ),
        line(
            Task(TaskOp::Close),
            "DELETE",
            "/api/tasks/{id}",
            false,
            Coordinator,
        ),
        line(
            Task(TaskOp::Prompt),
            "POST",
            "/api/tasks/{id}/prompt",
            true,
            Coordinator,
        ),
        line(
            Task(TaskOp::Wait),
            "POST",
            "/api/tasks/{id}/wait",
            true,
            Coordinator,
        ),
        line(
            Task(TaskOp::Diff),
            "GET",
            "/api/tasks/{id}/diff",
            false,
            Coordinator,
        ),
        line(
            Task(TaskOp::Output),
            "GET",
            "/api/tasks/{id}/output",
            false,
            Coordinator,
        ),
        line(
            Task(TaskOp::Merge),
            "POST",
            "/api/tasks/{id}/merge",
            true,
            Coordinator,
        ),
        line(
            Task(TaskOp::ReviewMerge),
            "POST",
            "/api/tasks/{id}/review-merge",
            true,
            Coordinator,
        ),
        line(
            Task(TaskOp::Done),
            "POST",
            "/api/tasks/{id}/done",
            false,
            SubTask,
        ),
        line(
            Task(TaskOp::McpConnected),
            "POST",
            "/api/tasks/{id}/mcp-connected",
            false,
            SubTask,
        ),
        line(
            Task(TaskOp::Hook),
            "POST",
            "/api/tasks/{id}/hook",
            true,
            SubTask,
        ),
    ]
};

impl Endpoint {
    /// Its line of [`ROUTES`].
    #[must_use]
    pub fn spec(self) -> &'static RouteSpec {
        ROUTES
            .iter()
            .find(|spec| spec.endpoint == self)
            .unwrap_or(&ROUTES[0])
    }

    /// Its method.
    #[must_use]
    pub fn method(self) -> &'static str {
        self.spec().method
    }

    /// Its path with `id` (a task's or an agent's, percent-encoded here) in place of the
    /// parameter; a path without one is returned as it is.
    #[must_use]
    pub fn path_for(self, id: &str) -> String {
        let path = self.spec().path;
        match (path.find('{'), path.find('}')) {
            (Some(open), Some(close)) => {
                format!(
                    "{}{}{}",
                    &path[..open],
                    encode_component(id),
                    &path[close + 1..]
                )
            }
            _ => path.to_owned(),
        }
    }
}

impl RouteSpec {
    /// Whether `raw_path` is this route's path: `Some` with the raw (still percent-encoded)
    /// id segment where the path has a parameter (never empty), `Some(None)` for a path
    /// without one.
    #[must_use]
    pub fn capture<'a>(&self, raw_path: &'a str) -> Option<Option<&'a str>> {
        // A path has at most one parameter, a whole segment (`every_parameter_is_one_whole_
        // segment`): what stands around it must match as it is, and it takes one segment. Every
        // request is routed through this, the daemon's and the simulator's.
        let Some((before, rest)) = self.path.split_once('{') else {
            return (raw_path == self.path).then_some(None);
        };
        let after = rest.split_once('}').map_or("", |(_, after)| after);
        let id = raw_path.strip_prefix(before)?.strip_suffix(after)?;
        (!id.is_empty() && !id.contains('/')).then_some(Some(id))
    }
}

/// Percent-encodes a path segment as JavaScript's `encodeURIComponent` does (all but
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )`).
#[must_use]
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, ROUTES, RouteSpec, TaskOp, encode_component};

    #[test]
    fn every_endpoint_has_exactly_one_line() {
        for spec in &ROUTES {
            let lines = ROUTES
                .iter()
                .filter(|s| s.endpoint == spec.endpoint)
                .count();
            assert_eq!(lines, 1, "{:?}", spec.endpoint);
            assert_eq!(spec.endpoint.spec(), spec);
        }
        let paths: std::collections::BTreeSet<(&str, &str)> =
            ROUTES.iter().map(|s| (s.method, s.path)).collect();
        assert_eq!(paths.len(), ROUTES.len(), "a method and path twice");
    }

    #[test]
    fn paths_take_their_id_encoded_and_only_where_they_have_one() {
        assert_eq!(
            Endpoint::Task(TaskOp::Wait).path_for("a b/c"),
            "/api/tasks/a%20b%2Fc/wait"
        );
        assert_eq!(Endpoint::Task(TaskOp::Get).path_for("t"), "/api/tasks/t");
        assert_eq!(Endpoint::Agent.path_for("x"), "/api/agents/x");
        assert_eq!(Endpoint::ListTasks.path_for("ignored"), "/api/tasks");
    }

    #[test]
    fn every_parameter_is_one_whole_segment() {
        for spec in &ROUTES {
            let params = spec.path.split('/').filter(|s| s.contains(['{', '}']));
            for param in params.clone() {
                assert!(
                    param.starts_with('{') && param.ends_with('}'),
                    "{}",
                    spec.path
                );
            }
            assert!(params.count() <= 1, "{}", spec.path);
        }
    }

    /// Segment by segment, as `capture` once was: the reference it is held to.
    fn by_segments<'a>(spec: &RouteSpec, raw_path: &'a str) -> Option<Option<&'a str>> {
        let mut captured = None;
        let mut given = raw_path.split('/');
        for expected in spec.path.split('/') {
            let segment = given.next()?;
            if expected.starts_with('{') {
                if segment.is_empty() {
                    return None;
                }
                captured = Some(segment);
            } else if segment != expected {
                return None;
            }
        }
        given.next().is_none().then_some(captured)
    }

    #[test]
    fn a_capture_is_what_matching_segment_by_segment_finds() {
        let ids = ["t", "x%20y", "", "a/b", "wait", "done?x"];
        let mut paths: Vec<String> = ROUTES.iter().map(|s| s.path.to_owned()).collect();
        for spec in &ROUTES {
            for id in ids {
                let path = spec
                    .endpoint
                    .path_for(id)
                    .replace("%2F", "/")
                    .replace("%3F", "?");
                paths.extend([format!("{path}/more"), format!("{path}?q"), path.clone()]);
                paths.push(
                    path.rsplit_once('/')
                        .map_or(String::new(), |(p, _)| p.to_owned()),
                );
            }
        }
        for spec in &ROUTES {
            for path in &paths {
                assert_eq!(
                    spec.capture(path),
                    by_segments(spec, path),
                    "{} {path}",
                    spec.path
                );
            }
        }
    }

    #[test]
    fn a_path_is_captured_segment_by_segment() {
        let wait = Endpoint::Task(TaskOp::Wait).spec();
        assert_eq!(wait.capture("/api/tasks/x%20y/wait"), Some(Some("x%20y")));
        assert_eq!(wait.capture("/api/tasks//wait"), None);
        assert_eq!(wait.capture("/api/tasks/x/wait/more"), None);
        assert_eq!(wait.capture("/api/tasks/x"), None);
        let list = Endpoint::ListTasks.spec();
        assert_eq!(list.capture("/api/tasks"), Some(None));
        assert_eq!(list.capture("/api/tasks/"), None);
    }

    #[test]
    fn components_are_encoded_as_javascript_does() {
        assert_eq!(
            encode_component("a-b_c.d!e~f*g'h(i)j"),
            "a-b_c.d!e~f*g'h(i)j"
        );
        assert_eq!(encode_component("a b/c?d#火"), "a%20b%2Fc%3Fd%23%E7%81%AB");
    }
}
