// The JS client against the real wsc-server binary over 127.0.0.1.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { WscClient, isFinalClose, backoffDelay } from '../wsc.js';
import { startServer, until, within, http, rawSocket } from './harness.js';

const clients = [];
function client(server, opts) {
  const c = new WscClient({ url: server.url, WebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...opts });
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) c.close(); });

describe('close codes and backoff', () => {
  test('the final codes of PROTOCOL.md section 6 stop reconnecting, the rest do not', () => {
    for (const code of [1000, 1008, 4002, 4500, 4700, 4999]) assert.equal(isFinalClose(code), true, `${code}`);
    for (const code of [1001, 1006, 1009, 1011, 4000, 4001, 4499]) assert.equal(isFinalClose(code), false, `${code}`);
  });
  test('full jitter stays in [0, min(max, initial * factor^n))', () => {
    const opts = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2 };
    assert.equal(backoffDelay(3, opts, () => 0), 0);
    assert.equal(backoffDelay(0, opts, () => 0.999), 99);
    assert.equal(backoffDelay(3, opts, () => 0.999), 799);
    assert.equal(backoffDelay(10, opts, () => 0.999), 999);
  });
});

describe('against wsc-server', () => {
  test('reconnects after a server restart; the queue is sent once and in order; groups are rejoined', async () => {
    let server = await startServer();
    const alice = client(server, { userId: 'alice' });
    await within(alice.connect(), 'alice connected');
    const joined = await alice.join('room-1');
    assert.equal(joined.status, 'accepted');

    const down = alice.once('disconnected');
    await server.stop();
    const d = await within(down, 'alice disconnected');
    assert.equal(d.code, 1001);
    assert.equal(d.willReconnect, true);
    // Sent while the server is down: queued, in order.
    const receipts = ['q1', 'q2', 'q3'].map((content, i) => alice.send({ id: `q-${i + 1}`, to: 'bob', content, require_ack: true }));

    // Listened for before the restart: alice (backoff up to 400 ms) may be back before bob.
    const back = alice.once('connected');
    server = await startServer({ port: server.port });
    const bob = rawSocket(server.url, 'user_id=bob');
    await bob.opened();
    const reconnected = await within(back, 'alice reconnected');
    assert.equal(reconnected.transport, 'ws');
    for (const r of await within(Promise.all(receipts), 'receipts of the queued frames')) assert.equal(r.status, 'accepted');
    // A marker after the queue: anything between the queue and it would be a resend.
    await alice.send({ id: 'end', to: 'bob', content: 'end' });
    await bob.waitFor((f) => f.content === 'end', 'the marker at bob');
    const contents = bob.frames.filter((f) => f.from === 'alice').map((f) => f.content);
    assert.deepEqual(contents, ['q1', 'q2', 'q3', 'end']);

    // Rejoined: a group send reaches alice on the new server.
    const got = new Promise((resolve) => alice.on('message', (f) => { if (f.group === 'room-1') resolve(f); }));
    const sent = await http(server.url, 'POST', '/api/send', { group: 'room-1', content: 'to the room' });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal((await within(got, 'group frame after rejoin')).content, 'to the room');
    bob.close();
    alice.close();
    await server.stop();
  });

  test('stops on 4002 (replaced by a newer session of the same client id)', async () => {
    const server = await startServer();
    const a = client(server, { userId: 'carol', clientId: 'carol-phone' });
    await within(a.connect(), 'carol connected');
    const down = a.once('disconnected');
    const newer = rawSocket(server.url, 'user_id=carol&client_id=carol-phone');
    await newer.opened();
    const d = await within(down, 'carol replaced');
    assert.deepEqual([d.code, d.willReconnect], [4002, false]);
    assert.equal(a.state, 'closed');
    // Still exactly one session: the newer one.
    const online = await http(server.url, 'GET', '/api/online');
    assert.deepEqual(online.body.users, [{ user_id: 'carol', sessions: 1 }]);
    newer.close();
    await server.stop();
  });

  test('auto-ack after the handler returns confirms a tracked send; manual ack too', async () => {
    const server = await startServer();
    const bob = client(server, { userId: 'bob' });
    let release;
    const gate = new Promise((r) => { release = r; });
    bob.on('message', () => gate);
    await within(bob.connect(), 'bob connected');
    const sent = await http(server.url, 'POST', '/api/send', { to: 'bob', content: 'tracked', require_ack: true });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const record = () => http(server.url, 'GET', `/api/messages/${sent.body.id}`).then((r) => r.body);
    await until(async () => (await record()).recipients[0].state === 'awaiting_ack', 'record awaiting the ack while the handler runs');
    assert.notEqual((await record()).status, 'acked');
    release();
    await until(async () => (await record()).status === 'acked', 'record acked after the handler returned');

    const manual = client(server, { userId: 'dave', autoAck: false });
    const frames = [];
    manual.on('message', (f) => frames.push(f));
    await within(manual.connect(), 'dave connected');
    const s2 = await http(server.url, 'POST', '/api/send', { to: 'dave', content: 'manual', require_ack: true });
    await until(() => frames.length === 1, 'dave got the frame');
    const r2 = () => http(server.url, 'GET', `/api/messages/${s2.body.id}`).then((r) => r.body.status);
    const state = await http(server.url, 'GET', `/api/messages/${s2.body.id}`);
    assert.equal(state.body.recipients[0].state, 'awaiting_ack');
    manual.ack(frames[0]);
    await until(async () => (await r2()) === 'acked', 'record acked after the manual ack');
    await server.stop();
  });

  test('drops a resend of an unacked frame (same from and id)', async () => {
    const server = await startServer({ env: { WSC_ACK_TIMEOUT_MS: '200', WSC_BASE_DELAY_MS: '50', WSC_MAX_DELAY_MS: '100' } });
    const eve = client(server, { userId: 'eve', autoAck: false });
    const seen = [];
    eve.on('message', (f) => seen.push(f));
    await within(eve.connect(), 'eve connected');
    const sent = await http(server.url, 'POST', '/api/send', { to: 'eve', content: 'once', require_ack: true });
    const record = () => http(server.url, 'GET', `/api/messages/${sent.body.id}`).then((r) => r.body);
    await until(async () => JSON.stringify(await record()).includes('"attempt":2'), 'a resend by the server');
    eve.ack(seen[0]);
    await until(async () => (await record()).status === 'acked', 'acked');
    await http(server.url, 'POST', '/api/send', { to: 'eve', content: 'marker' });
    await until(() => seen.some((f) => f.content === 'marker'), 'the marker');
    assert.deepEqual(seen.map((f) => f.content), ['once', 'marker']);
    await server.stop();
  });

  test('send() resolves with the receipt, rejects a failed one', async () => {
    const server = await startServer();
    const a = client(server, { userId: 'frank' });
    const b = client(server, { userId: 'grace' });
    const got = b.once('message');
    await within(Promise.all([a.connect(), b.connect()]), 'both connected');
    const receipt = await a.send({ id: 'r-1', to: 'grace', content: 'hello', require_ack: true });
    assert.deepEqual([receipt.type, receipt.id, receipt.status], ['ack', 'r-1', 'accepted']);
    const f = await within(got, 'grace got it');
    assert.deepEqual([f.from, f.content, f.require_ack], ['frank', 'hello', true]);
    await assert.rejects(a.leave('no-such-room').then(() => a.send({ group: 'no-such-room', content: 'x', require_ack: true })), (e) => {
      assert.equal(e.name, 'WscError');
      assert.ok(['unknown_group', 'forbidden', 'failed'].includes(e.code), e.code);
      return true;
    });
    await server.stop();
  });
});
