//! A scenario prepared before the simulation starts: each step's time and lane, each fault's
//! time, the daemon's crashes (applied from outside the simulation), the deadline; and the
//! agents' scripts read (casts loaded from the scenario's directory).

use std::collections::BTreeMap;
use std::path::Path;

use crate::agent::{self, Action};
use crate::daemon::{self, Script};
use crate::scenario::{
    At, DRAIN_MS_DEFAULT, Fault, SETTLE_MS_DEFAULT, Scenario, Step, invariant_names, parse_at,
};
use crate::world::{SIMULATION_MS_MAX, TICK_MS};

/// A step, with its time resolved.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) index: usize,
    /// The earliest it may start (the plan's times, ignoring waits for answers).
    pub(super) at_ms: u64,
    pub(super) when: When,
    /// The step before it in the file.
    pub(super) prev: Option<usize>,
    /// The step before it in its lane (its actor's, or the lane it names).
    pub(super) lane_prev: Option<usize>,
    pub(super) step: Step,
}

/// When a step starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum When {
    /// At this time from the start of the world.
    At(u64),
    /// This long after the step before it started.
    AfterStart(u64),
    /// As soon as the step before it was answered.
    AfterAnswer,
}

/// A fault, with its time resolved.
#[derive(Debug, Clone)]
pub(super) struct PlannedFault {
    pub(super) at_ms: u64,
    pub(super) fault: Fault,
}

/// Everything a run needs, prepared before the simulation starts.
pub(super) struct Plan {
    pub(super) steps: Vec<Planned>,
    pub(super) faults: Vec<PlannedFault>,
    /// Daemon stops: when, how long it stays down, whether gracefully.
    pub(super) crashes: Vec<(u64, u64, bool)>,
    pub(super) invariants: Vec<&'static str>,
    pub(super) deadline_ms: u64,
    pub(super) settle_ms: u64,
}

pub(super) fn plan(scenario: &Scenario) -> anyhow::Result<Plan> {
    let mut steps: Vec<Planned> = Vec::new();
    let mut last = 0;
    let mut lanes: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let when = match step.at.as_deref().map(parse_at).transpose() {
            Err(e) => anyhow::bail!("step {}: {e}", index + 1),
            Ok(None) => When::AfterAnswer,
            Ok(Some(At::Absolute(ms))) => When::At(ms),
            Ok(Some(At::After(ms))) => When::AfterStart(ms),
        };
        let at_ms = match when {
            When::At(ms) => ms,
            When::AfterStart(ms) => last + ms,
            When::AfterAnswer => last,
        };
        last = at_ms;
        let lane = (step.actor.clone(), step.lane.clone());
        steps.push(Planned {
            index,
            at_ms,
            when,
            prev: index.checked_sub(1),
            lane_prev: lanes.insert(lane, index),
            step: step.clone(),
        });
    }
    let mut faults = Vec::new();
    let mut crashes = Vec::new();
    for fault in &scenario.faults {
        let at_ms = match parse_at(&fault.at).map_err(anyhow::Error::msg)? {
            At::Absolute(ms) | At::After(ms) => ms,
        };
        if fault.kind == "crash_daemon" || fault.kind == "stop_daemon" {
            let down = fault.for_ms.unwrap_or(TICK_MS).max(TICK_MS);
            crashes.push((at_ms, down, fault.kind == "stop_daemon"));
        } else {
            faults.push(PlannedFault {
                at_ms,
                fault: fault.clone(),
            });
        }
    }
    crashes.sort_unstable();
    for pair in crashes.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            anyhow::bail!(
                "the daemon crash at {} ms comes while it is still down from the one at {} ms",
                pair[1].0,
                pair[0].0
            );
        }
    }
    let duration = |text: &Option<String>, default: u64| -> anyhow::Result<u64> {
        text.as_deref().map_or(Ok(default), |t| match parse_at(t) {
            Ok(At::Absolute(ms)) => Ok(ms),
            Ok(At::After(_)) => anyhow::bail!("{t:?} is a duration, write it without +"),
            Err(e) => Err(anyhow::Error::msg(e)),
        })
    };
    let horizon = steps
        .iter()
        .map(|s| s.at_ms)
        .chain(faults.iter().map(|f| f.at_ms + f.fault.for_ms.unwrap_or(0)))
        .chain(crashes.iter().map(|(at, down, _)| at + down))
        .max()
        .unwrap_or(0);
    let deadline_ms = horizon + duration(&scenario.end.within, DRAIN_MS_DEFAULT)?;
    let settle_ms = duration(&scenario.end.settle, SETTLE_MS_DEFAULT)?;
    if deadline_ms + settle_ms >= SIMULATION_MS_MAX {
        anyhow::bail!("the scenario would run past {SIMULATION_MS_MAX} simulated ms (six hours)");
    }
    Ok(Plan {
        steps,
        faults,
        crashes,
        invariants: invariant_names(scenario).map_err(anyhow::Error::msg)?,
        deadline_ms,
        settle_ms,
    })
}

pub(super) fn scripts(scenario: &Scenario, dir: &Path) -> anyhow::Result<BTreeMap<String, Script>> {
    let load = agent::loader(dir);
    let mut scripts = BTreeMap::new();
    for def in &scenario.agents {
        let read = |items: &[toml::Table]| -> anyhow::Result<Vec<Action>> {
            let mut actions = Vec::new();
            for (n, item) in items.iter().enumerate() {
                let fail =
                    |e: String| anyhow::anyhow!("agent {:?}, script item {}: {e}", def.task, n + 1);
                let parsed = agent::parse_action(item, &load).map_err(fail)?;
                if let Some(Action::Tool { name, .. }) =
                    parsed.iter().find(|a| matches!(a, Action::Tool { .. }))
                {
                    return Err(fail(format!(
                        "call = {name:?}: a scenario's agents are sub-tasks, whose only tool is \
                         signal_done (coordinators are [[step]]s)"
                    )));
                }
                actions.extend(parsed);
            }
            Ok(actions)
        };
        let script = Script {
            once: read(&def.script)?,
            repeat: read(&def.repeat)?,
            loops: def.loops,
            mcp_connect_ms: def
                .mcp_connects
                .then(|| def.mcp_connect_ms.unwrap_or(daemon::MCP_CONNECT_MS_DEFAULT)),
        };
        scripts.insert(def.task.clone(), script);
    }
    Ok(scripts)
}
