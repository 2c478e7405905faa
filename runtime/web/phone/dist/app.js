// Baton's phone page: a read-only view of the daemon's agents over its WebSocket.
//
// Layout:
//   app.js         state (the daemon's last agent list), routing, wiring, test hooks
//   token.js       the mobile token: from the link, kept in localStorage
//   connection.js  the WebSocket: auth, reconnect with backoff, read-only sends
//   list.js        #/                the agents grouped by coordinator, each led by its own
//   coordinator.js #/coordinator/ID  one coordinator and its sub-tasks
//   detail.js      #/agent/ID        one agent's terminal
//   ui.js          element builder, badges, relative times
//
// Invariants: the page holds only what the daemon last sent (each list replaces the one before),
// one view at a time, and at most one terminal; every view is drawn from that state, so a
// reconnect needs nothing but a fresh list and, for an open terminal, a fresh subscription.

import { CLOSE_UNAUTHORIZED, Connection } from "./connection.js";
import { coordinatorView } from "./coordinator.js";
import { agentDetail, terminalText } from "./detail.js";
import { listView } from "./list.js";
import { takeToken } from "./token.js";
import { adoptCoordinatorAgents, el, findAgent, refreshTimes } from "./ui.js";

/** Sent messages remembered for the tests' "the page never writes" check; the oldest go first. */
const SENT_LOG_MAX = 1000;
/** How often the "12 s ago" times are brought up to date. */
const ACTIVITY_REFRESH_MS = 1000;

const app = document.getElementById("app");
const banner = document.querySelector('[data-testid="banner"]');

/** What the daemon last said; `loaded` once its first list came. */
const state = { agents: [], coordinators: [], loaded: false };
let view = null;
let viewKey = "";
let connection = null;

const hooks = {
  connected: false,
  sent: [],
  termText: () => (view?.term ? terminalText(view.term) : ""),
};
window.__baton = hooks;

function parseRoute(hash) {
  const match = /^#\/(agent|coordinator)\/([^/]+)$/.exec(hash);
  if (!match) return { name: "list", id: "" };
  try {
    return { name: match[1], id: decodeURIComponent(match[2]) };
  } catch {
    return { name: "list", id: "" };
  }
}

// The first entry of this page's history is marked, so the page's own back button knows whether
// going back would leave the page (a link straight to an agent) and goes to the list instead.
function goBack() {
  if (history.state?.batonFirst) location.replace("#/");
  else history.back();
}

function makeView(route) {
  switch (route.name) {
    case "agent":
      return agentDetail(route.id, { connection, goBack });
    case "coordinator":
      return coordinatorView(route.id, goBack);
    default:
      return listView();
  }
}

function showRoute() {
  const route = parseRoute(location.hash);
  const key = `${route.name}/${route.id}`;
  if (view && key === viewKey) return;
  view?.dispose();
  view = makeView(route);
  viewKey = key;
  app.replaceChildren(view.root);
  document.body.dataset.view = route.name;
  window.scrollTo(0, 0);
  view.mounted?.();
  view.update(state);
}

/** Replaces the page with a message that needs the person, not a retry. */
function showFatal(reason, text) {
  view?.dispose();
  view = null;
  banner.hidden = true;
  window.removeEventListener("hashchange", showRoute);
  document.body.dataset.view = "fatal";
  app.replaceChildren(el("div", { class: "fatal", "data-testid": "fatal", dataset: { reason } }, el("p", {}, text)));
}

function agentExited(message) {
  const agent = findAgent(state, message.agentId);
  if (!agent) return;
  agent.status = "exited";
  agent.state = "exited";
  agent.exitCode = message.exitCode ?? null;
}

function receive(message) {
  switch (message.type) {
    case "agents":
      state.agents = Array.isArray(message.list) ? message.list : [];
      state.coordinators = Array.isArray(message.coordinators) ? message.coordinators : [];
      adoptCoordinatorAgents(state.coordinators);
      state.loaded = true;
      break;
    case "status":
      agentExited(message);
      break;
    case "scrollback":
    case "output":
      view?.receive?.(message);
      return;
    default:
      return;
  }
  view?.update(state);
}

function start() {
  const token = takeToken();
  history.replaceState({ ...history.state, batonFirst: true }, "");
  if (!token) {
    showFatal("no-token", "Open the link that `baton phone` printed.");
    return;
  }
  connection = new Connection(token, {
    onMessage: receive,
    onReady() {
      hooks.connected = true;
      banner.hidden = true;
      view?.connectionReady?.();
    },
    onDown() {
      hooks.connected = false;
      banner.hidden = false;
      view?.connectionDown?.();
    },
    onRefused(code) {
      hooks.connected = false;
      if (code === CLOSE_UNAUTHORIZED) {
        showFatal("unauthorized", "This phone link is no longer valid — run `baton phone` again on the computer and open the new link.");
      } else {
        showFatal("forbidden", "The daemon closed this page's connection (forbidden). Reload the page to try again.");
      }
    },
    onSent(type) {
      hooks.sent.push(type);
      if (hooks.sent.length > SENT_LOG_MAX) hooks.sent.shift();
    },
  });
  window.addEventListener("hashchange", showRoute);
  showRoute();
  setInterval(() => refreshTimes(app), ACTIVITY_REFRESH_MS);
  connection.open();
}

start();
