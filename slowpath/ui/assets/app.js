// ipfront status page: polls the control API once a second and redraws.
// It reads only what `ipfront ctl` reads and changes state only through the
// endpoints ctl uses (POST /v1/servers/{set}/{server}/drain and /enable).
// Every value is put into the page as text, never as markup.
'use strict';

const POLL_MS = 1000;
const METRICS_EVERY = 5; // polls between reads of /metrics (reload result)
const HISTORY = 60; // sparkline samples kept per server

const state = {
  control: false,
  tick: 0,
  pps: new Map(), // "set/server" -> recent pps samples, oldest first
  reload: null, // {ok, at} from /metrics, or null when not exported
  busy: false,
};

// el builds an element; attrs holds attributes (class, data-*, ...) and
// children are nodes or strings (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, {headers: {Accept: 'application/json'}, cache: 'no-store'});
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    // not JSON: reported below by status
  }
  // /v1/status answers 503 with its usual body while the daemon is not ready.
  if (!r.ok && !(r.status === 503 && body && 'ready' in body)) {
    throw new Error(path + ': ' + ((body && body.error) || r.status + ' ' + r.statusText));
  }
  return body;
}

// optional reads an endpoint a daemon may not have (or not yet run):
// null instead of an error.
async function optional(path) {
  try {
    return await getJSON(path);
  } catch (e) {
    return null;
  }
}

async function readReload() {
  try {
    const r = await fetch('/metrics', {cache: 'no-store'});
    if (!r.ok) return null;
    const text = await r.text();
    const value = (name) => {
      const m = text.match(new RegExp('^' + name + '(?:\\{[^}]*\\})? (\\S+)$', 'm'));
      return m ? Number(m[1]) : null;
    };
    const ok = value('ipfront_config_last_reload_successful');
    if (ok === null) return null;
    return {ok: ok === 1, at: value('ipfront_config_last_reload_success_timestamp_seconds')};
  } catch (e) {
    return null;
  }
}

// ---------------------------------------------------------------- formats

function num(n) {
  if (n === undefined || n === null) return '-';
  const units = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, u] of units) {
    if (Math.abs(n) >= v) return (n / v).toFixed(n / v >= 100 ? 0 : 1) + u;
  }
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

// rate formats a per-second figure: whole numbers, k/M/G above a thousand.
function rate(n) {
  return n >= 1000 ? num(n) : String(Math.round(n || 0));
}

function pct(f) {
  return (100 * (f || 0)).toFixed(1) + '%';
}

function clock(t) {
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? '-' : d.toLocaleTimeString();
}

// serverState is ctl's: drained, down and unresolved as they apply, or up.
function serverState(s) {
  const st = [];
  if (s.drained) st.push('drained');
  if (!s.healthy) st.push('down');
  if (!s.resolved) st.push('unresolved');
  return st.length ? st.join(',') : 'up';
}

function sparkline(samples) {
  const w = 96, h = 20;
  const ns = 'http://www.w3.org/2000/svg'; // the SVG namespace name, not a fetch
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  const max = Math.max(1, ...samples);
  const step = w / (HISTORY - 1);
  const x0 = w - step * (samples.length - 1);
  const pts = samples.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`);
  // The baseline spans the whole minute, so a young history reads as
  // recent rather than as a short line.
  const base = document.createElementNS(ns, 'line');
  base.setAttribute('x1', 0);
  base.setAttribute('x2', w);
  base.setAttribute('y1', h - 0.5);
  base.setAttribute('y2', h - 0.5);
  base.setAttribute('class', 'base');
  svg.append(base);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.append(line);
  return svg;
}

// ---------------------------------------------------------------- render

function renderHeader(status, err) {
  const ready = document.getElementById('ready');
  if (status) {
    ready.textContent = status.ready ? 'ready' : 'not ready';
    ready.className = 'pill ' + (status.ready ? 'ok' : 'bad');
    document.getElementById('generation').textContent = 'generation ' + status.generation;
  }
  const reload = document.getElementById('reload');
  if (state.reload) {
    reload.textContent = 'last reload ' + (state.reload.ok ? 'succeeded' : 'FAILED') +
      (state.reload.at ? ' (last success ' + clock(state.reload.at * 1000) + ')' : '');
    reload.className = 'meta ' + (state.reload.ok ? '' : 'bad-text');
    reload.dataset.ok = state.reload.ok;
  }
  const e = document.getElementById('error');
  if (err) {
    e.textContent = 'Control API unreachable, showing the last good data: ' + err.message;
    e.hidden = false;
  } else {
    e.hidden = true;
    document.getElementById('updated').textContent = 'updated ' + clock(new Date());
  }
}

function renderAlarms(alarms) {
  const banner = document.getElementById('alarms');
  const active = alarms.filter((a) => a.active);
  banner.replaceChildren(...active.map((a) => {
    let text;
    if (a.kind === 'table_full') {
      const t = a.table || {};
      text = `Table full on worker ${a.worker} since ${clock(a.raised)}: ${(t.causes || []).join(', ')}` +
        ` (associations ${t.associations}/${t.capacity}, unproven ${t.unproven}/${t.unproven_limit})`;
    } else {
      const worst = (a.servers || []).slice().sort((x, y) =>
        Math.abs(y.packet_share - y.weight_share) - Math.abs(x.packet_share - x.weight_share))[0];
      text = `Balance alarm on set ${a.set} since ${clock(a.raised)}: deviation ${pct(a.deviation)}` +
        (worst ? ` (${worst.name}: ${pct(worst.packet_share)} of packets, weight share ${pct(worst.weight_share)})` : '');
    }
    return el('div', {class: 'alarm', 'data-alarm': a.id, 'data-kind': a.kind}, el('strong', {}, a.id), ' ', text);
  }));
  banner.hidden = active.length === 0;

  const cleared = alarms.filter((a) => !a.active).slice(-10).reverse();
  document.getElementById('history').replaceChildren(...cleared.map((a) =>
    el('li', {'data-alarm': a.id}, `${a.id}: raised ${clock(a.raised)}, cleared ${clock(a.cleared)}`)));
  document.getElementById('history-section').hidden = cleared.length === 0;
}

function renderSets(sets, servers) {
  const bySet = new Map();
  for (const s of servers.servers) {
    if (!bySet.has(s.set)) bySet.set(s.set, []);
    bySet.get(s.set).push(s);
  }
  const seen = new Set();
  const cards = sets.sets.map((set) => {
    const list = bySet.get(set.name) || [];
    // A server's weight share is its configured weight's share among the
    // servers in service (not drained, healthy, resolved), as the balance
    // alarm reckons it; the effective weight also holds the alarm's own
    // steering, which would hide the imbalance it reports.
    const inService = (s) => !s.drained && s.healthy && s.resolved;
    const weights = list.reduce((sum, s) => sum + (inService(s) ? s.weight : 0), 0);
    const rows = list.map((s) => {
      const key = set.name + '/' + s.name;
      seen.add(key);
      let h = state.pps.get(key);
      if (!h) state.pps.set(key, (h = []));
      h.push(s.pps);
      if (h.length > HISTORY) h.shift();
      const st = serverState(s);
      const wshare = weights && inService(s) ? s.weight / weights : 0;
      let action = null;
      if (state.control) {
        const verb = s.drained ? 'enable' : 'drain';
        action = el('button', {type: 'button', class: verb, 'data-action': verb, 'data-set': set.name,
          'data-server': s.name, 'data-address': s.address}, s.drained ? 'Enable' : 'Drain');
      }
      return el('tr', {'data-server': key, 'data-state': st},
        el('td', {'data-col': 'name'}, el('strong', {}, s.name), el('div', {class: 'meta'}, s.address)),
        el('td', {'data-col': 'state'}, el('span', {class: 'pill state-' + st.split(',')[0]}, st)),
        el('td', {'data-col': 'weight', 'data-label': 'weight / eff', class: 'num'}, `${s.weight} / ${s.effective_weight}`),
        el('td', {'data-col': 'associations', 'data-label': 'assoc', class: 'num'}, num(s.associations)),
        el('td', {'data-col': 'share', 'data-label': 'share', 'data-share': s.share, 'data-weight-share': wshare},
          el('div', {class: 'share'},
            el('span', {class: 'num'}, pct(s.share)),
            el('span', {class: 'meta'}, ' of packets · weight share ' + pct(wshare))),
          shareBar(s.share, wshare)),
        el('td', {'data-col': 'pps', 'data-label': 'pps', class: 'num'}, rate(s.pps)),
        el('td', {'data-col': 'bps', 'data-label': 'bit/s', class: 'num'}, rate(s.bps)),
        el('td', {'data-col': 'spark', 'data-label': 'pps, last minute'}, sparkline(h)),
        state.control ? el('td', {'data-col': 'action'}, action) : null);
    });
    const head = ['server', 'state', 'weight / eff', 'assoc', 'share', 'pps', 'bit/s', 'pps, last minute'];
    if (state.control) head.push('');
    return el('article', {class: 'set', 'data-set': set.name},
      el('h2', {}, set.name, ' ', el('span', {class: 'meta'},
        `${set.vip} ${set.protocols.join('/')} ${set.ports.join(',')} · ${set.method} · ${set.forwarding}` +
        ` · ${num(set.associations)} associations`)),
      el('div', {class: 'scroll'}, el('table', {class: 'servers cards'},
        el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
        el('tbody', {}, rows))));
  });
  for (const key of state.pps.keys()) {
    if (!seen.has(key)) state.pps.delete(key);
  }
  document.getElementById('sets').replaceChildren(...cards);
}

function shareBar(share, wshare) {
  const bar = el('div', {class: 'bar'});
  const fill = el('div', {class: 'fill'});
  fill.style.width = (100 * Math.min(1, share || 0)).toFixed(1) + '%';
  const mark = el('div', {class: 'mark', title: 'weight share'});
  mark.style.left = (100 * Math.min(1, wshare)).toFixed(1) + '%';
  bar.append(fill, mark);
  return bar;
}

function drops(m) {
  const nz = Object.entries(m || {}).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  if (!nz.length) return el('span', {class: 'meta'}, 'none');
  return el('ul', {class: 'drops'}, nz.map(([k, v]) => el('li', {'data-reason': k}, `${k} ${num(v)}`)));
}

function renderWorkers(status, counters) {
  const per = new Map(((counters && counters.workers) || []).map((w) => [w.name, w]));
  const rows = ((status && status.workers) || []).map((w) => {
    const c = per.get(w.name) || {};
    return el('tr', {'data-worker': w.name, 'data-table-full': w.table_full},
      el('td', {}, el('strong', {}, w.name), el('div', {class: 'meta'}, w.cpu < 0 ? 'not pinned' : 'cpu ' + w.cpu)),
      el('td', {class: 'num', 'data-label': 'pps rx / tx'}, `${rate(w.rx_pps)} / ${rate(w.tx_pps)}`),
      el('td', {class: 'num', 'data-label': 'packets rx / tx'}, `${num(w.rx_packets)} / ${num(w.tx_packets)}`),
      el('td', {class: 'num', 'data-label': 'assoc / capacity'}, `${num(w.associations)} / ${num(w.capacity)}`,
        w.table_full ? el('span', {class: 'pill bad'}, 'full') : null),
      el('td', {class: 'num', 'data-label': 'unproven / limit'}, `${num(w.unproven)} / ${num(w.unproven_limit)}`),
      el('td', {'data-col': 'drops', 'data-label': 'drops by reason'}, drops(c.drops)));
  });
  document.getElementById('workers').replaceChildren(
    el('thead', {}, el('tr', {}, ['worker', 'pps rx / tx', 'packets rx / tx', 'assoc / capacity', 'unproven / limit',
      'drops by reason'].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows));
  const totals = document.getElementById('totals');
  if (counters) {
    totals.replaceChildren(`rx ${num(counters.rx_packets)} packets, tx ${num(counters.tx_packets)}, ` +
      `dropped ${num(counters.dropped)}, ${num(counters.associations)} associations ` +
      `(${num(counters.new_associations)} made, ${num(counters.stateless)} stateless) · steered to workers ` +
      `${num(counters.steered_to_xsk)}, passed to the kernel ${num(counters.passed_to_kernel)}, ` +
      `openings shed (overload) ${num(counters.shed_openings)}`);
  }
}

function kv(obj) {
  return el('dl', {class: 'kv'}, Object.entries(obj).map(([k, v]) =>
    [el('dt', {}, k.replaceAll('_', ' ')), el('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));
}

function table(head, rows) {
  return el('div', {class: 'scroll'}, el('table', {},
    el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c)))))));
}

const LIST_MAX = 20;

function renderFeatures(persist, expect, bgp, ha) {
  const show = (id, on) => (document.getElementById(id + '-section').hidden = !on);

  const pr = (persist && persist.records) || [];
  const pc = (persist && persist.counters) || {};
  show('persistence', pr.length > 0 || Object.values(pc).some((v) => v > 0));
  if (persist) {
    document.getElementById('persistence').replaceChildren(kv(pc),
      el('p', {class: 'meta'}, `${pr.length} records` + (pr.length > LIST_MAX ? `, first ${LIST_MAX} shown` : '')),
      table(['group', 'client', 'server', 'age', 'expires in', 'flows'], pr.slice(0, LIST_MAX).map((r) =>
        [r.group, r.client, `${r.server} ${r.address}`, r.age_seconds + 's', r.expires_in_seconds + 's', r.flows])));
  }

  const ex = (expect && expect.expectations) || [];
  const hc = (expect && expect.helper) || {};
  show('expectations', ex.length > 0 || (hc.connections || 0) > 0);
  if (expect) {
    document.getElementById('expectations').replaceChildren(
      el('p', {class: 'meta'}, `${hc.connections || 0} control connections, ${hc.rewrites || 0} rewrites, ` +
        `${hc.expectations_installed || 0} expectations installed, ${hc.expectations_used || 0} used`),
      table(['set', 'mode', 'client', 'port', 'server', 'expires in'], ex.slice(0, LIST_MAX).map((e) =>
        [e.set, e.mode, e.client, e.port, `${e.server} ${e.address}`, e.expires_in_seconds + 's'])));
  }

  show('bgp', !!(bgp && bgp.mode));
  if (bgp && bgp.mode) {
    document.getElementById('bgp').replaceChildren(
      el('p', {}, `mode ${bgp.mode}` + (bgp.node_drained ? ' · node drained' : '') + (bgp.stopping ? ' · stopping' : '') +
        ` · announced ${(bgp.announced || []).join(', ') || 'none'}` +
        ((bgp.withdrawn || []).length ? ` · withdrawn ${bgp.withdrawn.join(', ')}` : '')),
      table(['neighbour', 'asn', 'state', 'since', 'advertised', 'received'], (bgp.neighbors || []).map((n) =>
        [n.address, n.asn, n.state, n.since ? clock(n.since) : '-', n.advertised, n.received])));
  }

  show('ha', !!(ha && ha.enabled));
  if (ha && ha.enabled) {
    document.getElementById('ha').replaceChildren(
      el('p', {}, `listening on ${ha.listen} · ${ha.joined ? 'joined' : 'joining'}`),
      table(['mate', 'state', 'lag', 'sent', 'received', 'imported', 'resyncs', 'rejected'], (ha.mates || []).map((m) =>
        [m.mate, m.state, m.lag_seconds.toFixed(2) + 's', num(m.sent_records), num(m.received_records), num(m.imported),
          m.resyncs_completed, Object.values(m.rejected || {}).reduce((a, b) => a + b, 0)])));
  }
}

// ---------------------------------------------------------------- poll

async function poll() {
  if (state.busy) return;
  state.busy = true;
  try {
    const [status, sets, servers, counters, alarms, persist, expect, bgp, ha] = await Promise.all([
      getJSON('/v1/status'), getJSON('/v1/sets'), getJSON('/v1/servers'), optional('/v1/counters'),
      getJSON('/v1/alarms'), optional('/v1/persistence'), optional('/v1/expectations'), optional('/v1/bgp'),
      optional('/v1/ha'),
    ]);
    if (state.tick++ % METRICS_EVERY === 0) state.reload = await readReload();
    renderHeader(status, null);
    renderAlarms(alarms.alarms || []);
    renderSets(sets, servers);
    renderWorkers(status, counters);
    renderFeatures(persist, expect, bgp, ha);
    document.body.dataset.polls = state.tick;
  } catch (err) {
    renderHeader(null, err);
  } finally {
    state.busy = false;
  }
}

function notice(text, bad) {
  const n = document.getElementById('notice');
  n.textContent = text;
  n.className = 'notice' + (bad ? ' bad' : '');
  n.hidden = false;
}

// One listener for every button: the rows are redrawn each second, and a
// click must reach whichever button is under the pointer now.
document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  const {action, set, server, address} = b.dataset;
  const what = `${set}/${server}`;
  const question = action === 'drain'
    ? `Drain ${server} (${address}) in set ${set}? New connections will avoid it; its existing connections stay.`
    : `Enable ${server} (${address}) in set ${set}? It will take new connections again.`;
  if (!window.confirm(question)) {
    notice(`${action} of ${what} cancelled`);
    return;
  }
  try {
    const r = await fetch(`/v1/servers/${encodeURIComponent(set)}/${encodeURIComponent(server)}/${action}`,
      {method: 'POST', cache: 'no-store'});
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + ' ' + r.statusText);
    notice(`${action === 'drain' ? 'drained' : 'enabled'} ${what} (${address}): effective weight ${body.effective_weight}`);
  } catch (err) {
    notice(`${action} ${what} failed: ${err.message}`, true);
  }
  poll();
});

async function start() {
  const s = await optional('/ui/session');
  state.control = !!(s && s.control);
  document.body.dataset.control = state.control;
  await poll();
  setInterval(poll, POLL_MS);
}

start();
