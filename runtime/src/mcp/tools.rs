//! The MCP tools: their catalogue per role (MCP spec §2.1, §2.2), what REST call each one makes
//! ([`plan`]), and the text its answer becomes ([`render`]). Pure: no IO, so every tool's
//! request and result are unit-tested; `server` carries out the plan.
//!
//! Arguments are read leniently (spec §2.0): a missing or ill-typed argument is an error result
//! naming it, never a protocol error. Where the reference sent an ill-typed value on to the
//! server, Baton refuses it before any request (`taskId must be a non-empty string`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::args::Role;
use crate::api::wire;
use crate::core::branch::validate_branch_name;
use crate::core::routes::{Endpoint, TaskOp};

/// Longest diff shown, in UTF-16 units (as the reference counted); longer ones are cut.
pub const DIFF_SHOWN_UNITS_MAX: usize = 50_000;
/// What follows a cut diff.
pub const DIFF_CUT_NOTE: &str = "\n... (diff truncated)";

/// A tool as `tools/list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Its input schema (a JSON object schema).
    pub schema: Value,
}

fn schema(properties: Value, required: &[&str]) -> Value {
    let mut schema = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn task_id() -> Value {
    json!({ "type": "string", "description": "The task's id (from create_task or list_tasks)" })
}

/// The tools of `role`, in the order `tools/list` gives them.
#[must_use]
pub fn catalogue(role: Role) -> Vec<Tool> {
    if role == Role::SubTask {
        return vec![Tool {
            name: "signal_done",
            description: "Tell your coordinator that this task's work is finished and ready for \
                          review. Call it once, at the very end, never part-way.",
            schema: schema(json!({}), &[]),
        }];
    }
    vec![
        Tool {
            name: "create_task",
            description: "Create a sub-task: a new git worktree and branch with its own agent. \
                          The agent starts by itself; the prompt, if given, is typed into it \
                          once it is ready for input.",
            schema: schema(
                json!({
                    "name": { "type": "string", "description": "The task's name (its branch is named after it)" },
                    "prompt": { "type": "string", "description": "The assignment, typed once the agent is ready" },
                    "baseBranch": { "type": "string", "description": "The branch to start from and merge back into (default: the project's main branch)" },
                    "policy": { "enum": ["review", "land"], "description": "What the sub-task may do with its finished work: review (default: it signals done, you review and merge) or land (it may also land itself once the required checks pass)" },
                    "checks": {
                        "type": "array",
                        "description": "Only with policy land: commands that must pass in the sub-task's worktree before it lands",
                        "items": {
                            "type": "object",
                            "properties": {
                                "command": { "type": "string", "description": "A command line, run by the shell; it passes when it exits with status 0" },
                                "name": { "type": "string", "description": "What reports call it (default: the command line)" },
                                "timeoutMs": { "type": "integer", "description": "How long it may run (default 300000)" },
                            },
                            "required": ["command"],
                        },
                    },
                }),
                &["name"],
            ),
        },
        Tool {
            name: "list_tasks",
            description: "List this coordinator's tasks and their states.",
            schema: schema(json!({}), &[]),
        },
        Tool {
            name: "get_task_status",
            description: "One task in full: its branch, worktree, state and exit code.",
            schema: schema(json!({ "taskId": task_id() }), &["taskId"]),
        },
        Tool {
            name: "send_prompt",
            description: "Type a follow-up instruction into a task's agent. It is queued while \
                          the task's assignment or a human's hold is pending; do not wait for \
                          idle while it is queued, and do not resend the whole assignment.",
            schema: schema(
                json!({
                    "taskId": task_id(),
                    "prompt": { "type": "string", "description": "What to type" },
                }),
                &["taskId", "prompt"],
            ),
        },
        Tool {
            name: "wait_for_idle",
            description: "Wait until a task's agent is back at its prompt (or exited, or a \
                          human took it over). It also returns, with reason needs_attention and \
                          the attention reason (permission, question, dialog, sign_in, error, \
                          unrecognised_screen), when the agent waits for a human: tell the user; \
                          do not send it a prompt (it would answer the question).",
            schema: schema(
                json!({
                    "taskId": task_id(),
                    "timeoutMs": { "type": "number", "description": "How long to wait at most (default 300000 = 5 minutes). A client that gives up on a request after 60 s (the TypeScript MCP SDK's default) should pass 50000 and call again, or send a progress token: the server then reports progress every 15 s. A wait given up (cancelled, timed out) consumes no signal." },
                }),
                &["taskId"],
            ),
        },
        Tool {
            name: "get_task_diff",
            description: "What a task changed: its files, with lines added and removed, and the \
                          unified diff.",
            schema: schema(json!({ "taskId": task_id() }), &["taskId"]),
        },
        Tool {
            name: "get_task_output",
            description: "A task's recent terminal output as plain text.",
            schema: schema(json!({ "taskId": task_id() }), &["taskId"]),
        },
        Tool {
            name: "merge_task",
            description: "Merge a task's branch into the branch it started from (what it left \
                          uncommitted is committed first).",
            schema: schema(
                json!({
                    "taskId": task_id(),
                    "squash": { "type": "boolean", "description": "One commit instead of a merge commit (default false)" },
                    "message": { "type": "string", "description": "The commit message" },
                    "cleanup": { "type": "boolean", "description": "Close the task once merged: its worktree and branch go (default false)" },
                }),
                &["taskId"],
            ),
        },
        Tool {
            name: "close_task",
            description: "Close a task: its agent is stopped, its worktree and branch removed.",
            schema: schema(json!({ "taskId": task_id() }), &["taskId"]),
        },
        Tool {
            name: "wait_for_signal_done",
            description: "Wait until one of your sub-tasks signals that it is done (or exits). \
                          Returns taskId, name, status, signalDoneAt and remaining (tasks still \
                          working or not yet reviewed). Review each task it returns before \
                          calling again, and call again until remaining is 0. An answer with \
                          needsAttention (permission, question, dialog, …) means that task waits \
                          for a human, not that it is done: tell the user, send it no prompt, and \
                          call again (its signal is still to come).",
            schema: schema(
                json!({
                    "timeoutMs": { "type": "number", "description": "How long to wait at most (default 300000 = 5 minutes). A client that gives up on a request after 60 s (the TypeScript MCP SDK's default) should pass 50000 and call again, or send a progress token: the server then reports progress every 15 s. A wait given up (cancelled, timed out) consumes no signal." },
                }),
                &[],
            ),
        },
        Tool {
            name: "review_and_merge_task",
            description: "DEPRECATED: merges without letting you read the diff first. Use \
                          get_task_diff, then merge_task, then close_task.",
            schema: schema(
                json!({
                    "taskId": task_id(),
                    "squash": { "type": "boolean", "description": "One commit instead of a merge commit (default false)" },
                    "message": { "type": "string", "description": "The commit message" },
                }),
                &["taskId"],
            ),
        },
    ]
}

/// What a tool call does over REST.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// One request.
    Call {
        /// `GET`, `POST` or `DELETE`.
        method: &'static str,
        /// The path, ids percent-encoded.
        path: String,
        /// The JSON body, if the route takes one.
        body: Option<Value>,
        /// How long the server may hold the request (a long poll), in ms.
        wait_ms: Option<u64>,
    },
    /// `POST /api/wait-signal`, retried with one request id on transport errors (spec §1.7).
    WaitSignal {
        /// The caller's `timeoutMs` (absent: the server's default on every try).
        timeout_ms: Option<f64>,
    },
    /// `POST /api/tasks/:id/done` with the done token.
    SignalDone {
        /// The path.
        path: String,
    },
}

/// The server's default wait, when a call gives no `timeoutMs`.
pub const WAIT_MS_DEFAULT: u64 = 300_000;

/// Who is calling: the process's ids.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// Its role.
    pub role: Role,
    /// `--coordinator-id`.
    pub coordinator: Option<&'a str>,
    /// `--task-id`.
    pub task: Option<&'a str>,
}

/// The REST route each tool calls.
pub const TOOL_ENDPOINTS: [(&str, Endpoint); 12] = [
    ("create_task", Endpoint::CreateTask),
    ("list_tasks", Endpoint::ListTasks),
    ("get_task_status", Endpoint::Task(TaskOp::Get)),
    ("send_prompt", Endpoint::Task(TaskOp::Prompt)),
    ("wait_for_idle", Endpoint::Task(TaskOp::Wait)),
    ("get_task_diff", Endpoint::Task(TaskOp::Diff)),
    ("get_task_output", Endpoint::Task(TaskOp::Output)),
    ("merge_task", Endpoint::Task(TaskOp::Merge)),
    ("close_task", Endpoint::Task(TaskOp::Close)),
    ("review_and_merge_task", Endpoint::Task(TaskOp::ReviewMerge)),
    ("wait_for_signal_done", Endpoint::WaitSignal),
    ("signal_done", Endpoint::Task(TaskOp::Done)),
];

/// The REST route `tool` calls ([`TOOL_ENDPOINTS`]).
#[must_use]
pub fn endpoint_of(tool: &str) -> Option<Endpoint> {
    TOOL_ENDPOINTS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, endpoint)| *endpoint)
}

/// The REST call a tool call makes, or the error text (`Error: …`, or `Unknown tool: …`) it
/// answers with at once.
///
/// # Errors
/// See the module documentation.
pub fn plan(
    caller: Caller<'_>,
    tool: &str,
    arguments: &Map<String, Value>,
) -> Result<Plan, String> {
    let fail = |message: String| Err(format!("Error: {message}"));
    if caller.role == Role::SubTask && tool != "signal_done" {
        return fail(format!(
            "'{tool}' is not available to sub-tasks. Only signal_done is permitted."
        ));
    }
    let Some(endpoint) = endpoint_of(tool) else {
        return Err(format!("Unknown tool: {tool}"));
    };
    let task = || -> Result<String, String> {
        match arguments.get("taskId") {
            Some(Value::String(id)) if !id.trim().is_empty() => Ok(id.clone()),
            _ => Err("Error: taskId must be a non-empty string".to_owned()),
        }
    };
    let pick = |names: &[&str]| -> Value {
        Value::Object(
            names
                .iter()
                .filter_map(|name| {
                    arguments
                        .get(*name)
                        .map(|v| ((*name).to_owned(), v.clone()))
                })
                .collect(),
        )
    };
    let call = |endpoint: Endpoint, id: String, body: Option<Value>| Plan::Call {
        method: endpoint.method(),
        path: endpoint.path_for(&id),
        body,
        wait_ms: None,
    };
    Ok(match tool {
        "create_task" => {
            if let Some(base) = arguments.get("baseBranch") {
                let Value::String(base) = base else {
                    return fail("baseBranch must be a string".to_owned());
                };
                if let Err(error) = validate_branch_name(base, "baseBranch") {
                    return fail(error.to_string());
                }
            }
            if let Err(error) = crate::core::coordinator::read_policy(
                arguments.get("policy"),
                arguments.get("checks"),
            ) {
                return fail(error);
            }
            let mut body = pick(&["name", "prompt", "baseBranch", "policy", "checks"]);
            if let Some(coordinator) = caller.coordinator {
                body["coordinatorTaskId"] = Value::String(coordinator.to_owned());
            }
            call(endpoint, String::new(), Some(body))
        }
        "list_tasks" => call(endpoint, String::new(), None),
        "get_task_status" => call(endpoint, task()?, None),
        "send_prompt" => {
            let task = task()?;
            match arguments.get("prompt") {
                Some(Value::String(prompt)) if !prompt.trim().is_empty() => {}
                _ => return fail("prompt must be a non-empty string".to_owned()),
            }
            call(endpoint, task, Some(pick(&["prompt"])))
        }
        "wait_for_idle" => {
            let path = endpoint.path_for(&task()?);
            let wait_ms = wait_of(arguments.get("timeoutMs").and_then(Value::as_f64));
            Plan::Call {
                method: endpoint.method(),
                path,
                body: Some(pick(&["timeoutMs"])),
                wait_ms: Some(wait_ms),
            }
        }
        "get_task_diff" => call(endpoint, task()?, None),
        "get_task_output" => call(endpoint, task()?, None),
        "merge_task" => {
            let body = pick(&["squash", "message", "cleanup"]);
            call(endpoint, task()?, Some(body))
        }
        "close_task" => call(endpoint, task()?, None),
        "review_and_merge_task" => {
            let body = pick(&["squash", "message"]);
            call(endpoint, task()?, Some(body))
        }
        "wait_for_signal_done" => {
            if caller.coordinator.is_none() {
                return fail(
                    "wait_for_signal_done is only available to coordinators (no --coordinator-id configured)."
                        .to_owned(),
                );
            }
            let timeout_ms = match arguments.get("timeoutMs") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(_) => return fail("timeoutMs must be a finite number".to_owned()),
            };
            Plan::WaitSignal { timeout_ms }
        }
        "signal_done" => {
            let Some(task) = caller.task else {
                return fail(
                    "signal_done is only available to sub-tasks (no --task-id configured)."
                        .to_owned(),
                );
            };
            Plan::SignalDone {
                path: endpoint.path_for(task),
            }
        }
        other => return Err(format!("Unknown tool: {other}")),
    })
}

/// How long a long poll may be held: the caller's `timeoutMs` if it is a number (clamped to
/// zero and up), else the server's default.
#[must_use]
pub fn wait_of(timeout: Option<f64>) -> u64 {
    timeout
        .filter(|ms| ms.is_finite())
        .map_or(WAIT_MS_DEFAULT, |ms| {
            // Whole, and no larger than a u64 holds.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ms = ms.clamp(0.0, 1e15) as u64;
            ms
        })
}

/// The text a successful answer becomes, read with the server's own wire types.
///
/// # Errors
/// The answer is not what the route gives (`Error: …`), or it says the wait timed out
/// (`wait_for_idle` reports a timeout as an error, as the reference's tool did).
pub fn render(tool: &str, task: Option<&str>, answer: &Value) -> Result<String, String> {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let read = |what: &str| format!("Error: the answer is not {what}");
    Ok(match tool {
        "send_prompt" if wire::PromptAnswer::deserialize(answer).is_ok_and(|a| a.queued) => {
            "Prompt queued. It will be sent after the current initial prompt or user hold clears."
                .to_owned()
        }
        "send_prompt" => "Prompt sent successfully.".to_owned(),
        "close_task" => "Task closed successfully.".to_owned(),
        "signal_done" => "Done signal sent. The coordinator has been notified.".to_owned(),
        "wait_for_idle" if wire::IdleAnswer::deserialize(answer).is_ok_and(|a| a.timed_out) => {
            return Err(format!(
                "Error: Timed out waiting for task {} to become idle",
                task.unwrap_or_default()
            ));
        }
        "get_task_output" => wire::Output::deserialize(answer)
            .map_err(|_| "Error: the answer has no output".to_owned())?
            .output
            .into_owned(),
        "get_task_diff" => diff_text(&wire::Diff::deserialize(answer).map_err(|_| read("a diff"))?),
        "review_and_merge_task" => {
            let answer = wire::ReviewMerge::deserialize(answer).map_err(|_| read("a merge"))?;
            format!(
                "Merged into {}: +{} -{} lines\n\n{}",
                answer.merge.main_branch,
                answer.merge.lines_added,
                answer.merge.lines_removed,
                diff_text(&answer.diff)
            )
        }
        _ => pretty(answer),
    })
}

/// `Changed files:` with one line per file, then the diff, cut at [`DIFF_SHOWN_UNITS_MAX`].
fn diff_text(diff: &wire::Diff<'_>) -> String {
    let summary: Vec<String> = diff
        .files
        .iter()
        .map(|file| {
            let mut line = format!(
                "{} {} (+{} -{})",
                file.status, file.path, file.lines_added, file.lines_removed
            );
            if !file.committed {
                line.push_str(" [NOT COMMITTED — will be auto-committed on merge]");
            }
            line
        })
        .collect();
    format!(
        "Changed files:\n{}\n\n{}",
        summary.join("\n"),
        cut_units(&diff.diff)
    )
}

/// `text` cut to its first [`DIFF_SHOWN_UNITS_MAX`] UTF-16 units (never inside a character),
/// with [`DIFF_CUT_NOTE`] when it was cut.
fn cut_units(text: &str) -> String {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > DIFF_SHOWN_UNITS_MAX {
            return format!("{}{DIFF_CUT_NOTE}", &text[..at]);
        }
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::{Caller, DIFF_SHOWN_UNITS_MAX, Plan, catalogue, plan, render};
    use crate::mcp::args::Role;

    fn arguments(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    const COORDINATOR: Caller<'static> = Caller {
        role: Role::Coordinator,
        coordinator: Some("coord-1"),
        task: None,
    };
    const SUB_TASK: Caller<'static> = Caller {
        role: Role::SubTask,
        coordinator: None,
        task: Some("task 1/x"),
    };

    #[test]
    fn each_role_lists_its_tools_in_order() {
        let names = |role| catalogue(role).iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(Role::SubTask), ["signal_done"]);
        assert_eq!(
            names(Role::Coordinator),
            [
                "create_task",
                "list_tasks",
                "get_task_status",
                "send_prompt",
                "wait_for_idle",
                "get_task_diff",
                "get_task_output",
                "merge_task",
                "close_task",
                "wait_for_signal_done",
                "review_and_merge_task",
            ]
        );
        for tool in catalogue(Role::Coordinator) {
            assert_eq!(tool.schema["type"], "object", "{}", tool.name);
            assert!(tool.schema["properties"].is_object(), "{}", tool.name);
        }
        let send = &catalogue(Role::Coordinator)[3];
        assert_eq!(send.schema["required"], json!(["taskId", "prompt"]));
        assert!(
            catalogue(Role::Coordinator)[1]
                .schema
                .get("required")
                .is_none()
        );
    }

    #[test]
    fn sub_tasks_may_only_signal_done() {
        for tool in ["create_task", "send_prompt", "no_such_tool"] {
            assert_eq!(
                plan(SUB_TASK, tool, &Map::new()),
                Err(format!(
                    "Error: '{tool}' is not available to sub-tasks. Only signal_done is permitted."
                ))
            );
        }
        assert_eq!(
            plan(SUB_TASK, "signal_done", &Map::new()),
            Ok(Plan::SignalDone {
                path: "/api/tasks/task%201%2Fx/done".into()
            })
        );
        assert_eq!(
            plan(COORDINATOR, "signal_done", &Map::new()),
            Err(
                "Error: signal_done is only available to sub-tasks (no --task-id configured)."
                    .into()
            )
        );
        assert_eq!(
            plan(COORDINATOR, "no_such_tool", &Map::new()),
            Err("Unknown tool: no_such_tool".into())
        );
    }

    #[test]
    fn calls_become_their_rest_requests() {
        assert_eq!(
            plan(
                COORDINATOR,
                "create_task",
                &arguments(json!({ "name": "x", "prompt": "p", "other": 1 }))
            ),
            Ok(Plan::Call {
                method: "POST",
                path: "/api/tasks".into(),
                body: Some(json!({ "name": "x", "prompt": "p", "coordinatorTaskId": "coord-1" })),
                wait_ms: None,
            })
        );
        let checks = json!([{ "command": "cargo test -q", "timeoutMs": 60_000 }]);
        assert_eq!(
            plan(
                COORDINATOR,
                "create_task",
                &arguments(json!({ "name": "x", "policy": "land", "checks": checks }))
            ),
            Ok(Plan::Call {
                method: "POST",
                path: "/api/tasks".into(),
                body: Some(json!({
                    "name": "x", "policy": "land", "checks": checks, "coordinatorTaskId": "coord-1"
                })),
                wait_ms: None,
            })
        );
        assert_eq!(
            plan(
                COORDINATOR,
                "merge_task",
                &arguments(json!({ "taskId": "a/b", "squash": "yes" }))
            ),
            Ok(Plan::Call {
                method: "POST",
                path: "/api/tasks/a%2Fb/merge".into(),
                body: Some(json!({ "squash": "yes" })),
                wait_ms: None,
            }),
            "ill-typed optional values go on: the server answers 400"
        );
        assert_eq!(
            plan(
                COORDINATOR,
                "wait_for_idle",
                &arguments(json!({ "taskId": "t", "timeoutMs": 1500 }))
            ),
            Ok(Plan::Call {
                method: "POST",
                path: "/api/tasks/t/wait".into(),
                body: Some(json!({ "timeoutMs": 1500 })),
                wait_ms: Some(1500),
            })
        );
        assert_eq!(
            plan(
                COORDINATOR,
                "close_task",
                &arguments(json!({ "taskId": "t" }))
            ),
            Ok(Plan::Call {
                method: "DELETE",
                path: "/api/tasks/t".into(),
                body: None,
                wait_ms: None
            })
        );
        assert_eq!(
            plan(
                COORDINATOR,
                "wait_for_signal_done",
                &arguments(json!({ "timeoutMs": 10 }))
            ),
            Ok(Plan::WaitSignal {
                timeout_ms: Some(10.0)
            })
        );
        let plain = Caller {
            coordinator: None,
            ..COORDINATOR
        };
        assert!(
            plan(plain, "wait_for_signal_done", &Map::new())
                .unwrap_err()
                .contains("only available to coordinators")
        );
    }

    #[test]
    fn bad_arguments_are_refused_before_any_request() {
        for bad in [json!({}), json!({ "taskId": "  " }), json!({ "taskId": 5 })] {
            assert_eq!(
                plan(COORDINATOR, "get_task_status", &arguments(bad)),
                Err("Error: taskId must be a non-empty string".into())
            );
        }
        for bad in [
            json!({ "taskId": "t" }),
            json!({ "taskId": "t", "prompt": " " }),
            json!({ "taskId": "t", "prompt": 3 }),
        ] {
            assert_eq!(
                plan(COORDINATOR, "send_prompt", &arguments(bad)),
                Err("Error: prompt must be a non-empty string".into())
            );
        }
        let error = plan(
            COORDINATOR,
            "create_task",
            &arguments(json!({ "name": "x", "baseBranch": "../main" })),
        )
        .unwrap_err();
        assert!(error.starts_with("Error: baseBranch"), "{error}");
        assert_eq!(
            plan(
                COORDINATOR,
                "create_task",
                &arguments(json!({ "name": "x", "baseBranch": null }))
            ),
            Err("Error: baseBranch must be a string".into())
        );
        assert_eq!(
            plan(
                COORDINATOR,
                "create_task",
                &arguments(json!({ "name": "x", "checks": [{ "command": "true" }] }))
            ),
            Err(r#"Error: checks need policy "land": under "review" the coordinator checks the work itself"#.into())
        );
        assert_eq!(
            plan(
                COORDINATOR,
                "wait_for_signal_done",
                &arguments(json!({ "timeoutMs": "5" }))
            ),
            Err("Error: timeoutMs must be a finite number".into())
        );
    }

    #[test]
    fn answers_become_their_texts() {
        assert_eq!(
            render("send_prompt", None, &json!({ "ok": true, "queued": false })).unwrap(),
            "Prompt sent successfully."
        );
        assert!(
            render("send_prompt", None, &json!({ "ok": true, "queued": true }))
                .unwrap()
                .starts_with("Prompt queued.")
        );
        assert_eq!(
            render("get_task_output", None, &json!({ "output": "hi\n" })).unwrap(),
            "hi\n"
        );
        assert_eq!(
            render("list_tasks", None, &json!([{ "id": "t" }])).unwrap(),
            "[\n  {\n    \"id\": \"t\"\n  }\n]"
        );
        assert_eq!(
            render(
                "wait_for_idle",
                Some("t1"),
                &json!({ "status": "running", "reason": "timeout", "timedOut": true })
            ),
            Err("Error: Timed out waiting for task t1 to become idle".into())
        );
        let diff = json!({
            "files": [
                { "path": "a.rs", "lines_added": 2, "lines_removed": 1, "status": "M", "committed": true },
                { "path": "b.rs", "lines_added": 5, "lines_removed": 0, "status": "A", "committed": false },
            ],
            "diff": "diff --git …",
        });
        assert_eq!(
            render("get_task_diff", None, &diff).unwrap(),
            "Changed files:\nM a.rs (+2 -1)\nA b.rs (+5 -0) [NOT COMMITTED — will be auto-committed on merge]\n\ndiff --git …"
        );
        let merged = json!({ "diff": diff, "merge": { "mainBranch": "main", "linesAdded": 7, "linesRemoved": 1 } });
        assert!(
            render("review_and_merge_task", None, &merged)
                .unwrap()
                .starts_with("Merged into main: +7 -1 lines\n\nChanged files:\nM a.rs")
        );
    }

    #[test]
    fn long_diffs_are_cut_in_utf16_units_never_inside_a_character() {
        let long = format!("{}😀tail", "x".repeat(DIFF_SHOWN_UNITS_MAX - 1));
        let text = render("get_task_diff", None, &json!({ "files": [], "diff": long })).unwrap();
        assert!(
            text.ends_with(&format!("{}\n... (diff truncated)", "x".repeat(10))),
            "the emoji, two units, does not fit"
        );
        let exact = "y".repeat(DIFF_SHOWN_UNITS_MAX);
        let text = render(
            "get_task_diff",
            None,
            &json!({ "files": [], "diff": exact }),
        )
        .unwrap();
        assert!(!text.contains("truncated"));
    }
}
