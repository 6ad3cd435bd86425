// The coaching console: a small single-page app over the JSON API (/api/v1, docs/api.md).
//
// - A hash router (#/calls, #/calls/ID, #/tasks, #/tasks/ID, #/packs, #/reports, #/users,
//   #/audit, #/login); each view renders into <main> and re-renders from the API.
// - The bearer token lives in sessionStorage (gone with the tab); a 401 sends you to the login.
// - Every string on screen comes from i18n.js; data is inserted as text, never as HTML.
// - Elements the browser tests use carry stable `data-testid` attributes.
// - The server masks personal data; the console shows what it gets and never unmasks.
'use strict';

// ---------------------------------------------------------------------------------------------
// Session and API

const session = {
  get token() { return sessionStorage.getItem('console.token'); },
  get user() {
    try { return JSON.parse(sessionStorage.getItem('console.user') || 'null'); } catch (_) { return null; }
  },
  set(token, user) {
    // Another user may log in in this tab: forget what the last one loaded.
    usersCache = null;
    teamsCache = null;
    packState.draft = null;
    sessionStorage.setItem('console.token', token);
    sessionStorage.setItem('console.user', JSON.stringify(user));
  },
  clear() {
    sessionStorage.removeItem('console.token');
    sessionStorage.removeItem('console.user');
  },
  role() { return this.user ? this.user.role : null; },
  is(...roles) { return roles.includes(this.role()); },
};

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The browser's offset from UTC in minutes (China: 480), for day boundaries. */
const UTC_OFFSET = -new Date().getTimezoneOffset();

function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

/** Calls the API; resolves to parsed JSON (or text for `raw`), throws ApiError. */
async function api(method, path, body, opts) {
  const headers = { Accept: (opts && opts.accept) || 'application/json' };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch('/api/v1' + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', t('error.network', { message: e.message }));
  }
  if (res.status === 401 && !(opts && opts.login)) {
    session.clear();
    const back = location.hash && !location.hash.startsWith('#/login') ? location.hash : '';
    sessionStorage.setItem('console.after', back);
    location.hash = '#/login';
    const err = new ApiError(401, 'unauthorized', 'log in again');
    err.redirected = true;
    throw err;
  }
  if (!res.ok) {
    let code = 'http_' + res.status;
    let message = res.statusText;
    let details;
    try {
      const err = (await res.json()).error;
      if (err) ({ code, message, details } = err);
    } catch (_) { /* not JSON: keep the status */ }
    throw new ApiError(res.status, code, message, details);
  }
  if (res.status === 204) return null;
  if (opts && opts.raw) return res;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** h('div', {class, onclick, 'data-testid'}, ...children): children are nodes or text. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'selected') el.selected = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A plain error box: code, message and details (pack errors are file:line lines). */
function errorBox(err) {
  const box = h('div', { class: 'error', 'data-testid': 'error', role: 'alert' },
    h('strong', {}, err.code ? err.code : t('error.title')), ' ', err.message || String(err));
  if (Array.isArray(err.details)) {
    box.appendChild(h('ul', {}, err.details.map((d) => h('li', { class: 'mono' }, d.text || JSON.stringify(d)))));
  } else if (err.details) {
    box.appendChild(h('div', { class: 'mono' }, JSON.stringify(err.details)));
  }
  return box;
}

/** Runs an action, showing its error (if any) in `slot`; returns the result or undefined. */
async function attempt(slot, fn) {
  if (slot) clear(slot);
  try {
    return await fn();
  } catch (e) {
    if (e.redirected) return undefined;
    if (slot) slot.appendChild(errorBox(e));
    else console.error(e);
    return undefined;
  }
}

function option(value, label, selected) {
  return h('option', { value, selected: String(value) === String(selected ?? '') }, label);
}

function field(label, control) {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Unix ms (or an RFC 3339 string) as local date and time. */
function fmtTime(v) {
  if (v === null || v === undefined || v === '') return '–';
  const d = new Date(typeof v === 'number' ? v : Date.parse(v));
  if (isNaN(d)) return String(v);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function fmtDate(v) {
  return fmtTime(v).slice(0, 10);
}

/** A task's due date: the API keeps the (exclusive) end of the due day, so show the day before. */
function fmtDue(ms) {
  return typeof ms === 'number' ? fmtDate(ms - 1) : fmtDate(ms);
}

function fmtDuration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs)) return '–';
  const s = Math.round(secs);
  if (s >= 3600) return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return fmtClock(s);
}

function fmtNum(v, digits) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return Number(v).toFixed(digits === undefined ? 1 : digits);
}

function fmtPct(v) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return Math.round(v * 100) + '%';
}

function today(offsetDays) {
  const d = new Date(Date.now() + (offsetDays || 0) * 86400000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function scoreBadge(score, manual) {
  if (score === null || score === undefined) return h('span', { class: 'badge muted' }, '–');
  const cls = score >= 90 ? 'good' : score >= 60 ? 'ok' : 'bad';
  return h('span', { class: 'badge score ' + cls, 'data-testid': 'score' }, String(score),
    manual ? h('small', {}, ' ' + t('calls.manual')) : null);
}

/** Row fields under either the store's or the documented name. */
const callId = (r) => r.call_id ?? r.id;
const callAgent = (r) => r.agent_id ?? r.agent;
const KNOWN_CATEGORIES = ['abuse', 'misleading_promise', 'forbidden_phrase', 'complaint_risk',
  'required_disclosure', 'repeat_question', 'response_timeout', 'customer_escalation',
  'greeting', 'closing'];

// ---------------------------------------------------------------------------------------------
// Router and layout

const routes = [
  [/^\/login$/, viewLogin, null],
  [/^\/calls$/, viewCalls, ['agent', 'lead', 'trainer', 'admin']],
  [/^\/calls\/(.+)$/, viewCall, ['agent', 'lead', 'trainer', 'admin']],
  [/^\/tasks$/, viewTasks, ['agent', 'lead', 'trainer', 'admin']],
  [/^\/tasks\/(\d+)$/, viewTask, ['agent', 'lead', 'trainer', 'admin']],
  [/^\/packs$/, viewPacks, ['lead', 'trainer', 'admin']],
  [/^\/reports$/, viewReports, ['lead', 'trainer', 'admin']],
  [/^\/users$/, viewUsers, ['admin']],
  [/^\/audit$/, viewAudit, ['admin']],
  [/^\/qc$/, viewQc, ['admin']],
];

let renderCount = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  const params = {};
  new URLSearchParams(query || '').forEach((v, k) => { params[k] = v; });
  return { path, params };
}

function go(path, params) {
  location.hash = '#' + path + qs(params);
}

function homePath() {
  return '/calls';
}

async function render() {
  const id = ++renderCount;
  const { path, params } = parseHash();
  document.documentElement.lang = currentLang() === 'zh' ? 'zh-CN' : 'en';
  document.title = t('app.title');
  const root = document.getElementById('app');
  // Redirects replace the history entry without a hashchange, and render at once: a second
  // render racing the first would rebuild a form someone is already typing into.
  if (!session.token && path !== '/login') {
    sessionStorage.setItem('console.after', location.hash);
    history.replaceState(null, '', '#/login');
    return render();
  }
  let match = null;
  for (const [re, view, roles] of routes) {
    const m = path.match(re);
    if (m) { match = { view, roles, args: m.slice(1).map(decodeURIComponent) }; break; }
  }
  if (!match || (match.roles && !session.is(...match.roles))) {
    history.replaceState(null, '', '#' + (session.token ? homePath() : '/login'));
    return render();
  }
  clear(root);
  root.appendChild(header(path));
  const main = h('main', { 'data-testid': 'view-' + (path.split('/')[1] || 'home') });
  root.appendChild(main);
  main.appendChild(h('p', { class: 'muted' }, t('common.loading')));
  const ctx = { alive: () => id === renderCount, params, rerender: render };
  try {
    await match.view(main, ctx, ...match.args);
  } catch (e) {
    if (e.redirected || !ctx.alive()) return;
    clear(main).appendChild(errorBox(e));
  }
}

function header(path) {
  const user = session.user;
  const langBtn = h('button', {
    class: 'link', 'data-testid': 'lang-toggle', type: 'button',
    onclick: () => { setLang(currentLang() === 'zh' ? 'en' : 'zh'); render(); },
  }, t('app.lang'));
  const bar = h('header', {}, h('a', { class: 'brand', href: '#' + homePath() }, t('app.title')));
  if (user) {
    const links = [];
    const add = (to, key, testid) => links.push(h('a', {
      href: '#' + to, class: path.startsWith(to) ? 'active' : '', 'data-testid': testid,
    }, t(key)));
    add('/calls', session.is('agent') ? 'nav.myCalls' : 'nav.calls', 'nav-calls');
    add('/tasks', session.is('agent') ? 'nav.myTasks' : 'nav.tasks', 'nav-tasks');
    if (session.is('lead', 'trainer', 'admin')) add('/packs', 'nav.packs', 'nav-packs');
    if (session.is('lead', 'trainer', 'admin')) add('/reports', 'nav.reports', 'nav-reports');
    if (session.is('admin')) add('/users', 'nav.users', 'nav-users');
    if (session.is('admin')) add('/audit', 'nav.audit', 'nav-audit');
    if (session.is('admin')) add('/qc', 'nav.qc', 'nav-qc');
    bar.appendChild(h('nav', {}, links));
    bar.appendChild(h('span', { class: 'who', 'data-testid': 'who' },
      `${user.display_name || user.username} · ${tv('role', user.role)}${user.team ? ' · ' + user.team : ''}`));
    bar.appendChild(langBtn);
    bar.appendChild(h('button', {
      class: 'link', type: 'button', 'data-testid': 'logout',
      onclick: async () => {
        try { await api('POST', '/logout'); } catch (_) { /* leaving anyway */ }
        session.clear();
        go('/login');
      },
    }, t('nav.logout')));
  } else {
    bar.appendChild(h('span', { class: 'spacer' }));
    bar.appendChild(langBtn);
  }
  return bar;
}

// ---------------------------------------------------------------------------------------------
// Login

async function viewLogin(main) {
  clear(main);
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const slot = h('div');
  const form = h('form', {
    class: 'card login', 'data-testid': 'login-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const out = await attempt(slot, () => api('POST', '/login', { username: user.value.trim(), password: pass.value }, { login: true }));
      if (!out) return;
      session.set(out.token, out.user);
      const after = sessionStorage.getItem('console.after');
      sessionStorage.removeItem('console.after');
      location.hash = after && !after.startsWith('#/login') ? after : '#' + homePath();
    },
  },
  h('h1', {}, t('login.title')),
  field(t('login.username'), user),
  field(t('login.password'), pass),
  h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, t('login.submit')),
  slot,
  h('p', { class: 'muted small' }, t('login.hint')));
  main.appendChild(form);
  user.focus();
}

// ---------------------------------------------------------------------------------------------
// Calls list

let usersCache = null;
let teamsCache = null;

async function agentsList() {
  if (!session.is('lead', 'trainer', 'admin')) return [];
  if (!usersCache) usersCache = (await api('GET', '/users')).users;
  return usersCache.filter((u) => u.role === 'agent');
}

async function teamsList() {
  if (!teamsCache) teamsCache = (await api('GET', '/teams')).teams;
  return teamsCache;
}

const CALL_FILTERS = ['agent', 'team', 'from', 'to', 'min_score', 'max_score', 'category', 'channel', 'emotion'];

async function viewCalls(main, ctx) {
  const p = ctx.params;
  const limit = 50;
  const offset = Number(p.offset || 0);
  const query = { limit, offset, utc_offset_minutes: UTC_OFFSET };
  for (const k of CALL_FILTERS) if (p[k]) query[k] = p[k];
  const [list, agents, teams] = await Promise.all([
    api('GET', '/calls' + qs(query)), agentsList(), teamsList(),
  ]);
  if (!ctx.alive()) return;
  clear(main);
  main.appendChild(h('h1', {}, session.is('agent') ? t('nav.myCalls') : t('calls.title')));

  const inputs = {};
  const sel = (name, opts) => (inputs[name] = h('select', { name, 'data-testid': 'filter-' + name },
    option('', t('common.all'), p[name]), opts.map(([v, l]) => option(v, l, p[name]))));
  const inp = (name, attrs) => (inputs[name] = h('input', { name, value: p[name] || '', 'data-testid': 'filter-' + name, ...attrs }));
  const filters = h('form', {
    class: 'filters', 'data-testid': 'calls-filters',
    onsubmit: (e) => {
      e.preventDefault();
      const next = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value) next[k] = el.value;
      go('/calls', next);
    },
  });
  if (!session.is('agent')) {
    filters.appendChild(field(t('calls.agent'), sel('agent', agents.map((u) => [u.username, u.display_name || u.username]))));
    if (!session.is('lead')) filters.appendChild(field(t('calls.team'), sel('team', teams.map((tm) => [tm.id, tm.name]))));
  }
  filters.appendChild(field(t('calls.from'), inp('from', { type: 'date' })));
  filters.appendChild(field(t('calls.to'), inp('to', { type: 'date' })));
  filters.appendChild(field(t('calls.minScore'), inp('min_score', { type: 'number', min: 0, max: 100, class: 'num' })));
  filters.appendChild(field(t('calls.maxScore'), inp('max_score', { type: 'number', min: 0, max: 100, class: 'num' })));
  filters.appendChild(field(t('calls.category'), sel('category', KNOWN_CATEGORIES.map((c) => [c, tv('cat', c)]))));
  filters.appendChild(field(t('calls.channel'), sel('channel', ['voice', 'chat'].map((c) => [c, tv('channel', c)]))));
  filters.appendChild(field(t('calls.emotion'), sel('emotion', ['negative', 'neutral', 'positive'].map((c) => [c, tv('emotion', c)]))));
  filters.appendChild(h('div', { class: 'buttons' },
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'calls-apply' }, t('common.apply')),
    h('button', { type: 'button', onclick: () => go('/calls') }, t('common.reset'))));
  main.appendChild(filters);

  if (!list.calls.length) {
    main.appendChild(h('p', { class: 'muted', 'data-testid': 'calls-empty' }, t('calls.noCalls')));
    return;
  }
  const table = h('table', { class: 'list', 'data-testid': 'calls-table' },
    h('thead', {}, h('tr', {},
      [t('calls.started'), t('calls.agent'), t('calls.team'), t('calls.channel'), t('calls.duration'),
        t('calls.score'), t('calls.hits'), t('calls.emotion'), t('calls.status')].map((c) => h('th', {}, c)))),
    h('tbody', {}, list.calls.map((r) => {
      const id = callId(r);
      const hits = r.hits || {};
      const nHits = Object.values(hits).reduce((a, b) => a + b, 0);
      const dur = r.ended_at ? (r.ended_at - r.started_at) / 1000 : r.duration;
      return h('tr', { 'data-testid': 'call-row', 'data-call-id': id, class: 'clickable', onclick: (e) => { if (e.target.tagName !== 'A') go('/calls/' + encodeURIComponent(id)); } },
        h('td', {}, h('a', { href: '#/calls/' + encodeURIComponent(id), 'data-testid': 'call-link' }, fmtTime(r.started_at))),
        h('td', {}, callAgent(r)),
        h('td', {}, r.team || '–'),
        h('td', {}, tv('channel', r.channel)),
        h('td', {}, fmtDuration(dur)),
        h('td', {}, scoreBadge(r.score, r.manual_score !== null && r.manual_score !== undefined && typeof r.manual_score === 'number')),
        h('td', { title: Object.entries(hits).map(([c, n]) => `${tv('cat', c)} ${n}`).join(', ') },
          nHits ? h('span', { class: 'badge hit' }, String(nHits)) : '0',
          ' ', Object.keys(hits).map((c) => h('span', { class: 'tag' }, tv('cat', c)))),
        h('td', {}, r.worst_emotion ? h('span', { class: 'emo emo-' + r.worst_emotion }, tv('emotion', r.worst_emotion)) : '–',
          r.escalated ? h('span', { class: 'tag warn' }, t('chart.escalating')) : null),
        h('td', {}, tv('status', r.status)));
    })));
  main.appendChild(table);
  const pager = h('div', { class: 'pager' }, t('common.total', { n: list.total }));
  if (offset > 0) pager.appendChild(h('button', { type: 'button', onclick: () => go('/calls', { ...p, offset: Math.max(0, offset - limit) }) }, t('common.prev')));
  if (offset + limit < list.total) pager.appendChild(h('button', { type: 'button', onclick: () => go('/calls', { ...p, offset: offset + limit }) }, t('common.next')));
  main.appendChild(pager);
}

// ---------------------------------------------------------------------------------------------
// One call

async function viewCall(main, ctx, id) {
  const call = await api('GET', '/calls/' + encodeURIComponent(id));
  if (!ctx.alive()) return;
  clear(main);
  const meta = call.meta || call.call || {};
  const canComment = session.is('lead', 'trainer', 'admin');
  const canJudge = session.is('trainer', 'admin');
  const duration = call.summary ? call.summary.duration
    : Math.max(0, ...call.lines.map((l) => l.end ?? l.start));

  main.appendChild(h('a', { href: '#/calls', class: 'back' }, t('call.back')));
  main.appendChild(h('h1', { 'data-testid': 'call-title' }, t('call.title', { id: meta.call_id ?? id })));

  // Facts.
  const facts = h('dl', { class: 'facts', 'data-testid': 'call-facts' },
    h('dt', {}, t('call.agent')), h('dd', { 'data-testid': 'call-agent' }, meta.agent_id ?? meta.agent),
    h('dt', {}, t('call.team')), h('dd', {}, meta.team || '–'),
    h('dt', {}, t('call.channel')), h('dd', {}, tv('channel', meta.channel)),
    h('dt', {}, t('call.language')), h('dd', {}, meta.language),
    h('dt', {}, t('call.started')), h('dd', {}, fmtTime(meta.started_at)),
    h('dt', {}, t('call.duration')), h('dd', {}, fmtDuration(duration)),
    h('dt', {}, t('call.autoScore')), h('dd', {}, call.summary ? scoreBadge(call.summary.score) : '–',
      call.summary ? h('span', { class: 'tag ' + (call.summary.passed ? 'good' : 'bad') }, t(call.summary.passed ? 'call.passed' : 'call.failed')) : null),
    h('dt', {}, t('call.score')), h('dd', {}, scoreBadge(call.score, !!call.manual_score)));
  main.appendChild(facts);
  const actions = h('div', { class: 'buttons' },
    h('button', { type: 'button', onclick: () => downloadExport(id), 'data-testid': 'call-export' }, t('call.export')));
  if (session.is('trainer', 'admin')) {
    actions.appendChild(h('button', {
      type: 'button', 'data-testid': 'call-new-task',
      onclick: () => go('/tasks', { new: meta.agent_id, call: meta.call_id ?? id }),
    }, t('call.newTask')));
  }
  main.appendChild(actions);

  // Emotion timeline.
  main.appendChild(h('h2', {}, t('call.emotion')));
  const customerEmotions = call.emotions.filter((e) => !e.speaker || e.speaker === 'customer');
  main.appendChild(customerEmotions.length
    ? h('div', { class: 'chart-box' }, emotionChart({
      points: customerEmotions, duration, testid: 'emotion-chart',
      marks: call.alerts.map((a) => ({ t: a.alert.t, severity: a.alert.severity, label: a.alert.rule })),
    }))
    : h('p', { class: 'muted', 'data-testid': 'emotion-chart' }, t('call.noEmotion')));

  const layout = h('div', { class: 'call-layout' });
  main.appendChild(layout);
  const left = h('section', { class: 'transcript-col' });
  const right = h('aside', { class: 'side-col' });
  layout.appendChild(left);
  layout.appendChild(right);

  // Transcript with hits in place.
  left.appendChild(h('h2', {}, t('call.transcript')));
  const alertsBySeq = new Map();
  const callAlerts = [];
  for (const a of call.alerts) {
    const seq = a.line_seq ?? a.seq;
    if (seq === null || seq === undefined) callAlerts.push(a);
    else {
      if (!alertsBySeq.has(seq)) alertsBySeq.set(seq, []);
      alertsBySeq.get(seq).push(a);
    }
  }
  const commentsBySeq = new Map();
  for (const c of call.comments) {
    const seq = c.line_seq ?? c.seq;
    if (!commentsBySeq.has(seq)) commentsBySeq.set(seq, []);
    commentsBySeq.get(seq).push(c);
  }
  const emotionAt = lineEmotionFinder(call.lines, customerEmotions);
  const transcript = h('ol', { class: 'transcript', 'data-testid': 'transcript' });
  for (const line of call.lines) {
    transcript.appendChild(lineItem(call, id, line, alertsBySeq.get(line.seq) || [], commentsBySeq.get(line.seq) || [], emotionAt(line), canComment, canJudge, ctx));
  }
  left.appendChild(transcript);
  if (callAlerts.length) {
    left.appendChild(h('h3', {}, t('call.callAlerts')));
    left.appendChild(h('div', { class: 'call-alerts', 'data-testid': 'call-alerts' },
      callAlerts.map((a) => alertItem(id, a, canJudge, ctx))));
  }

  // Side: summary, cards, manual score.
  right.appendChild(h('h2', {}, t('call.summary')));
  const hits = (call.summary && call.summary.hits) || [];
  right.appendChild(hits.length
    ? h('ul', { class: 'hits', 'data-testid': 'summary-hits' }, hits.map((x) => h('li', {
      class: 'clickable',
      onclick: () => {
        const el = document.querySelector(`[data-testid=alert][data-rule="${CSS.escape(x.rule)}"]`);
        if (el) { el.scrollIntoView({ block: 'center' }); el.classList.add('flash'); setTimeout(() => el.classList.remove('flash'), 1200); }
      },
    },
      h('span', { class: 'sev sev-' + x.severity }, tv('severity', x.severity)), ' ',
      h('span', { class: 'mono' }, x.rule), ' · ', tv('cat', x.category), ' ', t('call.count', { n: x.count }))))
    : h('p', { class: 'muted' }, t('call.noHits')));

  right.appendChild(h('h2', {}, t('call.cards')));
  right.appendChild(call.cards.length
    ? h('ul', { class: 'cards', 'data-testid': 'cards' }, call.cards.map((c) => h('li', { 'data-testid': 'card', 'data-card-id': c.card_id },
      h('span', { class: 'time' }, fmtClock(c.t)), ' ',
      h('span', { class: 'tag' }, tv('kind', c.kind)), c.tier ? h('span', { class: 'tag' }, tv('tier', c.tier)) : null, ' ',
      h('strong', {}, c.title), ' ',
      h('span', { class: 'reaction r-' + c.reaction, 'data-testid': 'card-reaction' }, tv('reaction', c.reaction)))))
    : h('p', { class: 'muted' }, t('call.noCards')));

  right.appendChild(manualScoreBox(call, id, ctx));
}

/** The customer's emotion reading right after each line (emotions come per customer line). */
function lineEmotionFinder(lines, emotions) {
  const byStart = new Map();
  for (const e of emotions) byStart.set(Number(e.t).toFixed(2), e);
  return (line) => (line.speaker === 'customer' ? byStart.get(Number(line.start).toFixed(2)) : undefined);
}

function lineItem(call, id, line, alerts, comments, emotion, canComment, canJudge, ctx) {
  const worst = alerts.reduce((w, a) => Math.max(w, { general: 1, serious: 2, fatal: 3 }[a.alert.severity] || 0), 0);
  const sevClass = ['', 'sev-general', 'sev-serious', 'sev-fatal'][worst];
  const li = h('li', {
    class: `line ${line.speaker} ${alerts.length ? 'has-hit ' + sevClass : ''}`,
    'data-testid': 'line', 'data-seq': line.seq, id: 'line-' + line.seq,
  });
  li.appendChild(h('div', { class: 'line-head' },
    h('span', { class: 'speaker' }, tv('speaker', line.speaker)),
    h('span', { class: 'time' }, fmtClock(line.start)),
    emotion ? h('span', { class: 'emo emo-' + emotion.label, title: Number(emotion.score).toFixed(2) }, tv('emotion', emotion.label)) : null));
  const text = h('div', { class: 'text', 'data-testid': 'line-text' });
  if (alerts.length) text.appendChild(h('mark', { class: sevClass, 'data-testid': 'hit-text' }, line.text));
  else text.appendChild(document.createTextNode(line.text));
  li.appendChild(text);
  for (const a of alerts) li.appendChild(alertItem(id, a, canJudge, ctx));

  const list = h('ul', { class: 'comments', 'data-testid': 'comments' }, comments.map((c) => commentItem(id, c, canComment, ctx)));
  li.appendChild(list);
  if (canComment) {
    const slot = h('div');
    const area = h('textarea', { rows: 2, placeholder: t('comment.placeholder'), 'data-testid': 'comment-text', maxlength: 4000 });
    const form = h('form', {
      class: 'comment-form hidden',
      onsubmit: async (e) => {
        e.preventDefault();
        if (!area.value.trim()) return;
        const c = await attempt(slot, () => api('POST', `/calls/${encodeURIComponent(id)}/comments`, { seq: line.seq, text: area.value }));
        if (!c) return;
        area.value = '';
        form.classList.add('hidden');
        list.appendChild(commentItem(id, c, canComment, ctx));
      },
    }, area, h('div', { class: 'buttons' },
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'comment-save' }, t('comment.save')),
      h('button', { type: 'button', onclick: () => form.classList.add('hidden') }, t('common.cancel'))), slot);
    li.appendChild(h('button', {
      type: 'button', class: 'link small', 'data-testid': 'comment-open',
      onclick: () => { form.classList.toggle('hidden'); area.focus(); },
    }, t('comment.add')));
    li.appendChild(form);
  }
  return li;
}

function commentItem(id, c, canDelete) {
  const li = h('li', { 'data-testid': 'comment', 'data-comment-id': c.id },
    h('span', { class: 'who' }, t('common.by', { who: c.author ?? c.by, at: fmtTime(c.at) })), ' ',
    h('span', { class: 'comment-text' }, c.text));
  if (canDelete) {
    li.appendChild(h('button', {
      type: 'button', class: 'link small', title: t('comment.delete'),
      onclick: async () => {
        if (!confirm(t('common.confirmDelete', { what: '“' + c.text.slice(0, 40) + '”' }))) return;
        const ok = await attempt(li, () => api('DELETE', `/calls/${encodeURIComponent(id)}/comments/${c.id}`).then(() => true));
        if (ok) li.remove();
      },
    }, '×'));
  }
  return li;
}

function alertItem(id, a, canJudge) {
  const al = a.alert || a;
  const box = h('div', {
    class: 'alert sev-' + al.severity + (a.verdict ? ' judged v-' + (a.verdict.kind ?? a.verdict.verdict) : ''),
    'data-testid': 'alert', 'data-alert-id': a.id, 'data-rule': al.rule, 'data-category': al.category,
  });
  const fill = (st) => {
    clear(box);
    const v = st.verdict;
    const kind = v ? (v.kind ?? v.verdict) : null;
    box.className = 'alert sev-' + al.severity + (kind ? ' judged v-' + kind : '');
    box.appendChild(h('div', { class: 'alert-head' },
      h('span', { class: 'sev sev-' + al.severity }, tv('severity', al.severity)), ' ',
      h('span', { class: 'tag' }, tv('cat', al.category)), ' ',
      h('span', { class: 'mono' }, al.rule), ' ',
      h('span', { class: 'time' }, fmtClock(al.t)),
      h('span', { class: 'verdict', 'data-testid': 'verdict' },
        kind ? `${t('alert.' + kind)} · ${v.by}${v.note ? ': ' + v.note : ''}` : t('alert.unjudged'))));
    box.appendChild(h('div', { class: 'alert-msg' }, al.message));
    if (canJudge) {
      const slot = h('div');
      const note = h('input', { class: 'note', placeholder: t('alert.note'), 'data-testid': 'verdict-note', maxlength: 500 });
      const send = (verdict) => async () => {
        const body = { verdict };
        if (note.value.trim()) body.note = note.value.trim();
        const updated = await attempt(slot, () => api('PUT', `/calls/${encodeURIComponent(id)}/alerts/${encodeURIComponent(a.id)}/verdict`, body));
        if (updated) fill(updated);
      };
      box.appendChild(h('div', { class: 'buttons' },
        note,
        h('button', { type: 'button', class: kind === 'confirmed' ? 'on' : '', 'data-testid': 'verdict-confirm', onclick: send('confirmed') }, t('alert.confirm')),
        h('button', { type: 'button', class: kind === 'overturned' ? 'on' : '', 'data-testid': 'verdict-overturn', onclick: send('overturned') }, t('alert.overturn')),
        kind ? h('button', { type: 'button', class: 'link small', 'data-testid': 'verdict-clear', onclick: send(null) }, t('alert.clear')) : null));
      box.appendChild(slot);
    }
  };
  fill(a);
  return box;
}

function manualScoreBox(call, id, ctx) {
  const box = h('section', { class: 'manual-score', 'data-testid': 'manual-score' }, h('h2', {}, t('score.title')));
  const m = call.manual_score;
  if (m) {
    box.appendChild(h('p', { 'data-testid': 'manual-score-current' },
      t('score.current', { score: m.score, by: m.by, at: fmtTime(m.at), reason: m.reason })));
  }
  if (!session.is('trainer', 'admin')) {
    if (!m) box.appendChild(h('p', { class: 'muted' }, t('common.none')));
    return box;
  }
  const score = h('input', { type: 'number', min: 0, max: 100, required: true, value: m ? m.score : '', 'data-testid': 'score-value', class: 'num' });
  const reason = h('textarea', { rows: 2, required: true, 'data-testid': 'score-reason', maxlength: 2000 });
  const slot = h('div');
  box.appendChild(h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const ok = await attempt(slot, () => api('PUT', `/calls/${encodeURIComponent(id)}/score`, { score: Number(score.value), reason: reason.value }));
      if (ok) ctx.rerender();
    },
  }, field(t('score.value'), score), field(t('score.reason'), reason),
  h('div', { class: 'buttons' },
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'score-save' }, t('score.save')),
    m ? h('button', {
      type: 'button', 'data-testid': 'score-clear',
      onclick: async () => {
        const ok = await attempt(slot, () => api('DELETE', `/calls/${encodeURIComponent(id)}/score`).then(() => true));
        if (ok) ctx.rerender();
      },
    }, t('score.clear')) : null), slot));
  return box;
}

/** Downloads with the bearer token (a plain link cannot send it). */
async function downloadWithToken(path, accept, filename) {
  const res = await api('GET', path, undefined, { raw: true, accept });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function downloadExport(id) {
  downloadWithToken(`/calls/${encodeURIComponent(id)}/export`, 'application/json', `call-${id}.json`)
    .catch((e) => alert(`${e.code}: ${e.message}`));
}

// ---------------------------------------------------------------------------------------------
// Coaching tasks

function statusLabel(status) {
  return t(status === 'done' ? 'tasks.doneStatus' : 'tasks.' + status);
}

async function viewTasks(main, ctx) {
  const p = ctx.params;
  const query = {};
  if (p.status) query.status = p.status;
  if (p.agent) query.agent = p.agent;
  const [list, agents] = await Promise.all([api('GET', '/tasks' + qs(query)), agentsList()]);
  if (!ctx.alive()) return;
  clear(main);
  main.appendChild(h('h1', {}, session.is('agent') ? t('nav.myTasks') : t('tasks.title')));

  if (session.is('trainer', 'admin')) main.appendChild(newTaskForm(agents, p));

  if (!session.is('agent')) {
    const status = h('select', { 'data-testid': 'filter-status' }, option('', t('common.all'), p.status),
      ['open', 'acknowledged', 'done'].map((s) => option(s, statusLabel(s), p.status)));
    const agent = h('select', { 'data-testid': 'filter-agent' }, option('', t('common.all'), p.agent),
      agents.map((u) => option(u.username, u.display_name || u.username, p.agent)));
    main.appendChild(h('form', {
      class: 'filters',
      onsubmit: (e) => { e.preventDefault(); go('/tasks', { status: status.value, agent: agent.value }); },
    }, field(t('tasks.status'), status), field(t('tasks.agent'), agent),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t('common.apply')))));
  }
  main.appendChild(tasksTable(list.tasks, ctx));
}

function newTaskForm(agents, p) {
  const slot = h('div');
  const agent = h('select', { required: true, 'data-testid': 'task-agent' }, option('', '—', p.new),
    agents.map((u) => option(u.username, `${u.display_name || u.username}${u.team ? ' · ' + u.team : ''}`, p.new)));
  const title = h('input', { required: true, maxlength: 200, 'data-testid': 'task-title' });
  const note = h('textarea', { rows: 2, 'data-testid': 'task-note' });
  const due = h('input', { type: 'date', required: true, value: today(7), 'data-testid': 'task-due' });
  const call = h('input', { value: p.call || '', 'data-testid': 'task-call' });
  const form = h('form', {
    class: 'card new-task', 'data-testid': 'task-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const body = {
        agent: agent.value, title: title.value, note: note.value, due: due.value,
        utc_offset_minutes: UTC_OFFSET, call_ids: call.value.trim() ? [call.value.trim()] : [],
      };
      const task = await attempt(slot, () => api('POST', '/tasks', body));
      if (task) go('/tasks/' + task.id);
    },
  }, h('h2', { 'data-testid': 'task-form-toggle', onclick: () => form.classList.remove('collapsed') }, t('tasks.new')),
  h('div', { class: 'row' }, field(t('tasks.agent'), agent), field(t('tasks.titleField'), title),
    field(t('tasks.due'), due), field(t('tasks.callId'), call)),
  field(t('tasks.note'), note),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'task-create' }, t('tasks.create'))),
  slot);
  if (!p.new) form.classList.add('collapsed');
  return form;
}

function taskActions(task, ctx, slot) {
  const out = [];
  if (session.is('agent') && task.status === 'open') {
    out.push(h('button', {
      type: 'button', class: 'primary', 'data-testid': 'task-ack',
      onclick: async () => { if (await attempt(slot, () => api('POST', `/tasks/${task.id}/acknowledge`))) ctx.rerender(); },
    }, t('tasks.ack')));
  }
  if (session.is('trainer', 'admin') && task.status !== 'done') {
    out.push(h('button', {
      type: 'button', 'data-testid': 'task-done',
      onclick: async () => { if (await attempt(slot, () => api('POST', `/tasks/${task.id}/done`))) ctx.rerender(); },
    }, t('tasks.done')));
  }
  return out;
}

function tasksTable(tasks, ctx) {
  if (!tasks.length) return h('p', { class: 'muted', 'data-testid': 'tasks-empty' }, t('tasks.none'));
  const slot = h('div');
  return h('div', {}, slot, h('table', { class: 'list', 'data-testid': 'tasks-table' },
    h('thead', {}, h('tr', {}, ['#', t('tasks.agent'), t('tasks.titleField'), t('tasks.due'), t('tasks.status'),
      t('tasks.createdBy'), ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, tasks.map((task) => {
      const overdue = task.status !== 'done' && task.due < Date.now();
      return h('tr', { 'data-testid': 'task-row', 'data-task-id': task.id, 'data-status': task.status },
        h('td', {}, h('a', { href: '#/tasks/' + task.id, 'data-testid': 'task-link' }, '#' + task.id)),
        h('td', {}, task.agent),
        h('td', {}, task.title),
        h('td', { class: overdue ? 'bad' : '' }, fmtDue(task.due), overdue ? ' · ' + t('tasks.overdue') : ''),
        h('td', {}, h('span', { class: 'status st-' + task.status, 'data-testid': 'task-status' }, statusLabel(task.status))),
        h('td', {}, task.created_by),
        h('td', {}, taskActions(task, ctx, slot), h('a', { href: '#/tasks/' + task.id, class: 'small' }, t('tasks.progress'))));
    }))));
}

async function viewTask(main, ctx, id) {
  const days = Number(ctx.params.days || 30);
  const progress = await api('GET', `/tasks/${id}/progress` + qs({ days }));
  if (!ctx.alive()) return;
  clear(main);
  const task = progress.task;
  main.appendChild(h('a', { href: '#/tasks', class: 'back' }, t('task.back')));
  main.appendChild(h('h1', {}, t('task.title', { id: task.id }), ' · ', task.title));
  const slot = h('div');
  main.appendChild(h('dl', { class: 'facts' },
    h('dt', {}, t('tasks.agent')), h('dd', {}, task.agent),
    h('dt', {}, t('tasks.createdBy')), h('dd', {}, task.created_by),
    h('dt', {}, t('tasks.created')), h('dd', {}, fmtTime(task.created_at)),
    h('dt', {}, t('tasks.due')), h('dd', {}, fmtDue(task.due)),
    h('dt', {}, t('tasks.updated')), h('dd', {}, fmtTime(task.updated_at)),
    h('dt', {}, t('tasks.status')), h('dd', {}, h('span', { class: 'status st-' + task.status, 'data-testid': 'task-status' }, statusLabel(task.status)))));
  if (task.note) main.appendChild(h('p', { class: 'note-text' }, task.note));
  if ((task.call_ids || []).length) {
    main.appendChild(h('p', {}, t('task.calls_about'), ': ',
      task.call_ids.map((c) => h('a', { href: '#/calls/' + encodeURIComponent(c), class: 'tag' }, c))));
  }
  // Steps: open -> acknowledged -> done.
  const order = ['open', 'acknowledged', 'done'];
  const at = order.indexOf(task.status);
  main.appendChild(h('ol', { class: 'steps', 'data-testid': 'task-steps' }, order.map((s, i) =>
    h('li', { class: i <= at ? 'reached' : '' }, statusLabel(s)))));
  main.appendChild(h('div', { class: 'buttons' }, taskActions(task, ctx, slot)));
  main.appendChild(slot);

  // Before / after.
  main.appendChild(h('h2', {}, t('task.compare')));
  const win = h('input', { type: 'number', min: 1, max: 3650, value: days, class: 'num', 'data-testid': 'task-window' });
  main.appendChild(h('form', {
    class: 'filters', onsubmit: (e) => { e.preventDefault(); go('/tasks/' + id, { days: win.value }); },
  }, field(t('task.window'), win), h('button', { type: 'submit' }, t('common.apply'))));
  const b = progress.before || {};
  const a = progress.after || {};
  const avg = (s) => s.avg_score ?? s.average_score ?? null;
  main.appendChild(h('table', { class: 'list compare', 'data-testid': 'task-compare' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, t('task.before')), h('th', {}, t('task.after')))),
    h('tbody', {},
      h('tr', {}, h('td', {}, t('task.calls')), h('td', {}, b.calls ?? 0), h('td', {}, a.calls ?? 0)),
      h('tr', {}, h('td', {}, t('task.scored')), h('td', {}, b.scored_calls ?? '–'), h('td', {}, a.scored_calls ?? '–')),
      h('tr', {}, h('td', {}, t('task.avg')), h('td', { 'data-testid': 'avg-before' }, fmtNum(avg(b))), h('td', { 'data-testid': 'avg-after' }, fmtNum(avg(a)))))));
  const series = [{ name: t('task.before'), color: '#9aa5b8' }, { name: t('task.after'), color: '#2f6fdf' }];
  main.appendChild(h('div', { class: 'chart-box' }, barChart({
    items: [{ label: t('task.avg'), values: [avg(b), avg(a)] }], series, max: 100, format: (v) => fmtNum(v), testid: 'task-avg-chart',
  })));
  const cats = [...new Set([...Object.keys(b.hits_by_category || {}), ...Object.keys(a.hits_by_category || {})])].sort();
  main.appendChild(h('h3', {}, t('task.hits')));
  main.appendChild(h('div', { class: 'chart-box' }, barChart({
    items: cats.map((c) => ({ label: tv('cat', c), values: [(b.hits_by_category || {})[c] || 0, (a.hits_by_category || {})[c] || 0] })),
    series, testid: 'task-hits-chart',
  })));
}

// ---------------------------------------------------------------------------------------------
// Pack editor (scripts and rules)

const packState = { draft: null, base: null, latest: null, selected: null, served: null, team: null };

function scopeLabel(scope) {
  if (!scope || scope.kind === 'all' || scope === 'all') return t('packs.everyone');
  return t('packs.team', { team: scope.team });
}

async function loadPack() {
  const current = await api('GET', '/packs/current');
  const v = current.version;
  packState.base = v;
  packState.latest = current.latest ?? v.number;
  packState.team = current.team ?? null;
  packState.draft = { ...(v.files || {}) };
  const paths = Object.keys(packState.draft).sort();
  if (!packState.selected || !(packState.selected in packState.draft)) {
    packState.selected = paths.find((p) => p.startsWith('scripts/')) || paths[0] || null;
  }
}

async function viewPacks(main, ctx) {
  const canEdit = session.is('lead', 'admin');
  if (!packState.draft || ctx.params.reload) await loadPack();
  const [versions, teams] = await Promise.all([api('GET', '/packs/versions'), teamsList()]);
  if (!ctx.alive()) return;
  clear(main);
  const newest = versions.versions.length ? versions.versions[0].number : 0;
  main.appendChild(h('h1', {}, t('packs.title')));
  main.appendChild(h('p', { class: 'muted', 'data-testid': 'pack-serving' },
    t('packs.serving', { n: packState.base.number, team: packState.team || t('packs.everyone') }), ' · ',
    t('packs.latest', { n: newest })));
  if (!canEdit) main.appendChild(h('p', { class: 'notice' }, t('packs.readOnly')));

  const result = h('div', { class: 'pack-result', 'data-testid': 'pack-result' });
  const editor = h('textarea', {
    class: 'code', spellcheck: 'false', 'data-testid': 'pack-editor', wrap: 'off', readonly: !canEdit,
    oninput: () => {
      packState.draft[packState.selected] = editor.value;
      markModified();
      gutterSync();
    },
    onscroll: () => { gutter.scrollTop = editor.scrollTop; },
  });
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const gutterSync = () => {
    const n = editor.value.split('\n').length;
    gutter.textContent = Array.from({ length: n }, (_, i) => i + 1).join('\n');
  };
  const fileList = h('ul', { class: 'files', 'data-testid': 'pack-files' });
  const currentPath = h('div', { class: 'mono current-path', 'data-testid': 'pack-current-file' });
  const isModified = (path) => (packState.base.files || {})[path] !== packState.draft[path];
  const markModified = () => {
    for (const li of fileList.children) {
      li.classList.toggle('modified', isModified(li.dataset.path));
    }
  };
  const select = (path, line) => {
    packState.selected = path;
    editor.value = packState.draft[path] ?? '';
    currentPath.textContent = path || '';
    for (const li of fileList.children) li.classList.toggle('selected', li.dataset.path === path);
    gutterSync();
    if (line) {
      const lines = editor.value.split('\n');
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
      editor.focus();
      editor.setSelectionRange(start, start + (lines[line - 1] || '').length);
      editor.scrollTop = Math.max(0, (line - 5) * 18);
    }
  };
  const fillFiles = () => {
    clear(fileList);
    const removed = Object.keys(packState.base.files || {}).filter((p) => !(p in packState.draft));
    for (const path of Object.keys(packState.draft).sort()) {
      fileList.appendChild(h('li', {
        'data-path': path, 'data-testid': 'pack-file',
        class: (path === packState.selected ? 'selected ' : '') + (isModified(path) ? 'modified' : ''),
        onclick: () => select(path),
      }, path));
    }
    for (const path of removed) fileList.appendChild(h('li', { class: 'removed', 'data-path': path }, path));
  };

  const newPath = h('input', { placeholder: t('packs.newFile'), 'data-testid': 'pack-new-path', class: 'mono' });
  const side = h('div', { class: 'pack-side' }, h('h3', {}, t('packs.files')));
  if (canEdit) {
    side.appendChild(h('form', {
      class: 'new-file',
      onsubmit: (e) => {
        e.preventDefault();
        const path = newPath.value.trim().replace(/^\/+/, '');
        if (!path) return;
        if (!(path in packState.draft)) packState.draft[path] = '';
        newPath.value = '';
        fillFiles();
        select(path);
        editor.focus();
      },
    }, newPath, h('button', { type: 'submit', 'data-testid': 'pack-add-file' }, t('packs.addFile'))));
    side.appendChild(h('button', {
      type: 'button', class: 'link small', 'data-testid': 'pack-remove-file',
      onclick: () => {
        const path = packState.selected;
        if (!path || !confirm(t('common.confirmDelete', { what: path }))) return;
        delete packState.draft[path];
        packState.selected = Object.keys(packState.draft).sort()[0] || null;
        fillFiles();
        select(packState.selected);
      },
    }, t('packs.removeFile')));
  }
  side.appendChild(fileList);
  const edit = h('div', { class: 'pack-edit' }, currentPath, h('div', { class: 'editor-wrap' }, gutter, editor));
  main.appendChild(h('div', { class: 'pack-layout' }, side, edit));

  const showProblems = (err) => {
    clear(result);
    if (err.code === 'invalid_pack' && Array.isArray(err.details)) {
      result.appendChild(h('div', { class: 'error', 'data-testid': 'pack-errors', role: 'alert' },
        h('strong', {}, err.code), ' ', t('packs.invalid', { n: err.details.length }),
        h('ul', {}, err.details.map((d) => h('li', {},
          h('button', {
            type: 'button', class: 'link mono problem', 'data-testid': 'pack-error',
            onclick: () => { if (d.file in packState.draft) { fillFiles(); select(d.file, d.line); } },
          }, d.text || `${d.file}:${d.line}: ${d.message}`))))));
    } else if (err.code === 'version_conflict') {
      const d = err.details || {};
      result.appendChild(h('div', { class: 'error', 'data-testid': 'pack-conflict', role: 'alert' },
        h('strong', {}, err.code), ' ', t('packs.conflict', { current: d.current, expected: d.expected })));
    } else {
      result.appendChild(errorBox(err));
    }
  };
  const run = async (fn) => {
    clear(result).appendChild(h('p', { class: 'muted' }, t('common.loading')));
    try {
      await fn();
    } catch (e) {
      if (!e.redirected) showProblems(e);
    }
  };

  if (canEdit) {
    const recent = await api('GET', '/calls' + qs({ limit: 20 }));
    if (!ctx.alive()) return;
    const callInput = h('input', { placeholder: t('packs.previewCall'), 'data-testid': 'preview-call', class: 'mono' });
    const pick = h('select', { onchange: () => { callInput.value = pick.value; } },
      option('', t('packs.pickCall'), ''),
      recent.calls.map((r) => option(callId(r), `${fmtTime(r.started_at)} · ${callAgent(r)} · ${callId(r)}`, '')));
    // A lead publishes to their own team unless they choose everyone.
    const defaultScope = session.is('lead') ? (session.user.team || '') : '';
    const teamSel = h('select', { 'data-testid': 'publish-team' }, option('', t('packs.everyone'), defaultScope),
      teams.filter((tm) => session.is('admin') || tm.id === session.user.team).map((tm) => option(tm.id, t('packs.team', { team: tm.name }), defaultScope)));
    const message = h('input', { placeholder: t('packs.message'), 'data-testid': 'publish-message', maxlength: 2000 });
    main.appendChild(h('div', { class: 'pack-actions' },
      h('div', { class: 'buttons' },
        h('button', {
          type: 'button', 'data-testid': 'pack-validate',
          onclick: () => run(async () => {
            const ok = await api('POST', '/packs/validate', { files: packState.draft });
            clear(result).appendChild(h('div', { class: 'ok', 'data-testid': 'pack-valid' }, t('packs.valid', ok)));
          }),
        }, t('packs.validate')),
        h('button', {
          type: 'button', class: 'link', 'data-testid': 'pack-discard',
          onclick: async () => { packState.draft = null; go('/packs', { reload: Date.now() }); },
        }, t('packs.discard'))),
      h('div', { class: 'buttons' }, callInput, pick,
        h('button', {
          type: 'button', 'data-testid': 'pack-preview',
          onclick: () => run(async () => {
            const callId_ = callInput.value.trim();
            const [pv, stored] = await Promise.all([
              api('POST', '/packs/preview', { files: packState.draft, call_id: callId_ }),
              api('GET', '/calls/' + encodeURIComponent(callId_)),
            ]);
            clear(result).appendChild(previewView(pv, stored));
          }),
        }, t('packs.preview'))),
      h('div', { class: 'buttons' }, field(t('packs.publishTo'), teamSel), message,
        h('button', {
          type: 'button', class: 'primary', 'data-testid': 'pack-publish',
          onclick: () => run(async () => {
            const body = { files: packState.draft, base_version: newest, message: message.value };
            if (teamSel.value) body.team = teamSel.value;
            const v = await api('POST', '/packs/publish', body);
            packState.draft = null;
            await loadPack();
            ctx.rerender().then(() => {
              const slot = document.querySelector('[data-testid=pack-result]');
              if (slot) slot.appendChild(h('div', { class: 'ok', 'data-testid': 'pack-published' }, t('packs.published', { n: v.number })));
            });
          }),
        }, t('packs.publish')))));
  }
  main.appendChild(result);
  fillFiles();
  select(packState.selected);

  // Versions.
  main.appendChild(h('h2', {}, t('packs.versions')));
  const served = new Map();
  for (const [team, n] of Object.entries(versions.served || {})) {
    if (!served.has(n)) served.set(n, []);
    served.get(n).push(team || t('packs.everyone'));
  }
  const diffBox = h('div', { 'data-testid': 'pack-diff-box' });
  main.appendChild(h('table', { class: 'list', 'data-testid': 'pack-versions' },
    h('thead', {}, h('tr', {}, [t('packs.version'), t('packs.author'), t('packs.at'), t('packs.scope'),
      t('packs.message'), t('packs.change'), ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, versions.versions.map((v) => h('tr', { 'data-testid': 'pack-version', 'data-version': v.number },
      h('td', {}, 'v' + v.number, served.has(v.number) ? h('span', { class: 'tag good' }, t('packs.served') + ': ' + served.get(v.number).join(', ')) : null),
      h('td', {}, v.author),
      h('td', {}, fmtTime(v.at)),
      h('td', {}, scopeLabel(v.scope)),
      h('td', {}, v.message, v.rolled_back_from ? h('span', { class: 'tag' }, t('packs.rolledBack', { n: v.rolled_back_from })) : null),
      h('td', { class: 'mono' }, h('span', { class: 'plus' }, '+' + (v.added ?? 0)), ' ', h('span', { class: 'minus' }, '−' + (v.removed ?? 0))),
      h('td', {},
        h('button', {
          type: 'button', class: 'small', 'data-testid': 'version-diff',
          onclick: async () => {
            const full = await attempt(diffBox, () => api('GET', `/packs/versions/${v.number}`));
            if (full) { clear(diffBox).appendChild(diffView(full)); diffBox.scrollIntoView(); }
          },
        }, t('packs.diff')),
        canEdit && v.number !== newest ? h('button', {
          type: 'button', class: 'small', 'data-testid': 'version-rollback',
          onclick: async () => {
            if (!confirm(t('packs.confirmRollback', { n: v.number }))) return;
            await run(async () => {
              const nv = await api('POST', '/packs/rollback', { version: v.number, base_version: newest });
              packState.draft = null;
              await loadPack();
              await ctx.rerender();
              const slot = document.querySelector('[data-testid=pack-result]');
              if (slot) slot.appendChild(h('div', { class: 'ok', 'data-testid': 'pack-rolled-back' }, t('packs.rolledBackTo', { n: nv.number })));
            });
          },
        }, t('packs.rollback')) : null))))));
  main.appendChild(diffBox);
}

function previewView(pv, stored) {
  const hitList = (hits, cls) => h('ul', { class: 'hits ' + cls }, hits.map((x) => h('li', {},
    h('span', { class: 'sev sev-' + x.severity }, tv('severity', x.severity)), ' ',
    h('span', { class: 'mono' }, x.rule), ' · ', tv('cat', x.category), ' · ',
    h('span', { class: 'time' }, fmtClock(x.t)), ' ', h('q', {}, x.text))));
  const before = pv.stored_summary ? pv.stored_summary.score : '–';
  const after = pv.summary ? pv.summary.score : '–';
  return h('div', { class: 'preview', 'data-testid': 'pack-preview-result' },
    h('p', {}, t('packs.scoreChange', { before, after })),
    h('h4', {}, t('packs.added'), ` (${pv.added.length})`), hitList(pv.added, 'added'),
    h('h4', {}, t('packs.removed'), ` (${pv.removed.length})`), hitList(pv.removed, 'removed'),
    h('p', { class: 'muted' }, t('packs.unchanged', { n: pv.unchanged })),
    h('h4', {}, t('packs.cards')),
    previewCards(pv.events || [], (stored && stored.cards) || []));
}

/** The cards the candidate pack shows on the call; those the stored call did not show are marked. */
function previewCards(events, storedCards) {
  const before = new Set(storedCards.map((c) => c.card_id));
  const cards = events.filter((e) => e.type === 'card');
  if (!cards.length) return h('p', { class: 'muted' }, t('call.noCards'));
  return h('ul', { class: 'cards', 'data-testid': 'preview-cards' }, cards.map((c) => h('li', { 'data-card-id': c.id },
    h('span', { class: 'time' }, fmtClock(c.t)), ' ',
    h('span', { class: 'tag' }, tv('kind', c.kind)), c.tier ? h('span', { class: 'tag' }, tv('tier', c.tier)) : null, ' ',
    h('strong', {}, c.title), ' ',
    before.has(c.id) ? null : h('span', { class: 'tag good', 'data-testid': 'preview-new-card' }, t('packs.newCard')))));
}

function diffView(v) {
  const text = v.diff || '';
  const pre = h('pre', { class: 'diff', 'data-testid': 'pack-diff' });
  if (!text.trim()) pre.appendChild(document.createTextNode(t('packs.noDiff')));
  for (const line of text.split('\n')) {
    const cls = line.startsWith('+++') || line.startsWith('---') ? 'file'
      : line.startsWith('+') ? 'plus' : line.startsWith('-') ? 'minus' : line.startsWith('@@') ? 'hunk' : '';
    pre.appendChild(h('span', { class: cls }, line + '\n'));
  }
  return h('div', {}, h('h3', {}, `v${v.number} · ${v.author} · ${fmtTime(v.at)} · ${scopeLabel(v.scope)}`), pre);
}

// ---------------------------------------------------------------------------------------------
// Reports

const REPORT_FILTERS = ['group_by', 'from', 'to', 'team', 'agent', 'channel', 'category'];

async function viewReports(main, ctx) {
  const p = { group_by: 'day', ...ctx.params };
  const query = { utc_offset_minutes: UTC_OFFSET };
  for (const k of REPORT_FILTERS) if (p[k]) query[k] = p[k];
  const [report, agents, teams] = await Promise.all([api('GET', '/reports' + qs(query)), agentsList(), teamsList()]);
  if (!ctx.alive()) return;
  clear(main);
  main.appendChild(h('h1', {}, t('reports.title')));
  const inputs = {};
  const sel = (name, opts, withAll) => (inputs[name] = h('select', { 'data-testid': 'report-' + name },
    withAll === false ? null : option('', t('common.all'), p[name]), opts.map(([v, l]) => option(v, l, p[name]))));
  const form = h('form', {
    class: 'filters', 'data-testid': 'report-filters',
    onsubmit: (e) => {
      e.preventDefault();
      const next = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value) next[k] = el.value;
      go('/reports', next);
    },
  },
  field(t('reports.groupBy'), sel('group_by', ['agent', 'team', 'day', 'week', 'channel', 'category'].map((g) => [g, t('reports.group.' + g)]), false)),
  field(t('calls.from'), inputs.from = h('input', { type: 'date', value: p.from || '', 'data-testid': 'report-from' })),
  field(t('calls.to'), inputs.to = h('input', { type: 'date', value: p.to || '', 'data-testid': 'report-to' })),
  session.is('lead') ? null : field(t('calls.team'), sel('team', teams.map((tm) => [tm.id, tm.name]))),
  field(t('calls.agent'), sel('agent', agents.map((u) => [u.username, u.display_name || u.username]))),
  field(t('calls.channel'), sel('channel', ['voice', 'chat'].map((c) => [c, tv('channel', c)]))),
  field(t('calls.category'), sel('category', KNOWN_CATEGORIES.map((c) => [c, tv('cat', c)]))),
  h('div', { class: 'buttons' },
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'report-run' }, t('reports.run')),
    h('button', {
      type: 'button', 'data-testid': 'report-csv',
      onclick: () => downloadWithToken('/reports' + qs({ ...query, format: 'csv' }), 'text/csv', `report-${p.group_by}.csv`)
        .catch((e) => alert(`${e.code}: ${e.message}`)),
    }, t('reports.csv'))));
  main.appendChild(form);

  const tot = report.totals || {};
  const groups = report.groups || [];
  const keyLabel = (k) => (p.group_by === 'category' ? tv('cat', k) : p.group_by === 'channel' ? tv('channel', k) : k);
  const adoptionAll = Object.values(tot.card_adoption || {}).reduce((acc, a) => ({ shown: acc.shown + a.shown, used: acc.used + a.used }), { shown: 0, used: 0 });
  main.appendChild(h('div', { class: 'kpis', 'data-testid': 'report-kpis' },
    kpi(t('reports.calls'), tot.calls ?? 0, 'kpi-calls'),
    kpi(t('reports.avgScore'), fmtNum(tot.avg_score), 'kpi-avg'),
    kpi(t('reports.aht'), fmtDuration(tot.avg_handle_time_secs), 'kpi-aht'),
    kpi(t('reports.adoption'), adoptionAll.shown ? fmtPct(adoptionAll.used / adoptionAll.shown) : '–', 'kpi-adoption')));

  const grid = h('div', { class: 'chart-grid' });
  main.appendChild(grid);
  const panel = (title, chart) => grid.appendChild(h('section', { class: 'chart-panel' }, h('h3', {}, title), chart));
  panel(t('reports.calls'), barChart({ items: groups.map((g) => ({ label: keyLabel(g.key), value: g.calls })), testid: 'chart-calls' }));
  panel(t('reports.avgScore'), barChart({ items: groups.map((g) => ({ label: keyLabel(g.key), value: g.avg_score })), max: 100, format: (v) => fmtNum(v), testid: 'chart-avg' }));
  panel(t('reports.distribution'), histogram({
    buckets: tot.score_histogram || [], testid: 'chart-distribution',
    labels: Array.from({ length: 10 }, (_, i) => (i === 9 ? '90+' : String(i * 10))),
  }));
  panel(t('reports.hitsByCategory'), barChart({
    items: Object.entries(tot.hits_by_category || {}).sort((a, b) => b[1] - a[1]).map(([c, n]) => ({ label: tv('cat', c), value: n })),
    testid: 'chart-hits',
  }));
  panel(t('reports.aht'), barChart({ items: groups.map((g) => ({ label: keyLabel(g.key), value: g.avg_handle_time_secs })), format: fmtDuration, testid: 'chart-aht' }));
  panel(t('reports.adoption'), barChart({
    items: Object.entries(tot.card_adoption || {}).sort((a, b) => b[1].shown - a[1].shown)
      .map(([id, a]) => ({ label: id, value: a.shown ? a.used / a.shown : 0, shown: a.shown, used: a.used })),
    max: 1, format: fmtPct, testid: 'chart-adoption',
  }));
  panel(t('reports.hotIssues') + ' · ' + t('reports.intents'), barChart({
    items: (tot.top_intents || []).map(([k, n]) => ({ label: k, value: n })), testid: 'chart-intents',
  }));
  panel(t('reports.hotIssues') + ' · ' + t('reports.complaints'), barChart({
    items: (tot.top_complaints || []).map(([k, n]) => ({ label: k, value: n })), testid: 'chart-complaints',
  }));
  panel(t('reports.precision'), barChart({
    items: (report.rule_precision || []).filter((r) => r.precision !== null && r.precision !== undefined)
      .map((r) => ({ label: r.rule, value: r.precision })),
    max: 1, format: fmtPct, testid: 'chart-precision',
  }));

  // Tables.
  main.appendChild(h('h2', {}, t('reports.groups')));
  main.appendChild(h('table', { class: 'list', 'data-testid': 'report-table' },
    h('thead', {}, h('tr', {}, [t('reports.key'), t('reports.calls'), t('reports.avgScore'), t('reports.aht'),
      t('reports.hitsByCategory'), t('reports.adoption')].map((c) => h('th', {}, c)))),
    h('tbody', {}, [...groups, { ...tot, key: t('reports.totals'), total: true }].map((g) => {
      const ad = Object.values(g.card_adoption || {}).reduce((acc, a) => ({ shown: acc.shown + a.shown, used: acc.used + a.used }), { shown: 0, used: 0 });
      return h('tr', { 'data-testid': 'report-row', class: g.total ? 'total' : '' },
        h('td', {}, g.total ? g.key : keyLabel(g.key)),
        h('td', {}, g.calls),
        h('td', {}, fmtNum(g.avg_score)),
        h('td', {}, fmtDuration(g.avg_handle_time_secs)),
        h('td', {}, Object.entries(g.hits_by_category || {}).map(([c, n]) => h('span', { class: 'tag' }, `${tv('cat', c)} ${n}`))),
        h('td', {}, ad.shown ? `${fmtPct(ad.used / ad.shown)} (${ad.used}/${ad.shown})` : '–'));
    }))));
  main.appendChild(h('h2', {}, t('reports.adoption')));
  main.appendChild(h('table', { class: 'list', 'data-testid': 'adoption-table' },
    h('thead', {}, h('tr', {}, [t('reports.cardId'), t('reports.shown'), t('reports.used'), t('reports.adoption')].map((c) => h('th', {}, c)))),
    h('tbody', {}, Object.entries(tot.card_adoption || {}).map(([id, a]) => h('tr', {},
      h('td', { class: 'mono' }, id), h('td', {}, a.shown), h('td', {}, a.used), h('td', {}, a.shown ? fmtPct(a.used / a.shown) : '–'))))));
  main.appendChild(h('h2', {}, t('reports.precision')));
  main.appendChild(h('table', { class: 'list', 'data-testid': 'precision-table' },
    h('thead', {}, h('tr', {}, [t('reports.rule'), t('calls.hits'), t('reports.confirmed'), t('reports.overturned'), t('reports.precisionCol')].map((c) => h('th', {}, c)))),
    h('tbody', {}, (report.rule_precision || []).map((r) => h('tr', { 'data-testid': 'precision-row', 'data-rule': r.rule },
      h('td', { class: 'mono' }, r.rule), h('td', {}, r.hits), h('td', {}, r.confirmed), h('td', {}, r.overturned),
      h('td', {}, fmtPct(r.precision)))))));
}

function kpi(label, value, testid) {
  return h('div', { class: 'kpi', 'data-testid': testid }, h('div', { class: 'kpi-value' }, String(value)), h('div', { class: 'kpi-label' }, label));
}

// ---------------------------------------------------------------------------------------------
// Users, teams, audit, retention (admin)

async function viewUsers(main, ctx) {
  usersCache = null;
  teamsCache = null;
  const [users, teams, retention] = await Promise.all([api('GET', '/users'), api('GET', '/teams'), api('GET', '/admin/retention')]);
  if (!ctx.alive()) return;
  clear(main);
  const slot = h('div');
  main.appendChild(h('h1', {}, t('users.title')));
  main.appendChild(slot);
  const teamOptions = (selected) => [option('', t('users.noTeam'), selected ?? ''), teams.teams.map((tm) => option(tm.id, tm.name, selected ?? ''))];
  const roleOptions = (selected) => ['agent', 'lead', 'trainer', 'admin'].map((r) => option(r, tv('role', r), selected));
  const patch = (u, body) => attempt(slot, () => api('PATCH', `/users/${encodeURIComponent(u.username)}`, body)).then((r) => r && ctx.rerender());

  main.appendChild(h('table', { class: 'list', 'data-testid': 'users-table' },
    h('thead', {}, h('tr', {}, [t('users.username'), t('users.displayName'), t('users.role'), t('users.team'), t('users.disabled'), t('users.created'), ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, users.users.map((u) => h('tr', { 'data-testid': 'user-row', 'data-username': u.username },
      h('td', { class: 'mono' }, u.username),
      h('td', {}, u.display_name),
      h('td', {}, h('select', { onchange: (e) => patch(u, { role: e.target.value }) }, roleOptions(u.role))),
      h('td', {}, h('select', { onchange: (e) => patch(u, { team: e.target.value || null }) }, teamOptions(u.team))),
      h('td', {}, h('input', { type: 'checkbox', checked: u.disabled, onchange: (e) => patch(u, { disabled: e.target.checked }) })),
      h('td', {}, fmtTime(u.created_at)),
      h('td', {},
        h('button', {
          type: 'button', class: 'small',
          onclick: () => {
            const pw = prompt(t('users.newPassword', { user: u.username }));
            if (pw) patch(u, { password: pw });
          },
        }, t('users.resetPassword')),
        u.username === session.user.username ? null : h('button', {
          type: 'button', class: 'small danger',
          onclick: async () => {
            if (!confirm(t('common.confirmDelete', { what: u.username }))) return;
            if (await attempt(slot, () => api('DELETE', `/users/${encodeURIComponent(u.username)}`).then(() => true))) ctx.rerender();
          },
        }, t('common.delete'))))))));

  const nu = {
    username: h('input', { required: true, 'data-testid': 'new-username' }),
    display_name: h('input', { 'data-testid': 'new-display-name' }),
    password: h('input', { type: 'password', required: true, minlength: 8, 'data-testid': 'new-password', autocomplete: 'new-password' }),
    role: h('select', { 'data-testid': 'new-role' }, roleOptions('agent')),
    team: h('select', { 'data-testid': 'new-team' }, teamOptions('')),
  };
  main.appendChild(h('form', {
    class: 'card', 'data-testid': 'user-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const body = { username: nu.username.value.trim(), display_name: nu.display_name.value.trim(), password: nu.password.value, role: nu.role.value };
      if (nu.team.value) body.team = nu.team.value;
      if (await attempt(slot, () => api('POST', '/users', body))) ctx.rerender();
    },
  }, h('h2', {}, t('users.create')), h('div', { class: 'row' },
    field(t('users.username'), nu.username), field(t('users.displayName'), nu.display_name),
    field(t('users.password'), nu.password), field(t('users.role'), nu.role), field(t('users.team'), nu.team)),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'user-create' }, t('users.create')))));

  main.appendChild(h('h1', {}, t('teams.title')));
  main.appendChild(h('table', { class: 'list', 'data-testid': 'teams-table' },
    h('thead', {}, h('tr', {}, [t('teams.id'), t('teams.name'), t('users.created'), ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, teams.teams.map((tm) => h('tr', { 'data-testid': 'team-row' },
      h('td', { class: 'mono' }, tm.id), h('td', {}, tm.name), h('td', {}, fmtTime(tm.created_at)),
      h('td', {}, h('button', {
        type: 'button', class: 'small danger',
        onclick: async () => {
          if (!confirm(t('common.confirmDelete', { what: tm.name }))) return;
          if (await attempt(slot, () => api('DELETE', `/teams/${encodeURIComponent(tm.id)}`).then(() => true))) ctx.rerender();
        },
      }, t('common.delete'))))))));
  const teamId = h('input', { required: true, 'data-testid': 'new-team-id', class: 'mono' });
  const teamName = h('input', { required: true, 'data-testid': 'new-team-name' });
  main.appendChild(h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      if (await attempt(slot, () => api('POST', '/teams', { id: teamId.value.trim(), name: teamName.value.trim() }))) ctx.rerender();
    },
  }, h('div', { class: 'row' }, field(t('teams.id'), teamId), field(t('teams.name'), teamName),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'team-create' }, t('teams.create')))));

  main.appendChild(h('h1', {}, t('retention.title')));
  const purgeOut = h('span', { 'data-testid': 'purge-result' });
  main.appendChild(h('div', { class: 'card' },
    h('p', {}, t('retention.days', { n: retention.retention_days })),
    h('p', {}, t('retention.last', { at: fmtTime(retention.last_purge) })),
    retention.retention_days > 0 ? h('button', {
      type: 'button',
      onclick: async () => {
        const r = await attempt(slot, () => api('POST', '/admin/purge', {}));
        if (r) purgeOut.textContent = t('retention.purged', { n: r.purged });
      },
    }, t('retention.purge')) : null, ' ', purgeOut));
}

async function viewAudit(main, ctx) {
  const p = ctx.params;
  const query = { limit: p.limit || 100 };
  for (const k of ['actor', 'action', 'from', 'to']) if (p[k]) query[k] = p[k];
  const log = await api('GET', '/audit' + qs(query));
  if (!ctx.alive()) return;
  clear(main);
  main.appendChild(h('h1', {}, t('audit.title')));
  const inputs = {
    actor: h('input', { value: p.actor || '', 'data-testid': 'audit-actor' }),
    action: h('select', {}, option('', t('common.all'), p.action),
      ['login', 'login_failed', 'logout', 'publish', 'rollback', 'manual_score', 'verdict', 'delete_call',
        'export_call', 'purge', 'user_created', 'user_updated', 'user_deleted', 'qc_job', 'qc_job_stop'].map((a) => option(a, tv('action', a), p.action))),
    from: h('input', { type: 'date', value: p.from || '' }),
    to: h('input', { type: 'date', value: p.to || '' }),
    limit: h('input', { type: 'number', min: 1, max: 1000, value: query.limit, class: 'num' }),
  };
  main.appendChild(h('form', {
    class: 'filters',
    onsubmit: (e) => {
      e.preventDefault();
      const next = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value) next[k] = el.value;
      go('/audit', next);
    },
  }, field(t('audit.actor'), inputs.actor), field(t('audit.action'), inputs.action),
  field(t('calls.from'), inputs.from), field(t('calls.to'), inputs.to), field(t('audit.limit'), inputs.limit),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t('common.apply')))));
  main.appendChild(h('table', { class: 'list', 'data-testid': 'audit-table' },
    h('thead', {}, h('tr', {}, [t('audit.at'), t('audit.actor'), t('audit.action'), t('audit.target'), t('audit.detail')].map((c) => h('th', {}, c)))),
    h('tbody', {}, log.entries.map((e) => h('tr', { 'data-testid': 'audit-row', 'data-action': e.action },
      h('td', {}, fmtTime(e.at)), h('td', {}, e.actor), h('td', { title: e.action }, tv('action', e.action)),
      h('td', { class: 'mono' }, e.target), h('td', {}, e.detail))))));
}

// ---------------------------------------------------------------------------------------------
// Batch QC jobs on the server (admin)

/** How often the jobs table refreshes while a job runs. */
const QC_REFRESH_MS = 1000;

async function viewQc(main, ctx) {
  const list = await api('GET', '/qc/jobs');
  if (!ctx.alive()) return;
  clear(main);
  main.appendChild(h('h1', {}, t('qc.title')));
  main.appendChild(h('p', { class: 'muted' }, t('qc.intro')));
  const slot = h('div');
  const lastPaths = list.jobs.length ? list.jobs[0].paths.join('\n') : '.';
  const paths = h('textarea', { rows: 3, 'data-testid': 'qc-paths', value: lastPaths });
  const force = h('input', { type: 'checkbox', 'data-testid': 'qc-force' });
  const rate = h('input', { type: 'number', min: 1, value: 200, class: 'num', 'data-testid': 'qc-rate' });
  main.appendChild(h('form', {
    class: 'filters',
    onsubmit: async (e) => {
      e.preventDefault();
      const body = {
        paths: paths.value.split('\n').map((p) => p.trim()).filter((p) => p),
        force: force.checked,
        max_rate: Number(rate.value) || undefined,
      };
      const job = await attempt(slot, () => api('POST', '/qc/jobs', body));
      if (job) ctx.rerender();
    },
  }, field(t('qc.paths'), paths), field(t('qc.rate'), rate),
  h('label', { class: 'field' }, force, h('span', {}, t('qc.force'))),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'qc-start' }, t('qc.start')))));
  main.appendChild(slot);
  main.appendChild(h('h2', {}, t('qc.jobs')));
  const table = h('div', { 'data-testid': 'qc-jobs' });
  main.appendChild(table);
  const draw = (jobs) => {
    clear(table);
    if (!jobs.length) {
      table.appendChild(h('p', { class: 'muted' }, t('qc.noJobs')));
      return;
    }
    table.appendChild(h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, [t('qc.id'), t('qc.state'), t('qc.progress'), t('qc.inspected'), t('qc.skipped'),
        t('qc.failed'), t('qc.badRows'), t('qc.hits'), t('qc.by'), t('qc.startedAt')].map((c) => h('th', {}, c)))),
      h('tbody', {}, jobs.map((j) => {
        const s = j.summary;
        const pct = j.bytes_total ? Math.floor((100 * j.bytes_read) / j.bytes_total) : (j.state === 'running' ? 0 : 100);
        const hits = Object.entries(s.hits_by_category || {}).map(([c, n]) => `${tv('cat', c)} ${n}`).join(', ');
        return h('tr', { 'data-testid': 'qc-job', 'data-state': j.state },
          h('td', { class: 'mono', title: j.paths.join(', ') }, `#${j.id}`),
          h('td', { title: j.error || '' }, tv('qc.state', j.state), j.error ? h('div', { class: 'error' }, j.error) : null,
            j.state === 'running' ? (j.stopping ? h('div', { class: 'muted' }, t('qc.stopping')) : h('button', {
              type: 'button', class: 'link', 'data-testid': 'qc-stop',
              onclick: () => attempt(slot, () => api('POST', `/qc/jobs/${j.id}/stop`, {})),
            }, t('qc.stop'))) : null),
          h('td', { class: 'num' }, `${pct}%`),
          h('td', { class: 'num', 'data-testid': 'qc-inspected' }, s.inspected),
          h('td', { class: 'num' }, s.skipped),
          h('td', { class: 'num' }, s.failed),
          h('td', { class: 'num' }, s.bad_rows),
          h('td', {}, hits || t('common.none'),
            s.problems && s.problems.length ? h('details', {}, h('summary', {}, `${t('qc.problems')}: ${s.problems_total}`),
              h('ul', {}, s.problems.slice(0, 20).map((p) => h('li', { class: 'mono' }, `${p.location}: ${p.message}`)))) : null),
          h('td', {}, j.requested_by),
          h('td', {}, fmtTime(j.started_at)));
      }))));
  };
  draw(list.jobs);
  // Follow a running job until it ends (or the page is left).
  let jobs = list.jobs;
  while (jobs.some((j) => j.state === 'running')) {
    await new Promise((resolve) => setTimeout(resolve, QC_REFRESH_MS));
    if (!ctx.alive()) return;
    jobs = (await api('GET', '/qc/jobs')).jobs;
    if (!ctx.alive()) return;
    draw(jobs);
  }
}

// ---------------------------------------------------------------------------------------------

window.addEventListener('hashchange', render);
window.addEventListener('DOMContentLoaded', render);
