// The agent detail (route #/agent/ID): a live header and a read-only xterm.js terminal that
// replays the agent's scrollback and then follows its output.
//
// Invariants: the terminal never sends anything (stdin is off and the page may only subscribe);
// fitting it to the screen changes this view only, the agent's own terminal keeps its size; the
// view subscribes at most once per connection and unsubscribes when it goes.

import { agentBadges, el, findAgent } from "./ui.js";

const FONT_SIZE_KEY = "baton.fontSize";
/** Smallest and largest font the − / + buttons reach, in CSS pixels. */
const FONT_PX_MIN = 8;
const FONT_PX_MAX = 24;
/** Lines kept above the screen: the daemon's 64 KiB of scrollback fills far fewer. */
const TERMINAL_SCROLLBACK_LINES = 5000;
/** Screens at most this wide get the smaller default font. */
const NARROW_SCREEN_QUERY = "(max-width: 600px)";

function initialFontSize() {
  let stored = null;
  try {
    stored = Number(localStorage.getItem(FONT_SIZE_KEY));
  } catch {
    // Storage off: fall back to the default.
  }
  if (Number.isInteger(stored) && stored >= FONT_PX_MIN && stored <= FONT_PX_MAX) return stored;
  return matchMedia(NARROW_SCREEN_QUERY).matches ? 13 : 14;
}

function saveFontSize(size) {
  try {
    localStorage.setItem(FONT_SIZE_KEY, String(size));
  } catch {
    // Storage off: the size lasts as long as the page.
  }
}

function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The terminal's whole buffer as text, one line a row, with trailing blank rows left off. */
export function terminalText(term) {
  const buffer = term.buffer.active;
  const lines = [];
  for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y)?.translateToString(true) ?? "");
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n");
}

export function agentDetail(agentId, { connection, goBack }) {
  const title = el("h1", { class: "title" });
  const branch = el("span", { class: "branch" });
  const badges = el("span", { class: "badges" });
  const fontLabel = el("span", { class: "font-size", "aria-live": "polite" });
  const smaller = el("button", { type: "button", class: "tool", "data-testid": "font-smaller", "aria-label": "Smaller text" }, "A−");
  const bigger = el("button", { type: "button", class: "tool", "data-testid": "font-bigger", "aria-label": "Bigger text" }, "A+");
  const jump = el("button", { type: "button", class: "jump-bottom", "data-testid": "jump-bottom", hidden: true }, "Jump to bottom ↓");
  const screen = el("div", { class: "terminal", "data-testid": "terminal" });
  const root = el(
    "div",
    { class: "agent-detail", "data-testid": "agent-detail" },
    el(
      "header",
      { class: "view-header" },
      el("button", { class: "back", type: "button", "data-testid": "back", "aria-label": "Back", on: { click: goBack } }, "‹"),
      el("div", { class: "heading" }, el("div", { class: "heading-top" }, title, badges), branch),
      el("div", { class: "tools" }, smaller, fontLabel, bigger),
    ),
    el("div", { class: "terminal-frame" }, screen, jump),
  );

  let fontSize = initialFontSize();
  const term = new Terminal({
    disableStdin: true,
    cursorBlink: false,
    scrollback: TERMINAL_SCROLLBACK_LINES,
    convertEol: false,
    fontSize,
    fontFamily: 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace',
    theme: { background: "#0b0e14", foreground: "#d7dae0" },
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  /** The agent's own width, once its scrollback told it. */
  let agentCols = null;
  let subscribed = false;
  let lastKnown = null;
  let framePending = false;

  /**
   * Rows fill the screen; columns fill it too, but never fewer than the agent's own, since a
   * full-screen program drawn narrower than it thinks turns to garble. A wider agent scrolls
   * sideways inside the terminal.
   */
  function fitScreen() {
    framePending = false;
    const proposed = fit.proposeDimensions();
    if (!proposed || !Number.isFinite(proposed.cols) || !Number.isFinite(proposed.rows)) return;
    const cols = Math.max(proposed.cols, agentCols ?? 0);
    if (cols !== term.cols || proposed.rows !== term.rows) term.resize(cols, proposed.rows);
  }
  // Resizes, orientation changes and font changes all end in one fit per frame.
  function scheduleFit() {
    if (framePending) return;
    framePending = true;
    requestAnimationFrame(fitScreen);
  }
  const resizes = new ResizeObserver(scheduleFit);

  function updateJump() {
    const buffer = term.buffer.active;
    jump.hidden = buffer.viewportY >= buffer.baseY;
  }

  function setFontSize(size) {
    fontSize = Math.min(FONT_PX_MAX, Math.max(FONT_PX_MIN, size));
    term.options.fontSize = fontSize;
    fontLabel.textContent = `${fontSize}px`;
    smaller.disabled = fontSize <= FONT_PX_MIN;
    bigger.disabled = fontSize >= FONT_PX_MAX;
    saveFontSize(fontSize);
    scheduleFit();
  }
  smaller.addEventListener("click", () => setFontSize(fontSize - 1));
  bigger.addEventListener("click", () => setFontSize(fontSize + 1));
  jump.addEventListener("click", () => {
    term.scrollToBottom();
    updateJump();
  });

  /** Starts the stream: the terminal starts empty, as the scrollback replays what it showed. */
  function subscribe() {
    term.reset();
    subscribed = connection.send({ type: "subscribe", agentId });
  }

  return {
    root,
    term,
    /** Called once the root is in the document, so the terminal can measure itself. */
    mounted() {
      term.open(screen);
      // A tap on the terminal must not raise the phone's keyboard: there is nothing to type.
      term.textarea?.setAttribute("inputmode", "none");
      term.textarea?.setAttribute("readonly", "");
      term.onScroll(updateJump);
      term.onWriteParsed(updateJump);
      setFontSize(fontSize);
      fitScreen();
      resizes.observe(screen);
      if (connection.ready) subscribe();
    },
    connectionReady() {
      subscribe();
    },
    connectionDown() {
      subscribed = false;
    },
    receive(message) {
      if (message.agentId !== agentId || typeof message.data !== "string") return;
      if (message.type === "scrollback" && Number.isInteger(message.cols) && message.cols > 0) {
        agentCols = message.cols;
        fitScreen();
      }
      term.write(decodeBase64(message.data));
    },
    update(state) {
      const agent = findAgent(state, agentId);
      // An agent that left the list keeps its last header, and its terminal keeps its content.
      if (agent) lastKnown = agent;
      const shown = agent ?? lastKnown;
      title.textContent = shown?.taskName ?? (state.loaded ? "Unknown agent" : "Connecting…");
      // A task's agent works on its branch; a coordinator's own agent has none.
      branch.textContent = shown?.branchName ?? shown?.context ?? "";
      badges.replaceChildren(...(shown ? agentBadges(shown, "status-badge") : []));
      if (!agent && lastKnown && lastKnown.status !== "exited") badges.append(el("span", { class: "badge badge-exited" }, "no longer listed"));
      document.title = shown?.taskName ? `${shown.taskName} — Baton` : "Baton";
    },
    dispose() {
      if (subscribed) connection.send({ type: "unsubscribe", agentId });
      resizes.disconnect();
      term.dispose();
      document.title = "Baton";
    },
  };
}
