// The page's one WebSocket to the daemon: authenticates with the mobile token, hands every
// message on, and reconnects with backoff when the connection drops, or when it goes silent:
// the daemon sends a heartbeat every HEARTBEAT_MS, so a connection that says nothing for
// SILENCE_MS_MAX died without a word (a network gone, a phone that slept) and is made again.
//
// Invariants: the page is read-only, so `send` refuses anything but `auth`, `subscribe` and
// `unsubscribe` (the daemon would close a phone that writes with 4003); a token the daemon refused
// (4001) or a forbidden close (4003) ends the connection for good, since trying again cannot help;
// every other close is retried, and the page is never reloaded.

/** First wait before reconnecting: short, since most drops are a daemon restart. */
export const RECONNECT_MS_MIN = 500;
/** Longest wait between attempts, so the page comes back soon after the daemon does. */
export const RECONNECT_MS_MAX = 5000;

/** How often the daemon sends a heartbeat (its `WS_HEARTBEAT_MS`). */
export const HEARTBEAT_MS = 15_000;
/** Silence after which the connection is given up: two heartbeats missed, and some slack. */
export const SILENCE_MS_MAX = 2 * HEARTBEAT_MS + 5_000;
/** Silence after which a page coming back to the screen (or online) makes a new connection at once. */
const WAKE_SILENCE_MS_MAX = HEARTBEAT_MS + 5_000;
/** What the page calls a connection it gave up: closed without a word from either side. */
const CLOSE_SILENT = 1006;

/** The close codes after which the page stops trying. */
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_FORBIDDEN = 4003;

/** What the page may ever send. */
const SENDABLE_TYPES = new Set(["auth", "subscribe", "unsubscribe"]);

export class Connection {
  /**
   * @param {string} token the mobile token
   * @param {object} handlers
   *   onMessage(message): a server message, parsed;
   *   onReady(): the daemon answered the auth, so the token was accepted;
   *   onDown(): the connection dropped and a new attempt is scheduled;
   *   onRefused(code): the daemon closed with 4001 or 4003; nothing more will happen;
   *   onSent(type): a message went out.
   */
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.ready = false;
    this.delayMs = RECONNECT_MS_MIN;
    this.retryTimer = null;
    this.silenceTimer = null;
    this.lastHeard = 0;
    // A phone that wakes up or gets its network back should not sit out the rest of a backoff,
    // nor wait for the silence to tell it that its connection died while it slept.
    const retryNow = () => {
      if (document.visibilityState !== "visible") return;
      if (this.retryTimer !== null) this.open();
      else if (this.socket && Date.now() - this.lastHeard > WAKE_SILENCE_MS_MAX) {
        this.giveUp(this.socket);
        this.open();
      }
    };
    document.addEventListener("visibilitychange", retryNow);
    window.addEventListener("online", retryNow);
  }

  /** Opens the connection (again). */
  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    socket.onopen = () => this.send({ type: "auth", token: this.token });
    socket.onmessage = (event) => this.receive(event.data);
    // An error is always followed by a close, which does the work.
    socket.onclose = (event) => this.closed(socket, event.code);
    this.heard();
  }

  /** Something came (or the connection was opened): the silence starts again. */
  heard() {
    this.lastHeard = Date.now();
    clearTimeout(this.silenceTimer);
    const socket = this.socket;
    this.silenceTimer = setTimeout(() => this.giveUp(socket), SILENCE_MS_MAX);
  }

  /**
   * Gives up a connection that went silent: it is closed, and treated as closed at once, since
   * the browser may take minutes to notice that a connection without a network is gone.
   */
  giveUp(socket) {
    if (socket !== this.socket) return;
    socket.onmessage = null;
    socket.onclose = null;
    socket.close();
    this.closed(socket, CLOSE_SILENT);
  }

  /** Sends a message, if the connection is open; the page never queues messages for later. */
  send(message) {
    if (!SENDABLE_TYPES.has(message.type)) throw new Error(`the phone page may not send ${message.type}`);
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    this.handlers.onSent(message.type);
    return true;
  }

  receive(data) {
    this.heard();
    if (typeof data !== "string") return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message.type !== "string") return;
    // The daemon says nothing before a successful auth, so its first message is the answer.
    if (!this.ready) {
      this.ready = true;
      this.delayMs = RECONNECT_MS_MIN;
      this.handlers.onReady();
    }
    this.handlers.onMessage(message);
  }

  closed(socket, code) {
    // A close of a socket already replaced says nothing about the current one.
    if (socket !== this.socket) return;
    clearTimeout(this.silenceTimer);
    this.socket = null;
    this.ready = false;
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN) {
      this.handlers.onRefused(code);
      return;
    }
    this.retryTimer = setTimeout(() => this.open(), this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, RECONNECT_MS_MAX);
    this.handlers.onDown();
  }
}
