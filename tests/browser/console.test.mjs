// Browser tests of the console (docs/console.md): Playwright (playwright-core from web/'s npm
// packages) drives Debian's chromium, headless, against the running stack through the edge.
//
// One ride end to end: a customer signs in through PKCE and orders in one page, a driver signs in
// and accepts in another, the customer's page sees every status change arrive over the push
// channel without a reload, and an operator opens the order's trace waterfall. Screenshots of the
// run go to ANTAR_SCREENSHOT_DIR when it is set (docs/img for the README).
//
// Environment: ANTAR_EDGE_URL (http://127.0.0.1:8080), ANTAR_RUN_DIR, ANTAR_CHROMIUM
// (/usr/bin/chromium). Run: node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const require = createRequire(path.join(repo, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const EDGE = process.env.ANTAR_EDGE_URL || 'http://127.0.0.1:8080';
const SHOTS = process.env.ANTAR_SCREENSHOT_DIR || '';
const T = 20000; // patience for anything that crosses the services (ASan build)
const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

let browser;
const pages = [];
const outside = [];

async function post(p, body) {
  const r = await fetch(EDGE + p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

// A fresh page in its own browser context (its own cookies and sessionStorage, as a separate
// device would have), which must never ask anything of another origin.
async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 820 } });
  const page = await ctx.newPage();
  page.on('request', (req) => { if (!req.url().startsWith(EDGE) && !req.url().startsWith('data:')) outside.push(req.url()); });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  pages.push(page);
  return page;
}

async function signIn(page, view, username, password) {
  await page.goto(`${EDGE}/console/#${view}`);
  await page.locator('#signin-button').click();
  await page.waitForURL(/\/oauth\/authorize/, { timeout: T });
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(password);
  await page.locator('input[type=submit]').click();
  await page.waitForURL(new RegExp(`/console/#${view}$`), { timeout: T });
  await page.locator(`#who-${view}`).filter({ hasText: /\S/ }).waitFor({ timeout: T });
  // The code is gone from the address bar (and so from history), and no token is in a URL.
  assert.ok(!/[?&]code=/.test(page.url()), `code left in ${page.url()}`);
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`) });
}

const mapPoint = async (page, dx, dy) => {
  const box = await page.locator('#map').boundingBox();
  await page.mouse.click(box.x + dx, box.y + box.height - dy);
};

before(async () => {
  const args = ['--disable-gpu', '--disable-dev-shm-usage'];
  // Chromium refuses to run as root with its sandbox on: this machine runs the tests as root.
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  browser = await chromium.launch({ executablePath: process.env.ANTAR_CHROMIUM || '/usr/bin/chromium', headless: true, args });
});

after(async () => {
  if (browser) await browser.close();
});

test('the console is served with a strict policy and only its own files', async () => {
  const r = await fetch(`${EDGE}/console/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  const html = await r.text();
  assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]+<\/script>|\son[a-z]+=/i, 'inline script in index.html');
  const js = await fetch(`${EDGE}/console/leaflet.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  assert.equal(js.headers.get('cache-control'), 'public, max-age=86400');
  for (const bad of ['/console/package.json', '/console/node_modules', '/console/.env', '/console/console.test.mjs']) {
    assert.equal((await fetch(EDGE + bad)).status, 404, bad);
  }
  assert.equal((await fetch(`${EDGE}/console`, { redirect: 'manual' })).headers.get('location'), '/console/');
});

test('a wrong password or a foreign redirect never signs the console in', async () => {
  const page = await newPage();
  await page.goto(`${EDGE}/console/#customer`);
  await page.locator('#signin-button').click();
  await page.waitForURL(/\/oauth\/authorize/, { timeout: T });
  await page.locator('input[name=username]').fill(`nobody-${tag}@example.id`);
  await page.locator('input[name=password]').fill('not-the-password');
  await page.locator('input[type=submit]').click();
  await page.locator('[role=alert]').filter({ hasText: 'Wrong' }).waitFor({ timeout: T });
  assert.match(page.url(), /\/oauth\/authorize/);
  // The console's clients only ever return to <edge origin>/console/.
  const u = new URL(page.url());
  const q = new URLSearchParams({ response_type: 'code', client_id: 'console-user', redirect_uri: 'http://127.0.0.1:9/console/', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGKSWDZ4Rw', code_challenge_method: 'S256' });
  const r = await fetch(`${u.origin}/oauth/authorize?${q}`, { redirect: 'manual' });
  assert.equal(r.status, 400);
  await page.context().close();
});

test('order in one page, accept in another, watch it live, open the trace waterfall', async () => {
  const pw = `console-pw-${tag}`;
  const phone = `0813${String(Date.now()).slice(-8)}`;
  const cu = await post('/users', { name: 'Sari Console', email: `sari-${tag}@example.id`, phone, password: pw });
  assert.equal(cu.status, 201, JSON.stringify(cu.body));
  const dphone = `0814${String(Date.now()).slice(-8)}`;
  const plate = `B ${1000 + Math.floor(Math.random() * 8999)} ${['CON', 'SOL', 'WEB'][Math.floor(Math.random() * 3)]}`;
  const dr = await post('/drivers', { name: 'Budi Console', email: `budi-${tag}@example.id`, phone: dphone, password: pw, vehicle_type: 'car', plate_number: plate });
  assert.equal(dr.status, 201, JSON.stringify(dr.body));
  const [opEmail, opPw] = execFileSync(path.join(repo, 'scripts/console-operator.sh'), { encoding: 'utf8' }).trim().split('\t');

  const driver = await newPage();
  await signIn(driver, 'driver', `budi-${tag}@example.id`, pw);
  const customer = await newPage();
  await signIn(customer, 'customer', `sari-${tag}@example.id`, pw);

  // Both stand at the same spot in the south of the city, far from other tests' drivers.
  await mapPoint(driver, 300, 110);
  await driver.locator('#d-online-btn').click();
  await driver.locator('#d-online').filter({ hasText: /^online$/ }).waitFor({ timeout: T });

  await customer.locator('#c-vehicle').selectOption('car');
  await mapPoint(customer, 300, 110);
  await mapPoint(customer, 430, 330);
  await customer.locator('#c-estimate').click();
  await customer.locator('#c-fare').filter({ hasText: 'Fare Rp' }).waitFor({ timeout: T });
  await customer.evaluate(() => { window.__sameDocument = true; });
  await customer.locator('#c-order').click();
  await customer.locator('#c-status').filter({ hasText: /^searching$/ }).waitFor({ timeout: T });
  const orderId = Number(await customer.locator('#c-order-id').textContent());
  assert.ok(orderId > 0);

  // The offer reaches the driver over the push channel.
  await driver.locator('#d-offer').waitFor({ state: 'visible', timeout: T });
  assert.match(await driver.locator('#d-offer-text').textContent(), new RegExp(`Order ${orderId}:`));
  await shot(driver, 'driver-offer');
  await driver.locator('#d-accept').click();
  await driver.locator('#d-trip-status').filter({ hasText: 'accepted' }).waitFor({ timeout: T });

  // ... and the customer's page learns of it without a reload.
  await customer.locator('#c-status').filter({ hasText: /^accepted$/ }).waitFor({ timeout: T });
  await customer.locator('#c-driver').filter({ hasText: 'Budi Console' }).waitFor({ timeout: T });
  // The driver's pings come back to the customer as driver_position events: the driver moves.
  await customer.locator('#c-driver[data-pos]').waitFor({ state: 'attached', timeout: T });
  await shot(customer, 'customer-accepted');
  await driver.locator('#d-pickup').click();
  await customer.locator('#c-status').filter({ hasText: /^picked_up$/ }).waitFor({ timeout: T });
  await driver.locator('#d-complete').click();
  await customer.locator('#c-status').filter({ hasText: /^completed$/ }).waitFor({ timeout: T });
  assert.equal(await customer.evaluate(() => window.__sameDocument), true, 'the customer page was reloaded');

  // The operator's city view and the order's waterfall, read from the trace record.
  const ops = await newPage();
  await signIn(ops, 'city', opEmail, opPw);
  await ops.locator('#city-stats span').first().waitFor({ timeout: T });
  await ops.locator('#order-id').fill(String(orderId));
  await ops.locator('#order-open button').click();
  await ops.locator('#insp-title').filter({ hasText: `Order ${orderId}: completed` }).waitFor({ timeout: T });
  const timeline = await ops.locator('#insp-timeline li').allTextContents();
  for (const s of ['searching', 'accepted', 'picked_up', 'completed']) {
    assert.ok(timeline.some((t) => t.startsWith(s)), `timeline lacks ${s}: ${timeline}`);
  }
  // Predicted against actual for both legs (docs/ai.md): the order's pickup_eta_s and duration_s
  // beside what the timestamps say the way to the pickup and the trip took.
  const eta = await ops.locator('#insp-eta').textContent();
  assert.match(eta, /^pickup: predicted \d+\.\d min, took \d+\.\d min; trip: predicted \d+\.\d min, took \d+\.\d min/, eta);
  await ops.locator('.waterfall .trace').nth(3).waitFor({ timeout: T });
  const wf = await ops.locator('#insp-waterfall').textContent();
  for (const want of ['client → edge → user-service', 'POST /orders', 'user-service → core-service', 'POST /internal/dispatch',
    'core-service → driver-service', 'POST /internal/offers', 'client → edge → driver-service', `POST /offers/`,
    `driver-service → user-service`, `POST /internal/orders/${orderId}/assign`, `POST /trips/${orderId}/complete`]) {
    assert.ok(wf.includes(want), `waterfall lacks "${want}"`);
  }
  await shot(ops, 'waterfall');
  await ops.locator('#order-id').fill('');
  await shot(customer, 'customer-completed');

  assert.deepEqual(outside, [], 'the console asked another origin');
});

test('an ops read needs an ops token', async () => {
  const me = `sari2-${tag}@example.id`;
  const phone = `0815${String(Date.now()).slice(-8)}`;
  assert.equal((await post('/users', { name: 'Sari Dua', email: me, phone, password: `pw-${tag}-x` })).status, 201);
  assert.equal((await fetch(`${EDGE}/ops/city`)).status, 401);
  assert.equal((await fetch(`${EDGE}/ops/orders/1`)).status, 401);
  // A customer account not on the operator list cannot sign in to the ops client.
  const page = await newPage();
  await page.goto(`${EDGE}/console/#city`);
  await page.locator('#signin-button').click();
  await page.waitForURL(/\/oauth\/authorize/, { timeout: T });
  await page.locator('input[name=username]').fill(me);
  await page.locator('input[name=password]').fill(`pw-${tag}-x`);
  await page.locator('input[type=submit]').click();
  await page.locator('[role=alert]').waitFor({ timeout: T });
  assert.match(page.url(), /\/oauth\/authorize/);
  await page.context().close();
});
