// Small pieces the views share: an element builder, the badges and rows, relative times, and
// the lookups in the daemon's list.
//
// Invariant: text from the daemon reaches the page only as text nodes or attribute values
// (never as HTML), so an agent's output line cannot inject markup.

/**
 * Makes an element. `props` holds attributes, except `class` (the class list), `dataset`
 * (data-* attributes) and `on` (event listeners); children are nodes or strings.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [event, listener] of Object.entries(value)) node.addEventListener(event, listener);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** Why an agent needs a human, as the badge says it. */
const ATTENTION_TEXT = {
  permission: "asks permission",
  question: "asks a question",
  dialog: "dialog waiting",
  sign_in: "wants sign-in",
  error: "stopped on an error",
  unrecognised_screen: "stuck on an unknown screen",
};

/** What an agent's badge says, and its colour class, from the daemon's reading of its state. */
function stateLook(agent) {
  // A process that ended is exited whatever was last seen.
  const state = agent.status === "exited" ? "exited" : agent.state;
  switch (state) {
    case "waiting_for_input":
      return { text: "ready", tone: "ready" };
    case "working":
      return { text: "working", tone: "busy" };
    case "starting":
      return { text: "starting", tone: "unknown" };
    case "needs_attention":
      return { text: `needs you: ${ATTENTION_TEXT[agent.attention] ?? "attention"}`, tone: "attention" };
    case "exited":
      return { text: exitedText(agent.exitCode), tone: "exited" };
    default:
      return { text: String(state ?? "unknown"), tone: "unknown" };
  }
}

export function exitedText(exitCode) {
  return typeof exitCode === "number" ? `exited (code ${exitCode})` : "exited";
}

/** The agent's status badge; `testid` marks the one a view calls its own. */
export function stateBadge(agent, testid) {
  const look = stateLook(agent);
  return el("span", { class: `badge badge-${look.tone}`, "data-testid": testid }, look.text);
}

/** The badges beside an agent: its state, a signal waiting to be collected, a human in control. */
export function agentBadges(agent, stateTestid) {
  return [
    stateBadge(agent, stateTestid),
    agent.signal === "pending" ? el("span", { class: "badge badge-signal" }, "done ✓ — waiting for coordinator") : null,
    agent.control === "human" ? el("span", { class: "badge badge-human" }, "human") : null,
  ].filter(Boolean);
}

/**
 * One agent's row: name and last activity, badges, and its last output line. An orphan's row
 * names the project it came from (`projectByCoordinator`), since no group header does.
 */
export function agentRow(agent, projectByCoordinator) {
  const origin = projectByCoordinator?.get(agent.coordinatorId);
  const lead = agent.role === "coordinator";
  return el(
    "a",
    {
      class: lead ? "agent-row lead-row" : "agent-row",
      href: agentHref(agent.agentId),
      "data-testid": lead ? "coordinator-agent-row" : "agent-row",
      dataset: { agentId: agent.agentId, state: agent.state ?? "" },
    },
    el("span", { class: "row-top" }, el("span", { class: "task-name" }, agent.taskName ?? agent.agentId), activityTime(agent.lastActivityAt)),
    el("span", { class: "badges" }, ...agentBadges(agent, "status-badge"), origin ? el("span", { class: "origin" }, origin) : null),
    el("span", { class: "last-line" }, agent.lastLine || " "),
  );
}

/** "12 s ago", "3 min ago"; "—" when unknown. A phone clock a little ahead still says "0 s ago". */
export function relativeTime(atMs, nowMs) {
  if (typeof atMs !== "number") return "—";
  const seconds = Math.max(0, Math.floor((nowMs - atMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/**
 * A relative time that `refreshTimes` keeps current: the moment rides on the element, so the
 * once-a-second refresh touches only these elements, not the whole view.
 */
export function activityTime(atMs) {
  const node = el("span", { class: "activity", dataset: { activityAt: String(atMs ?? "") } });
  node.textContent = relativeTime(atMs, Date.now());
  return node;
}

export function refreshTimes(root) {
  const now = Date.now();
  for (const node of root.querySelectorAll("[data-activity-at]")) {
    const at = node.dataset.activityAt;
    node.textContent = relativeTime(at === "" ? undefined : Number(at), now);
  }
}

/** `1 task`, `2 tasks`. */
export function count(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A coordinator's counts on one line: tasks, signals not yet collected, notifications queued. */
export function coordinatorCounts(coordinator) {
  return [
    count(coordinator.tasks ?? 0, "task", "tasks"),
    count(coordinator.pendingSignals ?? 0, "pending signal", "pending signals"),
    count(coordinator.notifications ?? 0, "notification waiting", "notifications waiting"),
  ].join(" · ");
}

/** A hash route's link. */
export function agentHref(agentId) {
  return `#/agent/${encodeURIComponent(agentId)}`;
}

export function coordinatorHref(coordinatorId) {
  return `#/coordinator/${encodeURIComponent(coordinatorId)}`;
}

/**
 * Makes each coordinator's own agent (`coordinator.agent`, when it has one) look like a task's
 * agent to the views: named "Coordinator", marked with `role`, grouped under its coordinator,
 * and, where a task's agent shows its branch, showing its project and program.
 */
export function adoptCoordinatorAgents(coordinators) {
  for (const coordinator of coordinators) {
    const agent = coordinator.agent;
    if (!agent) continue;
    const program = String(agent.program ?? "").split("/").pop();
    Object.assign(agent, {
      role: "coordinator",
      coordinatorId: coordinator.id,
      taskName: "Coordinator",
      context: [coordinator.project, program].filter(Boolean).join(" · "),
    });
  }
}

/** The agent `agentId` in the daemon's last list: a task's, or a coordinator's own. */
export function findAgent(state, agentId) {
  return (
    state.agents.find((agent) => agent.agentId === agentId) ??
    state.coordinators.find((coordinator) => coordinator.agent?.agentId === agentId)?.agent ??
    null
  );
}
