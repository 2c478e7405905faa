//! Scenario files, format 1 (TOML): what a scenario says, read and checked before anything runs.
//!
//! Reading is strict: an unknown field, a second format, a time that does not parse, an actor
//! nobody declared or a binding used before it is made is an error naming where it is, so a typo
//! never passes silently. See `scenarios/README.md` for the format as users write it (documented
//! there once the runner executes it) and `openspec/changes/add-simulator/design.md`.

use std::collections::BTreeSet;

use serde::Deserialize;

/// The only format this simulator reads.
pub const FORMAT: u32 = 1;
/// A scenario file larger than this (1 MiB) is refused before it is parsed.
pub const SCENARIO_BYTES_MAX: usize = 1 << 20;
/// At most this many steps, faults or agent script items in one scenario.
pub const SCENARIO_ITEMS_MAX: usize = 10_000;
/// Actors that are not coordinators: the desktop app (or a human at it).
pub const APP_ACTOR: &str = "app";
/// The actor that sends raw HTTP (and, once the WebSocket protocol exists, WebSocket) traffic
/// with any credential.
pub const ATTACKER_ACTOR: &str = "attacker";
/// The binding prefix that names a declared coordinator's id: `${id:coord-1}`.
pub const ID_BINDING_PREFIX: &str = "id:";
/// The binding prefix that names a declared coordinator's bearer token: `${token:coord-1}`.
pub const TOKEN_BINDING_PREFIX: &str = "token:";
/// What the attacker may send.
pub const ATTACKER_CALLS: [&str; 3] = ["http", "websocket", "half_request"];

/// The coordinator tools a step may call: the MCP server's, in its order.
#[must_use]
pub fn coordinator_calls() -> Vec<&'static str> {
    baton_runtime::mcp::tools::catalogue(baton_runtime::mcp::args::Role::Coordinator)
        .iter()
        .map(|tool| tool.name)
        .collect()
}

/// Whether a coordinator may make `call`: a tool of [`coordinator_calls`], or one prefixed
/// `mcp.` (carried out by the runtime's MCP server code).
#[must_use]
pub fn is_coordinator_call(call: &str) -> bool {
    let tool = call
        .strip_prefix(crate::calls::MCP_CALL_PREFIX)
        .unwrap_or(call);
    coordinator_calls().contains(&tool)
}

/// The app's actions a step may call.
pub const APP_CALLS: [&str; 19] = [
    "register",
    "deregister",
    "status",
    "start_agent",
    "list_tasks",
    "take_control",
    "release_control",
    "type",
    "close_task",
    "remove_task",
    "respawn",
    "ack_notification",
    "drop_notification",
    "reschedule_notifications",
    "commit_on_main",
    "edit_checkout",
    "task_output",
    "read_file",
    "staged",
];

/// A scenario as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Must be [`FORMAT`].
    pub format: u32,
    /// What it shows, in a line.
    pub name: String,
    /// More words, if any.
    #[serde(default)]
    pub description: String,
    /// The seed to run with when none is given on the command line.
    #[serde(default)]
    pub seed: u64,
    /// The repository and files the world starts with.
    #[serde(default)]
    pub world: World,
    /// The coordinators, each an actor named by its `name`.
    #[serde(default, rename = "coordinator")]
    pub coordinators: Vec<CoordinatorDef>,
    /// Scripted sub-task agents, matched to tasks by name.
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentDef>,
    /// What the actors do, in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// What goes wrong, and when.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// What must hold at the end.
    #[serde(default)]
    pub end: End,
}

/// The world a scenario starts in.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// The project's repository.
    #[serde(default)]
    pub repo: RepoDef,
    /// The user's own files outside git (`CLAUDE.md`, `.mcp.json`, …) by path relative to the
    /// project root: they must be byte-identical at the end.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
    /// The user's own symbolic links outside git (a `.mcp.json` linked to a shared config, say),
    /// by path relative to the project root, with their targets.
    #[serde(default)]
    pub links: std::collections::BTreeMap<String, String>,
}

/// The project's repository.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoDef {
    /// Its main branch.
    #[serde(default = "main_branch")]
    pub main: String,
    /// Other branches, made from the main branch's first commit.
    #[serde(default)]
    pub branches: Vec<String>,
    /// The files of the main branch's first commit, by path.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
    /// Symbolic links the repository commits, by path, with their targets (anywhere, a path
    /// outside the project included): every checkout of it has them. The simulated disk follows
    /// none, as the `Files` port must not.
    #[serde(default)]
    pub links: std::collections::BTreeMap<String, String>,
}

impl Default for RepoDef {
    fn default() -> Self {
        RepoDef {
            main: main_branch(),
            branches: Vec::new(),
            files: std::collections::BTreeMap::new(),
            links: std::collections::BTreeMap::new(),
        }
    }
}

fn main_branch() -> String {
    "main".to_owned()
}

/// A coordinator agent and how it runs its sub-tasks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorDef {
    /// Its actor name in steps (its id comes from the seed).
    pub name: String,
    /// The sub-tasks' agent command (`claude`, `codex`, `gemini`, or any other).
    #[serde(default = "claude")]
    pub agent: String,
    /// Whether it runs with skip-permissions (propagated to its sub-tasks).
    #[serde(default)]
    pub skip_permissions: bool,
    /// Notification batch delay in milliseconds.
    #[serde(default = "notification_delay_ms")]
    pub notification_delay_ms: u64,
}

fn claude() -> String {
    "claude".to_owned()
}

const fn notification_delay_ms() -> u64 {
    30_000
}

/// A scripted sub-task agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    /// The name of the task it runs for.
    pub task: String,
    /// What it does, in order, once.
    #[serde(default)]
    pub script: Vec<toml::Table>,
    /// What it does after its script, again and again (`loops` times, or until it is killed).
    #[serde(default, rename = "loop")]
    pub repeat: Vec<toml::Table>,
    /// How many times `loop` runs; unbounded when absent.
    #[serde(default)]
    pub loops: Option<u64>,
    /// When its MCP server connects to the daemon after it starts, in milliseconds (default
    /// 200).
    #[serde(default)]
    pub mcp_connect_ms: Option<u64>,
    /// Whether its MCP server connects at all (default true).
    #[serde(default = "yes")]
    pub mcp_connects: bool,
}

const fn yes() -> bool {
    true
}

/// One thing an actor does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// When: `5s` or `2m` from the start of the world, or `+500ms` after the step before it
    /// started; without it, as soon as the step before it was answered.
    #[serde(default)]
    pub at: Option<String>,
    /// Who: a coordinator's name or [`APP_ACTOR`].
    pub actor: String,
    /// The MCP tool a coordinator calls, or the app's action.
    pub call: String,
    /// Its arguments; `${name}` stands for a bound value.
    #[serde(default)]
    pub args: toml::Table,
    /// Values of the answer to keep for later steps: binding name → field of the answer.
    #[serde(default)]
    pub bind: std::collections::BTreeMap<String, String>,
    /// Fields the answer must have (`error` for an expected error text).
    #[serde(default)]
    pub expect: toml::Table,
    /// Steps of one actor run one after another in its lane; a step naming another lane runs
    /// beside them (a second wait of the same coordinator, say).
    #[serde(default)]
    pub lane: Option<String>,
    /// Makes the call this many times in a row (default 1); `${i}` is the round, from 0.
    #[serde(default)]
    pub repeat: Option<u32>,
    /// Makes this many copies of the call at once (at most [`PARALLEL_MAX`]); `${i}` is the
    /// copy, from 0. Not with `repeat`.
    #[serde(default)]
    pub parallel: Option<u32>,
    /// Calls the same actor makes right after this one's answer, in every round (they may use
    /// what this step binds).
    #[serde(default)]
    pub then: Vec<Then>,
    /// A coordinator's MCP call (`mcp.…`) its client gives up after this long (`2s`): the call
    /// is dropped mid-flight, as a client's cancellation or a timed-out request drops it in
    /// `baton mcp`; its answer is the error `cancelled`.
    #[serde(default)]
    pub cancel_after: Option<String>,
}

/// A call made right after a step's own, by the same actor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Then {
    /// The call.
    pub call: String,
    /// Its arguments.
    #[serde(default)]
    pub args: toml::Table,
    /// Values of its answer to keep.
    #[serde(default)]
    pub bind: std::collections::BTreeMap<String, String>,
    /// Fields its answer must have.
    #[serde(default)]
    pub expect: toml::Table,
}

impl Then {
    /// This call as a step of `step`'s actor and lane, right after it.
    #[must_use]
    pub fn as_step(&self, step: &Step) -> Step {
        Step {
            at: None,
            actor: step.actor.clone(),
            call: self.call.clone(),
            args: self.args.clone(),
            bind: self.bind.clone(),
            expect: self.expect.clone(),
            lane: step.lane.clone(),
            repeat: None,
            parallel: None,
            then: Vec::new(),
            cancel_after: None,
        }
    }
}

/// The binding a repeated step's round is known by.
pub const ROUND_BINDING: &str = "i";
/// Most rounds one step may repeat.
pub const REPEAT_MAX: u32 = 10_000;
/// Most copies of a call one step may make at once.
pub const PARALLEL_MAX: u32 = 1_000;

/// Something that goes wrong.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When: `5s` from the start (faults are not relative to steps).
    pub at: String,
    /// One of [`FAULT_KINDS`].
    pub kind: String,
    /// For link faults: the actor and `daemon`, the two ends of the link.
    #[serde(default)]
    pub between: Vec<String>,
    /// For `kill_agent` and `worktree_stuck`: the task, by name.
    #[serde(default)]
    pub task: Option<String>,
    /// How long it lasts, in milliseconds (a partition, a delay, a daemon's down time, a stuck
    /// worktree); until the end when absent.
    #[serde(default)]
    pub for_ms: Option<u64>,
    /// For `delay`: the latency added each way; for `slow_worktrees`: how long creating a
    /// worktree takes; in milliseconds.
    #[serde(default)]
    pub ms: Option<u64>,
    /// For `drop_response`, `disk_full` and `remove_fails`: how many (default 1).
    #[serde(default)]
    pub count: Option<usize>,
    /// For `disk_full`, `rename_fails` and `remove_fails`: only files under this path, relative
    /// to the project's root (every file when absent; the daemon's state file is one).
    #[serde(default)]
    pub path: Option<String>,
}

/// The kinds of fault a scenario may inject.
pub const FAULT_KINDS: [&str; 11] = [
    "partition",
    "delay",
    "drop_response",
    "crash_daemon",
    "stop_daemon",
    "disk_full",
    "rename_fails",
    "remove_fails",
    "kill_agent",
    "worktree_stuck",
    "slow_worktrees",
];

/// The host every link fault has at one end.
pub const DAEMON: &str = "daemon";

/// What must hold at the end.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// `"all"` (the default) or the names of the invariants to check.
    #[serde(default)]
    pub invariants: Option<toml::Value>,
    /// Simulated time allowed after the last step starts for every step to be answered (default
    /// [`DRAIN_MS_DEFAULT`]); a step still unanswered then is a failure.
    #[serde(default)]
    pub within: Option<String>,
    /// Simulated time the world runs on after the last answer, so late events show (default
    /// [`SETTLE_MS_DEFAULT`]).
    #[serde(default)]
    pub settle: Option<String>,
}

/// Default of `[end] within`: ten simulated minutes.
pub const DRAIN_MS_DEFAULT: u64 = 600_000;
/// Default of `[end] settle`: one simulated second.
pub const SETTLE_MS_DEFAULT: u64 = 1_000;

/// The invariants checked after every step and at the end (see `crate::invariants`).
pub const INVARIANTS: [&str; 6] = [
    "signals",
    "isolation",
    "cleanup",
    "user_files",
    "bounds",
    "no_panic",
];

/// When a step happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Milliseconds from the start of the world.
    Absolute(u64),
    /// Milliseconds after the previous step.
    After(u64),
}

/// Why a scenario cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The file is larger than [`SCENARIO_BYTES_MAX`].
    #[error("scenario is {0} bytes; at most {SCENARIO_BYTES_MAX} are read")]
    TooLarge(usize),
    /// Not TOML, or not the shape of a scenario (the message names the line).
    #[error("{0}")]
    Syntax(String),
    /// A format this simulator does not read.
    #[error("format {0} is not supported: this simulator reads format {FORMAT}")]
    Format(u32),
    /// Something is wrong with one item (the message names it).
    #[error("{0}")]
    Invalid(String),
}

/// Reads and checks a scenario.
///
/// # Errors
/// See [`ScenarioError`]: the first problem found, naming where it is.
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    if text.len() > SCENARIO_BYTES_MAX {
        return Err(ScenarioError::TooLarge(text.len()));
    }
    let scenario: Scenario =
        toml::from_str(text).map_err(|error| ScenarioError::Syntax(error.to_string()))?;
    if scenario.format != FORMAT {
        return Err(ScenarioError::Format(scenario.format));
    }
    check(&scenario)?;
    Ok(scenario)
}

/// Parses a step time: `0ms`, `5s`, `2m`, or with a leading `+`, relative to the step before.
///
/// # Errors
/// The text is none of those.
pub fn parse_at(text: &str) -> Result<At, String> {
    let (relative, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (digits, unit_ms) = if let Some(digits) = rest.strip_suffix("ms") {
        (digits, 1)
    } else if let Some(digits) = rest.strip_suffix('s') {
        (digits, 1_000)
    } else if let Some(digits) = rest.strip_suffix('m') {
        (digits, 60_000)
    } else {
        return Err(format!(
            "time {text:?} needs a unit: ms, s or m (for example 500ms, +2s)"
        ));
    };
    let digits = digits.replace('_', "");
    let value: u64 = digits
        .parse()
        .ok()
        .filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("time {text:?} is not a whole number with a unit"))?;
    let ms = value
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("time {text:?} is too large"))?;
    Ok(if relative {
        At::After(ms)
    } else {
        At::Absolute(ms)
    })
}

fn check(scenario: &Scenario) -> Result<(), ScenarioError> {
    let invalid = ScenarioError::Invalid;
    if scenario.name.trim().is_empty() {
        return Err(invalid("name must not be empty".into()));
    }
    let items = scenario.steps.len()
        + scenario.faults.len()
        + scenario
            .agents
            .iter()
            .map(|a| a.script.len())
            .sum::<usize>();
    if items > SCENARIO_ITEMS_MAX {
        return Err(invalid(format!(
            "{items} steps, faults and script items; at most {SCENARIO_ITEMS_MAX}"
        )));
    }
    // `phone` names the phone's credential (`auth = "phone"`, `${token:phone}`).
    let mut actors = BTreeSet::from([
        APP_ACTOR.to_owned(),
        ATTACKER_ACTOR.to_owned(),
        "phone".to_owned(),
    ]);
    for (index, coordinator) in scenario.coordinators.iter().enumerate() {
        if !actors.insert(coordinator.name.clone()) {
            return Err(invalid(format!(
                "coordinator {} is named {:?}, a name already taken",
                index + 1,
                coordinator.name
            )));
        }
    }
    let mut bound: BTreeSet<String> = scenario
        .coordinators
        .iter()
        .flat_map(|c| {
            [
                format!("{ID_BINDING_PREFIX}{}", c.name),
                format!("{TOKEN_BINDING_PREFIX}{}", c.name),
            ]
        })
        .chain([format!("{TOKEN_BINDING_PREFIX}phone")])
        .collect();
    let mut last = 0u64;
    for (index, step) in scenario.steps.iter().enumerate() {
        let here = |what: String| invalid(format!("step {} ({}): {what}", index + 1, step.call));
        if !actors.contains(&step.actor) {
            return Err(here(format!(
                "actor {:?} is neither a coordinator, {APP_ACTOR:?} nor {ATTACKER_ACTOR:?}",
                step.actor
            )));
        }
        if (step.actor == ATTACKER_ACTOR) != ATTACKER_CALLS.contains(&step.call.as_str()) {
            return Err(here(format!(
                "only {ATTACKER_ACTOR:?} sends raw traffic, and it sends only {}",
                ATTACKER_CALLS.join(" or ")
            )));
        }
        let coordinator_calls = coordinator_calls();
        let (who, known): (&str, &[&str]) = match step.actor.as_str() {
            APP_ACTOR => ("the app", &APP_CALLS),
            ATTACKER_ACTOR => ("the attacker", &ATTACKER_CALLS),
            _ => ("a coordinator", &coordinator_calls),
        };
        let allowed = |call: &str| match step.actor.as_str() {
            APP_ACTOR | ATTACKER_ACTOR => known.contains(&call),
            _ => is_coordinator_call(call),
        };
        let calls = std::iter::once(&step.call).chain(step.then.iter().map(|t| &t.call));
        if let Some(unknown) = calls.into_iter().find(|c| !allowed(c.as_str())) {
            return Err(here(format!(
                "{who} has no call {unknown:?}; its calls are {}",
                known.join(", ")
            )));
        }
        let at = match step
            .at
            .as_deref()
            .map(parse_at)
            .transpose()
            .map_err(&here)?
        {
            None => last,
            Some(At::Absolute(ms)) => ms,
            Some(At::After(ms)) => last.saturating_add(ms),
        };
        if at < last {
            return Err(here(format!(
                "at {:?} is {at} ms, before the step before it ({last} ms)",
                step.at.as_deref().unwrap_or_default()
            )));
        }
        last = at;
        if let Some(after) = &step.cancel_after {
            if !step.call.starts_with("mcp.") {
                return Err(here(
                    "cancel_after goes with an MCP call (mcp.…) only".into(),
                ));
            }
            if !matches!(parse_at(after).map_err(&here)?, At::Absolute(_)) {
                return Err(here("cancel_after is a duration (2s), not relative".into()));
            }
        }
        if step.repeat.is_some_and(|n| n == 0 || n > REPEAT_MAX) {
            return Err(here(format!("repeat must be 1 to {REPEAT_MAX}")));
        }
        if step.parallel.is_some_and(|n| n == 0 || n > PARALLEL_MAX) {
            return Err(here(format!("parallel must be 1 to {PARALLEL_MAX}")));
        }
        if step.parallel.is_some() && (step.repeat.is_some() || !step.then.is_empty()) {
            return Err(here("parallel goes with neither repeat nor then".into()));
        }
        // `${i}` is the step's own round: bound within it only.
        let rounds = step.repeat.or(step.parallel).is_some();
        if rounds {
            bound.insert(ROUND_BINDING.to_owned());
        }
        let parts = std::iter::once(step.clone()).chain(step.then.iter().map(|t| t.as_step(step)));
        for part in parts {
            for name in placeholders(&toml::Value::Table(part.args.clone()))
                .into_iter()
                .chain(placeholders(&toml::Value::Table(part.expect.clone())))
            {
                if !bound.contains(&name) {
                    return Err(here(format!("${{{name}}} is used before a step binds it")));
                }
            }
            bound.extend(part.bind.keys().cloned());
        }
        if rounds && !step.bind.contains_key(ROUND_BINDING) {
            bound.remove(ROUND_BINDING);
        }
    }
    for (index, fault) in scenario.faults.iter().enumerate() {
        check_fault(fault, &actors)
            .map_err(|e| invalid(format!("fault {} ({}): {e}", index + 1, fault.kind)))?;
    }
    for (index, agent) in scenario.agents.iter().enumerate() {
        if scenario.agents[..index]
            .iter()
            .any(|a| a.task == agent.task)
        {
            return Err(invalid(format!(
                "agent {}: task {:?} has a script already",
                index + 1,
                agent.task
            )));
        }
    }
    invariant_names(scenario).map_err(invalid)?;
    for (field, value) in [
        ("within", &scenario.end.within),
        ("settle", &scenario.end.settle),
    ] {
        if let Some(text) = value {
            match parse_at(text).map_err(|e| invalid(format!("end {field}: {e}")))? {
                At::Absolute(_) => {}
                At::After(_) => {
                    return Err(invalid(format!(
                        "end {field}: {text:?} is a duration, write it without +"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_fault(fault: &Fault, actors: &BTreeSet<String>) -> Result<(), String> {
    if let At::After(_) = parse_at(&fault.at)? {
        return Err(format!(
            "at {:?}: faults happen at a time from the start, not after a step",
            fault.at
        ));
    }
    if !FAULT_KINDS.contains(&fault.kind.as_str()) {
        return Err(format!(
            "unknown kind; the kinds are {}",
            FAULT_KINDS.join(", ")
        ));
    }
    let link = matches!(fault.kind.as_str(), "partition" | "delay" | "drop_response");
    if link {
        let ends: BTreeSet<&str> = fault.between.iter().map(String::as_str).collect();
        let other: Vec<&&str> = ends.iter().filter(|end| **end != DAEMON).collect();
        let known =
            other.len() == 1 && (actors.contains(*other[0]) || other[0].starts_with("agent "));
        if ends.len() != 2 || !ends.contains(DAEMON) || !known {
            return Err(format!(
                "between must name an actor (a coordinator, {APP_ACTOR:?}, or \"agent <task>\") and {DAEMON:?}, not {:?}",
                fault.between
            ));
        }
    } else if !fault.between.is_empty() {
        return Err("between is only for link faults (partition, delay, drop_response)".into());
    }
    let needs_task = matches!(fault.kind.as_str(), "kill_agent" | "worktree_stuck");
    if needs_task != fault.task.is_some() {
        return Err(if needs_task {
            "needs the task's name: task = \"...\"".into()
        } else {
            "task is only for kill_agent and worktree_stuck".into()
        });
    }
    let takes_ms = matches!(fault.kind.as_str(), "delay" | "slow_worktrees");
    if takes_ms != fault.ms.is_some() {
        return Err("ms is for delay and slow_worktrees, and they need it".into());
    }
    if fault.count.is_some()
        && !matches!(
            fault.kind.as_str(),
            "drop_response" | "disk_full" | "rename_fails" | "remove_fails"
        )
    {
        return Err(
            "count is only for drop_response, disk_full, rename_fails and remove_fails".into(),
        );
    }
    if fault.path.is_some()
        && !matches!(
            fault.kind.as_str(),
            "disk_full" | "rename_fails" | "remove_fails"
        )
    {
        return Err("path is only for disk_full, rename_fails and remove_fails".into());
    }
    Ok(())
}

/// The invariants a scenario asks for, in [`INVARIANTS`] order.
///
/// # Errors
/// `[end] invariants` is neither `"all"` nor a list of known names.
pub fn invariant_names(scenario: &Scenario) -> Result<Vec<&'static str>, String> {
    match &scenario.end.invariants {
        None => Ok(INVARIANTS.to_vec()),
        Some(toml::Value::String(all)) if all == "all" => Ok(INVARIANTS.to_vec()),
        Some(toml::Value::Array(names)) => {
            let mut chosen = BTreeSet::new();
            for name in names {
                let name = name.as_str().unwrap_or_default();
                let known = INVARIANTS
                    .iter()
                    .find(|known| **known == name)
                    .ok_or_else(|| {
                        format!(
                            "end invariants: {name:?} is not one of {}",
                            INVARIANTS.join(", ")
                        )
                    })?;
                chosen.insert(*known);
            }
            Ok(INVARIANTS
                .iter()
                .copied()
                .filter(|n| chosen.contains(n))
                .collect())
        }
        Some(other) => Err(format!(
            "end invariants: {other:?} is neither \"all\" nor a list of names"
        )),
    }
}

/// The binding names `text` uses as `${name}`, in order.
pub fn placeholder_names(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("${")?;
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        rest = &after[end + 1..];
        Some(&after[..end])
    })
}

/// The binding names used as `${name}` in the strings of `value`.
fn placeholders(value: &toml::Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            toml::Value::String(text) => names.extend(placeholder_names(text).map(str::to_owned)),
            toml::Value::Array(items) => stack.extend(items),
            toml::Value::Table(table) => stack.extend(table.values()),
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
