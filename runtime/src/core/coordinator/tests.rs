//! The coordinator core, scenario by scenario (reference catalogue §9, groups C, G and R, and
//! Baton's decisions: cancel-safe waits, replayed timeouts, bounded everything).

use std::cell::Cell;

use super::{
    Control, Coordinator, CoreError, Effect, IDLE_WAITERS_PER_TASK_MAX, IdleOutcome, Job,
    MCP_CONNECT_TIMEOUT_MS, NewTask, PROMPT_BYTES_MAX, PROMPT_QUEUE_MAX, SIGNAL_WAITERS_MAX, Sent,
    SignalOutcome, StateChange, Status, TASKS_PER_COORDINATOR_MAX, TaskSpec, Typed,
    WAIT_TIMEOUT_MS_DEFAULT, WAIT_TIMEOUT_MS_MAX, Wait, WaiterId,
};
use crate::core::detector::Profile;
use crate::core::ids::{AgentId, BatchId, CoordinatorId, NotificationId, TaskId};
use crate::core::notify::{Fresh, Notice};
use crate::core::replay::RequestId;
use crate::core::time::Millis;

thread_local! {
    static NEXT: Cell<u8> = const { Cell::new(100) };
}

pub(super) fn fresh() -> Fresh {
    let n = NEXT.with(|next| {
        let n = next.get();
        next.set(n.wrapping_add(1));
        n
    });
    Fresh {
        batch: BatchId::from_random([n; 16]),
        notification: NotificationId::from_random([n; 16]),
    }
}

pub(super) fn task_id(n: u8) -> TaskId {
    TaskId::from_random([n; 16])
}

pub(super) fn agent(n: u8) -> AgentId {
    AgentId::from_random([n; 16])
}

/// Task `n`: `task-a` for 1, `task-b` for 2, …, on branch `task/t<n>-abcdef`, with an
/// assignment waiting if one is given.
pub(super) fn new_task(n: u8, assignment: Option<&str>) -> NewTask {
    NewTask {
        spec: TaskSpec {
            id: task_id(n),
            name: format!("task-{}", char::from(b'a'.wrapping_add(n).wrapping_sub(1))),
            branch: format!("task/t{n}-abcdef"),
            base_branch: None,
            worktree: format!("/repo/.worktrees/t{n}").into(),
            agent: agent(n),
            profile: Profile::Claude,
            done_token: None,
            mcp_config: None,
            worktree_files: Vec::new(),
            launch: vec!["claude".into()],
            command: "claude".into(),
            args: Vec::new(),
            policy: super::Policy::Review,
            checks: Vec::new(),
        },
        assignment: assignment.map(Into::into),
    }
}

/// A coordinator with tasks `task-a`, `task-b`, … (ids 1, 2, …), all running.
pub(super) fn coordinator(tasks: u8) -> Coordinator {
    let mut coordinator = Coordinator::new(CoordinatorId::from_random([9; 16]), 30_000);
    for n in 1..=tasks {
        coordinator.add_task(Millis(0), new_task(n, None)).unwrap();
    }
    coordinator
}

/// `effects` without the changes of agent state (told on every change; tests of other rules
/// leave them aside).
fn without_agent_states(effects: Vec<Effect>) -> Vec<Effect> {
    effects
        .into_iter()
        .filter(|effect| !matches!(effect, Effect::State(_, StateChange::Agent(_))))
        .collect()
}

/// Begins closing task `n` at `at`, as its first caller: the effects, its job's start last.
pub(super) fn close(c: &mut Coordinator, at: u64, n: u8) -> Vec<Effect> {
    let call = c.close(Millis(at), &mut fresh, task_id(n)).unwrap();
    assert_eq!(
        call.effects.last(),
        Some(&close_job(n)),
        "its job starts once its intent is saved"
    );
    call.effects
}

/// The start of task `n`'s close job (see [`new_task`]).
pub(super) fn close_job(n: u8) -> Effect {
    Effect::Start(Job::Close {
        task: task_id(n),
        agent: agent(n),
        worktree: format!("/repo/.worktrees/t{n}").into(),
        branch: format!("task/t{n}-abcdef"),
        config: None,
    })
}

fn blocked<T: std::fmt::Debug>(wait: Wait<T>) -> WaiterId {
    match wait {
        Wait::Blocked { waiter, .. } => waiter,
        Wait::Ready(answer) => panic!("expected a blocked wait, got {answer:?}"),
    }
}

pub(super) fn signal_answers(effects: &[Effect]) -> Vec<(WaiterId, SignalOutcome)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Signal { waiter, outcome } => Some((*waiter, outcome.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn staged_texts(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Notice(Notice::Staged(staged)) => Some(staged.text.clone()),
            _ => None,
        })
        .collect()
}

fn returned_task(outcome: &SignalOutcome) -> (TaskId, &str, usize) {
    match outcome {
        SignalOutcome::Task {
            task,
            name,
            remaining,
            ..
        } => (*task, name.as_str(), *remaining),
        other => panic!("expected a task, got {other:?}"),
    }
}

#[test]
fn a_signal_given_before_the_wait_is_returned_at_once() {
    let mut c = coordinator(1);
    c.signal_done(Millis(1_000), fresh(), task_id(1)).unwrap();
    let (wait, effects) = c
        .wait_for_signal(Millis(2_000), fresh(), None, None)
        .unwrap();
    let Wait::Ready(outcome) = wait else {
        panic!("{wait:?}")
    };
    assert_eq!(
        outcome,
        SignalOutcome::Task {
            task: task_id(1),
            name: "task-a".into(),
            status: Status::Running,
            at: Millis(1_000),
            remaining: 0
        }
    );
    assert!(effects.contains(&Effect::State(task_id(1), StateChange::SignalConsumed)));
}

#[test]
fn a_signal_given_during_the_wait_answers_it_with_what_remains() {
    let mut c = coordinator(2);
    let waiter = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    let effects = c.signal_done(Millis(500), fresh(), task_id(1)).unwrap();
    let answers = signal_answers(&effects);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, waiter);
    assert_eq!(returned_task(&answers[0].1), (task_id(1), "task-a", 1));
    assert!(effects.contains(&Effect::State(
        task_id(1),
        StateChange::SignalReceived {
            at: Millis(500),
            consumed: true
        }
    )));
    assert!(
        staged_texts(&effects).is_empty(),
        "the wait told the coordinator; no notification"
    );
}

#[test]
fn a_wait_with_no_signal_times_out_with_what_remains() {
    let mut c = coordinator(1);
    let (wait, _) = c
        .wait_for_signal(Millis(0), fresh(), None, Some(1_000))
        .unwrap();
    assert_eq!(
        wait,
        Wait::Blocked {
            waiter: WaiterId(1),
            deadline: Millis(1_000)
        }
    );
    assert_eq!(c.next_deadline(Millis(0)), Some(Millis(1_000)));
    assert!(signal_answers(&c.tick(Millis(999), fresh())).is_empty());
    let answers = signal_answers(&c.tick(Millis(1_000), fresh()));
    assert_eq!(
        answers,
        [(WaiterId(1), SignalOutcome::TimedOut { remaining: 1 })]
    );
    let waiter = blocked(
        c.wait_for_signal(Millis(1_001), fresh(), None, Some(500))
            .unwrap()
            .0,
    );
    let effects = c.signal_done(Millis(1_200), fresh(), task_id(1)).unwrap();
    assert_eq!(
        signal_answers(&effects)[0].0,
        waiter,
        "a timed-out wait does not take a later signal"
    );
}

#[test]
fn wait_timeouts_are_clamped_to_the_maximum_decision_bounded_waits() {
    let mut c = coordinator(1);
    let (wait, _) = c
        .wait_for_signal(Millis(0), fresh(), None, Some(u64::MAX))
        .unwrap();
    assert_eq!(
        wait,
        Wait::Blocked {
            waiter: WaiterId(1),
            deadline: Millis(WAIT_TIMEOUT_MS_MAX)
        }
    );
    let wait = c
        .wait_for_idle(Millis(0), task_id(1), Some(u64::MAX))
        .unwrap();
    assert_eq!(
        wait,
        Wait::Blocked {
            waiter: WaiterId(2),
            deadline: Millis(WAIT_TIMEOUT_MS_MAX)
        }
    );
}

#[test]
fn an_idle_task_during_a_wait_is_held_back_and_staged_when_the_wait_ends() {
    let mut c = coordinator(2);
    c.assignment_delivered(Millis(0), task_id(2), "do b")
        .unwrap();
    blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    let mut effects = c.on_output(
        Millis(100),
        fresh(),
        task_id(2),
        "✻ Working (esc to interrupt)\r\n".as_bytes(),
    );
    effects.extend(c.on_output(
        Millis(2_100),
        fresh(),
        task_id(2),
        "\x1b[2J\x1b[HDone\r\n❯ ".as_bytes(),
    ));
    effects.extend(c.tick(Millis(2_150), fresh()));
    assert_eq!(c.task(task_id(2)).unwrap().status(), Status::Idle);
    assert!(
        staged_texts(&effects).is_empty(),
        "nothing staged while the wait blocks"
    );
    let effects = c.signal_done(Millis(3_000), fresh(), task_id(1)).unwrap();
    assert_eq!(returned_task(&signal_answers(&effects)[0].1).0, task_id(1));
    let texts = staged_texts(&effects);
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("\"task-b\" ready for review"),
        "{}",
        texts[0]
    );
}

#[test]
fn a_wait_withdraws_a_staged_batch_and_the_signalled_task_is_not_told_twice() {
    let mut c = coordinator(1);
    c.assignment_delivered(Millis(0), task_id(1), "do a")
        .unwrap();
    c.on_output(
        Millis(2_100),
        fresh(),
        task_id(1),
        "✻ Working (esc to interrupt)\r\n".as_bytes(),
    );
    c.on_output(
        Millis(2_200),
        fresh(),
        task_id(1),
        "\x1b[2J\x1b[H❯ ".as_bytes(),
    );
    assert_eq!(staged_texts(&c.tick(Millis(2_250), fresh())).len(), 1);
    let (_, effects) = c
        .wait_for_signal(Millis(3_000), fresh(), None, None)
        .unwrap();
    assert_eq!(effects, [Effect::Notice(Notice::Cleared)]);
    let effects = c.signal_done(Millis(4_000), fresh(), task_id(1)).unwrap();
    assert_eq!(signal_answers(&effects).len(), 1);
    assert!(
        effects.contains(&Effect::Notice(Notice::Cleared)),
        "its idle notification is withdrawn"
    );
    assert!(staged_texts(&effects).is_empty());
}

#[test]
fn the_same_request_id_replays_the_same_answer_and_a_new_one_waits() {
    let mut c = coordinator(1);
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    let id = RequestId::new("replay-test-id-1").unwrap();
    let (first, _) = c
        .wait_for_signal(Millis(10), fresh(), Some(id.clone()), Some(500))
        .unwrap();
    let (again, effects) = c
        .wait_for_signal(Millis(20), fresh(), Some(id), Some(100))
        .unwrap();
    assert_eq!(first, again);
    assert!(effects.is_empty(), "a replay changes nothing");
    let other = RequestId::new("id-B").unwrap();
    let (wait, _) = c
        .wait_for_signal(Millis(30), fresh(), Some(other), Some(50))
        .unwrap();
    assert!(
        matches!(wait, Wait::Blocked { .. }),
        "the signal was consumed by the first request"
    );
}

#[test]
fn a_timed_out_wait_is_replayed_too_decision_timeouts_are_cached() {
    let mut c = coordinator(1);
    let id = RequestId::new("retry-me").unwrap();
    blocked(
        c.wait_for_signal(Millis(0), fresh(), Some(id.clone()), Some(100))
            .unwrap()
            .0,
    );
    c.tick(Millis(100), fresh());
    c.signal_done(Millis(150), fresh(), task_id(1)).unwrap();
    let (retry, _) = c
        .wait_for_signal(Millis(200), fresh(), Some(id), Some(100))
        .unwrap();
    assert_eq!(retry, Wait::Ready(SignalOutcome::TimedOut { remaining: 1 }));
    assert!(
        !c.task(task_id(1)).unwrap().signal.unwrap().consumed,
        "the retry took nothing"
    );
}

#[test]
fn a_wait_whose_client_went_away_consumes_nothing_decision_cancel_safe_waits() {
    let mut c = coordinator(1);
    let waiter = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    c.cancel_signal_wait(Millis(10), fresh(), waiter);
    let effects = c.signal_done(Millis(20), fresh(), task_id(1)).unwrap();
    assert!(signal_answers(&effects).is_empty());
    let (wait, _) = c.wait_for_signal(Millis(30), fresh(), None, None).unwrap();
    assert_eq!(
        returned_task(&match wait {
            Wait::Ready(outcome) => outcome,
            other => panic!("{other:?}"),
        })
        .0,
        task_id(1)
    );
}

#[test]
fn an_answer_that_could_not_be_delivered_is_taken_back_and_offered_again() {
    let mut c = coordinator(1);
    let id = RequestId::new("lost").unwrap();
    blocked(
        c.wait_for_signal(Millis(0), fresh(), Some(id.clone()), None)
            .unwrap()
            .0,
    );
    let second = blocked(c.wait_for_signal(Millis(1), fresh(), None, None).unwrap().0);
    let effects = c.signal_done(Millis(10), fresh(), task_id(1)).unwrap();
    let (_, lost) = signal_answers(&effects).remove(0);
    let effects = c.signal_undelivered(Millis(11), fresh(), lost, Some(&id));
    let answers = signal_answers(&effects);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, second, "the next waiter gets it");
    let (wait, _) = c
        .wait_for_signal(Millis(12), fresh(), Some(id), Some(10))
        .unwrap();
    assert!(
        matches!(wait, Wait::Blocked { .. }),
        "the lost answer is not replayed"
    );
}

#[test]
fn an_undelivered_answer_with_nobody_waiting_becomes_a_notification() {
    let mut c = coordinator(1);
    blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    let effects = c.signal_done(Millis(10), fresh(), task_id(1)).unwrap();
    let (_, lost) = signal_answers(&effects).remove(0);
    let effects = c.signal_undelivered(Millis(11), fresh(), lost, None);
    assert_eq!(staged_texts(&effects).len(), 1);
    assert!(!c.task(task_id(1)).unwrap().signal.unwrap().consumed);
    assert_eq!(c.remaining(), 1);
}

#[test]
fn an_exit_during_a_wait_answers_it_and_is_not_notified_again() {
    let mut c = coordinator(2);
    let waiter = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    let effects = c.on_exit(Millis(70), fresh(), task_id(2), Some(1));
    assert_eq!(
        signal_answers(&effects),
        [(
            waiter,
            SignalOutcome::Task {
                task: task_id(2),
                name: "task-b".into(),
                status: Status::Exited,
                at: Millis(70),
                remaining: 1
            }
        )]
    );
    assert!(staged_texts(&effects).is_empty());
    assert!(c.notifications().is_flagged(task_id(2)));
}

#[test]
fn remaining_leaves_out_consumed_signals_and_silent_exits() {
    let mut c = coordinator(3);
    assert_eq!(c.remaining(), 3);
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    c.wait_for_signal(Millis(1), fresh(), None, None).unwrap();
    assert_eq!(c.remaining(), 2, "task-a consumed");
    c.on_exit(Millis(2), fresh(), task_id(2), Some(0));
    assert_eq!(c.remaining(), 1, "task-b exited without a signal");
}

#[test]
fn wait_for_idle_answers_at_once_for_idle_exited_and_human_controlled_tasks() {
    let mut c = coordinator(3);
    c.on_output(Millis(0), fresh(), task_id(1), "❯ ".as_bytes());
    c.tick(Millis(50), fresh());
    c.on_exit(Millis(50), fresh(), task_id(2), Some(0));
    c.set_control(Millis(0), fresh(), task_id(3), Control::Human)
        .unwrap();
    assert_eq!(
        c.wait_for_idle(Millis(60), task_id(1), None),
        Ok(Wait::Ready(IdleOutcome::Idle))
    );
    assert_eq!(
        c.wait_for_idle(Millis(60), task_id(2), None),
        Ok(Wait::Ready(IdleOutcome::Exited))
    );
    assert_eq!(
        c.wait_for_idle(Millis(60), task_id(3), None),
        Ok(Wait::Ready(IdleOutcome::HumanControl))
    );
    assert_eq!(
        c.wait_for_idle(Millis(60), task_id(9), None),
        Err(CoreError::TaskNotFound(task_id(9)))
    );
}

#[test]
fn a_blocked_idle_wait_ends_once_the_prompt_is_stable() {
    let mut c = coordinator(1);
    let waiter = blocked(
        c.wait_for_idle(Millis(0), task_id(1), Some(10_000))
            .unwrap(),
    );
    let effects = c.on_output(Millis(100), fresh(), task_id(1), "done\r\n❯ ".as_bytes());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Idle { .. })),
        "not stable yet"
    );
    assert_eq!(c.next_deadline(Millis(100)), Some(Millis(150)));
    let effects = c.tick(Millis(150), fresh());
    assert!(effects.contains(&Effect::Idle {
        waiter,
        outcome: IdleOutcome::Idle
    }));
    assert!(
        staged_texts(&effects).is_empty(),
        "idle before the assignment is not news"
    );
}

#[test]
fn taking_control_answers_idle_waits_and_giving_it_back_answers_only_if_idle() {
    let mut c = coordinator(1);
    let first = blocked(c.wait_for_idle(Millis(0), task_id(1), None).unwrap());
    let effects = c
        .set_control(Millis(0), fresh(), task_id(1), Control::Human)
        .unwrap();
    assert_eq!(
        effects,
        [
            Effect::State(task_id(1), StateChange::ControlChanged(Control::Human)),
            Effect::Idle {
                waiter: first,
                outcome: IdleOutcome::HumanControl
            }
        ]
    );
    c.set_control(Millis(0), fresh(), task_id(1), Control::Coordinator)
        .unwrap();
    let second = blocked(c.wait_for_idle(Millis(10), task_id(1), None).unwrap());
    assert_eq!(
        c.set_control(Millis(0), fresh(), task_id(1), Control::Coordinator)
            .unwrap(),
        [],
        "unchanged and still working: nothing to tell, keep waiting"
    );
    c.cancel_idle_wait(second);
    assert_eq!(
        c.next_deadline(Millis(10)),
        None,
        "nothing due: a blank screen is an agent still starting, however long"
    );
}

#[test]
fn idle_waits_time_out() {
    let mut c = coordinator(1);
    let waiter = blocked(c.wait_for_idle(Millis(0), task_id(1), Some(1_000)).unwrap());
    assert_eq!(
        c.tick(Millis(1_000), fresh()),
        [Effect::Idle {
            waiter,
            outcome: IdleOutcome::TimedOut
        }]
    );
}

#[test]
fn terminal_queries_are_answered() {
    let mut c = coordinator(1);
    let effects = c.on_output(Millis(0), fresh(), task_id(1), b"\x1b[6n");
    assert_eq!(
        effects,
        [Effect::Write {
            agent: agent(1),
            bytes: b"\x1b[1;1R"
        }]
    );
}

#[test]
fn an_exit_is_reported_even_before_the_assignment_was_delivered() {
    let mut c = coordinator(1);
    let effects = c.on_exit(Millis(0), fresh(), task_id(1), Some(2));
    let texts = staged_texts(&effects);
    assert!(
        texts[0].contains("\"task-a\" terminated (exit 2)"),
        "{}",
        texts[0]
    );
}

#[test]
fn a_signal_with_nobody_waiting_is_notified_after_the_short_delay() {
    let mut c = coordinator(1);
    let effects = c.signal_done(Millis(1_000), fresh(), task_id(1)).unwrap();
    let auto_fire = effects.iter().find_map(|e| match e {
        Effect::Notice(Notice::Staged(staged)) => Some(staged.auto_fire_at),
        _ => None,
    });
    assert_eq!(auto_fire, Some(Millis(6_000)));
    assert!(effects.contains(&Effect::State(
        task_id(1),
        StateChange::SignalReceived {
            at: Millis(1_000),
            consumed: false
        }
    )));
    assert_eq!(
        c.signal_done(Millis(0), fresh(), task_id(7)),
        Err(CoreError::TaskNotFound(task_id(7)))
    );
}

#[test]
fn deregistering_ends_every_wait_and_leaves_orphans_under_human_control() {
    let mut c = coordinator(2);
    c.assignment_delivered(Millis(0), task_id(1), "do a")
        .unwrap();
    let signal_waiter = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    let idle_waiter = blocked(c.wait_for_idle(Millis(0), task_id(1), None).unwrap());
    let effects = c.deregister(Millis(500));
    assert!(effects.contains(&Effect::Signal {
        waiter: signal_waiter,
        outcome: SignalOutcome::CoordinatorGone { at: Millis(500) }
    }));
    assert!(effects.contains(&Effect::Idle {
        waiter: idle_waiter,
        outcome: IdleOutcome::Exited
    }));
    assert!(c.tasks().all(|task| task.control == Control::Human));
    assert!(effects.contains(&Effect::State(
        task_id(1),
        StateChange::Orphaned { needs_review: true }
    )));
    assert!(effects.contains(&Effect::State(
        task_id(2),
        StateChange::Orphaned {
            needs_review: false
        }
    )));
    let effects = without_agent_states(c.on_exit(Millis(600), fresh(), task_id(1), Some(0)));
    assert_eq!(
        effects,
        [Effect::Orphaned {
            task: task_id(1),
            text: "- \"task-a\" terminated (exit 0) — branch: task/t1-abcdef".into()
        }]
    );
    assert_eq!(
        without_agent_states(c.on_exit(Millis(600), fresh(), task_id(2), Some(0))),
        [],
        "never assigned: silenced"
    );
    assert_eq!(
        c.wait_for_signal(Millis(700), fresh(), None, None)
            .unwrap_err(),
        CoreError::CoordinatorNotFound(c.id())
    );
    assert_eq!(c.deregister(Millis(800)), [], "already deregistered");
}

#[test]
fn tasks_and_waits_are_bounded() {
    let mut c = coordinator(1);
    for _ in 0..SIGNAL_WAITERS_MAX {
        blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    }
    assert_eq!(
        c.wait_for_signal(Millis(0), fresh(), None, None)
            .unwrap_err(),
        CoreError::TooManyWaiters(SIGNAL_WAITERS_MAX)
    );
    let mut full = coordinator(TASKS_PER_COORDINATOR_MAX as u8);
    let extra = new_task(250, None);
    assert_eq!(
        full.add_task(Millis(0), extra),
        Err(CoreError::TooManyTasks)
    );
}

#[test]
fn prompts_queue_behind_the_assignment_and_go_out_one_per_prompt_in_order() {
    let mut c = coordinator(0);
    let new = new_task(1, Some("assignment"));
    c.add_task(Millis(0), new).unwrap();
    assert_eq!(
        c.send_prompt(Millis(0), task_id(1), "second".into())
            .unwrap()
            .0,
        Sent::Queued
    );
    let typed = |effects: &[Effect]| -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Type { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    c.on_output(Millis(100), fresh(), task_id(1), "❯ ".as_bytes());
    assert_eq!(
        typed(&c.tick(Millis(150), fresh())),
        Vec::<String>::new(),
        "its MCP server is not up"
    );
    assert_eq!(
        c.task(task_id(1)).unwrap().status(),
        Status::Running,
        "not idle with work pending"
    );
    assert_eq!(
        typed(&c.mcp_connected(Millis(160), fresh(), task_id(1)).unwrap()),
        ["assignment"]
    );
    assert!(c.task(task_id(1)).unwrap().assignment_delivered);
    c.prompt_typed(Millis(210), fresh(), task_id(1), Typed::Done);
    c.on_output(
        Millis(300),
        fresh(),
        task_id(1),
        "esc to interrupt".as_bytes(),
    );
    c.on_output(Millis(400), fresh(), task_id(1), "\x1b[2J❯ ".as_bytes());
    assert_eq!(typed(&c.tick(Millis(450), fresh())), ["second"]);
    assert_eq!(
        c.send_prompt(Millis(455), task_id(1), "third".into())
            .unwrap()
            .0,
        Sent::Queued,
        "not typed into the middle of the second"
    );
    c.prompt_typed(Millis(500), fresh(), task_id(1), Typed::Done);
    assert_eq!(
        c.send_prompt(Millis(510), task_id(1), "fourth".into())
            .unwrap()
            .0,
        Sent::Queued,
        "behind the third"
    );
}

#[test]
fn a_typed_prompt_resets_the_signal_and_lets_the_task_be_reported_again() {
    let mut c = coordinator(1);
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    c.wait_for_signal(Millis(1), fresh(), None, None).unwrap();
    assert!(
        c.notifications().is_flagged(task_id(1)),
        "consumed: silenced"
    );
    let (sent, _) = c
        .send_prompt(Millis(2), task_id(1), "more work".into())
        .unwrap();
    assert_eq!(sent, Sent::Typed);
    assert!(
        c.task(task_id(1)).unwrap().signal.is_some(),
        "kept until the prompt is typed"
    );
    let effects = c.prompt_typed(Millis(60), fresh(), task_id(1), Typed::Done);
    assert!(effects.contains(&Effect::State(task_id(1), StateChange::SignalReset)));
    assert_eq!(c.remaining(), 1, "waited for again");
    let effects = c.on_exit(Millis(100), fresh(), task_id(1), Some(0));
    assert_eq!(
        staged_texts(&effects).len(),
        1,
        "its exit is reported again"
    );
}

#[test]
fn a_prompt_that_could_not_be_typed_keeps_the_signal() {
    let mut c = coordinator(1);
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    c.send_prompt(Millis(2), task_id(1), "more".into()).unwrap();
    assert_eq!(
        without_agent_states(c.prompt_typed(Millis(60), fresh(), task_id(1), Typed::EnterFailed)),
        []
    );
    assert!(c.task(task_id(1)).unwrap().signal.is_some());
}

#[test]
fn a_task_first_prompted_by_send_prompt_is_reported_when_idle() {
    let mut c = coordinator(1);
    c.send_prompt(Millis(0), task_id(1), "work".into()).unwrap();
    c.prompt_typed(Millis(60), fresh(), task_id(1), Typed::Done);
    c.on_output(Millis(2_100), fresh(), task_id(1), "\x1b[2J❯ ".as_bytes());
    assert_eq!(staged_texts(&c.tick(Millis(2_150), fresh())).len(), 1);
}

#[test]
fn an_mcp_timeout_in_the_past_is_no_deadline_decision_no_spin() {
    let mut c = coordinator(0);
    let new = new_task(1, Some("go"));
    c.add_task(Millis(0), new).unwrap();
    assert_eq!(
        c.next_deadline(Millis(0)),
        Some(Millis(MCP_CONNECT_TIMEOUT_MS))
    );
    c.on_exit(Millis(10), fresh(), task_id(1), Some(1));
    let later = Millis(MCP_CONNECT_TIMEOUT_MS + 1);
    assert!(
        c.next_deadline(later).is_none_or(|at| at > later),
        "no deadline in the past: the actor would spin"
    );
}

#[test]
fn an_orphan_cannot_be_handed_back_to_its_gone_coordinator() {
    let mut c = coordinator(1);
    c.deregister(Millis(0));
    assert_eq!(
        c.set_control(Millis(1), fresh(), task_id(1), Control::Coordinator),
        Err(CoreError::CoordinatorNotFound(c.id()))
    );
}

#[test]
fn closing_a_task_whose_notification_was_pending_answers_a_blocked_wait() {
    let mut c = coordinator(1);
    c.on_exit(Millis(0), fresh(), task_id(1), Some(0));
    assert!(c.notifications().has_pending(task_id(1)));
    let (wait, _) = c.wait_for_signal(Millis(1), fresh(), None, None).unwrap();
    let Wait::Blocked { waiter, .. } = wait else {
        panic!("{wait:?}")
    };
    close(&mut c, 2, 1);
    let effects = c.close_ended(Millis(3), fresh(), task_id(1), Ok(()));
    assert_eq!(
        signal_answers(&effects)[0].0,
        waiter,
        "the withdrawn notification is told by the wait"
    );
}

#[test]
fn the_prompt_queue_is_bounded_and_bad_prompts_change_nothing() {
    let mut c = coordinator(1);
    c.set_control(Millis(0), fresh(), task_id(1), Control::Human)
        .unwrap();
    for n in 0..PROMPT_QUEUE_MAX {
        assert_eq!(
            c.send_prompt(Millis(0), task_id(1), format!("p{n}"))
                .unwrap()
                .0,
            Sent::Queued
        );
    }
    assert_eq!(
        c.send_prompt(Millis(0), task_id(1), "one more".into()),
        Err(CoreError::QueueFull)
    );
    assert_eq!(
        c.send_prompt(Millis(0), task_id(1), "x".repeat(PROMPT_BYTES_MAX + 1)),
        Err(CoreError::InvalidPrompt(format!(
            "Prompt exceeds {PROMPT_BYTES_MAX} byte limit"
        )))
    );
    assert_eq!(
        c.task(task_id(1)).unwrap().terminal.queued.len(),
        PROMPT_QUEUE_MAX
    );
}

#[test]
fn a_task_still_working_cannot_be_merged() {
    let mut c = coordinator(1);
    assert!(matches!(
        c.check_merge(task_id(1)),
        Err(CoreError::NotMergeable(_))
    ));
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    assert_eq!(c.check_merge(task_id(1)), Ok(()), "it signalled done");
    assert_eq!(
        c.check_merge(task_id(5)),
        Err(CoreError::TaskNotFound(task_id(5)))
    );
}

#[test]
fn a_restored_coordinator_keeps_its_tasks_signals_and_tokens_but_not_their_processes() {
    let mut c = coordinator(2);
    c.signal_done(Millis(10), fresh(), task_id(1)).unwrap();
    c.set_control(Millis(10), fresh(), task_id(2), Control::Human)
        .unwrap();
    let records = c.records();
    let mut restored = Coordinator::restore(c.id(), 30_000, Millis(1_000), records.clone());
    assert_eq!(restored.records().tasks.len(), 2);
    assert!(restored.tasks().all(|task| task.status() == Status::Exited));
    assert_eq!(restored.task(task_id(2)).unwrap().control, Control::Human);
    let (wait, _) = restored
        .wait_for_signal(Millis(1_100), fresh(), None, Some(10))
        .unwrap();
    assert!(
        matches!(wait, Wait::Ready(SignalOutcome::Task { task, at: Millis(10), .. }) if task == task_id(1))
    );
    let mut unchanged = records;
    for record in &mut unchanged.tasks {
        record.signal = restored.task(record.spec.id).unwrap().signal;
        record.exit_code = None;
        // Its agent did not survive; nobody was told yet (a signal told of the first).
        record.alive = false;
        record.lost_untold = true;
    }
    assert_eq!(
        restored.records(),
        unchanged,
        "a round trip keeps everything but what happened since"
    );
}

#[test]
fn a_task_removed_by_the_app_ends_its_waits_and_is_forgotten() {
    let mut c = coordinator(1);
    let waiter = blocked(c.wait_for_idle(Millis(0), task_id(1), None).unwrap());
    let effects = c.remove_task(Millis(1), fresh(), task_id(1)).unwrap();
    assert_eq!(
        effects,
        [Effect::Idle {
            waiter,
            outcome: IdleOutcome::Removed
        }]
    );
    assert!(c.task(task_id(1)).is_none());
    assert_eq!(
        c.remove_task(Millis(2), fresh(), task_id(1)),
        Err(CoreError::TaskNotFound(task_id(1)))
    );
}

/// Reference catalogue §9.1 B: notifications as the coordinator sees them.
mod catalogue_b_notifications {
    use super::{
        Coordinator, Effect, Millis, Status, close, close_job, coordinator, fresh, staged_texts,
        task_id,
    };
    use crate::core::notify::{FAILURE_DELAY_MS_MIN, Notice, RESTAGE_MS, Staged};

    fn delivered() -> Coordinator {
        let mut c = coordinator(1);
        c.assignment_delivered(Millis(0), task_id(1), "do").unwrap();
        c
    }

    fn staged(effects: &[Effect]) -> Vec<Staged> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Notice(Notice::Staged(staged)) => Some(staged.clone()),
                _ => None,
            })
            .collect()
    }

    /// Feeds `text` at `at` and lets the prompt settle.
    fn out(c: &mut Coordinator, at: u64, text: &str) -> Vec<Effect> {
        let mut effects = c.on_output(Millis(at), fresh(), task_id(1), text.as_bytes());
        effects.extend(c.tick(Millis(at + 50), fresh()));
        effects
    }

    #[test]
    fn b6_a_delivered_task_at_its_prompt_is_staged() {
        let mut c = delivered();
        let batches = staged(&out(&mut c, 3_000, "Working...\r\n❯ "));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].notifications.len(), 1);
    }

    #[test]
    fn b7_idle_busy_idle_again_keeps_one_notification() {
        let mut c = delivered();
        out(&mut c, 3_000, "Done\r\n❯ ");
        out(&mut c, 3_100, "\x1b[2JStill here (esc to interrupt)");
        assert_eq!(c.task(task_id(1)).unwrap().status(), Status::Running);
        out(&mut c, 3_200, "\x1b[2JIdle again\r\n❯ ");
        assert_eq!(c.notifications().pending().len(), 1, "reported once");
    }

    #[test]
    fn b8_an_exit_after_idle_upgrades_the_notification() {
        let mut c = delivered();
        out(&mut c, 3_000, "Done\r\n❯ ");
        let batches = staged(&c.on_exit(Millis(3_500), fresh(), task_id(1), Some(0)));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].notifications.len(), 1);
        assert!(
            batches[0].text.contains("terminated (exit 0)"),
            "{}",
            batches[0].text
        );
    }

    #[test]
    fn b11_a_failed_exit_is_told_after_the_failure_delay() {
        let mut c = delivered();
        let batches = staged(&c.on_exit(Millis(1_000), fresh(), task_id(1), Some(1)));
        assert_eq!(
            batches[0].auto_fire_at,
            Millis(1_000 + FAILURE_DELAY_MS_MIN)
        );
    }

    #[test]
    fn b13_closing_withdraws_the_notification_and_nothing_is_restaged() {
        let mut c = delivered();
        assert_eq!(staged(&out(&mut c, 3_000, "Done\r\n❯ ")).len(), 1);
        let effects = close(&mut c, 4_000, 1);
        assert_eq!(effects, [Effect::Notice(Notice::Cleared), close_job(1)]);
        assert!(staged_texts(&c.tick(Millis(4_000 + RESTAGE_MS), fresh())).is_empty());
        assert!(
            staged_texts(&c.on_exit(Millis(4_001), fresh(), task_id(1), None)).is_empty(),
            "killed by the close"
        );
    }
}

/// Reference catalogue §9.1 C and G: signals with and without a wait.
mod catalogue_c_g_signals {
    use super::{Millis, SignalOutcome, Wait, coordinator, fresh, signal_answers, task_id};
    use crate::core::ids::TaskId;

    #[test]
    fn c17_a_signal_for_an_unknown_task_changes_nothing() {
        let mut c = coordinator(1);
        let unknown = TaskId::from_random([77; 16]);
        assert!(c.signal_done(Millis(0), fresh(), unknown).is_err());
        assert!(c.notifications().pending().is_empty());
    }

    #[test]
    fn g60_after_a_timeout_a_new_wait_takes_the_next_signal() {
        let mut c = coordinator(1);
        c.wait_for_signal(Millis(0), fresh(), None, Some(500))
            .unwrap();
        c.tick(Millis(500), fresh());
        let (wait, _) = c
            .wait_for_signal(Millis(600), fresh(), None, Some(500))
            .unwrap();
        let Wait::Blocked { waiter, .. } = wait else {
            panic!("{wait:?}")
        };
        let effects = c.signal_done(Millis(700), fresh(), task_id(1)).unwrap();
        assert_eq!(signal_answers(&effects)[0].0, waiter);
    }

    #[test]
    fn two_waits_are_served_first_come_first_served_one_signal_each() {
        let mut c = coordinator(2);
        let (first, _) = c.wait_for_signal(Millis(0), fresh(), None, None).unwrap();
        let (second, _) = c.wait_for_signal(Millis(1), fresh(), None, None).unwrap();
        let (Wait::Blocked { waiter: first, .. }, Wait::Blocked { waiter: second, .. }) =
            (first, second)
        else {
            panic!("both block");
        };
        let a = signal_answers(&c.signal_done(Millis(10), fresh(), task_id(2)).unwrap());
        let b = signal_answers(&c.signal_done(Millis(20), fresh(), task_id(1)).unwrap());
        assert_eq!((a[0].0, b[0].0), (first, second));
        assert!(matches!(&b[0].1, SignalOutcome::Task { remaining: 0, .. }));
        assert!(
            c.notifications().pending().is_empty(),
            "both told through their waits"
        );
    }
}

#[test]
fn a_failed_close_tells_again_what_it_withdrew() {
    let mut c = coordinator(1);
    c.on_exit(Millis(0), fresh(), task_id(1), Some(3));
    close(&mut c, 1, 1);
    assert!(!c.notifications().has_pending(task_id(1)));
    assert_eq!(
        c.send_prompt(Millis(1), task_id(1), "late".into()),
        Err(CoreError::InvalidPrompt(format!(
            "Task {} is closing",
            task_id(1)
        )))
    );
    let texts = staged_texts(&c.close_ended(Millis(2), fresh(), task_id(1), Err("stuck".into())));
    assert!(texts[0].contains("terminated (exit 3)"), "{texts:?}");
}

#[test]
fn a_signal_given_before_the_enter_belongs_to_the_round_before() {
    let mut c = coordinator(1);
    c.send_prompt(Millis(0), task_id(1), "go".into()).unwrap();
    c.signal_done(Millis(20), fresh(), task_id(1)).unwrap();
    assert!(
        c.task(task_id(1)).unwrap().signal.is_some(),
        "counts while typed"
    );
    let effects = c.prompt_typed(Millis(60), fresh(), task_id(1), Typed::Done);
    assert!(effects.contains(&Effect::State(task_id(1), StateChange::SignalReset)));
    assert!(c.task(task_id(1)).unwrap().signal.is_none());
}

#[test]
fn a_past_mcp_timeout_is_no_deadline_for_a_busy_task_either() {
    let mut c = coordinator(0);
    let new = new_task(1, Some("go"));
    c.add_task(Millis(0), new).unwrap();
    c.on_output(
        Millis(10),
        fresh(),
        task_id(1),
        "✻ Loading (esc to interrupt)".as_bytes(),
    );
    let later = Millis(MCP_CONNECT_TIMEOUT_MS + 5);
    assert!(c.next_deadline(later).is_none_or(|at| at > later));
}

#[test]
fn text_that_could_not_be_written_waits_for_the_next_prompt() {
    let mut c = coordinator(1);
    c.send_prompt(Millis(0), task_id(1), "first".into())
        .unwrap();
    let effects = without_agent_states(c.prompt_typed(
        Millis(60),
        fresh(),
        task_id(1),
        Typed::TextFailed("first".into()),
    ));
    assert_eq!(
        effects,
        [],
        "not typed again before the agent's next prompt"
    );
    let task = c.task(task_id(1)).unwrap();
    assert_eq!(
        task.terminal.queued.front().map(String::as_str),
        Some("first")
    );
    assert!(!task.terminal.typing);
}

#[test]
fn an_undelivered_exit_keeps_the_time_of_the_exit() {
    let mut c = coordinator(1);
    blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    let second = blocked(c.wait_for_signal(Millis(1), fresh(), None, None).unwrap().0);
    let effects = c.on_exit(Millis(70), fresh(), task_id(1), Some(1));
    let (_, lost) = signal_answers(&effects).remove(0);
    let effects = c.signal_undelivered(Millis(90), fresh(), lost, None);
    let answers = signal_answers(&effects);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, second);
    assert!(
        matches!(answers[0].1, SignalOutcome::Task { at: Millis(70), .. }),
        "{:?}",
        answers[0].1
    );
}

fn typed_texts(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Type { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// A coordinator whose `task-a` waits to be given `assignment`, its MCP server connected.
fn coordinator_with_assignment() -> Coordinator {
    let mut c = coordinator(0);
    let new = new_task(1, Some("assignment"));
    c.add_task(Millis(0), new).unwrap();
    assert_eq!(
        typed_texts(&c.mcp_connected(Millis(1), fresh(), task_id(1)).unwrap()),
        Vec::<String>::new(),
        "its agent has shown no prompt yet"
    );
    c
}

#[test]
fn nothing_is_typed_into_a_task_being_closed_until_its_close_fails() {
    let mut c = coordinator_with_assignment();
    close(&mut c, 10, 1);
    let mut effects = c.on_output(Millis(100), fresh(), task_id(1), "❯ ".as_bytes());
    effects.extend(c.tick(Millis(3_200), fresh()));
    assert_eq!(typed_texts(&effects), Vec::<String>::new());
    let effects = c.close_ended(Millis(3_300), fresh(), task_id(1), Err("stuck".into()));
    assert_eq!(
        typed_texts(&effects),
        ["assignment"],
        "the close failed: on at once"
    );
}

#[test]
fn a_deregistered_coordinator_types_nothing_it_had_held() {
    let mut c = coordinator_with_assignment();
    c.send_prompt(Millis(2), task_id(1), "queued".into())
        .unwrap();
    c.deregister(Millis(10));
    let mut effects = c.on_output(Millis(100), fresh(), task_id(1), "❯ ".as_bytes());
    effects.extend(c.tick(Millis(3_200), fresh()));
    assert_eq!(typed_texts(&effects), Vec::<String>::new());
    let task = c.task(task_id(1)).unwrap();
    assert!(task.terminal.assignment.is_none() && task.terminal.queued.is_empty());
}

#[test]
fn the_exit_during_a_failed_close_is_told_once_whichever_comes_first() {
    for exit_first in [true, false] {
        let mut c = coordinator(1);
        c.assignment_delivered(Millis(0), task_id(1), "do a")
            .unwrap();
        let waiter = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
        let second = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
        close(&mut c, 1, 1);
        let mut effects = Vec::new();
        if exit_first {
            assert_eq!(
                without_agent_states(c.on_exit(Millis(2), fresh(), task_id(1), None)),
                []
            );
            effects.extend(c.close_ended(Millis(3), fresh(), task_id(1), Err("stuck".into())));
        } else {
            effects.extend(c.close_ended(Millis(2), fresh(), task_id(1), Err("stuck".into())));
            effects.extend(c.on_exit(Millis(3), fresh(), task_id(1), None));
        }
        let answers = signal_answers(&effects);
        assert_eq!(answers.len(), 1, "exit first: {exit_first}");
        assert_eq!(answers[0].0, waiter);
        close(&mut c, 4, 1);
        let effects = c.close_ended(Millis(5), fresh(), task_id(1), Ok(()));
        assert!(
            signal_answers(&effects).is_empty(),
            "told once: {second:?} is not answered"
        );
    }
}

#[test]
fn a_signal_a_wait_got_during_the_close_is_not_told_again_by_it() {
    let mut c = coordinator(1);
    let first = blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    blocked(c.wait_for_signal(Millis(0), fresh(), None, None).unwrap().0);
    close(&mut c, 1, 1);
    let effects = c.signal_done(Millis(2), fresh(), task_id(1)).unwrap();
    assert_eq!(signal_answers(&effects)[0].0, first);
    assert!(signal_answers(&c.close_ended(Millis(3), fresh(), task_id(1), Ok(()))).is_empty());
}

#[test]
fn a_signal_held_back_by_a_failed_close_is_reported() {
    let mut c = coordinator(1);
    close(&mut c, 1, 1);
    c.signal_done(Millis(2), fresh(), task_id(1)).unwrap();
    let texts = staged_texts(&c.close_ended(Millis(3), fresh(), task_id(1), Err("stuck".into())));
    assert_eq!(texts.len(), 1, "{texts:?}");
}

#[test]
fn idle_waits_are_bounded_per_task_and_a_withdrawn_one_frees_its_place() {
    let mut c = coordinator(2);
    let first = blocked(c.wait_for_idle(Millis(0), task_id(1), None).unwrap());
    for _ in 1..IDLE_WAITERS_PER_TASK_MAX {
        blocked(c.wait_for_idle(Millis(0), task_id(1), None).unwrap());
    }
    assert_eq!(
        c.wait_for_idle(Millis(0), task_id(1), None).unwrap_err(),
        CoreError::TooManyWaiters(IDLE_WAITERS_PER_TASK_MAX)
    );
    assert!(
        matches!(
            c.wait_for_idle(Millis(0), task_id(2), None).unwrap(),
            Wait::Blocked { .. }
        ),
        "the bound is per task"
    );
    c.cancel_idle_wait(first);
    match c.wait_for_idle(Millis(5), task_id(1), None).unwrap() {
        Wait::Blocked { deadline, .. } => {
            assert_eq!(deadline, Millis(5 + WAIT_TIMEOUT_MS_DEFAULT), "the default");
        }
        Wait::Ready(outcome) => panic!("{outcome:?}"),
    }
}

#[test]
fn a_new_idle_wait_after_one_timed_out_is_answered() {
    let mut c = coordinator(1);
    let old = blocked(c.wait_for_idle(Millis(0), task_id(1), Some(500)).unwrap());
    assert!(c.tick(Millis(500), fresh()).contains(&Effect::Idle {
        waiter: old,
        outcome: IdleOutcome::TimedOut
    }));
    let new = blocked(c.wait_for_idle(Millis(600), task_id(1), Some(500)).unwrap());
    let mut effects = c.on_output(Millis(700), fresh(), task_id(1), "❯ ".as_bytes());
    effects.extend(c.tick(Millis(750), fresh()));
    assert!(
        effects.contains(&Effect::Idle {
            waiter: new,
            outcome: IdleOutcome::Idle
        }),
        "{effects:?}"
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Idle { waiter, .. } if *waiter == old))
    );
}

#[test]
fn control_and_mcp_reports_refuse_unknown_tasks() {
    let mut c = coordinator(1);
    assert_eq!(
        c.set_control(Millis(0), fresh(), task_id(9), Control::Human)
            .unwrap_err(),
        CoreError::TaskNotFound(task_id(9))
    );
    assert_eq!(
        c.mcp_connected(Millis(0), fresh(), task_id(9)).unwrap_err(),
        CoreError::TaskNotFound(task_id(9))
    );
}

#[test]
fn control_returned_with_nothing_held_only_says_so() {
    let mut c = coordinator(1);
    c.assignment_delivered(Millis(0), task_id(1), "do a")
        .unwrap();
    c.set_control(Millis(1), fresh(), task_id(1), Control::Human)
        .unwrap();
    assert_eq!(
        c.set_control(Millis(2), fresh(), task_id(1), Control::Coordinator)
            .unwrap(),
        [Effect::State(
            task_id(1),
            StateChange::ControlChanged(Control::Coordinator)
        )]
    );
}

#[test]
fn records_past_the_bound_are_restored_but_no_task_is_added() {
    let full = coordinator(TASKS_PER_COORDINATOR_MAX as u8);
    let mut records = full.records();
    let mut extra = records.tasks[0].clone();
    std::sync::Arc::make_mut(&mut extra.spec).id = task_id(200);
    records.tasks.push(extra);
    let mut restored = Coordinator::restore(full.id(), 30_000, Millis(0), records);
    assert_eq!(restored.tasks().count(), TASKS_PER_COORDINATOR_MAX + 1);
    let new = new_task(201, None);
    assert_eq!(
        restored.add_task(Millis(1), new).unwrap_err(),
        CoreError::TooManyTasks
    );
}

#[test]
fn prompts_lose_their_control_characters_but_keep_their_lines() {
    use super::sanitize_prompt;
    assert_eq!(sanitize_prompt("hi\u{3}\rthere"), "hi  there");
    assert_eq!(sanitize_prompt("do\u{1b}[201~it"), "do [201~it");
    assert_eq!(sanitize_prompt("one\ntwo\tthree"), "one\ntwo three");
    assert_eq!(sanitize_prompt("\u{9b}x\u{7f}"), " x ");
    assert_eq!(sanitize_prompt("火 😀"), "火 😀");
    assert!(sanitize_prompt("\u{3}\r\n").trim().is_empty());
}

/// A coordinator whose one task, given its assignment, shows a permission prompt that stood.
fn at_a_permission_prompt() -> Coordinator {
    let mut c = coordinator(1);
    c.assignment_delivered(Millis(0), task_id(1), "do a")
        .unwrap();
    let permission = " Do you want to proceed?\r\n ❯ 1. Yes\r\n   2. No\r\n Esc to cancel";
    c.on_output(Millis(10), fresh(), task_id(1), permission.as_bytes());
    c.tick(Millis(100), fresh());
    c
}

#[test]
fn a_prompt_for_a_task_that_needs_a_human_waits_and_no_enter_reaches_its_screen() {
    let mut c = at_a_permission_prompt();
    let (sent, effects) = c
        .send_prompt(Millis(200), task_id(1), "please continue".into())
        .unwrap();
    assert_eq!(sent, Sent::Queued, "{effects:?}");
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Type { .. } | Effect::Write { .. }))
    );
}

#[test]
fn a_task_answered_straight_back_to_its_prompt_is_still_reported_idle() {
    let mut c = at_a_permission_prompt();
    assert!(c.notifications().pending_attention(task_id(1)));
    // A human answered "No": the agent is back at its prompt with no busy frame between.
    c.on_output(
        Millis(3_000),
        fresh(),
        task_id(1),
        "\x1b[2J\x1b[H❯ ".as_bytes(),
    );
    c.tick(Millis(3_100), fresh());
    let pending: Vec<_> = c
        .notifications()
        .pending()
        .iter()
        .map(|p| p.finished.completion)
        .collect();
    assert_eq!(pending, [crate::core::notify::Completion::Idle]);
}

#[test]
fn a_signal_wait_begun_after_a_task_needs_a_human_hears_it_at_once_once() {
    let mut c = at_a_permission_prompt();
    let (wait, _) = c.wait_for_signal(Millis(200), fresh(), None, None).unwrap();
    assert!(
        matches!(wait, Wait::Ready(SignalOutcome::NeedsAttention { task, .. }) if task == task_id(1)),
        "{wait:?}"
    );
    let (again, _) = c.wait_for_signal(Millis(300), fresh(), None, None).unwrap();
    assert!(
        matches!(again, Wait::Blocked { .. }),
        "told once: {again:?}"
    );
}

#[test]
fn an_answer_given_back_by_its_request_id_is_offered_again_once() {
    let mut c = coordinator(1);
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    let id = RequestId::new("given-up").unwrap();
    let (first, _) = c
        .wait_for_signal(Millis(10), fresh(), Some(id.clone()), Some(500))
        .unwrap();
    assert!(matches!(first, Wait::Ready(SignalOutcome::Task { .. })));
    let (given, _) = c.give_back_request(Millis(20), fresh(), &id);
    assert!(given, "its answer is taken back");
    assert!(!c.task(task_id(1)).unwrap().signal.unwrap().consumed);
    // The engine's own give-back of the same answer (its response was never written) and a
    // second give-back change nothing more.
    let outcome = match first {
        Wait::Ready(outcome) => outcome,
        Wait::Blocked { .. } => unreachable!(),
    };
    assert!(
        c.signal_undelivered(Millis(21), fresh(), outcome, Some(&id))
            .is_empty()
    );
    assert!(!c.give_back_request(Millis(22), fresh(), &id).0);
    let other = RequestId::new("next").unwrap();
    let (next, _) = c
        .wait_for_signal(Millis(30), fresh(), Some(other.clone()), Some(500))
        .unwrap();
    assert!(
        matches!(next, Wait::Ready(SignalOutcome::Task { task, .. }) if task == task_id(1)),
        "the next wait gets it: {next:?}"
    );
    let (third, _) = c
        .wait_for_signal(Millis(40), fresh(), None, Some(100))
        .unwrap();
    assert!(matches!(third, Wait::Blocked { .. }), "and only that one");
    // A request id never answered has nothing to give back.
    assert!(
        !c.give_back_request(Millis(50), fresh(), &RequestId::new("never").unwrap())
            .0
    );
}

#[test]
fn the_prompt_queue_is_bounded_in_bytes_and_a_refused_prompt_queues_nothing() {
    use super::PROMPT_QUEUE_BYTES_MAX;
    let mut c = coordinator(1);
    c.set_control(Millis(0), fresh(), task_id(1), Control::Human)
        .unwrap();
    let big = "x".repeat(PROMPT_BYTES_MAX);
    let fits = PROMPT_QUEUE_BYTES_MAX / PROMPT_BYTES_MAX;
    for _ in 0..fits {
        let (sent, _) = c.send_prompt(Millis(0), task_id(1), big.clone()).unwrap();
        assert_eq!(sent, Sent::Queued);
    }
    assert_eq!(
        c.send_prompt(Millis(0), task_id(1), "y".into()),
        Err(CoreError::QueueBytesFull)
    );
    assert_eq!(
        CoreError::QueueBytesFull.to_string(),
        format!("Prompt queue full ({PROMPT_QUEUE_BYTES_MAX} bytes of prompts pending at most)")
    );
    assert_eq!(
        c.task(task_id(1)).unwrap().terminal.queued.len(),
        fits,
        "nothing queued"
    );
}
