// The coordinator view (route #/coordinator/ID): one coordinator, its own agent, its counts, and
// a table of its sub-tasks, each linking to the agent's terminal.
//
// Like the list, it is drawn again from each full list the daemon sends.

import { activityTime, agentHref, agentRow, coordinatorCounts, el, stateBadge } from "./ui.js";

/** The table's columns: heading, and the cell an agent gets. */
const COLUMNS = [
  ["Task", (agent) => el("span", { class: "task-name" }, agent.taskName ?? agent.agentId)],
  ["State", (agent) => stateBadge(agent, "status-badge")],
  ["Task status", (agent) => agent.taskStatus ?? "—"],
  ["Signal", (agent) => agent.signal ?? "—"],
  ["Control", (agent) => agent.control ?? "—"],
  ["Last activity", (agent) => activityTime(agent.lastActivityAt)],
];

function taskRow(agent) {
  return el(
    "a",
    { class: "task-row", href: agentHref(agent.agentId), "data-testid": "task-row", dataset: { agentId: agent.agentId } },
    // The heading rides on each cell too: on a narrow screen the cells stack and show it.
    ...COLUMNS.map(([heading, cell]) => el("span", { class: "cell", dataset: { label: heading } }, cell(agent))),
  );
}

export function coordinatorView(coordinatorId, goBack) {
  const root = el("div", { class: "coordinator-view", "data-testid": "coordinator-view" });
  return {
    root,
    update(state) {
      const coordinator = state.coordinators.find((c) => c.id === coordinatorId);
      const agents = state.agents.filter((agent) => agent.coordinatorId === coordinatorId);
      const header = el(
        "header",
        { class: "view-header" },
        el("button", { class: "back", type: "button", "data-testid": "back", "aria-label": "Back", on: { click: goBack } }, "‹"),
        el("h1", { class: "title" }, coordinator?.project ?? "Coordinator"),
        coordinator
          ? el("span", { class: `badge ${coordinator.registered === false ? "badge-exited" : "badge-ready"}` }, coordinator.registered === false ? "deregistered" : "registered")
          : null,
      );
      if (!coordinator) {
        const message = state.loaded ? "This coordinator is not connected to the daemon." : "Connecting…";
        root.replaceChildren(header, el("p", { class: "empty" }, message));
        return;
      }
      root.replaceChildren(
        header,
        coordinator.agent
          ? el("div", { class: "lead" }, agentRow(coordinator.agent))
          : el("p", { class: "counts" }, "Its own agent is not running."),
        el("p", { class: "counts" }, coordinatorCounts(coordinator)),
        agents.length === 0
          ? el("p", { class: "empty" }, "No sub-tasks.")
          : el(
              "div",
              { class: "task-table" },
              el("div", { class: "task-head" }, ...COLUMNS.map(([heading]) => el("span", { class: "cell" }, heading))),
              ...agents.map(taskRow),
            ),
      );
    },
    dispose() {},
  };
}
