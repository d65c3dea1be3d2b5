// app.js: the rackrun dashboard. Reads the master's JSON API (/api/v1/...):
// the overview polls every second; a job page follows the job's event stream
// with long-polls (?wait=25) and renders log bytes as they arrive.
// Every text from the API goes through textContent, never innerHTML.
// With http_tokens on the master, open the page as /#token=TOKEN (or
// #/job/ID&token=TOKEN): the token is kept in sessionStorage, removed from the
// address bar and sent as "Authorization: Bearer TOKEN" with every API call.
'use strict';

const POLL_MS = 1000;
const WAIT_S = 25;
const LOG_MAX_CHARS = 4 * 1024 * 1024;   // keep the page responsive on huge logs

// ---- small helpers ----

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function badge(state) {
  return el('span', { class: 'badge s-' + (state || 'none') }, state || '-');
}

function age(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
  const m = Math.floor(ms / 60000), h = Math.floor(m / 60);
  return h ? `${h}h${m % 60}m` : `${m}m${Math.floor(ms % 60000 / 1000)}s`;
}

function clock(ms) {
  return ms ? new Date(ms).toLocaleString() : '-';
}

function jobLink(id) {
  return el('a', { href: '#/job/' + id }, '#' + id);
}

function setStatus(text, isError) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.className = 'status' + (isError ? ' error' : '');
}

// Take a token from the URL fragment (never sent to a server, unlike a query).
function takeToken() {
  const match = location.hash.match(/(^#|&)token=([^&]*)/);
  if (match) {
    sessionStorage.setItem('rackrun-token', decodeURIComponent(match[2]));
    const rest = location.hash.replace(match[0], match[1] === '#' ? '#' : '');
    history.replaceState(null, '', location.pathname + location.search + (rest === '#' ? '' : rest));
  }
  return sessionStorage.getItem('rackrun-token');
}

const apiToken = takeToken();

async function api(path) {
  const headers = { Accept: 'application/json' };
  if (apiToken) headers.Authorization = 'Bearer ' + apiToken;
  const response = await fetch(path, { headers });
  const body = await response.json().catch(() => ({ error: 'not JSON', code: response.status }));
  if (!response.ok) throw new Error(`${path}: ${body.error || response.statusText}`);
  return body;
}

function table(headers, rows, emptyText) {
  if (!rows.length) return el('p', { class: 'empty' }, emptyText);
  return el('table', {}, el('thead', {}, el('tr', {}, ...headers.map(h => el('th', {}, h)))),
            el('tbody', {}, ...rows));
}

function section(title, count, ...content) {
  const heading = el('h2', {}, title, count === null ? null : el('span', { class: 'count' }, ` (${count})`));
  return el('section', {}, heading, ...content);
}

// ---- overview ----

function workersSection(data) {
  const rows = data.workers.map(w => el('tr', { class: w.state },
    el('td', {}, w.name), el('td', {}, w.rack || '-'), el('td', {}, badge(w.state)),
    el('td', {}, w.state === 'offline' ? '-' : age(w.heartbeat_age_ms)),
    el('td', {}, w.version || '-'), el('td', {}, w.devices)));
  return section('Workers', data.workers.length,
                 table(['Name', 'Rack', 'State', 'Heartbeat', 'Version', 'Devices'], rows, 'No worker has said hello yet.'));
}

function devicesSection(data) {
  const racks = new Map();
  for (const d of data.devices) {
    const rack = d.rack || d.worker;
    if (!racks.has(rack)) racks.set(rack, []);
    racks.get(rack).push(d);
  }
  const cards = [...racks.entries()].sort().map(([rack, devices]) => el('div', { class: 'rack' },
    el('h3', {}, rack),
    ...devices.map(d => el('div', { class: 'device d-' + d.state, title: d.reason || '' },
      el('span', {}, d.name, ' ', el('small', {}, d.type)),
      el('span', {}, d.job ? jobLink(d.job) : null, ' ', badge(d.state))))));
  return section('Devices', data.devices.length,
                 cards.length ? el('div', { class: 'racks' }, ...cards) : el('p', { class: 'empty' }, 'No devices.'));
}

function jobRows(jobs, now, queued) {
  return jobs.map(j => el('tr', {},
    el('td', {}, jobLink(j.id)), el('td', { class: 'wrap' }, j.name), el('td', {}, j.device_type),
    el('td', {}, queued ? j.priority : (j.device || '-')),
    el('td', {}, badge(j.outcome || j.state)),
    el('td', {}, queued ? age(now - j.submitted_ms) : clock(j.submitted_ms))));
}

async function renderOverview(view) {
  const [workers, devices, queue, recent] = await Promise.all([
    api('/api/v1/workers'), api('/api/v1/devices'),
    api('/api/v1/jobs?state=queued&limit=200'), api('/api/v1/jobs?limit=25')]);
  const now = workers.now_ms;
  queue.jobs.reverse();   // oldest first: the order they wait in (within a priority)
  view.replaceChildren(
    workersSection(workers), devicesSection(devices),
    section('Queue', queue.jobs.length, table(['Job', 'Name', 'Type', 'Priority', 'State', 'Waiting'],
                                              jobRows(queue.jobs, now, true), 'The queue is empty.')),
    section('Recent jobs', null, table(['Job', 'Name', 'Type', 'Device', 'State', 'Submitted'],
                                       jobRows(recent.jobs, now, false), 'No jobs yet.')));
}

// ---- job page ----

function jobInfo(job) {
  const items = [['State', badge(job.state)], ['Outcome', job.outcome ? badge(job.outcome) : '-'],
    ['Reason', job.reason || '-'], ['Device type', job.device_type], ['Device', job.device || '-'],
    ['Worker', job.worker || '-'], ['Priority', job.priority], ['Submitted', clock(job.submitted_ms)],
    ['Started', clock(job.started_ms)], ['Ended', clock(job.ended_ms)]];
  return el('dl', { class: 'info' }, ...items.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function resultsTable(data) {
  const rows = data.results.map(r => el('tr', {}, el('td', {}, r.name || '-'), el('td', {}, badge(r.value)),
    el('td', {}, r.code ?? '-'), el('td', {}, r.measurement ? `${r.measurement} ${r.units || ''}` : '-')));
  return table(['Test', 'Result', 'Exit', 'Measurement'], rows, 'No results yet.');
}

// One structured event as a log line ("[12:00:03] action boot start").
function eventLine(ev) {
  const t = new Date(ev.ts_ms).toLocaleTimeString();
  let text;
  switch (ev.kind) {
  case 'action': text = `action ${ev.name} ${ev.value || ''}${ev.reason ? ': ' + ev.reason : ''}`; break;
  case 'result': text = `result ${ev.name} ${ev.value}${ev.code !== undefined ? ` (exit ${ev.code})` : ''}`; break;
  case 'console_gap': text = `console gap ${((ev.ts_ms - (ev.since_ms || ev.ts_ms)) / 1000).toFixed(1)} s: ${ev.reason || 'unknown'}`; break;
  case 'end': text = `end ${ev.value}${ev.reason ? ': ' + ev.reason : ''}`; break;
  case 'artifact': text = `artifact ${ev.name} (${ev.code} bytes, sha256 ${ev.value || '?'})`; break;
  default: text = `${ev.kind} ${ev.name || ''} ${ev.value || ''}`;
  }
  const cls = 'ev' + (ev.value === 'fail' || ev.value === 'incomplete' ? ' fail' : '') +
              (ev.kind === 'console_gap' ? ' gap' : '');
  return el('span', { class: cls }, `[${t}] ${text}\n`);
}

function logBytes(ev) {
  if (ev.data !== undefined) return new TextEncoder().encode(ev.data);
  const raw = atob(ev.data_base64);
  return Uint8Array.from(raw, c => c.charCodeAt(0));
}

// Console text without terminal control sequences and carriage returns.
function cleanConsole(text) {
  return text.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, '').replace(/\r\n/g, '\n').replace(/\r/g, '');
}

class LogView {
  constructor(pre) {
    this.pre = pre;
    this.decoder = new TextDecoder('utf-8');   // streaming: a character may span two chunks
    this.chars = 0;
  }
  add(ev) {
    const atBottom = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
    let node;
    if (ev.kind === 'log') {
      node = document.createTextNode(cleanConsole(this.decoder.decode(logBytes(ev), { stream: true })));
    } else {
      node = eventLine(ev);
    }
    this.pre.append(node);
    this.chars += node.textContent.length;
    while (this.chars > LOG_MAX_CHARS && this.pre.firstChild) {
      this.chars -= this.pre.firstChild.textContent.length;
      this.pre.firstChild.remove();
    }
    if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
  }
}

async function renderJob(view, id, route) {
  const infoBox = el('div', {}, 'loading…');
  const resultsBox = el('div', {});
  const followNote = el('span', { class: 'follow' }, 'following…');
  const pre = el('pre', { class: 'log' });
  view.replaceChildren(
    el('section', {}, el('h2', {}, 'Job ', '#' + id), infoBox),
    el('section', {}, el('h2', {}, 'Log', followNote), pre),
    el('section', {}, el('h2', {}, 'Results'), resultsBox));
  const refresh = async () => {
    const [job, results] = await Promise.all([api(`/api/v1/jobs/${id}`), api(`/api/v1/jobs/${id}/results`)]);
    if (!route.active) return;
    document.title = `rackrun #${id} ${job.name}`;
    infoBox.replaceChildren(el('p', {}, job.name), jobInfo(job));
    resultsBox.replaceChildren(resultsTable(results));
  };
  await refresh();
  const log = new LogView(pre);
  let from = 0;
  while (route.active) {
    let page;
    try {
      page = await api(`/api/v1/jobs/${id}/log?from=${from}&wait=${WAIT_S}`);
      setStatus('live', false);
    } catch (err) {
      setStatus(err.message, true);
      await new Promise(resolve => setTimeout(resolve, 2000));
      continue;
    }
    if (!route.active) return;
    page.events.forEach(ev => log.add(ev));
    from = page.last_seq;
    if (page.events.some(ev => ev.kind !== 'log')) await refresh().catch(() => {});
    if (page.finished && !page.more) {
      followNote.textContent = 'job finished';
      await refresh().catch(() => {});
      return;
    }
  }
}

// ---- routing ----

let currentRoute = { active: false };

async function pollOverview(view, route) {
  while (route.active) {
    try {
      await renderOverview(view);
      setStatus('updated ' + new Date().toLocaleTimeString(), false);
    } catch (err) {
      setStatus(err.message, true);
    }
    await new Promise(resolve => setTimeout(resolve, POLL_MS));
  }
}

function route() {
  currentRoute.active = false;
  const here = { active: true };
  currentRoute = here;
  const view = document.getElementById('view');
  const match = location.hash.match(/^#\/job\/(\d+)$/);
  if (match) {
    renderJob(view, match[1], here).catch(err => {
      setStatus(err.message, true);
      view.replaceChildren(el('section', {}, el('p', { class: 'empty' }, err.message)));
    });
  } else {
    document.title = 'rackrun';
    pollOverview(view, here);
  }
}

window.addEventListener('hashchange', route);
route();
