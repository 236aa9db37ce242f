// The pages' `/live/{room}` socket: JSON in and out, and reconnection with jittered exponential
// back-off until a snapshot (or a resume) says the room is live again. A 1008 close (the room
// or the user refused, the token expired) stops it: retrying cannot help.

const BACKOFF_MIN_MS = 500;

export class LiveSocket {
  /// `url()` is asked before every attempt (so it can resume `?since=`); the callbacks:
  /// `message(msg)` each parsed message; `connecting(attempt)` before an attempt (0 = the
  /// first); `closed(event)` whenever an open or opening socket goes; then either
  /// `retrying(delayMs)` or `refused(reason)`.
  constructor(url, { message, connecting = () => {}, closed = () => {}, retrying = () => {}, refused = () => {}, maxMs = 30_000 }) {
    this.url = url;
    this.on = { message, connecting, closed, retrying, refused };
    this.maxMs = maxMs;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    // Back online: do not wait for the back-off.
    globalThis.addEventListener?.('online', () => this.now());
  }

  /// Connects, unless connected, connecting or stopped.
  now() {
    if (this.ws || this.stopped) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.on.connecting(this.attempt);
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.on.message(msg);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.on.closed(e);
      if (e.code === 1008) {
        this.stopped = true;
        this.on.refused(e.reason || 'policy violation');
        return;
      }
      const delay = Math.min(this.maxMs, BACKOFF_MIN_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.on.retrying(delay);
      this.timer = setTimeout(() => this.now(), delay);
    };
  }

  /// The room answered (a snapshot or `resumed`): the next loss starts the back-off afresh.
  live() {
    this.attempt = 0;
  }

  /// Stops for good (the page cannot go on: no user, signed out, …).
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  get open() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /// Sends `msg` as JSON; false when the socket is not open.
  send(msg) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }
}
