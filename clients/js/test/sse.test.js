// The SSE transport of the JS client against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { WscClient } from '../wsc.js';
import { startServer, until, within, http, rawSocket } from './harness.js';

test('an SSE-only client is online, gets p2p, group and broadcast frames, sends and acks', async () => {
  const server = await startServer();
  const s = new WscClient({ url: server.url, userId: 'sam', transport: 'sse' });
  const got = [];
  s.on('message', (f) => got.push(f));
  const hello = await within(s.connect(), 'sse connected');
  assert.equal(s.transport, 'sse');
  assert.equal(hello.welcome.data.protocol, 'wsc.v1');
  const w = new WscClient({ url: server.url, userId: 'wes', WebSocket });
  await within(w.connect(), 'ws connected');
  const online = await http(server.url, 'GET', '/api/online');
  assert.equal(online.body.count, 2);

  assert.equal((await s.join('room')).status, 'accepted');
  await w.join('room');
  const p2p = await w.send({ to: 'sam', content: 'p2p', require_ack: true });
  assert.equal(p2p.status, 'accepted');
  await w.send({ group: 'room', content: 'group' });
  const b = await http(server.url, 'POST', '/api/send', { broadcast: true, content: 'broadcast', require_ack: true });
  assert.equal(b.status, 200);
  await until(() => got.length >= 3, 'three frames over SSE');
  assert.deepEqual(got.map((f) => f.content), ['p2p', 'group', 'broadcast']);
  // The auto-ack went back over POST: the tracked broadcast is acked by sam.
  await until(async () => {
    const r = await http(server.url, 'GET', `/api/messages/${b.body.id}`);
    return r.body.recipients.find((x) => x.user_id === 'sam')?.state === 'acked';
  }, 'sam acked the broadcast');

  const atW = w.once('message');
  const receipt = await s.send({ to: 'wes', content: 'from sse', require_ack: true });
  assert.equal(receipt.status, 'accepted');
  assert.deepEqual([(await within(atW, 'wes got it')).from, 'sam'], ['sam', 'sam']);
  s.close();
  w.close();
  await until(async () => (await http(server.url, 'GET', '/api/online')).body.count === 0, 'both offline');
  await server.stop();
});

test('auto transport falls back to SSE when the WebSocket cannot open', async () => {
  const server = await startServer();
  class Blocked {
    constructor() { setTimeout(() => this.onclose && this.onclose({ code: 1006, reason: 'blocked' }), 5); }
    send() { throw new Error('blocked'); }
    close() {}
  }
  const c = new WscClient({ url: server.url, userId: 'ursula', WebSocket: Blocked, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
  await within(c.connect(), 'connected through the fallback');
  assert.equal(c.transport, 'sse');
  const got = c.once('message');
  await http(server.url, 'POST', '/api/send', { to: 'ursula', content: 'via sse' });
  assert.equal((await within(got, 'frame')).content, 'via sse');
  c.close();
  await server.stop();
});

test('a user may mix transports: a frame to the user reaches the WS and the SSE session', async () => {
  const server = await startServer();
  const s = new WscClient({ url: server.url, userId: 'mix', transport: 'sse' });
  const raw = rawSocket(server.url, 'user_id=mix');
  await raw.opened();
  await within(s.connect(), 'sse connected');
  const got = s.once('message');
  await http(server.url, 'POST', '/api/send', { to: 'mix', content: 'both' });
  assert.equal((await within(got, 'sse frame')).content, 'both');
  await raw.waitFor((f) => f.content === 'both', 'ws frame');
  s.close();
  raw.close();
  await server.stop();
});
