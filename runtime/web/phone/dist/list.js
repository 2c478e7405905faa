// The agent list (route #/): the agents grouped under their coordinators, orphans last.
//
// The daemon sends the whole list on every change, so the view is drawn again from it each time
// rather than patched; it is small, and a redraw cannot drift from the daemon's view.

import { agentRow, coordinatorCounts, coordinatorHref, count, el } from "./ui.js";

/**
 * Splits the agents into one group per registered coordinator (in the daemon's order) and the
 * orphans: agents of a deregistered coordinator, or of one the daemon did not list.
 */
export function groupAgents(agents, coordinators) {
  const groups = new Map();
  for (const coordinator of coordinators) {
    if (coordinator.registered !== false) groups.set(coordinator.id, { coordinator, agents: [] });
  }
  const orphans = [];
  for (const agent of agents) {
    const group = groups.get(agent.coordinatorId);
    if (group) group.agents.push(agent);
    else orphans.push(agent);
  }
  return { groups: [...groups.values()], orphans };
}

function coordinatorGroup(group) {
  const { coordinator, agents } = group;
  return el(
    "section",
    { class: "group", "data-testid": "coordinator-group", dataset: { coordinatorId: coordinator.id } },
    el(
      "a",
      { class: "group-header", href: coordinatorHref(coordinator.id), "data-testid": "coordinator-header" },
      el("span", { class: "project" }, coordinator.project ?? coordinator.id),
      el("span", { class: "counts" }, coordinatorCounts(coordinator)),
    ),
    coordinator.agent ? agentRow(coordinator.agent) : null,
    ...agents.map((agent) => agentRow(agent)),
  );
}

function orphanGroup(orphans, coordinators) {
  const projectByCoordinator = new Map(coordinators.map((c) => [c.id, c.project]));
  return el(
    "section",
    { class: "group", "data-testid": "orphan-group" },
    el(
      "div",
      { class: "group-header" },
      el("span", { class: "project" }, "Orphaned tasks"),
      el("span", { class: "counts" }, `${count(orphans.length, "task", "tasks")} · coordinator gone`),
    ),
    ...orphans.map((agent) => agentRow(agent, projectByCoordinator)),
  );
}

export function listView() {
  const root = el("div", { class: "list-view", "data-testid": "agent-list" });
  return {
    root,
    update(state) {
      if (!state.loaded) {
        root.replaceChildren(el("p", { class: "empty" }, "Connecting…"));
        return;
      }
      const { groups, orphans } = groupAgents(state.agents, state.coordinators);
      const parts = [
        el("h1", { class: "page-title" }, "Baton"),
        state.agents.length === 0 ? el("p", { class: "empty" }, "No agents yet.") : null,
        ...groups.map(coordinatorGroup),
        orphans.length > 0 ? orphanGroup(orphans, state.coordinators) : null,
      ];
      root.replaceChildren(...parts.filter(Boolean));
    },
    dispose() {},
  };
}
