// Types for actix-wsc-client (wsc.js). Wire contract: docs/PROTOCOL.md (wsc.v1).

/** A frame on the wire (PROTOCOL.md section 2). */
export interface Frame {
  id?: string;
  type?: string;
  from?: string;
  to?: string;
  group?: string;
  content?: string;
  data?: Record<string, unknown>;
  create_at?: string;
  seq_no?: number;
  priority?: 'low' | 'normal' | 'high' | 'urgent' | 'critical';
  reply_to_msg_id?: string;
  require_ack?: boolean;
  source?: 'live' | 'offline';
  [field: string]: unknown;
}

/** The server's receipt for a `require_ack` frame, a join or a leave. */
export interface Receipt {
  type: 'ack';
  id: string;
  status: 'accepted';
}

/** Reconnect backoff: a random delay in [0, min(maxDelayMs, initialDelayMs * factor^n)). */
export interface ReconnectOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Attempts in a row before giving up (default: unlimited). */
  maxAttempts?: number;
}

export interface WscOptions {
  /** Server origin: `http(s)://host:port` or `ws(s)://host:port`. */
  url: string;
  userId: string;
  /** Names this session; the server assigns one when absent and the client reuses it. */
  clientId?: string;
  userType?: 'customer' | 'agent' | 'admin' | 'bot' | 'vip' | 'visitor' | 'system';
  /** Sent as `token` (WebSocket) or `Authorization: Bearer` (SSE). */
  token?: string;
  /** `auto` (default): WebSocket, falling back to SSE when a WebSocket cannot open. */
  transport?: 'auto' | 'ws' | 'sse';
  /** WebSocket implementation; defaults to `globalThis.WebSocket` (use `ws` in Node). */
  WebSocket?: unknown;
  /** fetch implementation for SSE; defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Ack `require_ack` frames once every `message` handler has returned (or its promise resolved). Default true. */
  autoAck?: boolean;
  /** How long send()/join()/leave() wait for a receipt. Default 10000. */
  receiptTimeoutMs?: number;
  /** Frames held while disconnected. Default 1000. */
  queueLimit?: number;
  /** (from, id) pairs remembered to drop duplicates. Default 2048. */
  dedupWindow?: number;
  /** Client ping interval; default the welcome's `heartbeat_interval_ms`. */
  pingIntervalMs?: number;
  /** Silence after which the server counts as gone (close 4001, reconnect); default the welcome's `client_timeout_ms`. */
  serverTimeoutMs?: number;
  reconnect?: ReconnectOptions;
  /** Log `error` events to the console when nobody listens. Default true. */
  logErrors?: boolean;
}

export interface ConnectedEvent {
  clientId: string;
  userId: string;
  transport: 'ws' | 'sse';
  /** The welcome frame (PROTOCOL.md section 1). */
  welcome: Frame;
}

export interface DisconnectedEvent {
  code: number;
  reason: string;
  willReconnect: boolean;
  /** The delay before the next attempt, when reconnecting. */
  delayMs?: number;
}

export interface WscEvents {
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  message: Frame;
  error: WscError;
}

export declare class WscError extends Error {
  /** A wire error code (`forbidden`, `unknown_group`, `rate_limited`...) or `timeout`,
   * `queue_full`, `closed`, `connection_lost`, `handler_failed`. */
  code: string;
  frame?: Frame;
  constructor(code: string, message: string, frame?: Frame);
}

export declare class WscClient {
  constructor(options: WscOptions);
  readonly options: WscOptions;
  /** `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
  readonly state: 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
  readonly connected: boolean;
  readonly transport: 'ws' | 'sse' | null;
  /** The session's client id once known. */
  readonly clientId: string | null;
  /** Handlers of `message` may return a promise: the auto-ack waits for it. */
  on<K extends keyof WscEvents>(event: K, fn: (payload: WscEvents[K]) => unknown): () => void;
  off<K extends keyof WscEvents>(event: K, fn: (payload: WscEvents[K]) => unknown): void;
  once<K extends keyof WscEvents>(event: K): Promise<WscEvents[K]>;
  connect(): Promise<ConnectedEvent>;
  close(code?: number, reason?: string): void;
  /** Resolves with the receipt when `require_ack` is set, else once written. */
  send(frame: Frame & { require_ack: true }): Promise<Receipt>;
  send(frame: Frame): Promise<Receipt | undefined>;
  join(group: string): Promise<Receipt>;
  leave(group: string): Promise<Receipt>;
  ack(frame: Frame): void;
}

export declare function isFinalClose(code: number): boolean;
export declare function backoffDelay(attempt: number, options?: ReconnectOptions, random?: () => number): number;
