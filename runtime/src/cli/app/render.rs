//! What the client commands print, made from the app channel's JSON without IO: the status,
//! the tasks, an event, an explanation of an agent's state, the phone URL as a QR code; and
//! the agent a `--agent` name stands for, with the body that registers its coordinator.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::wire;

/// How `baton coordinator start --agent NAME` runs: the coordinator's own program and
/// arguments, and its sub-tasks'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentChoice {
    /// The coordinator's agent.
    pub lead: (String, Vec<String>),
    /// Its sub-tasks' agent.
    pub sub_tasks: (String, Vec<String>),
}

/// The agent `name` stands for: `demo` (this `baton` binary's demo agent, `baton` being
/// `program`), `claude`, `codex`, `gemini`, or any command line (split at spaces).
///
/// # Errors
/// `name` is empty.
pub fn agent_choice(name: &str, program: &str) -> Result<AgentChoice, String> {
    let demo = crate::agents::DEMO_AGENT_SUBCOMMAND;
    if name == "demo" {
        let args = |role: &str| vec![demo.to_owned(), "--role".to_owned(), role.to_owned()];
        return Ok(AgentChoice {
            lead: (program.to_owned(), args("coordinator")),
            sub_tasks: (program.to_owned(), args("sub-task")),
        });
    }
    let mut words = name.split_whitespace().map(str::to_owned);
    let command = words.next().ok_or("--agent is empty")?;
    let args: Vec<String> = words.collect();
    Ok(AgentChoice {
        lead: (command.clone(), args.clone()),
        sub_tasks: (command, args),
    })
}

/// `baton status`: the daemon and each coordinator with its agent and tasks.
#[must_use]
pub fn render_status(status: &Value) -> String {
    let mut out = format!(
        "baton daemon {} · API {} · state {}\n",
        status["version"].as_str().unwrap_or("?"),
        status["apiUrl"].as_str().unwrap_or("?"),
        status["stateDir"].as_str().unwrap_or("?"),
    );
    let coordinators = status["coordinators"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if coordinators.is_empty() {
        out.push_str(
            "no coordinators (start one: baton coordinator start --project DIR --agent demo)\n",
        );
    }
    for c in &coordinators {
        let session = &c["session"];
        let agent = if session.is_null() {
            "no agent running".to_owned()
        } else if session["status"] == "exited" {
            format!(
                "agent {} exited ({})",
                session["program"].as_str().unwrap_or("?"),
                session["exitCode"]
                    .as_i64()
                    .map_or_else(|| "killed".to_owned(), |c| format!("code {c}"))
            )
        } else {
            format!(
                "agent {} {}",
                session["program"].as_str().unwrap_or("?"),
                describe_state(
                    session["state"].as_str().unwrap_or_default(),
                    session["attention"].as_str()
                )
            )
        };
        out.push_str(&format!(
            "coordinator {} · {} · {} · {} task(s) · sub-tasks run {}\n",
            c["id"].as_str().unwrap_or("?"),
            c["projectRoot"].as_str().unwrap_or("?"),
            agent,
            c["tasks"].as_u64().unwrap_or(0),
            c["agent"].as_str().unwrap_or("?"),
        ));
    }
    out
}

/// An agent's state in words: its `state` and, when it needs a human, the `attention` reason.
fn describe_state(state: &str, attention: Option<&str>) -> String {
    match state {
        "waiting_for_input" => "waiting for input".to_owned(),
        "working" => "working".to_owned(),
        "starting" => "starting".to_owned(),
        "exited" => "exited".to_owned(),
        "needs_attention" => {
            let reason = attention.unwrap_or("unknown");
            let advice = crate::core::state::Attention::ALL
                .into_iter()
                .find(|a| a.name() == reason)
                .map_or("", |a| a.advice());
            format!("NEEDS A HUMAN ({reason}: {advice})")
        }
        _ => "running".to_owned(),
    }
}

/// An agent's state on the wire, in words.
fn describe(agent: &wire::AgentState<'_>) -> String {
    describe_state(&agent.state, agent.attention.as_deref())
}

/// `baton tasks`: one line per sub-task.
#[must_use]
pub fn render_tasks(tasks: &[wire::TaskDetail<'_>]) -> String {
    if tasks.is_empty() {
        return "no tasks\n".to_owned();
    }
    let mut out = String::new();
    for t in tasks {
        out.push_str(&format!(
            "{}  {:<10} {:<20} {}  ({})  agent {}\n",
            t.summary.id,
            t.summary.status,
            t.summary.name,
            t.summary.branch_name,
            t.worktree_path,
            describe(&t.summary.agent_state),
        ));
    }
    out
}

/// `baton events`: one readable line for an event of the app channel.
#[must_use]
pub fn render_event(event: &Value, names: &std::collections::BTreeMap<String, String>) -> String {
    let task = |field: &str| {
        let id = event[field].as_str().unwrap_or("?");
        names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    };
    match event["type"].as_str().unwrap_or("") {
        "task_created" => match wire::TaskDetail::deserialize(&event["task"]) {
            Ok(made) => format!(
                "+ task {} created on {} ({})",
                made.summary.name, made.summary.branch_name, made.summary.id,
            ),
            Err(_) => format!("+ task created: {event}"),
        },
        "task_merged" => match wire::Merge::deserialize(&event["merge"]) {
            Ok(merge) => format!(
                "✓ task {} merged into {} (+{} -{})",
                task("taskId"),
                merge.main_branch,
                merge.lines_added,
                merge.lines_removed,
            ),
            Err(_) => format!("✓ task {} merged", task("taskId")),
        },
        "task_closed" => format!(
            "- task {} closed (worktree and branch removed)",
            task("taskId")
        ),
        "cleanup_failed" => format!(
            "! task {}: cleanup failed: {}",
            task("taskId"),
            event["error"].as_str().unwrap_or("?")
        ),
        "notification_staged" => format!(
            "… notification for the coordinator: {}",
            event["text"].as_str().unwrap_or("").replace('\n', " ")
        ),
        "notification_cleared" => "… notifications cleared".to_owned(),
        "task_state" if event["change"] == "agent_state" => {
            let Ok(agent) = wire::AgentState::deserialize(&event["agentState"]) else {
                return format!("· task {}: agent state unknown", task("taskId"));
            };
            let mark = if agent.state == "needs_attention" {
                "!"
            } else {
                "·"
            };
            format!(
                "{mark} task {}: agent {} (by its {})",
                task("taskId"),
                describe(&agent),
                agent.source
            )
        }
        "task_state" => format!(
            "· task {}: {}",
            task("taskId"),
            event["change"].as_str().unwrap_or("?").replace('_', " ")
        ),
        "task_orphaned" => format!(
            "! task {} orphaned: {}",
            task("taskId"),
            event["text"].as_str().unwrap_or("")
        ),
        "lagged" => format!(
            "! {} event(s) missed",
            event["missed"].as_u64().unwrap_or(0)
        ),
        other => format!("? {other}: {event}"),
    }
}

/// The body of `POST /app/coordinators` for `baton coordinator start`.
#[must_use]
pub fn register_body(project: &Path, choice: &AgentChoice, skip_permissions: bool) -> Value {
    json!({
        "projectRoot": project,
        "agent": choice.sub_tasks.0,
        "args": choice.sub_tasks.1,
        "skipPermissions": skip_permissions,
    })
}

/// `baton explain`: the verdict, then each source's word with its times, then the screen.
#[must_use]
pub fn render_explanation(explained: &wire::Explanation<'_>) -> String {
    let agent = &explained.agent_state;
    let mut out = format!(
        "task {} ({}): agent {}, by its {} since {}\n",
        explained.name,
        explained.task_id,
        describe(agent),
        agent.source,
        agent.since,
    );
    if let Some(other) = &explained.disagreement {
        out.push_str(&format!(
            "  its {} says otherwise: {}\n",
            other.source, other.state
        ));
    }
    let evidence = &explained.evidence;
    out.push_str("evidence (the newest wins; at the same moment hook, then osc, then screen):\n");
    for (seen, what) in [
        (&evidence.hook, "its hooks (baton hook)"),
        (&evidence.osc, "what it printed of its state (OSC)"),
        (&evidence.screen, "its screen"),
        (&evidence.process, "Baton's own actions (a prompt typed)"),
    ] {
        let line = match seen {
            None => "nothing".to_owned(),
            Some(seen) => format!(
                "{} since {} (last said {})",
                describe_state(&seen.state, seen.attention.as_deref()),
                seen.since,
                seen.last,
            ),
        };
        out.push_str(&format!("  {what}: {line}\n"));
    }
    if let Some(still) = &evidence.screen_still_since {
        out.push_str(&format!(
            "  the screen shows nothing a rule knows, unchanged since {still}\n"
        ));
    }
    out.push_str(&format!(
        "the screen reads {} (last changed {}):\n",
        explained.readiness, explained.last_activity_at,
    ));
    for line in &explained.screen {
        out.push_str(&format!("  | {line}\n"));
    }
    out
}

/// The phone URL as a QR code a terminal can show: two rows of modules per line, in block
/// characters, with a quiet zone.
///
/// # Errors
/// The URL is too long for a QR code.
pub fn qr_text(url: &str) -> Result<String, String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::{agent_choice, qr_text, render_event, render_status, render_tasks};

    /// A task's id on the wire.
    const TASK: &str = "07070707-0707-4707-8707-070707070707";

    #[test]
    fn agent_names_choose_the_coordinators_and_sub_tasks_programs() {
        let demo = agent_choice("demo", "/bin/baton").unwrap();
        assert_eq!(demo.lead.0, "/bin/baton");
        assert_eq!(demo.lead.1, ["demo-agent", "--role", "coordinator"]);
        assert_eq!(demo.sub_tasks.1, ["demo-agent", "--role", "sub-task"]);
        let claude = agent_choice("claude", "/bin/baton").unwrap();
        assert_eq!(claude.lead, ("claude".to_owned(), Vec::new()));
        assert_eq!(claude.sub_tasks, claude.lead);
        let command = agent_choice("aider --yes", "/bin/baton").unwrap();
        assert_eq!(command.lead, ("aider".to_owned(), vec!["--yes".to_owned()]));
        assert!(agent_choice("  ", "/bin/baton").is_err());
    }

    #[test]
    fn status_says_what_runs() {
        let text = render_status(&json!({
            "version": "0.1.0", "apiUrl": "http://127.0.0.1:7777", "stateDir": "/s",
            "coordinators": [{
                "id": "c-1", "projectRoot": "/p", "agent": "claude", "tasks": 2,
                "session": { "program": "claude", "status": "running", "readiness": "Ready", "state": "waiting_for_input", "attention": null },
            }, {
                "id": "c-2", "projectRoot": "/q", "agent": "codex", "tasks": 0, "session": null,
            }],
        }));
        assert!(text.contains("API http://127.0.0.1:7777"), "{text}");
        assert!(
            text.contains("c-1 · /p · agent claude waiting for input · 2 task(s)"),
            "{text}"
        );
        assert!(text.contains("c-2 · /q · no agent running"), "{text}");
        let empty = render_status(&json!({ "coordinators": [] }));
        assert!(empty.contains("no coordinators"), "{empty}");
    }

    #[test]
    fn an_explanation_says_the_verdict_each_sources_word_and_the_screen() {
        let explained = serde_json::from_value(json!({
            "taskId": TASK, "name": "alpha", "status": "running",
            "agentState": { "state": "needs_attention", "attention": "permission",
                "source": "hook", "since": "T2" },
            "disagreement": { "source": "screen", "state": "working" },
            "evidence": {
                "started": "T0", "exited": null,
                "process": { "state": "working", "since": "T1", "last": "T1" },
                "screen": { "state": "working", "since": "T1", "last": "T3" },
                "screenStillSince": null, "osc": null,
                "hook": { "state": "needs_attention", "attention": "permission",
                    "since": "T2", "last": "T2" },
            },
            "readiness": "busy", "lastActivityAt": "T3",
            "screen": ["✻ Working… (4s · esc to interrupt)"],
        }))
        .unwrap();
        let text = super::render_explanation(&explained);
        assert_eq!(
            text,
            "task alpha (07070707-0707-4707-8707-070707070707): agent NEEDS A HUMAN (permission: it asks permission to use a \
             tool), by its hook since T2\n  its screen says otherwise: working\n\
             evidence (the newest wins; at the same moment hook, then osc, then screen):\n  \
             its hooks (baton hook): NEEDS A HUMAN (permission: it asks permission to use a \
             tool) since T2 (last said T2)\n  what it printed of its state (OSC): nothing\n  \
             its screen: working since T1 (last said T3)\n  Baton's own actions (a prompt \
             typed): working since T1 (last said T1)\nthe screen reads busy (last changed \
             T3):\n  | ✻ Working… (4s · esc to interrupt)\n"
        );
    }

    #[test]
    fn tasks_and_events_read_as_lines() {
        let task = serde_json::from_value(json!({
            "id": TASK, "status": "running", "name": "alpha", "branchName": "task/alpha-1",
            "coordinatorTaskId": TASK, "worktreePath": "/p/.worktrees/task/alpha-1",
            "exitCode": null, "agentState": { "state": "needs_attention",
                "attention": "permission", "source": "screen", "since": "T1" },
        }))
        .unwrap();
        let tasks = render_tasks(&[task]);
        assert!(
            tasks.starts_with(&format!("{TASK}  running    alpha")),
            "{tasks}"
        );
        assert!(
            tasks.ends_with("agent NEEDS A HUMAN (permission: it asks permission to use a tool)\n"),
            "{tasks}"
        );
        assert_eq!(render_tasks(&[]), "no tasks\n");
        let names = BTreeMap::from([("t-1".to_owned(), "alpha".to_owned())]);
        let merged = json!({
            "type": "task_merged", "taskId": "t-1",
            "merge": { "mainBranch": "main", "linesAdded": 3, "linesRemoved": 0 },
        });
        assert_eq!(
            render_event(&merged, &names),
            "✓ task alpha merged into main (+3 -0)"
        );
        let attention = json!({ "type": "task_state", "taskId": "t-1", "change": "agent_state",
            "agentState": { "state": "needs_attention", "attention": "sign_in", "source": "hook",
                "since": "T1" } });
        assert_eq!(
            render_event(&attention, &names),
            "! task alpha: agent NEEDS A HUMAN (sign_in: it wants its user to sign in) (by its hook)"
        );
        let state = json!({ "type": "task_state", "taskId": "t-1", "change": "signal_received" });
        assert_eq!(
            render_event(&state, &names),
            "· task alpha: signal received"
        );
    }

    #[test]
    fn a_url_makes_a_square_qr_code_of_block_characters() {
        let text =
            qr_text("http://192.168.1.20:7801/?token=abcdefghijklmnopqrstuvwxyz012345").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        assert!(width > 20 && lines.iter().all(|l| l.chars().count() == width));
        // Two rows of modules per line: about half as many lines as columns.
        assert!(
            lines.len() * 2 >= width && lines.len() * 2 <= width + 2,
            "{}",
            lines.len()
        );
        assert!(text.chars().all(|c| " ▀▄█\n".contains(c)), "{text}");
    }
}
