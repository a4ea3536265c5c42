// Test harness: the real wsc-server binary on 127.0.0.1, and bounded waits.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

/** The server binary: WSC_SERVER_BIN (set by tests/js_client.rs), else target/debug. */
export function serverBin() {
  const bin = process.env.WSC_SERVER_BIN ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'wsc-server');
  if (!existsSync(bin)) {
    throw new Error(`wsc-server binary not found at ${bin}: run \`cargo build --bin wsc-server\` or set WSC_SERVER_BIN`);
  }
  return bin;
}

export const WAIT_MS = 15000;

/** Servers started and not yet exited: killed when this process exits (a failed test that
 * never reached its `stop()` leaves none running behind it). */
const running = new Set();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

/** Starts the server (`--bind 127.0.0.1:PORT`, port 0 by default) and waits for `listening on`. */
export function startServer({ port = 0, env = {}, args = [] } = {}) {
  const child = spawn(serverBin(), ['--bind', `127.0.0.1:${port}`, ...args], {
    env: { ...process.env, RUST_LOG: 'info', WSC_STORE: 'memory', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  const log = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no \`listening on\` line within ${WAIT_MS} ms:\n${log.join('')}`)); }, WAIT_MS);
    let buf = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log.push(chunk);
      buf += chunk;
      const m = buf.match(/listening on (\S+)/);
      if (m && timer) {
        clearTimeout(timer);
        const addr = m[1];
        resolve({
          addr,
          port: Number(addr.split(':').pop()),
          url: `http://${addr}`,
          child,
          log,
          stop: () => stopServer(child),
        });
        buf = '';
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) before listening:\n${log.join('')}`)); });
  });
}

/** SIGTERM, then waits (bounded) for the exit. */
export function stopServer(child) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('server did not exit after SIGTERM')); }, WAIT_MS);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
    child.kill('SIGTERM');
  });
}

/** Resolves with the first value `fn` returns that is truthy, polling; rejects after `ms`. */
export async function until(fn, what, ms = WAIT_MS, every = 20) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Rejects if `promise` does not settle within `ms`. */
export function within(promise, what, ms = WAIT_MS) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

/** JSON over HTTP. */
export async function http(base, method, p, body, headers = {}) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

/** A raw WebSocket that records every frame it receives, for asserting on the wire. */
export function rawSocket(base, query) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?${query}`);
  const frames = [];
  const waiters = [];
  let closeCode = null;
  ws.on('message', (data) => {
    const f = JSON.parse(String(data));
    frames.push(f);
    for (const w of [...waiters]) w();
  });
  ws.on('close', (code) => { closeCode = code; for (const w of [...waiters]) w(); });
  const api = {
    ws,
    frames,
    get closeCode() { return closeCode; },
    send: (f) => ws.send(JSON.stringify(f)),
    opened: () => within(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), `raw socket ${query} open`),
    /** Waits for a frame matching `pred` (already received or future). */
    waitFor(pred, what) {
      return within(new Promise((resolve) => {
        const check = () => {
          const f = frames.find(pred);
          if (f) { waiters.splice(waiters.indexOf(check), 1); resolve(f); }
        };
        waiters.push(check);
        check();
      }), what);
    },
    close: () => ws.close(),
  };
  return api;
}
