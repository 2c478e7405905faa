//! The scenario host's software: the app registers the declared coordinators, then every step
//! runs in its lane (after the step before it in its lane was answered, at its time), its
//! rounds, copies and `then`s each one call through the caller's link; answers are matched
//! against expectations, bound for later steps, and followed by an invariant check that runs
//! beside the next steps. At the end: unanswered steps, pending signals collected, the last
//! check.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use baton_runtime::core::coordinator::SignalOutcome;
use serde_json::Value;
use tokio::sync::Notify;

use super::expect::{compact, expectations, lookup, render, replace, toml_to_json};
use super::faults::inject;
use super::plan::{Plan, Planned, When};
use super::{PROBE_WAITS_MAX, Results, StepAnswer};
use crate::calls;
use crate::daemon::{self, Shared};
use crate::invariants::{self, Baseline};
use crate::scenario::{APP_ACTOR, Step};
use crate::world::TICK_MS;

/// What the lanes share.
#[derive(Default)]
struct Board {
    bindings: RefCell<BTreeMap<String, Value>>,
    /// Bindings whose step failed: they will never come.
    missing: RefCell<BTreeMap<String, usize>>,
    bound: Notify,
    answered: RefCell<BTreeSet<usize>>,
    started: RefCell<BTreeMap<usize, tokio::time::Instant>>,
    /// Invariant checks still running (one per answered round at most).
    checks: RefCell<Vec<tokio::task::JoinHandle<()>>>,
    /// Told whenever a step starts or is answered.
    progress: Notify,
    failures: RefCell<Vec<String>>,
    reported: RefCell<BTreeSet<String>>,
    checkout_dirtied: Cell<bool>,
    answers: RefCell<Vec<StepAnswer>>,
}

impl Board {
    fn fail(&self, shared: &Shared, line: String) {
        shared.recorder.record("check", format!("!! {line}"));
        self.failures.borrow_mut().push(line);
    }

    /// Reports each violation the first time it is seen.
    fn violations(&self, shared: &Shared, found: Vec<String>, after: &str) {
        for violation in found {
            if self.reported.borrow_mut().insert(violation.clone()) {
                self.fail(shared, format!("invariant {violation} ({after})"));
            }
        }
    }
}

/// Binds the registered coordinator `name`'s id and token, as the app and its MCP config hold
/// them, for the steps to name (`${id:…}`, `${token:…}`).
fn bind_coordinator(shared: &Shared, board: &Board, name: &str) {
    let Some(registered) = shared.registered(name) else {
        return;
    };
    let mut bindings = board.bindings.borrow_mut();
    bindings.insert(
        format!("{}{name}", crate::scenario::ID_BINDING_PREFIX),
        Value::String(registered.id.to_string()),
    );
    bindings.insert(
        format!("{}{name}", crate::scenario::TOKEN_BINDING_PREFIX),
        Value::String(registered.token.expose().to_owned()),
    );
}

/// The scenario host's software.
pub(super) async fn play(
    shared: Arc<Shared>,
    plan: Rc<Plan>,
    baseline: Baseline,
    out: Rc<Results>,
) -> turmoil::Result {
    let start = tokio::time::Instant::now();
    while shared.door().is_none() {
        baton_runtime::time::sleep(Duration::from_millis(TICK_MS)).await;
    }
    let board = Rc::new(Board::default());
    board.bindings.borrow_mut().insert(
        format!("{}phone", crate::scenario::TOKEN_BINDING_PREFIX),
        Value::String(shared.phone.expose().to_owned()),
    );
    for declared in &shared.declared {
        let args = serde_json::json!({ "coordinator": declared.name });
        let mut dirtied = false;
        let answer = calls::app_call(&shared, "register", &args, &mut dirtied).await;
        shared.recorder.record(
            APP_ACTOR,
            format!("register {} -> {}", declared.name, render(&answer)),
        );
        bind_coordinator(&shared, &board, &declared.name);
    }
    for fault in plan.faults.clone() {
        tokio::task::spawn_local(inject(shared.clone(), start, fault));
    }
    let mut running = Vec::new();
    for planned in plan.steps.clone() {
        let (shared, board, plan, baseline) = (
            shared.clone(),
            board.clone(),
            plan.clone(),
            baseline.clone(),
        );
        running.push(tokio::task::spawn_local(async move {
            run_step(&shared, &board, &plan, &baseline, start, planned).await;
        }));
    }
    let deadline = start + Duration::from_millis(plan.deadline_ms);
    for step in &mut running {
        if baton_runtime::time::timeout_at(deadline, step)
            .await
            .is_err()
        {
            break;
        }
    }
    for step in &running {
        step.abort();
    }
    for planned in &plan.steps {
        if !board.answered.borrow().contains(&planned.index) {
            board.fail(
                &shared,
                format!(
                    "step {} ({} by {}) was not answered by t={}",
                    planned.index + 1,
                    planned.step.call,
                    planned.step.actor,
                    plan.deadline_ms
                ),
            );
        }
    }
    let checks = board.checks.take();
    for check in checks {
        let _ = check.await;
    }
    baton_runtime::time::sleep(Duration::from_millis(plan.settle_ms)).await;
    probe(&shared).await;
    let found = invariants::check(
        &shared,
        &baseline,
        &plan.invariants,
        true,
        board.checkout_dirtied.get(),
    )
    .await;
    board.violations(&shared, found, "at the end");
    let failures = board.failures.borrow().clone();
    shared.recorder.record(
        "check",
        if failures.is_empty() {
            "end: every expectation and invariant held".to_owned()
        } else {
            format!("end: {} failure(s)", failures.len())
        },
    );
    *out.failures.borrow_mut() = failures;
    *out.answers.borrow_mut() = board.answers.take();
    *out.bindings.borrow_mut() = board.bindings.borrow().clone();
    Ok(())
}

/// Collects the signals still waiting at the end, so the checker sees them as delivered.
async fn probe(shared: &Shared) {
    let Ok(handles) = shared.handles().await else {
        return;
    };
    shared.recorder.record(
        "check",
        "end: collecting the signals still pending (one zero-timeout wait after another)",
    );
    for handle in handles.registered.values() {
        for _ in 0..PROBE_WAITS_MAX {
            let outcome = handle.wait_for_signal(None, Some(0)).await;
            crate::world::next_step().await;
            match outcome {
                Ok(SignalOutcome::Task {
                    task, status, at, ..
                }) => {
                    let name = shared.observed().task_name(task);
                    shared.recorder.record(
                        "check",
                        format!(
                            "still pending: {name} ({}) at t={}",
                            status.name(),
                            daemon::sim_ms(at)
                        ),
                    );
                    let exited = status == baton_runtime::core::coordinator::Status::Exited;
                    shared
                        .observed()
                        .signal_delivered(task, daemon::sim_ms(at), None, exited);
                }
                _ => break,
            }
        }
    }
}

async fn run_step(
    shared: &Arc<Shared>,
    board: &Rc<Board>,
    plan: &Plan,
    baseline: &Baseline,
    start: tokio::time::Instant,
    planned: Planned,
) {
    let Planned {
        index,
        when,
        prev,
        lane_prev,
        step,
        ..
    } = planned;
    let answered = |i: Option<usize>| i.is_none_or(|i| board.answered.borrow().contains(&i));
    let started = |i: Option<usize>| i.and_then(|i| board.started.borrow().get(&i).copied());
    // Its turn: after the step before it in its lane was answered, and at its time.
    loop {
        let progress = board.progress.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        let ready = answered(lane_prev)
            && match when {
                When::At(_) => true,
                When::AfterStart(_) => prev.is_none() || started(prev).is_some(),
                When::AfterAnswer => answered(prev),
            };
        if ready {
            break;
        }
        progress.await;
    }
    let at = match when {
        When::At(ms) => Some(start + Duration::from_millis(ms)),
        When::AfterStart(ms) => Some(started(prev).unwrap_or(start) + Duration::from_millis(ms)),
        When::AfterAnswer => None,
    };
    if let Some(at) = at {
        baton_runtime::time::sleep_until(at).await;
    }
    board
        .started
        .borrow_mut()
        .insert(index, tokio::time::Instant::now());
    board.progress.notify_waiters();
    if let Some(copies) = step.parallel {
        let calls = (0..copies).map(|copy| {
            let label = format!("step {} ({}, copy {copy})", index + 1, step.call);
            let step = &step;
            async move {
                run_round(
                    shared,
                    board,
                    plan,
                    baseline,
                    step,
                    index,
                    &label,
                    Some(Value::from(copy)),
                )
                .await
            }
        });
        join_all(calls.collect()).await;
        board.answered.borrow_mut().insert(index);
        board.progress.notify_waiters();
        return;
    }
    let rounds = step.repeat.unwrap_or(1);
    for round in 0..rounds {
        let label = if step.repeat.is_some() {
            format!("step {} ({}, round {round})", index + 1, step.call)
        } else {
            format!("step {} ({})", index + 1, step.call)
        };
        let round = step.repeat.map(|_| Value::from(round));
        let mut go_on = run_round(
            shared,
            board,
            plan,
            baseline,
            &step,
            index,
            &label,
            round.clone(),
        )
        .await;
        for then in &step.then {
            if !go_on {
                break;
            }
            let part = then.as_step(&step);
            let label = format!("{label}, then {}", part.call);
            go_on = run_round(
                shared,
                board,
                plan,
                baseline,
                &part,
                index,
                &label,
                round.clone(),
            )
            .await;
        }
        if !go_on {
            break;
        }
    }
    board.answered.borrow_mut().insert(index);
    board.progress.notify_waiters();
}

/// One round of a step; `false` if the step cannot go on (a binding it needs never came).
#[allow(clippy::too_many_arguments)]
async fn run_round(
    shared: &Arc<Shared>,
    board: &Rc<Board>,
    plan: &Plan,
    baseline: &Baseline,
    step: &Step,
    index: usize,
    label: &str,
    round: Option<Value>,
) -> bool {
    let args = toml_to_json(&toml::Value::Table(step.args.clone()));
    let expect = toml_to_json(&toml::Value::Table(step.expect.clone()));
    let (args, expect) = match (
        substitute(board, &args, round.as_ref()).await,
        substitute(board, &expect, round.as_ref()).await,
    ) {
        (Ok(args), Ok(expect)) => (args, expect),
        (Err(e), _) | (_, Err(e)) => {
            board.fail(shared, format!("{label}: {e}"));
            forget_bindings(board, step, index);
            return false;
        }
    };
    shared
        .recorder
        .record(&step.actor, format!("{} {}", step.call, compact(&args)));
    let (answer, signal) = call(shared, board, step, &args).await;
    if let Some(signal) = &signal {
        shared.observed().signal_delivered(
            signal.task,
            signal.at_ms,
            signal.request.clone(),
            signal.exited,
        );
    }
    if step.actor != APP_ACTOR
        && answer.is_ok()
        && let Some(violation) = foreign_answer(shared, &step.actor, &args)
    {
        board.violations(shared, vec![violation], label);
    }
    shared
        .recorder
        .record(&step.actor, format!("{} -> {}", step.call, render(&answer)));
    board.answers.borrow_mut().push(StepAnswer {
        step: index,
        actor: step.actor.clone(),
        call: step.call.clone(),
        args: args.clone(),
        answer: answer.clone(),
    });
    for problem in expectations(&expect, &answer) {
        board.fail(
            shared,
            format!("{label} at t={}: {problem}", shared.recorder.elapsed_ms()),
        );
    }
    match &answer {
        Ok(value) => {
            for (name, path) in &step.bind {
                match lookup(value, path) {
                    Some(found) => {
                        board
                            .bindings
                            .borrow_mut()
                            .insert(name.clone(), found.clone());
                    }
                    None => {
                        board.fail(
                            shared,
                            format!("{label}: bind {name}: the answer has no {path:?}"),
                        );
                        board.missing.borrow_mut().insert(name.clone(), index);
                    }
                }
            }
        }
        Err(_) => forget_bindings(board, step, index),
    }
    board.bound.notify_waiters();
    // The check runs beside the next steps, so what it asks the engine takes no time from them.
    let (shared, checked, baseline) = (shared.clone(), board.clone(), baseline.clone());
    let (names, dirtied, after) = (
        plan.invariants.clone(),
        board.checkout_dirtied.get(),
        format!("after {label}"),
    );
    let check = tokio::task::spawn_local(async move {
        let found = invariants::check(&shared, &baseline, &names, false, dirtied).await;
        checked.violations(&shared, found, &after);
    });
    let mut checks = board.checks.borrow_mut();
    checks.retain(|check| !check.is_finished());
    checks.push(check);
    true
}

fn forget_bindings(board: &Board, step: &Step, index: usize) {
    for name in step.bind.keys() {
        board.missing.borrow_mut().insert(name.clone(), index);
    }
    board.bound.notify_waiters();
}

/// An answer a coordinator got about a task it did not create.
fn foreign_answer(shared: &Shared, actor: &str, args: &Value) -> Option<String> {
    let task = calls::task_arg(args).ok()?;
    let caller = shared.registered(actor)?.id;
    let observed = shared.observed();
    let owner = observed.owner(task)?;
    (owner != caller).then(|| {
        format!(
            "isolation: {actor} got an answer about {}, a task of {}",
            observed.task_name(task),
            shared.coordinator_name(owner)
        )
    })
}

/// Makes a step's call through its actor's link.
async fn call(
    shared: &Arc<Shared>,
    board: &Board,
    step: &Step,
    args: &Value,
) -> (calls::Answer, Option<calls::Signal>) {
    let actor = step.actor.as_str();
    if actor == crate::scenario::ATTACKER_ACTOR {
        let answer = if step.call == "websocket" {
            let traffic = crate::ws::attacker_websocket(shared, args);
            shared.links.call(actor, &step.call, traffic).await
        } else if step.call == "half_request" {
            let traffic = calls::attacker_half_request(args);
            shared.links.call(actor, &step.call, traffic).await
        } else {
            let traffic = calls::attacker_http(shared, args);
            shared.links.call(actor, &step.call, traffic).await
        };
        return (answer.unwrap_or_else(|e| Err(e.to_string())), None);
    }
    if actor == APP_ACTOR {
        let mut dirtied = board.checkout_dirtied.get();
        let answer = shared
            .links
            .call(
                actor,
                &step.call,
                calls::app_call(shared, &step.call, args, &mut dirtied),
            )
            .await;
        board.checkout_dirtied.set(dirtied);
        let answer = answer.unwrap_or_else(|e| Err(e.to_string()));
        if let (Ok(_), "register", Some(name)) =
            (&answer, step.call.as_str(), args["coordinator"].as_str())
        {
            // Registered again: a new id and token, which the steps after it name.
            bind_coordinator(shared, board, name);
        }
        return (answer, None);
    }
    let Some(registered) = shared.registered(actor) else {
        return (
            Err(format!("no coordinator named {actor:?} was registered")),
            None,
        );
    };
    if let Some(tool) = step.call.strip_prefix(calls::MCP_CALL_PREFIX) {
        // Its MCP process meets the link's faults one connection at a time.
        let made = calls::coordinator_mcp_call(shared, (actor, &registered), tool, args);
        let after = step
            .cancel_after
            .as_deref()
            .and_then(|a| crate::scenario::parse_at(a).ok());
        return match after {
            // The client gives the call up: it is dropped where it stands, its request with it.
            Some(crate::scenario::At::Absolute(ms) | crate::scenario::At::After(ms)) => {
                baton_runtime::time::timeout(Duration::from_millis(ms), made)
                    .await
                    .unwrap_or_else(|_| (Err("cancelled".to_owned()), None))
            }
            None => made.await,
        };
    }
    let token = registered.token.expose().to_owned();
    let request = calls::coordinator_call(shared, &token, &step.call, args);
    match shared.links.call(actor, &step.call, request).await {
        Ok(answer) => answer,
        Err(error) => (Err(error.to_string()), None),
    }
}

/// Runs every future to its end, side by side on this task; their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// `value` with every `${name}` replaced by its binding (waiting for bindings other lanes have
/// yet to make). A string that is exactly `${name}` takes the bound value as it is.
async fn substitute(board: &Board, value: &Value, round: Option<&Value>) -> Result<Value, String> {
    let mut names = Vec::new();
    collect_placeholders(value, &mut names);
    if names.is_empty() {
        return Ok(value.clone());
    }
    let round_name = crate::scenario::ROUND_BINDING;
    for name in &names {
        if round.is_some() && name == round_name {
            continue;
        }
        loop {
            let notified = board.bound.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if board.bindings.borrow().contains_key(name) {
                break;
            }
            if let Some(step) = board.missing.borrow().get(name) {
                return Err(format!(
                    "${{{name}}} was never bound: step {} did not give it",
                    step + 1
                ));
            }
            notified.await;
        }
    }
    // This round's `${i}` is this call's own, whatever other calls of the step are at.
    let mut bindings = board.bindings.borrow().clone();
    if let Some(round) = round {
        bindings.insert(round_name.to_owned(), round.clone());
    }
    Ok(replace(value, &bindings))
}

fn collect_placeholders(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            names.extend(crate::scenario::placeholder_names(text).map(str::to_owned));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_placeholders(v, names)),
        Value::Object(map) => map.values().for_each(|v| collect_placeholders(v, names)),
        _ => {}
    }
}
