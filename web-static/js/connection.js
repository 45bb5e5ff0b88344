// connection.js: the medic.v1 WebSocket — sign-in, commands matched by id, reconnect with backoff, lossless resume.

/** Close code the server uses when the token is bad or hello timed out (protocol README §6). */
export const CLOSE_UNAUTHENTICATED = 4001;

/**
 * Tracks, per topic, the highest `seq` processed, and decides whether an event is new.
 *
 * The server guarantees a dense, gap-free sequence per topic (`since: N` yields N+1, N+2, …),
 * so after a reconnect we resubscribe with `since` = the last processed seq and drop anything
 * at or below it: nothing is lost and nothing is shown twice, even if a replay overlaps
 * events that were already in flight on the old socket. Kept separate from the socket so it
 * can be unit-checked.
 */
export class SeqTracker {
  constructor() { /** @type {Map<string, number>} */ this.last = new Map(); }

  /** @returns {'new'|'duplicate'|'gap'} */
  check(topic, seq) {
    const last = this.last.get(topic) ?? 0;
    if (seq <= last) return 'duplicate';
    if (seq > last + 1) return 'gap';
    return 'new';
  }

  accept(topic, seq) { this.last.set(topic, seq); }
  since(topic) { return this.last.get(topic) ?? 0; }
  reset(topic) { this.last.set(topic, 0); }
  forget(topic) { this.last.delete(topic); }
}

/**
 * Reconnect delays: exponential (base · 2^n), capped, with ±20 % jitter so that many pages
 * dropped by one server restart do not all come back in the same millisecond.
 */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 30000, random = Math.random } = {}) {
  const raw = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/** A command the server refused (`error`), or one that could not be sent. */
export class CommandError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

/**
 * One logical connection to Medic that survives socket drops.
 *
 * Callbacks (all optional):
 * - `onState({state, retryAt?, code?, reason?})`: `connecting` | `live` | `reconnecting` | `offline` | `unauthorized`
 * - `onWelcome(welcome)`
 * - `onSubscribed(topic, ack)`: a subscription was acknowledged (`ack.head`: the topic's head then)
 * - `onEvent(event)`: each event exactly once per topic, in seq order; ephemeral events (no seq) as they come
 * - `onPresence(presence)`
 * - `onTopicReset(topic)`: the server no longer knows our position (store reset); the topic replays from 0
 * - `onTopicError(topic, error)`: a subscription was refused (e.g. not_found)
 */
export class Connection {
  constructor({ url, token, WebSocketImpl = globalThis.WebSocket, callbacks = {}, backoff = {} }) {
    this.url = url;
    this.token = token;
    this.WebSocketImpl = WebSocketImpl;
    this.cb = callbacks;
    this.backoff = backoff;
    this.seqs = new SeqTracker();
    /** Topics we want, in subscription order; resubscribed after every reconnect. */
    this.topics = new Set();
    /** Commands awaiting ack/error, by id: {msg, resolve, reject, resend}. */
    this.pending = new Map();
    this.nextId = 1;
    // A per-page prefix keeps our ids distinct from other tabs of the same principal: the server
    // scopes idempotency per principal, and two tabs must not collide on "w1".
    this.idPrefix = 'w' + Math.random().toString(36).slice(2, 8) + '-';
    this.state = 'idle';
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
    this.resyncing = new Set();
  }

  /** Opens the socket (idempotent while open or connecting). */
  start() {
    this.stopped = false;
    if (this.socket) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.setState({ state: 'connecting' });
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url, 'medic.v1');
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    this.authenticated = false;
    ws.onopen = () => this.send({ type: 'hello', token: this.token });
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => this.closed(ws, e.code, e.reason);
    ws.onerror = () => { /* a close event always follows; handled there */ };
  }

  /** Closes for good (sign-out). Pending commands fail. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.socket;
    this.socket = null;
    if (ws) { ws.onclose = null; ws.close(1000); }
    for (const [id, p] of this.pending) { p.reject(new CommandError('disconnected', 'Signed out.')); this.pending.delete(id); }
    this.setState({ state: 'offline' });
  }

  /** Skips the remaining backoff wait (the "Retry now" button, or the browser coming back online). */
  retryNow() {
    if (this.stopped || this.socket) return;
    this.start();
  }

  /** Adds a topic; replays from the last seq we processed (0 = whole history). */
  subscribe(topic) {
    this.topics.add(topic);
    if (this.authenticated) this.sendSubscribe(topic);
  }

  unsubscribe(topic) {
    if (!this.topics.delete(topic)) return;
    this.seqs.forget(topic);
    if (this.authenticated) this.command({ type: 'unsubscribe', topic }, { resend: false }).catch(() => {});
  }

  /**
   * Sends a command and resolves with its ack (rejects with CommandError on error).
   *
   * State-changing commands are resent after a reconnect with the same id: the server applies
   * a repeated id only once and answers with the first ack (README §3 "Command ids are
   * idempotent"), so a command whose ack was lost with the socket is neither lost nor doubled.
   */
  command(msg, { resend = true } = {}) {
    const id = this.idPrefix + (this.nextId++);
    const full = { ...msg, id };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { msg: full, resolve, reject, resend });
      if (this.authenticated) this.send(full);
      else if (!resend) { this.pending.delete(id); reject(new CommandError('offline', 'Not connected.')); }
    });
  }

  // ---- internals ----

  send(obj) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(obj));
  }

  sendSubscribe(topic) {
    const since = this.seqs.since(topic);
    this.command({ type: 'subscribe', topic, since }, { resend: false }).then(
      (ack) => { this.resyncing.delete(topic); this.cb.onSubscribed?.(topic, ack); },
      (err) => {
        this.resyncing.delete(topic);
        if (!this.topics.has(topic)) return;
        if (err.code === 'since_beyond_head') {
          // The server's store was reset below our position: start the topic over.
          this.seqs.reset(topic);
          this.cb.onTopicReset?.(topic);
          this.sendSubscribe(topic);
        } else if (err.code !== 'disconnected' && err.code !== 'offline') {
          this.cb.onTopicError?.(topic, err);
        }
      });
  }

  receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    switch (msg.type) {
      case 'welcome':
        this.authenticated = true;
        this.attempt = 0;
        this.setState({ state: 'live' });
        this.cb.onWelcome?.(msg);
        for (const topic of this.topics) this.sendSubscribe(topic);
        // Resend commands that were in flight when the previous socket died (same ids).
        for (const p of this.pending.values()) if (p.resend) this.send(p.msg);
        break;
      case 'ack':
      case 'error': {
        const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
        if (!p) { if (msg.type === 'error') this.cb.onServerError?.(msg); return; }
        this.pending.delete(msg.id);
        if (msg.type === 'ack') p.resolve(msg);
        else p.reject(new CommandError(msg.code, msg.message));
        break;
      }
      case 'event':
        this.handleEvent(msg);
        break;
      case 'presence':
        if (this.topics.has(msg.topic)) this.cb.onPresence?.(msg);
        break;
      default:
        // Unknown message types are ignored (README: names are fixed, more may be added).
        break;
    }
  }

  handleEvent(ev) {
    if (!this.topics.has(ev.topic)) return;
    if (typeof ev.seq !== 'number') { this.cb.onEvent?.(ev); return; } // ephemeral (fix_delta)
    const verdict = this.seqs.check(ev.topic, ev.seq);
    if (verdict === 'duplicate') return;
    if (verdict === 'gap') {
      // Cannot happen with a conforming server; if it does, do not show a hole: drop it and
      // ask again from the last seq we have (once until that subscription is answered).
      if (!this.resyncing.has(ev.topic)) { this.resyncing.add(ev.topic); this.sendSubscribe(ev.topic); }
      return;
    }
    this.seqs.accept(ev.topic, ev.seq);
    this.cb.onEvent?.(ev);
  }

  closed(ws, code, reason) {
    if (ws !== this.socket) return;
    this.socket = null;
    this.authenticated = false;
    this.resyncing.clear();
    // Subscriptions and non-resendable commands die with the socket; resendable ones wait.
    for (const [id, p] of this.pending) {
      if (!p.resend) { this.pending.delete(id); p.reject(new CommandError('disconnected', 'Connection lost.')); }
    }
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHENTICATED) {
      this.stopped = true;
      for (const [id, p] of this.pending) { this.pending.delete(id); p.reject(new CommandError('unauthenticated', 'Not signed in.')); }
      this.setState({ state: 'unauthorized', code, reason });
      return;
    }
    this.scheduleReconnect(code, reason);
  }

  scheduleReconnect(code, reason) {
    const online = globalThis.navigator?.onLine !== false;
    const delay = backoffDelay(this.attempt++, this.backoff);
    const retryAt = Date.now() + delay;
    this.setState({ state: online ? 'reconnecting' : 'offline', retryAt, code, reason });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.start(); }, delay);
  }

  setState(s) {
    this.state = s.state;
    this.cb.onState?.(s);
  }
}
