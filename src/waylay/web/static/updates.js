// The WebSocket /api/updates: what changed, as it changes; reconnected when it drops.
//
// The socket only says "there is more": the store is the truth. So a drop loses nothing the
// page cannot ask for again. Every time the socket opens (the first time too: flows may have
// come between the page's first request and the socket) "open" fires, and the page catches up
// with `/api/flows?after=LAST_ID`. Reconnection waits MIN_DELAY_MS, doubling up to
// MAX_DELAY_MS, each wait shortened by a random part so that many pages do not come back in
// step; a socket that stayed open a while starts over at the shortest wait.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
const STABLE_MS = 5_000;

export class Updates extends EventTarget {
  #socket = null;
  #attempt = 0;
  #openedAt = 0;
  #timer = 0;

  constructor(path = "/api/updates") {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.state = "connecting";
  }

  start() {
    this.#connect();
  }

  #status(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...detail } }));
  }

  #connect() {
    this.#status("connecting");
    const socket = new WebSocket(this.url);
    this.#socket = socket;
    socket.addEventListener("open", () => {
      this.#openedAt = performance.now();
      this.#status("live");
      this.dispatchEvent(new Event("open"));
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    });
    socket.addEventListener("close", () => {
      if (this.#socket !== socket) return;
      if (this.#openedAt && performance.now() - this.#openedAt > STABLE_MS) this.#attempt = 0;
      this.#openedAt = 0;
      const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.#attempt);
      const delay = Math.round(ceiling * (0.5 + Math.random() / 2));
      this.#attempt += 1;
      this.#status("reconnecting", { delay });
      this.#timer = setTimeout(() => this.#connect(), delay);
    });
  }

  /** Drop the socket now (a test, or the page going away); it reconnects by itself. */
  drop() {
    this.#socket?.close();
  }

  /** Reconnect at once instead of waiting out the delay. */
  reconnectNow() {
    if (this.state !== "reconnecting") return;
    clearTimeout(this.#timer);
    this.#connect();
  }
}
