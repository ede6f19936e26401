/*
 * main.js: the rightsview dashboard. One state object fed by the rv.v1
 * WebSocket (snapshot, then alert and cell changes), rendered into the
 * map, the matrix, the alert feed and the time series; filters and the
 * selection live in the URL. See docs/protocol.md for rv.v1.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { COUNTRIES, REGIONS, countryName, countryRegion } from './countries.js';
import { VIOLATIONS, violationLabel, LEVELS, levelRank } from './taxonomy.js';
import { WorldMap } from './map.js';
import { SeriesChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const FEED_MAX = 200;
const MATRIX_MAX_ROWS = 80;
const RES = ['1m', '1h', '1d'];
const RES_LABEL = { '1m': '1-minute', '1h': '1-hour', '1d': '1-day' };
const RES_STEP_S = { '1m': 60, '1h': 3600, '1d': 86400 };
const RES_WINDOW_S = { '1m': 6 * 3600, '1h': 7 * 86400, '1d': 180 * 86400 };
const VCODES = VIOLATIONS.map((v) => v[0]);
const LEVEL_SHORT = { watch: 'watch', warning: 'warn', critical: 'crit' };

const st = {
  token: sessionStorage.getItem('rv.token') || '',
  analyst: false,
  authRequired: false,
  filters: { countries: [], region: '', violation: '', minLevel: 'watch' },
  sel: { country: null, violation: null },
  res: '1h',
  sort: 'alarm',
  sortCol: null,
  lastSeq: 0,
  epoch: null,
  synced: false,
  open: new Map(), /* country|violation|admin1 -> latest open alert */
  feed: new Map(), /* feed key -> alert change */
  cells: new Map(), /* country|violation -> latest cell (any resolution) */
  baselines: new Map(), /* country|violation|res -> Map(bin s -> baseline) seen in cells */
  paused: false,
};
window.rightsview = { state: st };

/* ---------- small helpers ---------- */

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-(\w)/g, (m, c) => c.toUpperCase())] = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function fmtScore(s) {
  return typeof s === 'number' && isFinite(s) ? s.toFixed(1) : '–';
}

/* RFC 3339, epoch seconds or epoch ms -> epoch seconds (or NaN) */
function toSec(v) {
  if (typeof v === 'number') return v > 1e11 ? v / 1000 : v;
  if (typeof v === 'string') {
    if (/^\d+(\.\d+)?$/.test(v)) return toSec(Number(v));
    return Date.parse(v) / 1000;
  }
  return NaN;
}

function ago(v) {
  const s = Date.now() / 1000 - toSec(v);
  if (!isFinite(s)) return '';
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function levelCap(l) {
  return l ? l[0].toUpperCase() + l.slice(1) : '';
}

function authHeaders() {
  return st.token ? { Authorization: `Bearer ${st.token}` } : {};
}

function sourcesText(s) {
  if (Array.isArray(s)) return s.length ? `sources: ${s.join(', ')}` : '';
  if (typeof s === 'number') return `${s} source${s === 1 ? '' : 's'}`;
  return '';
}

/* ---------- URL state ---------- */

function readUrl() {
  const q = new URLSearchParams(location.search);
  const f = st.filters;
  f.countries = (q.get('country') || '').split(',').map((c) => c.trim().toUpperCase()).filter((c) => COUNTRIES[c]);
  f.region = REGIONS.includes(q.get('region')) ? q.get('region') : '';
  f.violation = VCODES.includes(q.get('violation')) ? q.get('violation') : '';
  f.minLevel = ['watch', 'warning', 'critical'].includes(q.get('min_level')) ? q.get('min_level') : 'watch';
  st.res = RES.includes(q.get('res')) ? q.get('res') : '1h';
  st.sort = q.get('sort') === 'name' ? 'name' : 'alarm';
  const sel = (q.get('sel') || '').split('.');
  st.sel.country = COUNTRIES[sel[0]] ? sel[0] : null;
  st.sel.violation = st.sel.country && VCODES.includes(sel[1]) ? sel[1] : null;
}

function writeUrl() {
  const q = new URLSearchParams();
  const f = st.filters;
  if (f.countries.length) q.set('country', f.countries.join(','));
  if (f.region) q.set('region', f.region);
  if (f.violation) q.set('violation', f.violation);
  if (f.minLevel !== 'watch') q.set('min_level', f.minLevel);
  if (st.sel.country) q.set('sel', st.sel.violation ? `${st.sel.country}.${st.sel.violation}` : st.sel.country);
  if (st.res !== '1h') q.set('res', st.res);
  if (st.sort !== 'alarm') q.set('sort', st.sort);
  const s = q.toString();
  history.replaceState(null, '', s ? `?${s}` : location.pathname);
}

/* ---------- filters ---------- */

function countryVisible(c) {
  const f = st.filters;
  if (f.countries.length && !f.countries.includes(c)) return false;
  if (f.region && countryRegion(c) !== f.region) return false;
  return true;
}

function alertPasses(a) {
  const f = st.filters;
  if (!countryVisible(a.country)) return false;
  if (f.violation && a.violation !== f.violation) return false;
  if (a.state !== 'resolved' && levelRank(a.level) < levelRank(f.minLevel)) return false;
  return true;
}

/* ---------- applying server messages ---------- */

function alertKey(a) {
  return `${a.country}|${a.violation}|${a.admin1 || ''}`;
}

function feedKey(a) {
  return a.seq != null ? `#${a.seq}` : `${alertKey(a)}@${a.updated_at || a.opened_at || ''}`;
}

/* Apply one alert change; false when it was already known. ADVANCE: count
 * its seq as processed (not for snapshot entries while resuming: changes
 * between `since` and the snapshot are still to come). */
function applyAlert(a, advance = true) {
  const k = feedKey(a);
  if (advance && typeof a.seq === 'number' && a.seq > st.lastSeq) st.lastSeq = a.seq;
  if (st.feed.has(k)) return false;
  a._arrived = performance.now();
  st.feed.set(k, a);
  if (st.feed.size > FEED_MAX) {
    const oldest = [...st.feed.entries()].sort((x, y) => feedOrder(y[1], x[1]))[0];
    st.feed.delete(oldest[0]);
  }
  const key = alertKey(a);
  const prev = st.open.get(key);
  if (!prev || prev.seq == null || a.seq == null || prev.seq < a.seq) {
    if (a.state === 'resolved') st.open.delete(key);
    else st.open.set(key, a);
  }
  return true;
}

function feedOrder(a, b) {
  /* newest first: by seq, else by update time */
  if (a.seq != null && b.seq != null && a.seq !== b.seq) return b.seq - a.seq;
  return (toSec(b.updated_at) || 0) - (toSec(a.updated_at) || 0);
}

function applyCell(c) {
  st.cells.set(`${c.country}|${c.violation}`, c);
  const t = toSec(c.bin);
  if (c.res && isFinite(t) && typeof c.baseline === 'number') {
    const k = `${c.country}|${c.violation}|${c.res}`;
    let m = st.baselines.get(k);
    if (!m) {
      if (st.baselines.size > 5000) st.baselines.clear();
      st.baselines.set(k, (m = new Map()));
    }
    m.set(t, c.baseline);
    if (m.size > 2000) m.delete(m.keys().next().value);
  }
  if (c.country === st.sel.country && c.violation === st.sel.violation && (!c.res || c.res === st.res)) {
    if (isFinite(t)) chart.upsert({ t, count: num(c.count), baseline: num(c.baseline) });
    summarize(c);
  }
}

function num(v) {
  return typeof v === 'number' ? v : v == null ? null : Number(v);
}

function onSnapshot(m) {
  const seq = Number(m.alert_seq) || 0;
  const reset = m.reset === true || (st.epoch != null && m.epoch != null && m.epoch !== st.epoch);
  /* resuming: the changes after our `since` follow the snapshot */
  const resuming = conn.sentSince && !reset;
  if (reset || seq < st.lastSeq) {
    /* the store behind the server was replaced: our seqs mean nothing now */
    st.feed.clear();
    st.lastSeq = 0;
    for (const li of feedNodes.values()) li.remove();
    feedNodes.clear();
  }
  if (m.epoch != null) st.epoch = m.epoch;
  if (typeof m.role === 'string') setRole(m.role === 'analyst' || m.role === 'admin');
  st.open.clear();
  for (const a of m.alerts || []) {
    if (!a.state) a.state = 'opened';
    applyAlert(a, !resuming);
    if (a.state !== 'resolved') st.open.set(alertKey(a), a);
  }
  if (!resuming && seq > st.lastSeq) st.lastSeq = seq;
  if (Array.isArray(m.cells)) {
    st.cells.clear();
    for (const c of m.cells) applyCell(c);
  }
  st.synced = true;
  conn.setLive();
  schedule();
}

const pendingNews = [];
let newsTimer = 0;

function onAlert(m) {
  if (!applyAlert(m)) return;
  if (st.synced && alertPasses(m) && (m.state === 'opened' || m.state === 'escalated' || !m.state)) {
    m._fresh = true;
    pendingNews.push(m);
    if (!newsTimer) newsTimer = setTimeout(flushNews, 250);
  }
  /* at once, not at the next animation frame: the row is painted in the
   * frame that follows this message */
  renderMap();
  renderFeed();
  schedule();
}

function flushNews() {
  newsTimer = 0;
  const news = pendingNews.splice(0);
  if (!news.length) return;
  news.sort((a, b) => levelRank(b.level) - levelRank(a.level));
  const top = news[0];
  const one = (a) => `${levelCap(a.level)} alert ${a.state === 'escalated' ? 'escalated' : 'opened'}: ${countryName(a.country)}, ${violationLabel(a.violation)}, score ${fmtScore(a.score)}`;
  const text = news.length === 1 ? one(top) : `${news.length} new alerts. Most severe: ${one(top)}`;
  const region = top.level === 'critical' ? $('announce-urgent') : $('announce');
  const p = el('p', { text });
  region.append(p);
  while (region.childNodes.length > 5) region.firstChild.remove();
  if ($('notify').checked && 'Notification' in window && Notification.permission === 'granted') {
    try {
      new Notification('rightsview', { body: text, tag: `rv-${top.seq}` });
    } catch (e) { /* some platforms only allow service-worker notifications */ }
  }
}

/* ---------- connection ---------- */

class Conn {
  constructor() {
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.tick = 0;
    this.nextAt = 0;
    this.sentSince = false;
  }

  url() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  show(state, text, retry = '') {
    const c = $('conn');
    c.dataset.state = state;
    if ($('conn-text').textContent !== text) $('conn-text').textContent = text;
    /* the countdown stays out of the live region: it would chatter */
    $('conn-retry').textContent = retry;
  }

  connect() {
    clearTimeout(this.timer);
    clearInterval(this.tick);
    if (st.paused || st.authRequired) return;
    if (this.ws) { this.ws.onclose = null; this.ws.close(); }
    this.show(this.attempt ? 'reconnecting' : 'connecting', this.attempt ? 'Reconnecting…' : 'Connecting…');
    let ws;
    try {
      ws = new WebSocket(this.url(), 'rv.v1');
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      /* every resolution's cells: the matrix takes any, the chart its own */
      const sub = { type: 'subscribe' };
      this.sentSince = st.synced;
      if (st.synced) {
        sub.since = st.lastSeq;
        if (st.epoch != null) sub.epoch = st.epoch;
      }
      if (st.token) sub.token = st.token;
      ws.send(JSON.stringify(sub));
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      switch (m.type) {
        case 'snapshot': onSnapshot(m); break;
        case 'alert': onAlert(m); break;
        case 'cell': applyCell(m); schedule(); break;
        case 'resync': break; /* the server catches us up from its store */
        case 'error': onServerError(m.reason || 'error'); break;
        default: break;
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry();
    };
  }

  retry() {
    if (st.paused || st.authRequired) return;
    const base = Math.min(15000, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.nextAt = Date.now() + delay;
    const upd = () => {
      const s = Math.max(0, Math.ceil((this.nextAt - Date.now()) / 1000));
      this.show('reconnecting', 'Disconnected, reconnecting', ` (next try in ${s} s)`);
    };
    upd();
    this.tick = setInterval(upd, 1000);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  setLive() {
    this.attempt = 0;
    this.show('live', 'Live');
  }

  stop(state, text) {
    clearTimeout(this.timer);
    clearInterval(this.tick);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
    }
    this.show(state, text);
  }

  now() {
    this.attempt = 0;
    this.connect();
  }
}

const conn = new Conn();

function onServerError(reason) {
  if (/token|auth|unauthori[sz]ed|forbidden|denied/i.test(reason)) {
    requireLogin(`The server refused access: ${reason}`);
    return;
  }
  $('conn-text').textContent = `Server error: ${reason}`;
}

/* ---------- access ---------- */

function requireLogin(msg) {
  st.authRequired = true;
  conn.stop('auth', 'Sign-in required');
  $('login-msg').textContent = msg;
  $('login').hidden = false;
  $('token').focus();
}

/* Probe the API: does it need a token, and is ours an analyst's? */
async function probeAccess() {
  try {
    const r = await fetch('/api/v1/overview', { headers: authHeaders(), cache: 'no-store' });
    if (r.status === 401 || r.status === 403) {
      requireLogin(st.token ? 'That token was not accepted. Enter another one.' : 'This server requires an access token.');
      return false;
    }
  } catch (e) { /* server down: the WebSocket retries will show it */ }
  let analyst = false;
  try {
    const r = await fetch('/api/v1/events?limit=1&format=json', { headers: authHeaders(), cache: 'no-store' });
    analyst = r.ok;
  } catch (e) { /* not an analyst as far as we know */ }
  setRole(analyst);
  $('login-open').textContent = st.token ? 'Signed in' : 'Sign in';
  return true;
}

function setRole(analyst) {
  if (st.analyst === analyst && document.body.dataset.role) return;
  st.analyst = analyst;
  document.body.dataset.role = analyst ? 'analyst' : 'viewer';
  if (!analyst) $('evidence').hidden = true;
  schedule();
}

async function start() {
  if (await probeAccess()) conn.now();
  schedule();
}

/* ---------- rendering ---------- */

let frame = 0;
let matrixAt = 0;
let matrixTimer = 0;
const MATRIX_EVERY_MS = 300;

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

/* Map and feed every frame (an alert must show at once); the matrix, the
 * costly part that busy cell updates touch, at most every 300 ms and in a
 * task of its own, after the frame with the new alert is painted. */
function render() {
  frame = 0;
  renderMap();
  renderFeed();
  if (!matrixTimer) {
    const wait = Math.max(0, matrixAt + MATRIX_EVERY_MS - performance.now());
    matrixTimer = setTimeout(() => {
      matrixTimer = 0;
      matrixAt = performance.now();
      renderMatrix();
    }, wait);
  }
}

function renderMap() {
  const levels = new Map();
  for (const a of st.open.values()) {
    if (!alertPasses(a)) continue;
    const cur = levels.get(a.country);
    if (!cur) levels.set(a.country, { level: a.level, violations: [violationLabel(a.violation)] });
    else {
      if (levelRank(a.level) > levelRank(cur.level)) cur.level = a.level;
      const l = violationLabel(a.violation);
      if (!cur.violations.includes(l)) cur.violations.push(l);
    }
  }
  map.render(levels, countryVisible, st.sel.country);
}

const feedNodes = new Map(); /* feed key -> li */

/* Roving focus in the feed: LI (and its Evidence button) is the one stop
 * in the tab order; arrows move between items. */
function rove(li) {
  for (const x of $('feed').querySelectorAll('[tabindex="0"]')) if (x !== li) x.tabIndex = -1;
  li.tabIndex = 0;
  for (const b of li.querySelectorAll('button')) b.tabIndex = 0;
}

function feedItem(k, a) {
  let li = feedNodes.get(k);
  const lv = a.state === 'resolved' ? 'none' : a.level;
  const sig = `${lv}|${st.analyst}`;
  if (li && li.dataset.sig === sig) return li;
  const badge = el('span', { class: `badge lv-${lv}`, text: a.state === 'resolved' ? 'Resolved' : levelCap(a.level) });
  const what = el('span', { class: 'what' },
    `${countryName(a.country)} (${a.country}) · ${violationLabel(a.violation)}`,
    a.admin1 ? ` · ${a.admin1}` : null);
  const meta = el('span', { class: 'meta' },
    el('span', { class: 'state', text: a.state || 'open' }),
    ` · score ${fmtScore(a.score)}`,
    sourcesText(a.sources) ? ` · ${sourcesText(a.sources)}` : null);
  const t = el('time', { class: 'ago', datetime: a.opened_at || '', 'data-t': a.opened_at || '' }, ago(a.opened_at));
  const when = el('span', { class: 'meta' }, 'opened ', t);
  const kids = [badge, what, meta, when];
  if (st.analyst) {
    kids.push(el('button', { type: 'button', class: 'ev', 'data-action': 'evidence', tabindex: '-1', text: 'Evidence' }));
  }
  const nli = el('li', {
    'data-key': k, 'data-seq': a.seq != null ? String(a.seq) : null,
    'data-country': a.country, 'data-violation': a.violation, 'data-level': lv,
    'data-sig': sig, tabindex: '-1',
    'aria-label': `${a.state === 'resolved' ? 'Resolved' : levelCap(a.level)}: ${countryName(a.country)}, ${violationLabel(a.violation)}${a.admin1 ? `, ${a.admin1}` : ''}, ${a.state || 'open'}, score ${fmtScore(a.score)}, opened ${ago(a.opened_at)}`,
  }, ...kids);
  if (a._fresh) { nli.classList.add('fresh'); a._fresh = false; }
  if (li) li.replaceWith(nli);
  feedNodes.set(k, nli);
  return nli;
}

function renderFeed() {
  const ul = $('feed');
  const list = [...st.feed.entries()].filter(([, a]) => alertPasses(a)).sort((x, y) => feedOrder(x[1], y[1]));
  const want = list.map(([k, a]) => {
    const li = feedItem(k, a);
    li.classList.toggle('selected', a.country === st.sel.country && (!st.sel.violation || a.violation === st.sel.violation));
    return li;
  });
  for (const k of feedNodes.keys()) if (!st.feed.has(k)) feedNodes.delete(k);
  const focused = document.activeElement;
  for (let i = 0; i < want.length; i++) {
    const cur = ul.children[i];
    if (cur !== want[i]) ul.insertBefore(want[i], cur || null);
  }
  while (ul.children.length > want.length) ul.lastElementChild.remove();
  /* roving tabindex: one item in the tab order */
  let roving = want.find((li) => li.tabIndex === 0);
  if (!roving && want.length) { want[0].tabIndex = 0; roving = want[0]; }
  for (const li of want) if (li !== roving && li.tabIndex === 0) li.tabIndex = -1;
  if (roving) rove(roving);
  if (focused && want.includes(focused) && document.activeElement !== focused) focused.focus();
  $('feed-empty').hidden = want.length > 0;
  $('feed-count').textContent = `(${want.length})`;
}

function cellInfo(c, v) {
  const cell = st.cells.get(`${c}|${v}`);
  let level = cell && cell.level && cell.level !== 'none' ? cell.level : 'none';
  let score = cell ? num(cell.score) : null;
  for (const a of st.open.values()) {
    if (a.country !== c || a.violation !== v) continue;
    if (levelRank(a.level) > levelRank(level)) level = a.level;
    if (score == null || (typeof a.score === 'number' && a.score > score && !cell)) score = a.score;
  }
  return { level, score, cell };
}

function renderMatrix() {
  const table = $('matrix');
  const thead = table.tHead;
  const f = st.filters;
  if (!thead.rows.length || thead.dataset.sortCol !== String(st.sortCol)) {
    const tr = el('tr', null, el('th', { scope: 'col', text: 'Country' }));
    for (const [code, label, short] of VIOLATIONS) {
      const b = el('button', { type: 'button', 'data-col': code, 'aria-pressed': String(st.sortCol === code), title: `${label}: sort rows by this column` }, el('abbr', { title: label, text: short }));
      tr.append(el('th', { scope: 'col', 'aria-label': label }, b));
    }
    thead.replaceChildren(tr);
    thead.dataset.sortCol = String(st.sortCol);
  }
  const countries = new Set();
  for (const k of st.cells.keys()) countries.add(k.split('|')[0]);
  for (const a of st.open.values()) countries.add(a.country);
  const rows = [];
  for (const c of countries) {
    if (!countryVisible(c)) continue;
    const infos = VCODES.map((v) => cellInfo(c, v));
    const relevant = f.violation ? [infos[VCODES.indexOf(f.violation)]] : infos;
    if (!relevant.some((i) => i.cell || i.level !== 'none')) continue;
    const maxLv = Math.max(...relevant.map((i) => levelRank(i.level)));
    if (f.minLevel !== 'watch' && maxLv < levelRank(f.minLevel)) continue;
    const maxScore = Math.max(0, ...relevant.map((i) => (typeof i.score === 'number' ? i.score : 0)));
    rows.push({ c, infos, maxLv, maxScore });
  }
  const byName = (a, b) => countryName(a.c).localeCompare(countryName(b.c));
  if (st.sortCol) {
    const i = VCODES.indexOf(st.sortCol);
    rows.sort((a, b) => levelRank(b.infos[i].level) - levelRank(a.infos[i].level) || (b.infos[i].score || 0) - (a.infos[i].score || 0) || byName(a, b));
  } else if (st.sort === 'name') rows.sort(byName);
  else rows.sort((a, b) => b.maxLv - a.maxLv || b.maxScore - a.maxScore || byName(a, b));
  const shown = rows.slice(0, MATRIX_MAX_ROWS);

  const active = document.activeElement;
  const focusKey = active && active.tagName === 'TD' && table.contains(active) ? `${active.dataset.country}|${active.dataset.violation}` : null;
  const tabKey = (() => {
    const t = table.querySelector('td[tabindex="0"]');
    return t ? `${t.dataset.country}|${t.dataset.violation}` : null;
  })();
  const body = document.createElement('tbody');
  let tabCell = null;
  let first = null;
  for (const r of shown) {
    const tr = el('tr', { 'data-country': r.c, class: r.c === st.sel.country ? 'selected' : null },
      el('th', { scope: 'row', title: countryName(r.c), text: countryName(r.c) }));
    r.infos.forEach((info, i) => {
      const v = VCODES[i];
      let cls = `lv-${info.level}`;
      if (info.level === 'none' && typeof info.score === 'number') cls = info.score >= 2 ? 's2' : info.score > 0 ? 's1' : 'z';
      if (r.c === st.sel.country && v === st.sel.violation) cls += ' selected';
      if (f.violation && f.violation !== v) cls += ' off';
      const td = el('td', {
        class: cls, tabindex: '-1', 'data-country': r.c, 'data-violation': v, 'data-level': info.level,
        'aria-label': `${countryName(r.c)}, ${violationLabel(v)}: ${info.level === 'none' ? 'no alert' : info.level}, score ${fmtScore(info.score)}`,
      }, info.score != null ? fmtScore(info.score) : '', info.level !== 'none' ? el('span', { class: 'lv', 'aria-hidden': 'true', text: LEVEL_SHORT[info.level] }) : null);
      const key = `${r.c}|${v}`;
      if (!first) first = td;
      if (key === tabKey || (!tabKey && r.c === st.sel.country && v === st.sel.violation)) tabCell = td;
      tr.append(td);
    });
    body.append(tr);
  }
  (tabCell || first || { tabIndex: 0 }).tabIndex = 0;
  table.tBodies[0].replaceWith(body);
  if (focusKey) {
    const [c, v] = focusKey.split('|');
    const td = body.querySelector(`td[data-country="${c}"][data-violation="${v}"]`);
    if (td) { for (const t of body.querySelectorAll('td[tabindex="0"]')) t.tabIndex = -1; td.tabIndex = 0; td.focus(); }
  }
  table.setAttribute('aria-rowcount', String(rows.length + 1));
  $('matrix-more').textContent = rows.length > shown.length ? `Showing ${shown.length} of ${rows.length} countries; filter to see the others.` : '';
}

/* ---------- selection and series ---------- */

let seriesReq = 0;

function select(country, violation) {
  if (!country) return;
  if (!violation) {
    /* the country's most alarming violation */
    let best = null;
    for (const v of VCODES) {
      const i = cellInfo(country, v);
      if (!best || levelRank(i.level) > levelRank(best.level) || (levelRank(i.level) === levelRank(best.level) && (i.score || 0) > (best.score || 0))) best = { v, ...i };
    }
    violation = best && (best.level !== 'none' || best.score) ? best.v : st.filters.violation || null;
  }
  st.sel.country = country;
  st.sel.violation = violation;
  writeUrl();
  schedule();
  loadSeries();
}

async function loadSeries() {
  const { country, violation } = st.sel;
  const title = $('series-title');
  $('evidence').hidden = true;
  if (!country || !violation) {
    title.textContent = country ? `${countryName(country)}: pick a violation in the matrix` : 'select a country and violation';
    chart.clear();
    $('series-summary').textContent = '';
    return;
  }
  title.textContent = `${countryName(country)} · ${violationLabel(violation)} (${RES_LABEL[st.res]} bins)`;
  const req = ++seriesReq;
  const to = Math.floor(Date.now() / 1000);
  const from = to - RES_WINDOW_S[st.res];
  const iso = (s) => new Date(s * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const qs = new URLSearchParams({ country, violation, res: st.res, from: iso(from), to: iso(to) });
  let points = [];
  let spans = [];
  try {
    const r = await fetch(`/api/v1/series?${qs}`, { headers: authHeaders() });
    if (r.ok) points = parsePoints(await r.json());
  } catch (e) { /* keep empty */ }
  try {
    const q2 = new URLSearchParams({ country, violation, since: '0' });
    const r = await fetch(`/api/v1/alerts?${q2}`, { headers: authHeaders() });
    if (r.ok) spans = buildSpans(await r.json(), to);
  } catch (e) { /* spans from the open alerts below */ }
  if (req !== seriesReq) return;
  /* the HTTP series holds counts; baselines come from the live cells seen,
   * and bins older than those take the current baseline */
  const known = st.baselines.get(`${country}|${violation}|${st.res}`);
  const cur = st.cells.get(`${country}|${violation}`);
  const curBase = cur && (!cur.res || cur.res === st.res) ? num(cur.baseline) : null;
  for (const p of points) {
    if (p.baseline == null) p.baseline = known && known.has(p.t) ? known.get(p.t) : curBase;
  }
  if (!spans.length) {
    for (const a of st.open.values()) {
      if (a.country === country && a.violation === violation) spans.push({ from: toSec(a.opened_at), to, level: a.level });
    }
  }
  /* probe series (internet_shutdown measurements): the signal, not a count */
  const probe = points.some((p) => p.probe);
  if (probe) points = points.filter((p) => p.probe).map((p) => ({ ...p, baseline: null }));
  else points = dense(points, from, to, RES_STEP_S[st.res]);
  chart.set(points, spans, RES_STEP_S[st.res], probe ? 'Signal (probe mean)' : 'Events');
  const cell = st.cells.get(`${country}|${violation}`);
  summarize(cell, points, spans);
}

function summarize(cell, points, spans) {
  const { country, violation } = st.sel;
  if (!country || !violation) return;
  const last = points && points.length ? points[points.length - 1] : null;
  const parts = [`${countryName(country)}, ${violationLabel(violation)}:`];
  if (cell) parts.push(`latest bin ${num(cell.count) ?? 0} events (baseline ${fmtScore(num(cell.baseline))}), score ${fmtScore(num(cell.score))}, level ${cell.level || 'none'}.`);
  else if (last) parts.push(`latest bin ${last.count ?? 0} events (baseline ${fmtScore(last.baseline)}).`);
  else parts.push('no data in this window.');
  if (spans) parts.push(`${spans.length} alert span${spans.length === 1 ? '' : 's'} marked.`);
  $('series-summary').textContent = parts.join(' ');
}

function arrayIn(j, names) {
  if (Array.isArray(j)) return j;
  for (const n of names) if (j && Array.isArray(j[n])) return j[n];
  return [];
}

function parsePoints(j) {
  return arrayIn(j, ['points', 'bins', 'series', 'data'])
    .map((p) => (Array.isArray(p) ? { t: toSec(p[0]), count: num(p[1]), baseline: num(p[2]) } : { t: toSec(p.start ?? p.bin ?? p.t ?? p.time), count: p.probe ? num(p.probe.mean) : num(p.events ?? p.count), baseline: num(p.baseline), probe: !!p.probe }))
    .filter((p) => isFinite(p.t))
    .sort((a, b) => a.t - b.t);
}

/* Every bin of the window, a missing one as 0 events: the API only
 * returns bins that had events. */
function dense(points, from, to, step) {
  if (!points.length) return points;
  const byT = new Map(points.map((p) => [p.t, p]));
  const first = Math.min(Math.floor(from / step) * step, points[0].t);
  const last = Math.max(Math.floor(to / step) * step, points[points.length - 1].t);
  const base = points[points.length - 1].baseline;
  const out = [];
  for (let t = first; t <= last; t += step) out.push(byT.get(t) || { t, count: 0, baseline: base });
  return out.length <= 5000 ? out : points;
}

function buildSpans(j, now) {
  const changes = arrayIn(j, ['alerts', 'changes']).slice().sort((a, b) => (a.seq || 0) - (b.seq || 0));
  const openSpan = new Map();
  const spans = [];
  for (const a of changes) {
    const k = a.admin1 || '';
    const t = toSec(a.updated_at || a.opened_at);
    const cur = openSpan.get(k);
    if (cur) { cur.to = t; spans.push(cur); openSpan.delete(k); }
    if (a.state !== 'resolved') openSpan.set(k, { from: t, to: now, level: a.level });
  }
  for (const s of openSpan.values()) spans.push(s);
  return spans.filter((s) => isFinite(s.from));
}

async function showEvidence(a) {
  const box = $('evidence');
  const list = $('evidence-list');
  list.replaceChildren(el('li', { text: 'Loading…' }));
  box.hidden = false;
  const qs = new URLSearchParams({ country: a.country, violation: a.violation, limit: '50', format: 'json' });
  if (a.opened_at) qs.set('from', a.opened_at);
  try {
    const r = await fetch(`/api/v1/events?${qs}`, { headers: authHeaders() });
    if (r.status === 401 || r.status === 403) {
      list.replaceChildren(el('li', { text: 'Events are shown to analysts only.' }));
      return;
    }
    const evs = arrayIn(await r.json(), ['events', 'items']);
    const items = evs.map((e) => el('li', { 'data-event': `${e.source || ''}/${e.id || ''}` },
      `${e.time || ''} · ${e.source || ''}/${e.id || ''} · ${e.title || e.kind || ''}`,
      e.admin1 ? ` · ${e.admin1}` : null,
      e.attrs && typeof e.attrs === 'object' && Object.keys(e.attrs).length
        ? ` · ${Object.entries(e.attrs).slice(0, 6).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('; ')}`.slice(0, 300)
        : null,
      e.url && /^https?:\/\//.test(e.url) ? el('span', null, ' · ', el('a', { href: e.url, target: '_blank', rel: 'noopener noreferrer', text: 'source' })) : null));
    const ids = (a.evidence || []).filter((id) => !evs.some((e) => `${e.source}/${e.id}` === id)).map((id) => el('li', { 'data-event': id, text: id }));
    const all = items.concat(ids);
    list.replaceChildren(...(all.length ? all : [el('li', { text: 'No event found for this alert.' })]));
  } catch (e) {
    list.replaceChildren(el('li', { text: `Could not load events: ${e.message}` }));
  }
}

/* ---------- wiring ---------- */

const map = new WorldMap($('map'), (c) => select(c, st.filters.violation || null));
const chart = new SeriesChart($('chart'));

function initControls() {
  const cs = $('f-country');
  const names = Object.keys(COUNTRIES).sort((a, b) => countryName(a).localeCompare(countryName(b)));
  for (const c of names) cs.append(el('option', { value: c, text: countryName(c) }));
  for (const r of REGIONS) $('f-region').append(el('option', { value: r, text: r }));
  for (const [code, label] of VIOLATIONS) $('f-violation').append(el('option', { value: code, text: label }));
  const sync = () => {
    cs.value = st.filters.countries.length === 1 ? st.filters.countries[0] : '';
    $('f-region').value = st.filters.region;
    $('f-violation').value = st.filters.violation;
    $('f-level').value = st.filters.minLevel;
    $('sort').value = st.sort;
    for (const b of document.querySelectorAll('.res button')) b.setAttribute('aria-checked', String(b.dataset.res === st.res));
  };
  sync();
  $('filters').addEventListener('change', () => {
    st.filters.countries = cs.value ? [cs.value] : [];
    st.filters.region = $('f-region').value;
    st.filters.violation = $('f-violation').value;
    st.filters.minLevel = $('f-level').value;
    writeUrl();
    schedule();
  });
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  $('f-clear').addEventListener('click', () => {
    st.filters = { countries: [], region: '', violation: '', minLevel: 'watch' };
    sync();
    writeUrl();
    schedule();
  });
  $('sort').addEventListener('change', () => {
    st.sort = $('sort').value;
    st.sortCol = null;
    writeUrl();
    schedule();
  });
  const resButtons = [...document.querySelectorAll('.res button')];
  const setRes = (res) => {
    if (res === st.res) return;
    st.res = res;
    sync();
    writeUrl();
    loadSeries();
  };
  for (const b of resButtons) {
    b.tabIndex = b.dataset.res === st.res ? 0 : -1;
    b.addEventListener('click', () => setRes(b.dataset.res));
    b.addEventListener('keydown', (e) => {
      const i = resButtons.indexOf(b);
      const d = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? 1 : e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? -1 : 0;
      if (!d) return;
      e.preventDefault();
      const n = resButtons[(i + d + resButtons.length) % resButtons.length];
      for (const x of resButtons) x.tabIndex = x === n ? 0 : -1;
      n.focus();
      setRes(n.dataset.res);
    });
  }

  /* matrix: click, header sort, grid keyboard */
  const table = $('matrix');
  table.addEventListener('click', (e) => {
    const col = e.target.closest('button[data-col]');
    if (col) {
      st.sortCol = st.sortCol === col.dataset.col ? null : col.dataset.col;
      schedule();
      return;
    }
    const td = e.target.closest('td');
    if (td) select(td.dataset.country, td.dataset.violation);
  });
  table.addEventListener('keydown', (e) => {
    const td = e.target.closest('td');
    if (!td) return;
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(td.dataset.country, td.dataset.violation); return; }
    const tr = td.parentElement;
    const ci = [...tr.children].indexOf(td);
    let next = null;
    if (e.key === 'ArrowRight') next = td.nextElementSibling;
    else if (e.key === 'ArrowLeft') next = td.previousElementSibling;
    else if (e.key === 'ArrowDown') next = tr.nextElementSibling && tr.nextElementSibling.children[ci];
    else if (e.key === 'ArrowUp') next = tr.previousElementSibling && tr.previousElementSibling.children[ci];
    else if (e.key === 'Home') next = tr.children[1];
    else if (e.key === 'End') next = tr.lastElementChild;
    else return;
    e.preventDefault();
    if (next && next.tagName === 'TD') {
      td.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
  });

  /* feed: click, evidence, keyboard */
  const feed = $('feed');
  const feedAlert = (li) => st.feed.get(li.dataset.key);
  feed.addEventListener('click', (e) => {
    const li = e.target.closest('li');
    if (!li) return;
    const a = feedAlert(li);
    if (!a) return;
    rove(li);
    select(a.country, a.violation);
    if (e.target.closest('button[data-action=evidence]')) showEvidence(a);
  });
  feed.addEventListener('keydown', (e) => {
    const li = e.target.closest('li');
    if (!li || e.target !== li) return;
    let next = null;
    if (e.key === 'ArrowDown') next = li.nextElementSibling;
    else if (e.key === 'ArrowUp') next = li.previousElementSibling;
    else if (e.key === 'Home') next = feed.firstElementChild;
    else if (e.key === 'End') next = feed.lastElementChild;
    else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      const a = feedAlert(li);
      if (a) select(a.country, a.violation);
      return;
    } else return;
    e.preventDefault();
    if (next) { rove(next); next.focus(); }
  });

  /* connection controls */
  $('pause').addEventListener('click', () => {
    st.paused = !st.paused;
    $('pause').setAttribute('aria-pressed', String(st.paused));
    $('pause').textContent = st.paused ? 'Resume live' : 'Pause live';
    if (st.paused) conn.stop('paused', 'Paused');
    else conn.now();
  });
  $('notify').addEventListener('change', async () => {
    if (!$('notify').checked) return;
    if (!('Notification' in window)) { $('notify').checked = false; return; }
    if (Notification.permission !== 'granted') {
      const p = await Notification.requestPermission();
      if (p !== 'granted') $('notify').checked = false;
    }
  });
  $('login-open').addEventListener('click', () => {
    $('login-msg').textContent = st.token ? 'Signed in with a token. Enter another one, or sign out.' : 'Sign in with an access token to see more (analysts see events).';
    $('login').hidden = false;
    $('token').focus();
  });
  $('login-cancel').addEventListener('click', () => { $('login').hidden = true; $('login-open').focus(); });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem('rv.token');
    st.token = '';
    relogin();
  });
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    st.token = $('token').value.trim();
    $('token').value = '';
    if (st.token) sessionStorage.setItem('rv.token', st.token);
    relogin();
  });
  addEventListener('online', () => { if (!conn.ws && !st.paused) conn.now(); });
  setInterval(() => {
    for (const t of document.querySelectorAll('time.ago')) t.textContent = ago(t.dataset.t);
  }, 30000);
}

async function relogin() {
  st.authRequired = false;
  $('login').hidden = true;
  for (const li of feedNodes.values()) li.dataset.sig = '';
  conn.stop('connecting', 'Connecting…');
  if (await probeAccess()) conn.now();
  schedule();
}

readUrl();
initControls();
if (st.sel.country) select(st.sel.country, st.sel.violation);
start();
