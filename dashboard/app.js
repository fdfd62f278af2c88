// The live dashboard (GET /dashboard): a plain module, no build step. It reads the control API
// with the page's cookie (or none, when the server has no token): GET /event-log once for
// history, then the GET /events WebSocket for what happens, and the JSON routes — one page of
// /connections at a time, /dns, /calls, /call-records — every few seconds and soon after an
// event that changes them. Text from the wire (a caller's number, a cause) only ever goes in
// through textContent.

const REFRESH_MS = 2000;
const SOON_MS = 150;
const PAGE = 50;
const DEAD_KEPT_MS = 10 * 60 * 1000;
const EVENTS_KEPT = 200;
const RELEASED_KEPT = 20;
const SERIES_S = 120;

const $ = (id) => document.getElementById(id);

const state = {
  connOffset: 0,
  connTotal: 0,
  dns: [],
  dnOffset: 0,
  /** Dead connections by id: what the Connection* events said of each. */
  dead: new Map(),
  released: [],
  events: [],
  counts: { dead: 0, reopened: 0, failed: 0 },
  /** Per-second counts of calls started (EventDialing) and of registered contacts. */
  dialing: new Map(),
  registered: [],
};

// ---- reading the API ----------------------------------------------------------------------

async function get(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (res.status === 401) {
    // The cookie is gone (another token, a restart with a new one): sign in again.
    window.location.assign('/dashboard');
    throw new Error('signed out');
  }
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return { body: await res.json(), res };
}

async function refreshConnections() {
  const { body, res } = await get(`/connections?offset=${state.connOffset}&limit=${PAGE}`);
  state.connTotal = Number(res.headers.get('X-Total-Count') ?? body.length);
  if (state.connOffset > 0 && state.connOffset >= state.connTotal) {
    state.connOffset = Math.max(0, Math.floor((state.connTotal - 1) / PAGE) * PAGE);
    return refreshConnections();
  }
  renderConnections(body);
}

async function refreshDns() {
  state.dns = (await get('/dns')).body;
  renderDns();
}

async function refreshCalls() {
  renderCalls((await get('/calls')).body);
}

async function loadReleased() {
  const { body } = await get(`/call-records?limit=${RELEASED_KEPT}`);
  state.released = body.map((r) => ({ id: r.id, from: r.from ?? r.caller, to: r.to, cause: r.cause ?? '', by: r.releasedBy ?? '', ended: r.endedAt }));
  renderReleased();
}

async function loadHistory() {
  const { body } = await get(`/event-log?limit=${EVENTS_KEPT}`);
  for (const e of body) take(e, false);
  renderEvents();
  renderDead();
}

const pending = new Map();
/** Runs `fn` once, soon; calls in between are one. */
function soon(fn) {
  if (pending.has(fn)) return;
  pending.set(fn, setTimeout(() => {
    pending.delete(fn);
    fn().catch(showError);
  }, SOON_MS));
}

function showError(err) {
  if (err.message !== 'signed out') $('updated').textContent = `could not read the API: ${err.message}`;
}

async function refreshAll() {
  await Promise.all([refreshConnections(), refreshDns(), refreshCalls()]);
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// ---- events -------------------------------------------------------------------------------

/** One event, from the history or live: kept in the log, counted, and the views it concerns. */
function take(e, live) {
  state.events.unshift(e);
  state.events.length = Math.min(state.events.length, EVENTS_KEPT);
  const at = Date.parse(e.time);
  switch (e.event) {
    case 'ConnectionStale':
      state.counts.dead++;
      state.dead.set(e.connectionId, { ...e, at, outcome: e.active.length > 0 ? 'pending' : 'dropped' });
      if (live) {
        soon(refreshConnections);
        soon(refreshDns);
      }
      break;
    case 'ConnectionReopened':
    case 'ConnectionReopenFailed': {
      state.counts[e.event === 'ConnectionReopened' ? 'reopened' : 'failed']++;
      const seen = state.dead.get(e.connectionId) ?? { ...e, at, active: [] };
      state.dead.set(e.connectionId, { ...seen, ...e, at: seen.at, outcome: e.event === 'ConnectionReopened' ? 'reopened' : 'failed' });
      if (live) {
        soon(refreshConnections);
        soon(refreshDns);
      }
      break;
    }
    case 'EventDialing': {
      const s = Math.floor(at / 1000);
      state.dialing.set(s, (state.dialing.get(s) ?? 0) + 1);
      if (live) soon(refreshCalls);
      break;
    }
    case 'EventReleased':
      state.released = [{ id: e.callId, from: e.from ?? e.caller, to: e.to, cause: e.cause, by: e.releasedBy, ended: e.time }, ...state.released.filter((r) => r.id !== e.callId)].slice(0, RELEASED_KEPT);
      if (live) {
        renderReleased();
        soon(refreshCalls);
      }
      break;
    case 'EventRinging':
    case 'EventEstablished':
    case 'EventHeld':
    case 'EventRetrieved':
      if (live) soon(refreshCalls);
      break;
    case 'EventRegistered':
    case 'EventUnregistered':
    case 'EventDNOutOfService':
    case 'EventDNBackInService':
      if (live) {
        soon(refreshDns);
        soon(refreshConnections);
      }
      break;
    default:
      break;
  }
}

function listen() {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${window.location.host}/events`);
  const live = $('live');
  ws.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'badge on';
  });
  ws.addEventListener('message', (m) => {
    const e = JSON.parse(m.data);
    take(e, true);
    renderEvents();
    renderDead();
    renderCounters();
  });
  ws.addEventListener('close', () => {
    live.textContent = 'offline: reconnecting…';
    live.className = 'badge off';
    setTimeout(listen, REFRESH_MS);
  });
}

// ---- rendering ----------------------------------------------------------------------------

/** Replaces a table body's rows: `cells(item)` gives each row's texts, `data(item)` its data-* attributes. */
function rows(tbody, items, cells, data) {
  const out = items.map((item) => {
    const tr = document.createElement('tr');
    for (const [k, v] of Object.entries(data(item))) tr.dataset[k] = v;
    for (const text of cells(item)) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  tbody.replaceChildren(...out);
}

function pager(nav, offset, total, onStep) {
  nav.hidden = total <= PAGE;
  const pages = Math.max(1, Math.ceil(total / PAGE));
  nav.querySelector('.where').textContent = `page ${Math.floor(offset / PAGE) + 1} of ${pages}`;
  nav.onclick = (ev) => {
    const step = Number(ev.target.dataset?.step ?? 0);
    if (step !== 0) onStep(step);
  };
}

const seconds = (s) => (s < 120 ? `${s} s` : s < 7200 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h`);
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

function keepAliveText(k) {
  if (!k.enabled) return 'off';
  const os = (v, unit) => (v === undefined || v === 0 ? 'OS' : `${v}${unit}`);
  return `on · idle ${os(k.idleS, ' s')} · interval ${os(k.intervalS, ' s')} · count ${os(k.count, '')} · user timeout ${os(k.userTimeoutMs, ' ms')}`;
}

function renderConnections(list) {
  $('connections-total').textContent = `(${state.connTotal})`;
  rows($('connection-rows'), list,
    (c) => [c.id, c.transport, c.origin, c.local, c.remote, seconds(c.ageS), seconds(c.idleS), keepAliveText(c.keepAlive), String(c.activeTransactions), c.state],
    (c) => ({ id: c.id, transport: c.transport, keepalive: c.keepAlive.enabled ? 'on' : 'off' }));
  pager($('connections-pager'), state.connOffset, state.connTotal, (step) => {
    state.connOffset = Math.max(0, state.connOffset + step * PAGE);
    refreshConnections().catch(showError);
  });
}

function renderDns() {
  const inService = state.dns.filter((d) => d.state === 'in-service').length;
  $('dns-summary').textContent = `(${inService} in service, ${state.dns.length - inService} out of service)`;
  if (state.dnOffset >= state.dns.length) state.dnOffset = 0;
  const contactText = (c) => `${c.contact} · ${c.transport} · ${c.flowId ? `${c.flowId} ${c.flowState}` : c.flowState} · ${c.expires} s left`;
  rows($('dn-rows'), state.dns.slice(state.dnOffset, state.dnOffset + PAGE),
    (d) => [d.number, d.type, d.state, d.reason, clock(d.since), d.contacts.map(contactText).join('\n') || (d.contact === '*' ? '—' : d.contact)],
    (d) => ({ dn: d.number, state: d.state, contacts: String(d.contacts.length) }));
  pager($('dns-pager'), state.dnOffset, state.dns.length, (step) => {
    state.dnOffset = Math.max(0, state.dnOffset + step * PAGE);
    renderDns();
  });
  const now = Math.floor(Date.now() / 1000);
  state.registered.push([now, state.dns.reduce((n, d) => n + d.contacts.length, 0)]);
  state.registered = state.registered.filter(([s]) => s > now - SERIES_S);
  renderCounters();
}

function legText(leg) {
  return [leg.dn, leg.transport, leg.remote].filter((x) => x).join(' · ');
}

function renderCalls(list) {
  $('calls-total').textContent = `(${list.length})`;
  $('calls-empty').hidden = list.length > 0;
  rows($('call-rows'), list.slice(0, 200),
    (c) => [c.id, c.held ? `${c.state} (held)` : c.state, c.from ?? c.caller, c.to, legText(c.legs.caller), legText(c.legs.callee), clock(c.startedAt), clock(c.answeredAt)],
    (c) => ({ id: c.id, state: c.state }));
}

function renderReleased() {
  rows($('released-rows'), state.released, (r) => [r.id, r.from ?? '', r.to, r.cause, r.by, clock(r.ended)], (r) => ({ id: r.id, cause: r.cause }));
}

function refs(list) {
  return (list ?? []).map((t) => t.method).join(', ');
}

function outcomeText(d) {
  if (d.outcome === 'reopened') return `re-opened to ${d.destination} as ${d.newConnectionId} in ${d.reopenMs} ms; re-sent ${refs(d.resent) || 'nothing'}`;
  if (d.outcome === 'failed') return `re-open to ${d.destination} failed (${d.reason}); failed ${refs(d.failed) || 'nothing'}, released`;
  if (d.outcome === 'pending') return 're-opening…';
  return 'dropped (nothing in flight)';
}

function renderDead() {
  const cutoff = Date.now() - DEAD_KEPT_MS;
  const list = [...state.dead.values()].filter((d) => d.at >= cutoff).sort((a, b) => b.at - a.at);
  $('dead-empty').hidden = list.length > 0;
  rows($('dead-rows'), list,
    (d) => [clock(d.time), d.connectionId, d.transport, d.remote, `${d.detectedBy} (${d.cause})`, refs(d.active) || '—', outcomeText(d)],
    (d) => ({ id: d.connectionId, outcome: d.outcome, detectedBy: d.detectedBy }));
}

function summary(e) {
  const skip = new Set(['event', 'time']);
  return Object.entries(e)
    .filter(([k, v]) => !skip.has(k) && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

function renderEvents() {
  const items = state.events.map((e) => {
    const li = document.createElement('li');
    li.dataset.event = e.event;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = e.event;
    li.append(`${clock(e.time)} `, name, ` ${summary(e)}`);
    return li;
  });
  $('event-log').replaceChildren(...items);
}

function spark(id, values) {
  const max = Math.max(1, ...values);
  const step = 120 / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(24 - (v / max) * 22).toFixed(1)}`).join(' ');
  $(id).querySelector('polyline').setAttribute('points', points);
}

function renderCounters() {
  const now = Math.floor(Date.now() / 1000);
  const perSecond = [];
  for (let s = now - SERIES_S + 1; s <= now; s++) perSecond.push(state.dialing.get(s) ?? 0);
  for (const s of state.dialing.keys()) if (s <= now - SERIES_S) state.dialing.delete(s);
  const last10 = perSecond.slice(-10).reduce((a, b) => a + b, 0) / 10;
  $('counter-calls').querySelector('output').textContent = last10.toFixed(1);
  spark('counter-calls', perSecond);
  const reg = state.registered.map(([, n]) => n);
  $('counter-registered').querySelector('output').textContent = String(reg.at(-1) ?? 0);
  spark('counter-registered', reg);
  $('counter-dead').querySelector('output').textContent = String(state.counts.dead);
  $('counter-reopened').querySelector('output').textContent = String(state.counts.reopened);
  $('counter-failed').querySelector('output').textContent = String(state.counts.failed);
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  await loadHistory();
  listen();
  await Promise.all([refreshAll(), loadReleased()]);
  renderCounters();
  setInterval(() => {
    refreshAll().catch(showError);
    renderDead();
    renderCounters();
  }, REFRESH_MS);
}

start().catch(showError);
