//! A task's life without the engine: slots and the task bound with creates in flight, create or
//! roll back, closes joined and held during a merge, merges joined, and what a restart resumes.

use std::cell::Cell;

use super::{
    Answer, CallerId, Creation, Job, Leftovers, MergeOptions, MergeOutcome, OPERATION_JOINERS_MAX,
    TASKS_PER_COORDINATOR_MAX,
};
use crate::core::coordinator::tests::{
    agent, close, close_job, coordinator, fresh, new_task, task_id,
};
use crate::core::coordinator::{Coordinator, CoreError, Effect, Intent, Records, Status};
use crate::core::ids::DoneToken;
use crate::core::notify::Fresh;
use crate::core::time::Millis;

/// What a create of task `n` asks for (its ids, worktree and branch as [`new_task`] has them).
fn creation(n: u8) -> Creation {
    Creation {
        id: task_id(n),
        name: format!("made-{n}"),
        branch: format!("task/t{n}-abcdef"),
        base_branch: None,
        worktree: format!("/repo/.worktrees/t{n}").into(),
        agent: agent(n),
        done_token: DoneToken::from_text("token"),
        config: format!("/config/baton-subtask-{n}.json").into(),
        command: "claude".into(),
        args: Vec::new(),
        assignment: None,
        policy: crate::core::coordinator::Policy::Review,
        checks: Vec::new(),
    }
}

/// Takes a create of task `n`: its caller.
fn create(c: &mut Coordinator, n: u8) -> CallerId {
    let call = c.create(|| creation(n)).unwrap();
    assert_eq!(
        call.effects,
        [Effect::Start(Job::Create(Box::new(creation(n))))],
        "its job starts once its intent is saved"
    );
    call.caller
}

fn answer(caller: CallerId, answer: Answer) -> Effect {
    Effect::Answer { caller, answer }
}

/// `n` tasks, as a `u8`.
fn tasks(n: usize) -> u8 {
    u8::try_from(n).unwrap()
}

/// A coordinator whose task 1 signalled done: it may be merged.
fn signalled() -> Coordinator {
    let mut c = coordinator(1);
    c.signal_done(Millis(0), fresh(), task_id(1)).unwrap();
    c
}

/// A source of fresh ids that counts what it drew.
fn counting(drawn: &Cell<usize>) -> impl FnMut() -> Fresh + '_ {
    move || {
        drawn.set(drawn.get() + 1);
        fresh()
    }
}

#[test]
fn the_task_bound_counts_creates_in_flight_and_a_refused_create_draws_no_ids() {
    let mut c = coordinator(tasks(TASKS_PER_COORDINATOR_MAX - 2));
    create(&mut c, 101);
    create(&mut c, 102);
    let drawn = Cell::new(false);
    let refused = c.create(|| {
        drawn.set(true);
        creation(103)
    });
    assert_eq!(refused, Err(CoreError::TooManyTasks));
    assert!(
        !drawn.get(),
        "nothing is drawn for a create that was refused"
    );
    assert_eq!(c.intents().len(), 2, "one intent per create in flight");
    assert!(c.has_jobs_to_finish());
}

#[test]
fn a_failed_create_frees_its_slot_and_ends_its_intent() {
    let mut c = coordinator(tasks(TASKS_PER_COORDINATOR_MAX - 1));
    let caller = create(&mut c, 101);
    assert_eq!(c.create(|| creation(102)), Err(CoreError::TooManyTasks));
    assert_eq!(
        c.create_failed(task_id(101)),
        [answer(caller, Answer::Reported)],
        "its caller hears the job's error"
    );
    assert!(c.intents().is_empty());
    assert!(!c.has_jobs_to_finish());
    create(&mut c, 102);
}

#[test]
fn a_made_task_takes_the_slot_of_its_create_and_its_caller_hears_of_it() {
    let mut c = coordinator(0);
    let caller = create(&mut c, 1);
    assert_eq!(
        c.intents(),
        [Intent::Create {
            task: task_id(1),
            worktree: "/repo/.worktrees/t1".into(),
            branch: "task/t1-abcdef".into(),
            config: "/config/baton-subtask-1.json".into(),
        }]
    );
    let effects = c.create_made(Millis(5), new_task(1, Some("do it")));
    assert_eq!(
        effects,
        [
            Effect::Created(task_id(1)),
            answer(caller, Answer::Created(task_id(1)))
        ]
    );
    let task = c.task(task_id(1)).unwrap();
    assert_eq!(
        (task.status(), task.terminal.assignment.as_deref()),
        (Status::Running, Some("do it"))
    );
    assert!(c.intents().is_empty());
    assert!(!c.has_jobs_to_finish());
}

#[test]
fn a_task_made_after_its_coordinator_left_is_rolled_back_and_frees_its_slot() {
    let mut c = coordinator(0);
    let caller = create(&mut c, 1);
    c.deregister(Millis(1));
    let effects = c.create_made(Millis(2), new_task(1, None));
    assert_eq!(
        effects,
        [
            Effect::RollBack(Leftovers {
                agent: Some(agent(1)),
                worktree: "/repo/.worktrees/t1".into(),
                branch: "task/t1-abcdef".into(),
                config: None,
            }),
            answer(
                caller,
                Answer::Refused(CoreError::CoordinatorNotFound(c.id()))
            ),
        ]
    );
    assert!(c.tasks().next().is_none());
    assert!(c.intents().is_empty());
    assert!(!c.has_jobs_to_finish(), "the slot is free");
}

#[test]
fn a_close_asked_while_closing_joins_it_and_hears_how_it_ended() {
    for result in [Ok(()), Err("the worktree is stuck".to_owned())] {
        let mut c = coordinator(1);
        let first = c.close(Millis(1), &mut fresh, task_id(1)).unwrap();
        assert_eq!(first.effects.last(), Some(&close_job(1)));
        let drawn = Cell::new(0);
        let joined = c
            .close(Millis(2), &mut counting(&drawn), task_id(1))
            .unwrap();
        assert_eq!(joined.effects, [], "one job closes the task");
        assert_eq!(drawn.get(), 0, "a close that joins draws no id");
        assert_eq!(c.intents(), [Intent::Close { task: task_id(1) }]);
        let effects = c.close_ended(Millis(3), fresh(), task_id(1), result.clone());
        let told = match &result {
            Ok(()) => Effect::Closed(task_id(1)),
            Err(error) => Effect::CloseFailed {
                task: task_id(1),
                error: error.clone(),
            },
        };
        assert_eq!(
            effects.first(),
            Some(&answer(joined.caller, Answer::Closed(result.clone()))),
            "{result:?}"
        );
        assert_eq!(
            effects[effects.len() - 2..],
            [told, answer(first.caller, Answer::Closed(result.clone()))],
            "the app is told, then the close's own caller"
        );
        assert!(c.intents().is_empty());
        assert_eq!(
            c.task(task_id(1)).is_some(),
            result.is_err(),
            "a failed close leaves the task, to be closed again"
        );
    }
}

#[test]
fn callers_joining_a_close_or_waiting_for_a_merge_are_bounded() {
    let mut c = coordinator(1);
    close(&mut c, 1, 1);
    for _ in 0..OPERATION_JOINERS_MAX {
        c.close(Millis(2), &mut fresh, task_id(1)).unwrap();
    }
    assert_eq!(
        c.close(Millis(3), &mut fresh, task_id(1)),
        Err(CoreError::AlreadyClosing(task_id(1)))
    );
    let mut c = signalled();
    c.merge(task_id(1), MergeOptions::default()).unwrap();
    for _ in 0..OPERATION_JOINERS_MAX {
        c.merge(task_id(1), MergeOptions::default()).unwrap();
        c.close(Millis(2), &mut fresh, task_id(1)).unwrap();
    }
    assert_eq!(
        c.merge(task_id(1), MergeOptions::default()),
        Err(CoreError::BeingMerged(task_id(1)))
    );
    assert_eq!(
        c.close(Millis(3), &mut fresh, task_id(1)),
        Err(CoreError::BeingMerged(task_id(1)))
    );
}

#[test]
fn a_close_asked_during_a_merge_is_held_and_begins_when_the_merge_ends() {
    let mut c = signalled();
    let merge = c.merge(task_id(1), MergeOptions::default()).unwrap();
    assert!(
        matches!(merge.effects[..], [Effect::Start(Job::Merge { task, .. })] if task == task_id(1)),
        "{merge:?}"
    );
    let held = c.close(Millis(1), &mut fresh, task_id(1)).unwrap();
    let again = c.close(Millis(1), &mut fresh, task_id(1)).unwrap();
    assert_eq!(
        held.effects,
        [],
        "nothing is closed while the worktree is merged"
    );
    assert_eq!(
        c.intents(),
        [Intent::Merge {
            task: task_id(1),
            squash: false,
            message: None,
            cleanup: false,
        }]
    );
    let drawn = Cell::new(0);
    let effects = c.merge_ended(
        Millis(2),
        &mut counting(&drawn),
        task_id(1),
        MergeOutcome::Merged,
    );
    assert_eq!(
        effects[..2],
        [
            Effect::Merged(task_id(1)),
            answer(merge.caller, Answer::Reported)
        ]
    );
    assert_eq!(
        effects.last(),
        Some(&close_job(1)),
        "then the held close begins"
    );
    assert_eq!(
        drawn.get(),
        1,
        "once: the second held close joins the first"
    );
    assert_eq!(c.intents(), [Intent::Close { task: task_id(1) }]);
    let ended = c.close_ended(Millis(3), fresh(), task_id(1), Ok(()));
    assert_eq!(
        ended.first(),
        Some(&answer(again.caller, Answer::Closed(Ok(()))))
    );
    assert_eq!(
        ended.last(),
        Some(&answer(held.caller, Answer::Closed(Ok(()))))
    );
}

#[test]
fn a_merge_with_cleanup_closes_the_task_and_its_caller_hears_once_the_close_ends() {
    let mut c = signalled();
    let cleanup = MergeOptions {
        cleanup: true,
        ..MergeOptions::default()
    };
    let merge = c.merge(task_id(1), cleanup).unwrap();
    let retry = c.merge(task_id(1), MergeOptions::default()).unwrap();
    assert_eq!(retry.effects, [], "a retry joins the merge under way");
    let held = c.close(Millis(1), &mut fresh, task_id(1)).unwrap();
    let effects = c.merge_ended(Millis(2), &mut fresh, task_id(1), MergeOutcome::Merged);
    assert_eq!(
        effects[..2],
        [
            answer(retry.caller, Answer::Reported),
            Effect::Merged(task_id(1))
        ]
    );
    assert_eq!(
        effects[effects.len() - 2..],
        [close_job(1), answer(merge.caller, Answer::Closing)]
    );
    let ended = c.close_ended(Millis(3), fresh(), task_id(1), Ok(()));
    assert_eq!(
        ended.first(),
        Some(&answer(held.caller, Answer::Closed(Ok(())))),
        "the held close joined the cleanup's"
    );
    assert_eq!(
        ended.last(),
        Some(&answer(merge.caller, Answer::Closed(Ok(()))))
    );
    assert!(c.tasks().next().is_none());
    assert!(c.intents().is_empty());
}

#[test]
fn a_failed_merge_closes_nothing_of_its_own_and_a_task_being_closed_is_not_merged() {
    let mut c = signalled();
    let cleanup = MergeOptions {
        cleanup: true,
        ..MergeOptions::default()
    };
    let merge = c.merge(task_id(1), cleanup).unwrap();
    let effects = c.merge_ended(Millis(1), &mut fresh, task_id(1), MergeOutcome::Failed);
    assert_eq!(effects, [answer(merge.caller, Answer::Reported)]);
    assert!(c.intents().is_empty());
    close(&mut c, 2, 1);
    assert_eq!(
        c.merge(task_id(1), MergeOptions::default()),
        Err(CoreError::Closing(task_id(1)))
    );
}

#[test]
fn a_task_removed_while_closing_still_has_its_closes_answered() {
    let mut c = coordinator(1);
    let first = c.close(Millis(1), &mut fresh, task_id(1)).unwrap();
    let joined = c.close(Millis(1), &mut fresh, task_id(1)).unwrap();
    c.remove_task(Millis(2), fresh(), task_id(1)).unwrap();
    assert!(c.has_jobs_to_finish(), "its close's job will still report");
    let effects = c.close_ended(Millis(3), fresh(), task_id(1), Ok(()));
    assert_eq!(
        effects,
        [
            answer(joined.caller, Answer::Closed(Ok(()))),
            Effect::Closed(task_id(1)),
            answer(first.caller, Answer::Closed(Ok(()))),
        ]
    );
    assert!(!c.has_jobs_to_finish());
}

#[test]
fn a_restart_rolls_creates_back_and_carries_merges_and_closes_on() {
    let before = coordinator(2);
    let gone = task_id(7);
    let records = Records {
        intents: vec![
            Intent::Create {
                task: task_id(9),
                worktree: "/repo/.worktrees/t9".into(),
                branch: "task/t9-abcdef".into(),
                config: "/config/baton-subtask-9.json".into(),
            },
            Intent::Merge {
                task: task_id(1),
                squash: true,
                message: Some("one".into()),
                cleanup: false,
            },
            Intent::Close { task: task_id(2) },
            Intent::Close { task: gone },
        ],
        ..before.records()
    };
    let mut c = Coordinator::restore(before.id(), 30_000, Millis(10), records.clone());
    let drawn = Cell::new(0);
    let mut resumed = Vec::new();
    for intent in records.intents {
        resumed.push(c.resume(Millis(11), &mut counting(&drawn), intent));
    }
    assert_eq!(
        resumed[0],
        [Effect::RollBack(Leftovers {
            agent: None,
            worktree: "/repo/.worktrees/t9".into(),
            branch: "task/t9-abcdef".into(),
            config: Some("/config/baton-subtask-9.json".into()),
        })]
    );
    assert!(
        matches!(
            &resumed[1][..],
            [Effect::Start(Job::Merge { task, squash: true, message: Some(m), .. })]
                if *task == task_id(1) && m == "one"
        ),
        "{:?}",
        resumed[1]
    );
    assert_eq!(resumed[2].last(), Some(&close_job(2)));
    assert_eq!(resumed[3], [], "its task is gone: nothing to carry on");
    assert_eq!(drawn.get(), 1, "only the close that began drew an id");
    assert_eq!(
        c.intents(),
        [
            Intent::Merge {
                task: task_id(1),
                squash: true,
                message: Some("one".into()),
                cleanup: false,
            },
            Intent::Close { task: task_id(2) }
        ]
    );
}
