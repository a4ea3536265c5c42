// Browser test in headless Chromium (Debian's `chromium`, driven by puppeteer-core; no
// browser download): the dashboard console connects two users and passes a message, with a
// screenshot; then a page uses the JS client over SSE only and receives a p2p message and a
// broadcast. Run by .ci/run; `node browser-test/run.mjs` from clients/js.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';
import { startServer, http, WAIT_MS } from '../test/harness.js';

const chromium = process.env.CHROMIUM_BIN || ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(existsSync);
if (!chromium) {
  console.error('browser test: no chromium found; install it with `apt-get install chromium` (or set CHROMIUM_BIN)');
  process.exit(1);
}
const shot = process.env.WSC_SCREENSHOT || path.resolve(process.env.CARGO_TARGET_DIR || '../../target', 'dashboard.png');
mkdirSync(path.dirname(shot), { recursive: true });

const KEY = 'browser-test-key';
const server = await startServer({ args: ['--api-key', KEY] });
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
});
let failed = false;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  await page.setViewport({ width: 1366, height: 900 });

  // Without the key: the sign-in form.
  const refused = await page.goto(`${server.url}/dashboard`);
  assert.equal(refused.status(), 401);
  await page.waitForSelector('input[name=api_key]');
  // With it: signed in (cookie), the dashboard loads and polls the API.
  await page.type('input[name=api_key]', KEY);
  await Promise.all([page.waitForNavigation(), page.click('form button')]);
  assert.equal(new URL(page.url()).search, '', 'the key left the address bar');
  await page.waitForFunction(() => document.getElementById('health-dot').className === 'dot up');
  pageErrors.length = 0; // the sign-in page's own 401 is expected

  async function connectUser(user) {
    await page.type('#c-user', user);
    await page.click('#connect-form button');
    await page.waitForFunction((u) => {
      const chip = document.querySelector(`[data-session="${u}"]`);
      return chip && !chip.classList.contains('down') && chip.textContent.includes('ws');
    }, {}, user);
  }
  await connectUser('alice');
  await connectUser('bob');
  await page.waitForFunction(() => document.querySelector('#online [data-user=alice]') && document.querySelector('#online [data-user=bob]'));

  await page.select('#s-as', 'alice');
  await page.select('#s-kind', 'to');
  await page.type('#s-target', 'bob');
  await page.type('#s-content', 'hello bob, from the console');
  await page.click('#s-ack');
  await page.click('#send-form button');
  await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent.includes('bob ← alice: hello bob, from the console')));
  await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent.includes('alice → bob: hello bob, from the console (accepted)')));
  // A group round: bob joins, alice writes to it.
  await page.select('#j-as', 'bob');
  await page.type('#j-group', 'support');
  await page.click('#join-form button');
  await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent.includes('bob: joined #support')));
  await page.select('#s-kind', 'group');
  await page.$eval('#s-target', (e) => { e.value = ''; });
  await page.type('#s-target', 'support');
  await page.type('#s-content', 'anyone in support?');
  await page.click('#send-form button');
  await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent.includes('bob ← alice #support: anyone in support?')));
  // Some tracked traffic and a failure for the panels, then wait for a poll to show it.
  const auth = { authorization: `Bearer ${KEY}` };
  await http(server.url, 'POST', '/api/send', { to: 'bob', content: 'tracked', require_ack: true }, auth);
  await http(server.url, 'POST', '/api/send', { to: 'nobody', content: 'to an offline user', require_ack: true }, auth);
  await page.waitForFunction(() => document.querySelectorAll('#records tr .status').length >= 2 && document.querySelector('#failures .bar'));
  await page.waitForFunction(() => document.getElementById('chart').width > 0);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`dashboard ok; screenshot: ${shot}`);
  assert.deepEqual(pageErrors, [], 'no errors in the dashboard page');

  // A page using the JS client over SSE only.
  const sse = await browser.newPage();
  sse.setDefaultTimeout(WAIT_MS);
  await sse.goto(`${server.url}/health`);
  await sse.evaluate(async () => {
    const { WscClient } = await import('/dashboard/wsc.js');
    window.got = [];
    window.c = new WscClient({ url: location.origin, userId: 'sse-user', transport: 'sse' });
    window.c.on('message', (f) => window.got.push(f));
    await window.c.connect();
  });
  assert.equal(await sse.evaluate(() => window.c.transport), 'sse');
  assert.equal(await sse.evaluate(() => typeof WebSocket), 'function', 'the page has WebSocket, and still uses SSE as told');
  const p2p = await http(server.url, 'POST', '/api/send', { to: 'sse-user', content: 'p2p over sse', require_ack: true }, auth);
  assert.equal(p2p.status, 200, JSON.stringify(p2p.body));
  const all = await http(server.url, 'POST', '/api/send', { broadcast: true, content: 'broadcast over sse' }, auth);
  assert.equal(all.status, 200, JSON.stringify(all.body));
  await sse.waitForFunction(() => window.got.some((f) => f.content === 'p2p over sse') && window.got.some((f) => f.content === 'broadcast over sse'));
  const rec = async () => (await http(server.url, 'GET', `/api/messages/${p2p.body.id}`, undefined, auth)).body.status;
  for (const end = Date.now() + WAIT_MS; (await rec()) !== 'acked';) {
    if (Date.now() > end) throw new Error('the SSE page did not ack the p2p message');
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log('sse page ok: p2p (acked) and broadcast received over SSE');
} catch (e) {
  failed = true;
  console.error('browser test FAILED:', e);
} finally {
  await browser.close();
  await server.stop();
}
process.exit(failed ? 1 : 0);
