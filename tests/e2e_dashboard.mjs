/*
 * dashboard.test.mjs: the dashboard in a real browser (issue 7).
 *
 * Starts rightsviewd --demo on free loopback ports with a fresh data
 * directory, drives Debian's chromium (headless) with playwright-core
 * (web/package.json), and checks what an analyst relies on:
 *   - the map and at least one alert row appear;
 *   - an event burst published over ZeroMQ raises a new alert that shows
 *     in the feed and on the map within 2 s, without reload; measures
 *     publish-to-painted latency (p50/p99) and the page's transferred size;
 *   - a dropped connection (Pause/Resume) and a daemon restart are
 *     recovered with `since`, showing the alert raised meanwhile;
 *   - filters and selection live in the URL; keyboard selection; phone width;
 *   - with tokens, the page asks for one; a viewer sees alerts but no
 *     events (403), an analyst sees evidence.
 * Screenshots in $RV_BUILD_DIR: dashboard-demo.png (the demo as first
 * seen; copied to docs/screenshot.png for the README when that is missing
 * or RV_UPDATE_SCREENSHOT=1), dashboard.png (after the test's alerts) and
 * dashboard-phone.png (390 px wide).
 *
 * Env: RV_BUILD_DIR (rightsviewd, rvctl), RV_SOURCE_DIR (default: the
 * checkout this file is in). Run: node tests/e2e_dashboard.mjs
 * (ctest runs it once it is named tests/e2e_*.mjs; it needs
 * tests/browser/publish.py and `npm ci` in web/, which it runs through
 * scripts/build-web.sh).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync, existsSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/* the checkout: RV_SOURCE_DIR (ctest), else the first parent with web/ */
function findSource() {
  if (process.env.RV_SOURCE_DIR) return resolve(process.env.RV_SOURCE_DIR);
  let d = here;
  while (!existsSync(join(d, 'web', 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
}
const SRC = findSource();
const BUILD = resolve(process.env.RV_BUILD_DIR || join(SRC, 'build'));
const DAEMON = join(BUILD, 'rightsviewd');
const RVCTL = join(BUILD, 'rvctl');
const CHROMIUM = '/usr/bin/chromium';
const PY = '/usr/bin/python3';
const PUBLISH = join(SRC, 'tests', 'browser', 'publish.py');

const VIOLATION = 'killing';
/* large countries on the 110m map, tried in order for fresh alerts */
const CANDIDATES = ['IS', 'NZ', 'UY', 'MN', 'BW', 'NA', 'FI', 'SE', 'PT', 'IE', 'CL', 'AR', 'KZ', 'AU', 'CA',
  'NO', 'ES', 'PL', 'RO', 'GR', 'MA', 'PE', 'BO', 'PY', 'ZM', 'MZ', 'MG', 'TZ', 'KE', 'GH', 'CI'];
const LATENCY_ROUNDS = 20;

/* ---------------------------------------------------------------- helpers */

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs, stepMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

class Daemon {
  constructor(args) {
    this.args = args;
    this.proc = null;
    this.log = '';
  }

  async start(httpUrl) {
    this.proc = spawn(DAEMON, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d) => {
      this.log += d.toString();
      if (this.log.length > 200000) this.log = this.log.slice(-100000);
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.exited = new Promise((r) => this.proc.once('exit', (code, sig) => r({ code, sig })));
    await until('rightsviewd /healthz', async () => {
      if (this.proc.exitCode !== null) throw new Error(`rightsviewd exited ${this.proc.exitCode}:\n${this.log}`);
      const r = await fetch(`${httpUrl}/healthz`);
      return r.ok;
    }, 20000, 100);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

class Publisher {
  constructor(endpoint) {
    this.proc = spawn(PY, [PUBLISH, endpoint], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.err = '';
    this.proc.stderr.on('data', (d) => { this.err += d.toString(); });
    this.waiting = new Map();
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const m = JSON.parse(line);
      const w = this.waiting.get(m.id);
      if (w) { this.waiting.delete(m.id); w(m); }
    });
  }

  /* Publishes EVENTS as one batch; resolves with {t0, reply}. */
  send(id, events) {
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`publish ${id}: no answer from publish.py ${this.err}`)), 15000);
      this.waiting.set(id, (m) => {
        clearTimeout(t);
        if (m.error) rej(new Error(`publish ${id}: ${m.error}`));
        else res(m);
      });
      this.proc.stdin.write(`${JSON.stringify({ id, events })}\n`);
    });
  }

  close() {
    this.proc.stdin.end();
    this.proc.kill('SIGTERM');
  }
}

let burstN = 0;
/* A burst that must open an alert for COUNTRY x VIOLATION now. */
function burst(country, n = 40) {
  burstN++;
  const now = Date.now();
  const events = [];
  for (let i = 0; i < n; i++) {
    events.push({
      id: `dash-${process.pid}-${burstN}-${i}`,
      kind: 'incident',
      country,
      violation: VIOLATION,
      time: new Date(now - i * 1000).toISOString(),
      count: 5,
      severity: 5,
      confidence: 1,
      title: `dashboard test burst ${burstN}`,
    });
  }
  return events;
}

/* ------------------------------------------------------------------- test */

test('dashboard: live map, feed, reconnect, tokens (chromium)', { timeout: 240000 }, async (t) => {
  assert.ok(existsSync(DAEMON), `${DAEMON} not built`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/install-deps.sh --browser`);
  execFileSync('sh', [join(SRC, 'scripts', 'build-web.sh')], { stdio: 'inherit' });
  const require = createRequire(join(SRC, 'web', 'package.json'));
  const { chromium } = require('playwright-core');

  const tmp = mkdtempSync(join(tmpdir(), 'rv-dash-'));
  const data = join(tmp, 'data');
  const cfg = join(tmp, 'rv.json');
  /* let a fresh series alert at once (the demo has no history for it) */
  writeFileSync(cfg, JSON.stringify({ aggregator: { warmup_bins: 0 } }));
  const httpPort = await freePort();
  const ingestPort = await freePort();
  const url = `http://127.0.0.1:${httpPort}`;
  const endpoint = `tcp://127.0.0.1:${ingestPort}`;
  const daemon = new Daemon(['--demo', '--data', data, '--config', cfg, '--http', `127.0.0.1:${httpPort}`, '--ingest', endpoint]);
  let ctx = null;
  let pub = null;
  const used = new Set();

  try {
    await daemon.start(url);
    pub = new Publisher(endpoint);
    ctx = await chromium.launchPersistentContext(join(tmp, 'chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
    const page = ctx.pages()[0] || (await ctx.newPage());
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const external = [];
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(url) && !u.startsWith(url.replace('http', 'ws')) && !u.startsWith('data:')) external.push(u);
    });
    const subs = []; /* subscribe frames the page sent: {at, msg} */
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => {
        try {
          const m = JSON.parse(f.payload);
          if (m.type === 'subscribe') subs.push({ at: Date.now(), msg: m });
        } catch (e) { /* not ours */ }
      });
    });
    /* paint time of the first feed row of each country x violation */
    await page.addInitScript(() => {
      window.__rvPaint = {};
      window.__rvLoads = (Number(sessionStorage.getItem('rv.loads')) || 0) + 1;
      sessionStorage.setItem('rv.loads', String(window.__rvLoads));
      document.addEventListener('DOMContentLoaded', () => {
        new MutationObserver((muts) => {
          for (const m of muts) {
            for (const n of m.addedNodes) {
              if (!n.dataset || !n.dataset.country) continue;
              const k = `${n.dataset.country}|${n.dataset.violation}`;
              if (k in window.__rvPaint) continue;
              window.__rvPaint[k] = 0;
              requestAnimationFrame(() => { window.__rvPaint[k] = Date.now(); });
            }
          }
        }).observe(document.getElementById('feed'), { childList: true });
      });
    });

    const openKeys = () => page.evaluate(() => [...window.rightsview.state.open.values()].map((a) => a.country));
    const pickCountry = async () => {
      const busy = new Set(await openKeys());
      const c = CANDIDATES.find((x) => !used.has(x) && !busy.has(x));
      assert.ok(c, 'no candidate country left for a fresh alert');
      used.add(c);
      return c;
    };
    const rowSel = (c) => `#feed li[data-country="${c}"][data-violation="${VIOLATION}"]`;
    const onMap = (c) => page.evaluate((cc) => {
      const p = document.querySelector(`#map path[data-country="${cc}"]`);
      return !!p && p.dataset.level !== 'none';
    }, c);

    await t.test('page loads: map, an alert row, live, small, offline', async () => {
      await page.goto(url);
      await page.waitForSelector('#map[data-ready="true"] path.country', { timeout: 10000 });
      await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
      await page.waitForSelector('#feed li', { timeout: 30000 });
      const size = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        let n = nav ? nav.transferSize : 0;
        for (const r of performance.getEntriesByType('resource')) n += r.transferSize;
        return n;
      });
      console.log(`# page transferred size: ${size} bytes (${(size / 1024).toFixed(1)} KiB)`);
      assert.ok(size > 10000 && size < 1024 * 1024, `transferred ${size} bytes, want under 1 MiB`);
      assert.deepEqual(external, [], 'requests outside the server');
      await page.waitForSelector('#matrix tbody td', { timeout: 2000 });
      assert.deepEqual(errors, []);
      /* the demo as a person first sees it, the most alarming alert selected */
      await page.click('#feed li');
      await page.waitForSelector('#chart canvas', { timeout: 5000 });
      await page.waitForTimeout(1500);
      const shot = join(BUILD, 'dashboard-demo.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`# screenshot: ${shot}`);
      const docShot = join(SRC, 'docs', 'screenshot.png');
      if (process.env.RV_UPDATE_SCREENSHOT === '1' || !existsSync(docShot)) copyFileSync(shot, docShot);
    });

    await t.test('a published burst raises an alert in the feed and on the map within 2 s', async () => {
      const lat = [];
      const ack = [];
      const arrive = [];
      for (let round = 0; round < LATENCY_ROUNDS; round++) {
        const c = await pickCountry();
        assert.equal(await page.evaluate((k) => window.__rvPaint[k], `${c}|${VIOLATION}`), undefined, `${c} already in the feed`);
        const sent = await pub.send(`b-${c}`, burst(c));
        assert.ok(sent.reply && sent.reply.accepted > 0, `burst for ${c} not accepted: ${JSON.stringify(sent.reply)}`);
        const painted = await until(`alert row for ${c}`, () => page.evaluate((k) => window.__rvPaint[k] || 0, `${c}|${VIOLATION}`), 2000, 5);
        assert.ok(await onMap(c), `${c} not shaded on the map`);
        lat.push(painted - sent.t0);
        ack.push(sent.t1 - sent.t0);
        const got = await page.evaluate(([cc, v]) => {
          for (const a of window.rightsview.state.feed.values()) {
            if (a.country === cc && a.violation === v) return performance.timeOrigin + a._arrived;
          }
          return NaN;
        }, [c, VIOLATION]);
        arrive.push(got - sent.t0);
        assert.ok(painted - sent.t0 < 2000, `${c}: ${painted - sent.t0} ms from publish to row`);
      }
      const said = `${await page.textContent('#announce')} ${await page.textContent('#announce-urgent')}`;
      assert.match(said, /alert opened: .*Killing/, 'new alert not announced to screen readers');
      const show = (what, xs) => {
        xs.sort((a, b) => a - b);
        console.log(`# ${what} over ${xs.length} alerts: p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms`);
      };
      show('publish-to-ack (durable commit)', ack);
      show('publish-to-WebSocket message in the page', arrive);
      show('publish-to-painted latency', lat);
      assert.equal(await page.evaluate(() => window.__rvLoads), 1, 'the page reloaded');
    });

    await t.test('filters and selection live in the URL; keyboard selects', async () => {
      const levels = () => page.$$eval('#feed li', (lis) => lis.map((li) => li.dataset.level));
      const n = (await levels()).length;
      try {
        await page.selectOption('#f-level', 'critical');
        assert.match(page.url(), /min_level=critical/);
        await until('feed filtered to critical', async () => (await levels()).every((l) => l === 'critical' || l === 'none'), 2000);
      } finally {
        await page.click('#f-clear');
      }
      assert.doesNotMatch(page.url(), /min_level/);
      await until('feed unfiltered', async () => (await levels()).length >= n, 2000);
      await page.focus('#feed li[tabindex="0"]');
      const c = await page.$eval('#feed li[tabindex="0"]', (li) => li.dataset.country);
      await page.keyboard.press('Enter');
      await until('selection in the URL', () => new URL(page.url()).searchParams.get('sel')?.startsWith(c), 2000);
      await page.waitForSelector(`#map path.selected[data-country="${c}"]`, { timeout: 2000 });
    });

    await t.test('a dropped connection resumes with since and shows the alert raised meanwhile', async () => {
      const seqBefore = await page.evaluate(() => window.rightsview.state.lastSeq);
      await page.click('#pause');
      await page.waitForSelector('#conn[data-state="paused"]');
      const c = await pickCountry();
      const sent = await pub.send(`p-${c}`, burst(c));
      assert.ok(sent.reply && sent.reply.accepted > 0);
      await until(`alert for ${c} in /api/v1/alerts`, async () => {
        const r = await fetch(`${url}/api/v1/alerts?country=${c}&violation=${VIOLATION}`);
        return r.ok && (await r.json()).alerts.length > 0;
      }, 5000, 50);
      assert.equal(await page.locator(rowSel(c)).count(), 0, 'alert shown while paused');
      const nsubs = subs.length;
      await page.click('#pause');
      await page.waitForSelector(rowSel(c), { timeout: 3000 });
      const sub = subs.slice(nsubs).find((s) => s.msg.since !== undefined);
      assert.ok(sub, 'no subscribe with since after resume');
      assert.ok(sub.msg.since >= seqBefore, `since ${sub.msg.since} < ${seqBefore}`);
    });

    await t.test('a daemon restart is recovered: reconnect and the alert raised meanwhile', async () => {
      const nsubs = subs.length;
      const stopped = await daemon.stop();
      assert.equal(stopped.code, 0, `rightsviewd exit ${JSON.stringify(stopped)}:\n${daemon.log.slice(-2000)}`);
      await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 5000 });
      await daemon.start(url);
      pub.close();
      pub = new Publisher(endpoint);
      const c = await pickCountry();
      const sent = await pub.send(`r-${c}`, burst(c));
      assert.ok(sent.reply && sent.reply.accepted > 0);
      await page.waitForSelector('#conn[data-state="live"]', { timeout: 25000 });
      await page.waitForSelector(rowSel(c), { timeout: 5000 });
      assert.ok(await onMap(c), `${c} not on the map after reconnect`);
      const sub = subs.slice(nsubs).find((s) => s.msg.since !== undefined);
      assert.ok(sub, 'no subscribe with since after the restart');
      assert.equal(await page.evaluate(() => window.__rvLoads), 1, 'the page reloaded');
    });

    await t.test('screenshot and phone width', async () => {
      await page.waitForTimeout(300);
      const shot = join(BUILD, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`# screenshot: ${shot}`);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `page is ${overflow} px wider than a phone`);
      await page.screenshot({ path: join(BUILD, 'dashboard-phone.png'), fullPage: true });
      await page.setViewportSize({ width: 1400, height: 1000 });
    });

    await t.test('tokens: login field, viewer sees no events, analyst sees evidence', async () => {
      const stopped = await daemon.stop();
      assert.equal(stopped.code, 0);
      const mk = (role) => {
        const out = execFileSync(RVCTL, ['token', 'create', '--data', data, '--role', role, '--name', `dash-${role}`]).toString();
        const tok = out.trim().split('\n').pop().trim();
        assert.match(tok, /^\S{20,}$/, `rvctl printed ${out}`);
        return tok;
      };
      const viewer = mk('viewer');
      const analyst = mk('analyst');
      await daemon.start(url);
      const r0 = await fetch(`${url}/api/v1/events?format=json`);
      assert.equal(r0.status, 401);
      const r1 = await fetch(`${url}/api/v1/events?format=json`, { headers: { Authorization: `Bearer ${viewer}` } });
      assert.equal(r1.status, 403);
      const r2 = await fetch(`${url}/api/v1/events?format=json&limit=1`, { headers: { Authorization: `Bearer ${analyst}` } });
      assert.equal(r2.status, 200);

      const p2 = await ctx.newPage();
      p2.on('pageerror', (e) => errors.push(e.message));
      await p2.goto(url);
      await p2.waitForSelector('#login:not([hidden])', { timeout: 10000 });
      await p2.waitForSelector('#conn[data-state="auth"]');
      await p2.fill('#token', viewer);
      await p2.press('#token', 'Enter');
      await p2.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
      await p2.waitForSelector('#feed li', { timeout: 10000 });
      assert.equal(await p2.getAttribute('body', 'data-role'), 'viewer');
      assert.equal(await p2.locator('#feed button[data-action="evidence"]').count(), 0, 'viewer sees evidence buttons');
      assert.doesNotMatch(p2.url(), new RegExp(viewer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'token in the URL');
      assert.equal(await p2.evaluate(() => sessionStorage.getItem('rv.token')), viewer);

      await p2.click('#login-open');
      await p2.fill('#token', analyst);
      await p2.press('#token', 'Enter');
      await p2.waitForSelector('body[data-role="analyst"]', { timeout: 10000 });
      await p2.waitForSelector('#feed button[data-action="evidence"]', { timeout: 10000 });
      await p2.click('#feed button[data-action="evidence"]');
      await p2.waitForSelector('#evidence:not([hidden]) #evidence-list li[data-event]', { timeout: 5000 });
      assert.doesNotMatch(await p2.textContent('#evidence-list'), /analysts only|Could not load/);
      await p2.close();
      assert.deepEqual(errors, []);
    });
  } catch (e) {
    console.log(`# rightsviewd log (tail):\n${daemon.log.slice(-3000)}`);
    throw e;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    if (pub) pub.close();
    await daemon.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
