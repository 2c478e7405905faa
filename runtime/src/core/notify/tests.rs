//! Notification batching, step by step with explicit time and ids.

use super::{
    ACKED_BATCHES_MAX, Completion, FAILURE_DELAY_MS_MIN, Finished, Fresh,
    NOTIFICATION_DELAY_MS_DEFAULT, NOTIFICATION_DELAY_MS_MAX, NOTIFICATION_DELAY_MS_MIN, Notice,
    Notifications, RESTAGE_MS, SIGNAL_DONE_DELAY_MS, Staged,
};
use crate::core::ids::{BatchId, NotificationId, TaskId};
use crate::core::time::Millis;

fn task(n: u8) -> TaskId {
    TaskId::from_random([n; 16])
}

fn fresh(n: u8) -> Fresh {
    Fresh {
        batch: BatchId::from_random([n; 16]),
        notification: NotificationId::from_random([n; 16]),
    }
}

fn finished(n: u8, completion: Completion) -> Finished {
    Finished {
        task: task(n),
        name: format!("task {n}"),
        branch: format!("task/t{n}-abcdef"),
        completion,
    }
}

fn staged(notice: Option<Notice>) -> Staged {
    match notice {
        Some(Notice::Staged(staged)) => staged,
        other => panic!("expected a staged batch, got {other:?}"),
    }
}

#[test]
fn an_idle_task_is_staged_after_the_default_delay_and_restaged_later() {
    let mut notes = Notifications::default();
    let batch = staged(notes.report(Millis(1_000), fresh(1), finished(1, Completion::Idle), None));
    assert_eq!(batch.batch, fresh(1).batch);
    assert_eq!(batch.notifications, [fresh(1).notification]);
    assert_eq!(
        batch.auto_fire_at,
        Millis(1_000 + NOTIFICATION_DELAY_MS_DEFAULT)
    );
    assert_eq!(notes.restage_at(), Some(Millis(1_000 + RESTAGE_MS)));
    assert!(notes.is_flagged(task(1)));
}

#[test]
fn a_failed_exit_is_told_sooner() {
    let mut notes = Notifications::new(60_000);
    let batch = staged(notes.report(
        Millis(0),
        fresh(1),
        finished(1, Completion::Exited(Some(2))),
        None,
    ));
    assert_eq!(batch.auto_fire_at, Millis(15_000), "a quarter of 60 s");
    let mut notes = Notifications::default();
    let batch = staged(notes.report(
        Millis(0),
        fresh(1),
        finished(1, Completion::Exited(Some(1))),
        None,
    ));
    assert_eq!(
        batch.auto_fire_at,
        Millis(FAILURE_DELAY_MS_MIN),
        "not less than the floor"
    );
    let batch = staged(notes.report(
        Millis(0),
        fresh(2),
        finished(2, Completion::Exited(Some(0))),
        None,
    ));
    assert_eq!(
        batch.auto_fire_at,
        Millis(FAILURE_DELAY_MS_MIN),
        "one failure in the batch is enough"
    );
}

#[test]
fn a_delay_override_wins() {
    let mut notes = Notifications::default();
    let batch = staged(notes.report(
        Millis(0),
        fresh(1),
        finished(1, Completion::Idle),
        Some(SIGNAL_DONE_DELAY_MS),
    ));
    assert_eq!(batch.auto_fire_at, Millis(SIGNAL_DONE_DELAY_MS));
}

#[test]
fn a_task_is_reported_once_but_an_idle_report_is_upgraded_to_its_exit() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    assert_eq!(
        notes.report(Millis(10), fresh(2), finished(1, Completion::Idle), None),
        None
    );
    let batch = staged(notes.report(
        Millis(20),
        fresh(3),
        finished(1, Completion::Exited(Some(1))),
        None,
    ));
    assert_eq!(
        batch.batch,
        fresh(3).batch,
        "staged again under a new batch"
    );
    assert_eq!(
        batch.notifications,
        [fresh(1).notification],
        "the same notification, upgraded"
    );
    assert_eq!(
        notes.pending()[0].finished.completion,
        Completion::Exited(Some(1))
    );
    assert_eq!(
        notes.report(
            Millis(30),
            fresh(4),
            finished(1, Completion::Exited(None)),
            None
        ),
        None
    );
}

#[test]
fn batches_carry_every_pending_notification_in_order() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    let batch = staged(notes.report(Millis(5), fresh(2), finished(2, Completion::Idle), None));
    assert_eq!(
        batch.notifications,
        [fresh(1).notification, fresh(2).notification]
    );
    assert_eq!(
        notes.staged(),
        Some(fresh(2).batch),
        "one staged batch at a time"
    );
}

#[test]
fn suppressing_the_last_pending_notification_clears_and_otherwise_restages() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    staged(notes.report(Millis(0), fresh(2), finished(2, Completion::Idle), None));
    let rest = staged(notes.suppress(Millis(100), fresh(3), task(1)));
    assert_eq!(rest.notifications, [fresh(2).notification]);
    assert_eq!(
        rest.auto_fire_at,
        Millis(100 + NOTIFICATION_DELAY_MS_DEFAULT),
        "pushed back"
    );
    assert!(!notes.is_flagged(task(1)));
    assert_eq!(
        notes.suppress(Millis(200), fresh(4), task(2)),
        Some(Notice::Cleared)
    );
    assert_eq!(notes.restage_at(), None);
    assert_eq!(
        notes.suppress(Millis(300), fresh(5), task(2)),
        None,
        "nothing pending for it"
    );
}

#[test]
fn suppressing_a_silenced_task_keeps_it_silenced() {
    let mut notes = Notifications::default();
    notes.silence(task(1));
    assert_eq!(notes.suppress(Millis(0), fresh(1), task(1)), None);
    assert!(notes.is_flagged(task(1)));
    assert_eq!(
        notes.report(Millis(0), fresh(2), finished(1, Completion::Idle), None),
        None
    );
}

#[test]
fn acknowledging_the_staged_batch_finishes_its_notifications() {
    let mut notes = Notifications::default();
    let batch = staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    assert_eq!(notes.ack(batch.batch), [task(1)]);
    assert!(notes.pending().is_empty());
    assert!(
        !notes.is_flagged(task(1)),
        "a later completion is reported again"
    );
    assert_eq!(notes.restage_at(), None);
    assert_eq!(notes.ack(batch.batch), [], "acknowledging twice is a no-op");
}

#[test]
fn acknowledging_a_superseded_batch_removes_nothing() {
    let mut notes = Notifications::default();
    let old = staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    let new = staged(notes.report(Millis(0), fresh(2), finished(2, Completion::Idle), None));
    assert_eq!(notes.ack(old.batch), []);
    assert_eq!(notes.pending().len(), 2);
    assert_eq!(notes.staged(), Some(new.batch));
    assert_eq!(notes.ack(new.batch), [task(1), task(2)]);
}

#[test]
fn remembered_acknowledgements_are_bounded() {
    let mut notes = Notifications::default();
    for n in 0..=ACKED_BATCHES_MAX {
        notes.ack(BatchId::from_random([n as u8; 16]));
    }
    assert_eq!(notes.acked.len(), ACKED_BATCHES_MAX);
    assert!(
        !notes.acked.contains(&BatchId::from_random([0; 16])),
        "the oldest went first"
    );
}

#[test]
fn dropping_a_batch_returns_its_tasks_for_review() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    let batch = staged(notes.report(
        Millis(0),
        fresh(2),
        finished(2, Completion::Exited(Some(0))),
        None,
    ));
    assert_eq!(notes.drop_batch(batch.batch), [task(1), task(2)]);
    assert!(notes.pending().is_empty());
    assert_eq!(notes.drop_batch(batch.batch), []);
}

#[test]
fn nothing_is_staged_while_a_signal_wait_blocks_and_the_last_wait_stages() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    assert_eq!(
        notes.begin_signal_wait(),
        Some(Notice::Cleared),
        "the staged batch is withdrawn"
    );
    assert_eq!(notes.begin_signal_wait(), None, "nothing left to withdraw");
    assert_eq!(
        notes.report(Millis(10), fresh(2), finished(2, Completion::Idle), None),
        None
    );
    assert_eq!(notes.pending().len(), 2, "kept pending");
    assert_eq!(
        notes.finish_signal_wait(Millis(20), fresh(3)),
        None,
        "another wait still blocks"
    );
    let batch = staged(notes.finish_signal_wait(Millis(30), fresh(4)));
    assert_eq!(batch.notifications.len(), 2);
    assert_eq!(
        batch.auto_fire_at,
        Millis(30 + NOTIFICATION_DELAY_MS_DEFAULT)
    );
}

#[test]
fn an_unacknowledged_batch_is_staged_again_when_its_time_comes() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    assert_eq!(notes.restage_due(Millis(RESTAGE_MS - 1), fresh(2)), None);
    let again = staged(notes.restage_due(Millis(RESTAGE_MS), fresh(3)));
    assert_eq!(again.batch, fresh(3).batch);
    assert_eq!(notes.restage_at(), Some(Millis(2 * RESTAGE_MS)));
}

#[test]
fn typing_of_ones_own_postpones_restaging() {
    let mut notes = Notifications::default();
    staged(notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None));
    notes.reschedule_restage(Millis(1_000));
    assert_eq!(notes.restage_at(), Some(Millis(1_000 + RESTAGE_MS)));
    notes.begin_signal_wait();
    notes.reschedule_restage(Millis(2_000));
    assert_eq!(notes.restage_at(), None, "not while a wait blocks");
}

#[test]
fn the_delay_is_clamped() {
    assert_eq!(Notifications::new(1).delay_ms, NOTIFICATION_DELAY_MS_MIN);
    assert_eq!(
        Notifications::new(u64::MAX).delay_ms,
        NOTIFICATION_DELAY_MS_MAX
    );
    let mut notes = Notifications::default();
    notes.set_delay_ms(7_000);
    assert_eq!(notes.delay_ms, 7_000);
}

#[test]
fn the_batch_text_lists_every_task_and_warns_about_failures() {
    let mut notes = Notifications::default();
    notes.report(Millis(0), fresh(1), finished(1, Completion::Idle), None);
    notes.report(
        Millis(0),
        fresh(2),
        finished(2, Completion::Exited(Some(1))),
        None,
    );
    let batch = staged(notes.report(
        Millis(0),
        fresh(3),
        finished(3, Completion::Exited(None)),
        None,
    ));
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("notification_batch_text", batch.text);
    });
}
