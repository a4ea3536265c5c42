// Timeouts against a stand-in server that welcomes and then says nothing: the real server
// always answers, so silence has to be staged.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { WscClient } from '../wsc.js';
import { within } from './harness.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
let connections = 0;
wss.on('connection', (ws) => {
  connections += 1;
  ws.send(JSON.stringify({
    id: `w${connections}`, type: 'system', from: 'system', content: 'connected',
    data: { event: 'connected', client_id: `c${connections}`, user_id: 'u', heartbeat_interval_ms: 25000, client_timeout_ms: 60000 },
  }));
});
await new Promise((r) => wss.once('listening', r));
const url = `http://127.0.0.1:${wss.address().port}`;
after(() => wss.close());

test('a receipt that never comes rejects send() with timeout', async () => {
  const c = new WscClient({ url, userId: 'u', WebSocket, receiptTimeoutMs: 150 });
  await within(c.connect(), 'connected');
  await assert.rejects(c.send({ to: 'x', content: 'hi', require_ack: true }), (e) => e.code === 'timeout');
  c.close();
});

test('a silent server is timed out (4001) and the client reconnects', async () => {
  const c = new WscClient({ url, userId: 'u', WebSocket, pingIntervalMs: 50, serverTimeoutMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
  await within(c.connect(), 'connected');
  const before = connections;
  const d = await within(c.once('disconnected'), 'disconnected by the silence');
  assert.deepEqual([d.code, d.willReconnect], [4001, true]);
  await within(c.once('connected'), 'reconnected');
  assert.ok(connections > before);
  c.close();
});

test('a full queue rejects with queue_full', async () => {
  const c = new WscClient({ url: 'http://127.0.0.1:9', userId: 'u', WebSocket, queueLimit: 2, logErrors: false, transport: 'ws' });
  const a = c.send({ to: 'x', content: '1' });
  const b = c.send({ to: 'x', content: '2' });
  await assert.rejects(c.send({ to: 'x', content: '3' }), (e) => e.code === 'queue_full');
  c.close();
  await assert.rejects(a, (e) => e.code === 'closed');
  await assert.rejects(b, (e) => e.code === 'closed');
});
