//! What Baton puts before the first prompt an agent is given (MCP spec §4.7, §4.8): a
//! sub-task learns that it is one and how it reports completion; a coordinator learns its tools
//! and how to run a batch of sub-tasks. Pure text, Baton's own wording.
//!
//! Each preamble ends with a `---` line, and the prompt follows on the next line.

/// The first line of a sub-task's assignment.
pub const SUB_TASK_MARK: &str = "[SUB-TASK MODE]";

/// Sub-tasks a coordinator runs at once unless told otherwise.
pub const CONCURRENT_TASKS_DEFAULT: usize = 3;
/// Most sub-tasks a coordinator may be told to run at once (its engine's bound is higher; a
/// coordinator juggling more rarely reviews them well).
pub const CONCURRENT_TASKS_MAX: usize = 16;

const SUB_TASK: &str = "\
[SUB-TASK MODE]
You are a sub-task: a coordinator agent gave you this work and will review and merge it. Your \
MCP server `baton` gives you one tool, `signal_done`.
1. Do the whole task first. Then commit all of it (`git add -A && git commit` with a message \
that says what changed), run the project's tests and type checks, and fix what you broke. \
Calling `signal_done` means: done, committed, verified.
2. Ask when the task is unclear, or before anything risky or destructive: a person reads this \
terminal.
3. When you are finished, call `signal_done`. Do not ask what to do next, do not offer to merge \
or open a pull request, and do not start a branch-finishing workflow: the coordinator does that.
---
";

/// A sub-task's assignment: the preamble, then the coordinator's prompt.
#[must_use]
pub fn sub_task(prompt: &str) -> String {
    format!("{SUB_TASK}{prompt}")
}

/// A coordinator's first prompt: the preamble (with its limit of `concurrent` sub-tasks at
/// once, clamped to 1..=[`CONCURRENT_TASKS_MAX`]), the branch its sub-tasks must start from,
/// then the user's prompt.
#[must_use]
pub fn coordinator(prompt: &str, base_branch: &str, concurrent: usize) -> String {
    let n = concurrent.clamp(1, CONCURRENT_TASKS_MAX);
    format!(
        "\
[COORDINATOR MODE]
You coordinate sub-tasks. Each one is another agent in its own git worktree and branch. Your MCP \
server `baton` gives you these tools:
- create_task: start a sub-task with a name and a complete prompt (and a baseBranch);
- list_tasks, get_task_status: what the sub-tasks are doing;
- send_prompt, then wait_for_idle: a follow-up for a running sub-task;
- wait_for_signal_done: blocks until a sub-task reports completion (returns taskId, name and \
how many remain);
- get_task_diff, get_task_output: what a sub-task changed and printed;
- merge_task: merge a finished sub-task into your branch; close_task: remove it, only after a \
successful merge.
Rules:
1. Start sub-tasks with create_task only, never with your own built-in sub-agents. The one \
exception is landing: once wait_for_signal_done returns a task, you may brief a helper of your \
own, with every detail it needs, to run get_task_diff, merge_task and close_task for it and to \
deal with conflicts or failing tests; collect every helper's result before you call the work done.
2. If the request is ambiguous, or a work list it names is missing, stop and ask. Never make up a \
list of work from other files.
3. One concrete task per sub-task, never \"pick one of these\". A sub-task knows nothing of this \
conversation: give it paths, expected behaviour and constraints, and tell it to run the tests \
and type checks before signal_done.
4. Give every sub-task your own branch as baseBranch (`git rev-parse --abbrev-ref HEAD`), so it \
starts from your work; another branch only when the user says so.
5. Keep at most {n} sub-tasks running at a time; work that touches the same files runs one after the \
other.
6. Keep the window full: start up to {n}, call wait_for_signal_done, land the task it returns \
(diff, update the work list and commit that, merge_task with squash, close_task), start the next \
while work remains, and repeat while tasks remain or the list is not empty. Report failures \
before you say the job is done.
7. merge_task before close_task, always: closing unmerged work throws it away, and a git merge \
of your own skips Baton's clean-up. If merge_task reports uncommitted changes, commit and retry.
8. Commit your own edits before merge_task or any other git operation.
9. Before you assign an item, check that it is not done already.
10. For a follow-up to a running sub-task use send_prompt, then wait_for_idle.
---
Use `{base_branch}` as the baseBranch for all sub-tasks.

{prompt}"
    )
}

#[cfg(test)]
mod tests {
    use super::{CONCURRENT_TASKS_MAX, SUB_TASK_MARK, coordinator, sub_task};

    #[test]
    fn a_sub_tasks_assignment_is_the_preamble_then_the_prompt() {
        let text = sub_task("Fix the parser.");
        assert!(text.starts_with(&format!("{SUB_TASK_MARK}\n")));
        assert!(text.ends_with("\n---\nFix the parser."), "{text}");
        assert!(text.contains("`signal_done`"));
        assert!(
            !text.contains('\r'),
            "Enter is pressed by the engine, not the text"
        );
    }

    #[test]
    fn a_coordinators_prompt_names_its_limit_branch_and_every_tool_it_uses() {
        let text = coordinator("Do the queue.", "feature/x", 5);
        assert!(text.contains("Keep at most 5 sub-tasks running at a time"));
        assert!(
            text.contains("Use `feature/x` as the baseBranch for all sub-tasks.\n\nDo the queue.")
        );
        for tool in [
            "create_task",
            "list_tasks",
            "get_task_status",
            "send_prompt",
            "wait_for_idle",
            "wait_for_signal_done",
            "get_task_diff",
            "get_task_output",
            "merge_task",
            "close_task",
        ] {
            assert!(text.contains(tool), "{tool}");
        }
        assert!(
            !text.contains("review_and_merge_task"),
            "the deprecated tool is not taught"
        );
        assert!(!text.contains("{n}"), "every placeholder is filled");
    }

    #[test]
    fn the_limit_is_clamped() {
        assert!(coordinator("p", "main", 0).contains("Keep at most 1 sub-tasks running"));
        let most = format!("Keep at most {CONCURRENT_TASKS_MAX} sub-tasks running");
        assert!(coordinator("p", "main", 10_000).contains(&most));
    }
}
