// actix-wsc JavaScript client (protocol wsc.v1). Plain ES module, no dependencies, no build
// step: works in browsers and in Node (pass `WebSocket` from the `ws` package where there is
// no global one). Types: wsc.d.ts. Wire contract: docs/PROTOCOL.md.
import { SseTransport } from './sse.js';

/** Close codes after which the client does not reconnect (PROTOCOL.md section 6). */
export function isFinalClose(code) {
  return code === 1000 || code === 1008 || code === 4002 || (code >= 4500 && code <= 4999);
}

/** Exponential backoff with full jitter: a random delay in [0, min(max, initial * factor^n)). */
export function backoffDelay(attempt, { initialDelayMs = 250, maxDelayMs = 10000, factor = 2 } = {}, random = Math.random) {
  const cap = Math.min(maxDelayMs, initialDelayMs * Math.pow(factor, attempt));
  return Math.floor(random() * cap);
}

/** A client-side error: `code` is a wire error code (`forbidden`, `unknown_group`...) or one
 * of `timeout`, `queue_full`, `closed`, `connection_lost`, `handler_failed`. */
export class WscError extends Error {
  /** @param {string} code @param {string} message @param {object} [frame] */
  constructor(code, message, frame) {
    super(message);
    this.name = 'WscError';
    this.code = code;
    this.frame = frame;
  }
}

const CONTROL = new Set(['ack', 'ping', 'pong', 'join', 'leave', 'error']);
let instances = 0;

function randomId() {
  return Math.random().toString(36).slice(2, 10);
}

/** Turns `http(s)://` or `ws(s)://` plus a path into the URL of that endpoint. */
function endpoint(base, scheme, path) {
  const u = new URL(base);
  const secure = u.protocol === 'https:' || u.protocol === 'wss:';
  u.protocol = scheme === 'ws' ? (secure ? 'wss:' : 'ws:') : (secure ? 'https:' : 'http:');
  u.pathname = u.pathname.replace(/\/(ws|sse)?\/?$/, '') + path;
  return u;
}

/**
 * A reconnecting client for one identity. See wsc.d.ts for the options and events.
 */
export class WscClient {
  /** @param {import('./wsc').WscOptions} options */
  constructor(options) {
    if (!options || !options.url) throw new TypeError('WscClient: option `url` is required');
    if (!options.userId) throw new TypeError('WscClient: option `userId` is required');
    this.options = {
      transport: 'auto',
      autoAck: true,
      receiptTimeoutMs: 10000,
      queueLimit: 1000,
      dedupWindow: 2048,
      reconnect: {},
      ...options,
    };
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.fetch = options.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis));
    this.listeners = new Map();
    this.queue = [];
    this.pending = new Map();
    this.groups = new Set();
    this.seen = new Map();
    this.socket = null;
    this.state = 'idle';
    this.attempt = 0;
    this.wsFailed = false;
    this.clientId = options.clientId || null;
    this.welcome = null;
    this.lastEventId = null;
    this.idPrefix = `js${++instances}-${randomId()}`;
    this.counter = 0;
    this.timers = new Set();
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener. */
  off(event, fn) {
    const set = this.listeners.get(event);
    if (set) set.delete(fn);
  }

  /** Resolves with the first event of this name (and its payload). */
  once(event) {
    return new Promise((resolve) => {
      const off = this.on(event, (v) => { off(); resolve(v); });
    });
  }

  emit(event, payload) {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) {
      if (event === 'error' && this.options.logErrors !== false && typeof console !== 'undefined') {
        console.warn('[wsc]', payload && payload.message ? payload.message : payload);
      }
      return [];
    }
    const results = [];
    for (const fn of [...set]) {
      try {
        results.push(fn(payload));
      } catch (e) {
        results.push(Promise.reject(e));
      }
    }
    return results;
  }

  /** The transport in use: `ws`, `sse`, or null while disconnected. */
  get transport() {
    return this.socket ? this.socket.kind : null;
  }

  /** True while a session is open. */
  get connected() {
    return this.state === 'open';
  }

  /** Opens the session (and keeps it open). Resolves on the first `connected` event. */
  connect() {
    if (this.state === 'closed') return Promise.reject(new WscError('closed', 'client was closed'));
    const first = this.state === 'open' ? Promise.resolve(this.session) : this.once('connected');
    if (this.state === 'idle') this.open();
    return first;
  }

  /** Closes for good: no reconnect; queued frames and pending receipts are rejected. */
  close(code = 1000, reason = 'client closed') {
    const wasOpen = this.state !== 'closed';
    this.state = 'closed';
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.stopHeartbeat();
    if (this.socket) {
      const s = this.socket;
      this.socket = null;
      s.close(code, reason);
    }
    const err = new WscError('closed', 'client was closed');
    for (const item of this.queue.splice(0)) if (item.reject) item.reject(err);
    for (const [id, p] of this.pending) { clearTimeout(p.timer); this.pending.delete(id); p.reject(err); }
    if (wasOpen) this.emit('disconnected', { code, reason, willReconnect: false });
  }

  /**
   * Sends an application frame (`{to | group, content, type?, data?, require_ack?, id?}`).
   * With `require_ack: true` the promise resolves with the server's receipt
   * (`{type:'ack', id, status:'accepted'}`) or rejects (`failed` receipt, error frame,
   * timeout). Without it, the promise resolves once the frame is handed to the socket.
   * While disconnected, frames wait in a bounded queue and go out in order on reconnect.
   */
  send(frame) {
    if (!frame || typeof frame !== 'object') return Promise.reject(new TypeError('send: frame must be an object'));
    const f = { type: 'text', ...frame };
    if (!f.id) f.id = this.nextId();
    return this.enqueue(f, !!f.require_ack);
  }

  /** Joins a group; resolves with the receipt. The client rejoins after every reconnect. */
  join(group) {
    this.groups.add(group);
    return this.enqueue({ type: 'join', group, id: this.nextId() }, true);
  }

  /** Leaves a group; resolves with the receipt. */
  leave(group) {
    this.groups.delete(group);
    return this.enqueue({ type: 'leave', group, id: this.nextId() }, true);
  }

  /** Acknowledges a delivered frame (needed only with `autoAck: false`). */
  ack(frame) {
    if (!frame || !frame.id) return;
    const key = `${frame.from}\u0000${frame.id}`;
    if (this.seen.get(key) === 'handling') this.seen.set(key, 'done');
    this.write({ type: 'ack', id: frame.id, from: frame.from });
  }

  nextId() {
    return `${this.idPrefix}-${++this.counter}`;
  }

  enqueue(frame, wantsReceipt) {
    return new Promise((resolve, reject) => {
      const item = { frame, wantsReceipt, resolve, reject };
      if (this.state === 'closed') return reject(new WscError('closed', 'client was closed'));
      if (this.state === 'open' && this.queue.length === 0) return this.dispatch(item);
      if (this.queue.length >= this.options.queueLimit) {
        const err = new WscError('queue_full', `send queue full (${this.options.queueLimit} frames)`, frame);
        this.emit('error', err);
        return reject(err);
      }
      this.queue.push(item);
      this.flush();
    });
  }

  dispatch(item) {
    if (item.wantsReceipt) {
      const timer = setTimeout(() => {
        this.pending.delete(item.frame.id);
        item.reject(new WscError('timeout', `no receipt for ${item.frame.id} within ${this.options.receiptTimeoutMs} ms`, item.frame));
      }, this.options.receiptTimeoutMs);
      this.pending.set(item.frame.id, { resolve: item.resolve, reject: item.reject, timer, frame: item.frame });
      this.write(item.frame);
    } else {
      this.write(item.frame);
      item.resolve(undefined);
    }
  }

  flush() {
    while (this.state === 'open' && this.queue.length > 0) this.dispatch(this.queue.shift());
  }

  write(frame) {
    if (!this.socket || this.state !== 'open') return false;
    try {
      this.socket.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      this.emit('error', new WscError('connection_lost', `write failed: ${e.message}`, frame));
      return false;
    }
  }

  chooseTransport() {
    const t = this.options.transport;
    if (t === 'ws' || t === 'sse') return t;
    if (!this.WebSocket || (this.wsFailed && this.fetch)) return 'sse';
    return 'ws';
  }

  query() {
    const q = new URLSearchParams({ user_id: this.options.userId });
    if (this.clientId) q.set('client_id', this.clientId);
    if (this.options.userType) q.set('user_type', this.options.userType);
    if (this.options.token) q.set('token', this.options.token);
    return q;
  }

  open() {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    const kind = this.chooseTransport();
    let socket;
    try {
      if (kind === 'ws') {
        if (!this.WebSocket) throw new Error('no WebSocket implementation: pass `WebSocket` (e.g. from the `ws` package)');
        const url = endpoint(this.options.url, 'ws', '/ws');
        url.search = this.query().toString();
        socket = wrapWebSocket(new this.WebSocket(url.toString()));
      } else {
        if (!this.fetch) throw new Error('no fetch implementation for the SSE transport: pass `fetch`');
        const url = endpoint(this.options.url, 'http', '/sse');
        url.search = this.query().toString();
        if (this.lastEventId) url.searchParams.set('last_event_id', this.lastEventId);
        socket = new SseTransport(url, this.fetch, this.options.token);
      }
    } catch (e) {
      this.emit('error', e instanceof WscError ? e : new WscError('connection_lost', e.message));
      return this.scheduleReconnect(1006, e.message, false);
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      if (kind === 'ws') this.wsOpened = true;
    };
    socket.onmessage = (text) => { if (this.socket === socket) this.onText(text); };
    socket.onactivity = () => { this.lastHeard = Date.now(); };
    socket.oneventid = (id) => { this.lastEventId = id; };
    socket.onclose = (code, reason) => {
      if (this.socket !== socket) return;
      this.socket = null;
      // Auto: a WebSocket that never opened on this client (blocked by a proxy, say) makes
      // the next attempt SSE; an SSE attempt that fails too sends the next one back to WS.
      if (this.options.transport === 'auto' && !opened) {
        if (kind === 'ws' && !this.wsOpened) this.wsFailed = true;
        else if (kind === 'sse') this.wsFailed = false;
      }
      this.onClose(code, reason);
    };
  }

  onText(text) {
    this.lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (e) {
      this.emit('error', new WscError('invalid_json', `server sent invalid JSON: ${e.message}`));
      return;
    }
    if (this.state === 'connecting') {
      if (frame.type === 'system' && frame.data && frame.data.event === 'connected') return this.onWelcome(frame);
    }
    switch (frame.type) {
      case 'pong':
      case 'ping':
        if (frame.type === 'ping') this.write({ type: 'pong' });
        return;
      case 'ack':
        return this.onReceipt(frame);
      case 'error':
        return this.onErrorFrame(frame);
      default:
        return this.onMessage(frame);
    }
  }

  onWelcome(frame) {
    const d = frame.data;
    this.welcome = frame;
    this.clientId = d.client_id || this.clientId;
    this.state = 'open';
    this.attempt = 0;
    this.startHeartbeat(d);
    for (const g of this.groups) {
      this.enqueueFront({ type: 'join', group: g, id: this.nextId() });
    }
    this.session = { clientId: d.client_id, userId: d.user_id, transport: this.socket.kind, welcome: frame };
    this.emit('connected', this.session);
    this.flush();
  }

  /** Rejoins go out before queued frames; their failures surface as `error` events. */
  enqueueFront(frame) {
    this.queue.unshift({
      frame,
      wantsReceipt: true,
      resolve: () => {},
      reject: (e) => this.emit('error', new WscError(e.code || 'rejoin_failed', `rejoin ${frame.group}: ${e.message}`, frame)),
    });
  }

  onReceipt(frame) {
    const p = this.pending.get(frame.id);
    if (!p) return;
    this.pending.delete(frame.id);
    clearTimeout(p.timer);
    if (frame.status === 'failed') {
      const e = frame.error || {};
      p.reject(new WscError(e.code || 'failed', e.message || 'the server refused the frame', frame));
    } else {
      p.resolve(frame);
    }
  }

  onErrorFrame(frame) {
    const e = frame.error || {};
    const err = new WscError(e.code || 'unknown', e.message || 'error frame', frame);
    const p = frame.id ? this.pending.get(frame.id) : null;
    if (p) {
      this.pending.delete(frame.id);
      clearTimeout(p.timer);
      p.reject(err);
    } else {
      this.emit('error', err);
    }
  }

  onMessage(frame) {
    const key = `${frame.from}\u0000${frame.id}`;
    const seen = this.seen.get(key);
    if (seen !== undefined) {
      // A resend of something already handled: the first ack may have been lost.
      if (seen === 'done' && frame.require_ack) this.write({ type: 'ack', id: frame.id, from: frame.from });
      return;
    }
    this.seen.set(key, 'handling');
    if (this.seen.size > this.options.dedupWindow) this.seen.delete(this.seen.keys().next().value);
    const results = this.emit('message', frame);
    if (!frame.require_ack || !this.options.autoAck) {
      if (!frame.require_ack) this.seen.set(key, 'done');
      Promise.all(results).catch((e) => this.emit('error', new WscError('handler_failed', `message handler failed: ${e && e.message}`, frame)));
      return;
    }
    Promise.all(results).then(
      () => {
        this.seen.set(key, 'done');
        this.write({ type: 'ack', id: frame.id, from: frame.from });
      },
      (e) => {
        // Not acked: the server resends it, so forget it was seen.
        this.seen.delete(key);
        this.emit('error', new WscError('handler_failed', `message handler failed, not acked: ${e && e.message}`, frame));
      },
    );
  }

  startHeartbeat(welcomeData) {
    this.stopHeartbeat();
    const every = this.options.pingIntervalMs || welcomeData.heartbeat_interval_ms || 25000;
    const silent = this.options.serverTimeoutMs || welcomeData.client_timeout_ms || 60000;
    this.lastHeard = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > silent) {
        this.emit('error', new WscError('timeout', `server silent for over ${silent} ms`));
        const s = this.socket;
        if (s) {
          this.socket = null;
          s.close(4001, 'server timeout');
          this.onClose(4001, 'server timeout');
        }
        return;
      }
      this.write({ type: 'ping' });
    }, Math.max(10, Math.min(every, Math.floor(silent / 2))));
  }

  stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  onClose(code, reason) {
    this.stopHeartbeat();
    if (this.state === 'closed') return;
    // Written but unconfirmed: the server may or may not have taken them.
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new WscError('connection_lost', `connection closed (${code}) before the receipt for ${id}`, p.frame));
    }
    const final = isFinalClose(code);
    this.scheduleReconnect(code, reason, !final);
  }

  scheduleReconnect(code, reason, willReconnect) {
    const max = this.options.reconnect.maxAttempts ?? Infinity;
    if (willReconnect && this.attempt >= max) willReconnect = false;
    if (!willReconnect) {
      this.close(code, reason);
      return;
    }
    this.state = 'reconnecting';
    const delayMs = backoffDelay(this.attempt++, this.options.reconnect);
    this.emit('disconnected', { code, reason, willReconnect: true, delayMs });
    const t = setTimeout(() => { this.timers.delete(t); this.open(); }, delayMs);
    this.timers.add(t);
  }
}

/** Adapts a WebSocket (browser or `ws`) to the transport shape the client uses. */
function wrapWebSocket(ws) {
  const t = {
    kind: 'ws',
    onopen: null, onmessage: null, onclose: null, onactivity: null, oneventid: null,
    send: (text) => ws.send(text),
    close: (code, reason) => {
      try { ws.close(code, reason); } catch (e) { ws.close(); }
    },
  };
  let closed = false;
  ws.onopen = () => t.onopen && t.onopen();
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') t.onmessage(ev.data);
    else t.onmessage(String(ev.data));
  };
  ws.onclose = (ev) => {
    if (closed) return;
    closed = true;
    t.onclose(ev.code || 1006, ev.reason || '');
  };
  ws.onerror = () => {};
  return t;
}
