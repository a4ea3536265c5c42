// The dashboard: polls the HTTP API, draws the last five minutes, and drives a console of
// WscClient sessions (the same JS client applications use).
import { WscClient } from '/dashboard/wsc.js';

const $ = (id) => document.getElementById(id);
const KEY = window.WSC_API_KEY;
const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const history = [];
const clients = new Map();

async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (KEY) headers.authorization = `Bearer ${KEY}`;
  const res = await fetch(path, { ...init, headers });
  const body = await res.json().catch(() => null);
  if (res.status === 401) location.href = '/dashboard';
  return { status: res.status, body };
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function fmtUptime(s) {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

const STATUSES = ['failed', 'retrying', 'acked', 'delivered', 'sending', 'pending'];

async function poll() {
  try {
    const [stats, online, ...lists] = await Promise.all([
      api('/api/stats'), api('/api/online'),
      // Failed: up to the API's 1000 (the count and the kinds); the others: the latest few.
      ...STATUSES.map((s) => api(`/api/messages?status=${s}&limit=${s === 'failed' ? 1000 : 50}`)),
    ]);
    const s = stats.body;
    $('health-dot').className = 'dot up';
    $('meta').textContent = `node ${s.node_id} · up ${fmtUptime(s.uptime)} · ${s.total_connections} connections since start`;
    $('m-users').textContent = online.body.count;
    $('m-sessions').textContent = online.body.users.reduce((n, u) => n + u.sessions, 0);
    $('m-inflight').textContent = s.delivery ? s.delivery.in_flight : '–';
    $('m-groups').textContent = s.groups;
    const failed = lists[0].body.messages || [];
    $('m-failed').textContent = lists[0].body.count;
    const now = Date.now();
    history.push({ t: now, sent: s.messages_sent + s.messages_received, failed: lists[0].body.count });
    while (history.length && history[0].t < now - WINDOW_MS) history.shift();
    const prev = history.length > 1 ? history[history.length - 2] : null;
    if (prev) $('m-rate').textContent = (Math.max(0, history.at(-1).sent - prev.sent) * 1000 / (now - prev.t)).toFixed(1);
    renderOnline(online.body.users);
    renderFailures(failed);
    renderRecords(lists.flatMap((l) => (l.body && l.body.messages) || []));
    drawChart();
  } catch (e) {
    $('health-dot').className = 'dot down';
    $('meta').textContent = `server unreachable: ${e.message}`;
  }
}

function renderOnline(users) {
  const body = $('online');
  body.replaceChildren(...(users.length ? users.sort((a, b) => a.user_id.localeCompare(b.user_id)).map((u) =>
    el('tr', { 'data-user': u.user_id }, el('td', {}, u.user_id), el('td', { class: 'num' }, u.sessions)))
    : [el('tr', {}, el('td', { class: 'muted', colspan: 2 }, 'nobody online'))]));
}

function renderFailures(failed) {
  const counts = {};
  for (const r of failed) { const k = r.failure_reason || r.status; counts[k] = (counts[k] || 0) + 1; }
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map((e) => e[1]));
  $('failures').replaceChildren(...(entries.length ? entries.map(([k, n]) =>
    el('li', {}, el('span', {}, k), el('div', { class: 'bar', style: `width:${(100 * n) / max}%` }), el('span', { class: 'num' }, n)))
    : [el('li', { class: 'muted' }, 'none')]));
}

function renderRecords(records) {
  records.sort((a, b) => (b.created_ms || 0) - (a.created_ms || 0));
  const rows = records.slice(0, 12).map((r) => {
    const target = typeof r.target === 'string' ? r.target : r.target ? (r.target.user || (r.target.group && `#${r.target.group}`) || (r.target.broadcast !== undefined ? 'everyone' : JSON.stringify(r.target))) : '';
    return el('tr', {},
      el('td', { title: r.id }, r.id),
      el('td', {}, `${r.from} → ${target}`),
      el('td', {}, el('span', { class: `status ${r.status}` }, r.status)),
      el('td', { class: 'num' }, (r.attempts || []).length),
      el('td', { class: 'muted' }, r.failure_reason || ''),
      el('td', { class: 'muted' }, (r.created_at || '').slice(11, 19)));
  });
  $('records').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'muted', colspan: 6 }, 'no tracked records yet: POST /api/send or send with require_ack'))]));
}

function drawChart() {
  const c = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  c.width = w * dpr; c.height = h * dpr;
  const g = c.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const rates = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1], b = history[i], dt = (b.t - a.t) / 1000;
    rates.push({ t: b.t, msg: Math.max(0, b.sent - a.sent) / dt, fail: Math.max(0, b.failed - a.failed) / dt });
  }
  const now = Date.now(), pad = 28;
  const max = Math.max(1, ...rates.map((r) => Math.max(r.msg, r.fail)));
  g.strokeStyle = '#e5e7eb'; g.fillStyle = '#6b7280'; g.font = '11px system-ui'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = 8 + ((h - 24) * i) / 4;
    g.beginPath(); g.moveTo(pad, y); g.lineTo(w, y); g.stroke();
    g.fillText((max * (1 - i / 4)).toFixed(max < 4 ? 1 : 0), 0, y + 4);
  }
  for (let m = 0; m <= 5; m++) g.fillText(m === 0 ? 'now' : `-${m}m`, w - 24 - ((w - pad - 24) * m) / 5, h - 2);
  const x = (t) => pad + ((w - pad) * (t - (now - WINDOW_MS))) / WINDOW_MS;
  const y = (v) => 8 + (h - 24) * (1 - v / max);
  for (const [key, color] of [['msg', '#2563eb'], ['fail', '#dc2626']]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    rates.forEach((r, i) => (i ? g.lineTo(x(r.t), y(r[key])) : g.moveTo(x(r.t), y(r[key]))));
    g.stroke();
  }
}

// ---- console ----

function log(cls, text) {
  const li = el('li', { class: cls }, el('span', { class: 't' }, new Date().toLocaleTimeString() + ' '), text);
  const box = $('log');
  box.append(li);
  while (box.children.length > 300) box.firstChild.remove();
  box.scrollTop = box.scrollHeight;
}

function renderSessions() {
  const names = [...clients.keys()];
  for (const sel of document.querySelectorAll('select.as')) {
    const keep = sel.value;
    sel.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
    if (names.includes(keep)) sel.value = keep;
  }
  $('sessions').replaceChildren(...names.map((n) => {
    const c = clients.get(n);
    const x = el('button', { title: 'disconnect', 'data-close': n }, '×');
    x.onclick = () => { c.close(); clients.delete(n); renderSessions(); log('sys', `${n}: closed`); };
    return el('span', { class: `chip ${c.connected ? '' : 'down'}`, 'data-session': n }, `${n} · ${c.transport || c.state}`, x);
  }));
}

$('connect-form').onsubmit = async (ev) => {
  ev.preventDefault();
  const user = $('c-user').value.trim();
  if (!user || clients.has(user)) return log('err', `${user}: already connected from this console`);
  const c = new WscClient({ url: location.origin, userId: user, transport: $('c-transport').value, logErrors: false });
  clients.set(user, c);
  c.on('connected', (e) => { log('sys', `${user}: connected over ${e.transport} as ${e.clientId}`); renderSessions(); });
  c.on('disconnected', (e) => { log('sys', `${user}: disconnected ${e.code}${e.willReconnect ? `, reconnecting in ${e.delayMs} ms` : ''}`); renderSessions(); });
  c.on('error', (e) => log('err', `${user}: ${e.code}: ${e.message}`));
  c.on('message', (f) => log('in', `${user} ← ${f.from}${f.group ? ` #${f.group}` : ''}: ${f.content ?? ''}${f.require_ack ? ' [ack]' : ''}${f.source === 'offline' ? ' (offline)' : ''}`));
  renderSessions();
  $('c-user').value = '';
  c.connect();
};

$('join-form').onsubmit = async (ev) => {
  ev.preventDefault();
  const c = clients.get($('j-as').value);
  const group = $('j-group').value.trim();
  if (!c) return log('err', 'connect a user first');
  try {
    await c.join(group);
    log('sys', `${$('j-as').value}: joined #${group}`);
  } catch (e) { log('err', `${$('j-as').value}: join #${group}: ${e.code}: ${e.message}`); }
};

$('send-form').onsubmit = async (ev) => {
  ev.preventDefault();
  const as = $('s-as').value;
  const c = clients.get(as);
  if (!c) return log('err', 'connect a user first');
  const frame = { content: $('s-content').value, [$('s-kind').value]: $('s-target').value.trim(), require_ack: $('s-ack').checked };
  const shown = `${as} → ${frame.to || `#${frame.group}`}: ${frame.content}`;
  try {
    const receipt = await c.send(frame);
    log('out', `${shown}${receipt ? ` (${receipt.status})` : ''}`);
    $('s-content').value = '';
  } catch (e) { log('err', `${shown}: ${e.code}: ${e.message}`); }
};

window.addEventListener('resize', drawChart);
poll();
setInterval(poll, POLL_MS);
