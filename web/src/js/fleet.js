// The fleet view: counts at the top, then one row per host (a card at phone
// width): host id (hostname beneath), status, CPU and memory as a usage bar
// with a 15-minute sparkline, fullest disk, network, load, workers per pool
// and the age of the last sample; sortable, filterable, and paginated so
// that a fleet of thousands costs the DOM of one page. Rows are kept by host
// id and updated in place, at most a few times a second.

import { h, replace, setText } from './dom.js';
import { ago, clock, hostName, num, pct, rate } from './format.js';
import { drawSparkline } from './sparkline.js';
import { NetPoller, seedTraces } from './fleetdata.js';

const COLUMNS = [
  { key: 'name', label: 'Host' },
  { key: 'status', label: 'Status' },
  { key: 'cpu', label: 'CPU' },
  { key: 'memory', label: 'Memory' },
  { key: 'disk', label: 'Fullest disk' },
  { key: 'net', label: 'Network' },
  { key: 'load', label: 'Load 1m' },
  { key: 'workers', label: 'Workers alive / expected' },
  { key: 'seen', label: 'Last sample' },
];
const STATUS_RANK = { alerting: 0, offline: 1, online: 2 };
export const PAGE_SIZE = 100;
/** The fleet is re-sorted and redrawn at most this often. */
const MIN_UPDATE_MS = 250;

export class FleetView {
  constructor(state) {
    this.state = state;
    this.sort = { key: 'name', dir: 1 };
    this.filter = '';
    this.page = 0;
    this.rows = new Map();
    this.lastUpdate = 0;
    this.timer = 0;
    this.net = new NetPoller(state);
    this.counts = h('div', { class: 'counts', id: 'counts' });
    this.filterInput = h('input', {
      type: 'search', id: 'fleet-filter', placeholder: 'Filter hosts by id or name', 'aria-label': 'Filter hosts by id or name',
      on: { input: (ev) => { this.filter = ev.target.value.trim().toLowerCase(); this.page = 0; this.update(true); } },
    });
    this.headRow = h('tr');
    this.tbody = h('tbody');
    this.empty = h('p', { class: 'muted empty', text: 'No hosts yet. Start an agent pointed at this aggregator.' });
    this.pageInfo = h('span', { class: 'page-info', id: 'fleet-page-info', 'aria-live': 'polite' });
    this.prev = h('button', { type: 'button', id: 'fleet-prev', text: '‹ Previous', on: { click: () => { this.page -= 1; this.update(true); } } });
    this.next = h('button', { type: 'button', id: 'fleet-next', text: 'Next ›', on: { click: () => { this.page += 1; this.update(true); } } });
    this.pager = h('div', { class: 'pager', id: 'fleet-pager' }, this.prev, this.pageInfo, this.next);
    this.sortSelect = h('select', {
      id: 'fleet-sort', 'aria-label': 'Sort hosts by',
      on: { change: (ev) => { this.sort = { key: ev.target.value, dir: 1 }; this.renderHead(); this.update(true); } },
    }, COLUMNS.map((c) => h('option', { value: c.key, text: `Sort: ${c.label}` })));
    this.root = h('section', { class: 'fleet', id: 'fleet' },
      this.counts,
      h('div', { class: 'toolbar' }, this.filterInput, this.sortSelect),
      h('table', { class: 'fleet-table' }, h('thead', {}, this.headRow), this.tbody),
      this.pager,
      this.empty);
    this.renderHead();
  }

  renderHead() {
    this.sortSelect.value = this.sort.key;
    replace(this.headRow, COLUMNS.map((c) => {
      const active = this.sort.key === c.key;
      return h('th', { scope: 'col', 'aria-sort': active ? (this.sort.dir > 0 ? 'ascending' : 'descending') : 'none' },
        h('button', {
          type: 'button', class: 'sort', dataset: { key: c.key },
          text: `${c.label}${active ? (this.sort.dir > 0 ? ' ▲' : ' ▼') : ''}`,
          on: { click: () => this.sortBy(c.key) },
        }));
    }));
  }

  sortBy(key) {
    this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
    this.renderHead();
    this.update(true);
  }

  /** After a reconnect: the sparklines refill what the page missed. */
  refill() {
    for (const host of this.state.hosts.values()) host.trace.seeded = false;
    this.update(true);
  }

  status(id, host, alerting) {
    if (!host.online) return 'offline';
    return alerting.has(id) ? 'alerting' : 'online';
  }

  value(id, host, key, alerting) {
    const s = host.summary;
    switch (key) {
      case 'name': return hostName(id, host.info).toLowerCase();
      case 'status': return STATUS_RANK[this.status(id, host, alerting)];
      case 'cpu': return s?.cpu_percent ?? -1;
      case 'memory': return s?.memory_percent ?? -1;
      case 'disk': return s?.disk_used_percent_max ?? -1;
      case 'net': return netOf(host)?.total ?? -1;
      case 'load': return s?.load1 ?? -1;
      case 'workers': return groupsOf(host).reduce((n, g) => n + (g.alive < g.min_alive ? 1000 : 0) - g.alive, 0) * -1;
      case 'seen': return host.lastSeenMs ?? 0;
      default: return 0;
    }
  }

  /** Redraws; at most every MIN_UPDATE_MS unless `now` (a user's action). */
  update(now = false) {
    if (!this.root.isConnected && !now) return;
    const wait = this.lastUpdate + MIN_UPDATE_MS - performance.now();
    // Samples wait their turn; an alert or a host going away does not.
    if (!now && wait > 0 && this.state.version === this.seenVersion) {
      if (!this.timer) this.timer = setTimeout(() => { this.timer = 0; this.update(); }, wait);
      return;
    }
    clearTimeout(this.timer);
    this.timer = 0;
    this.lastUpdate = performance.now();
    this.seenVersion = this.state.version;
    this.net.start();
    const state = this.state;
    const alerting = new Set();
    for (const a of state.alerts.values()) if (a.state === 'firing' && !state.isSilenced(a)) alerting.add(a.host_id);
    this.renderCounts(alerting);
    const ids = [];
    for (const [id, host] of state.hosts) {
      if (!this.filter || id.toLowerCase().includes(this.filter)
        || (host.info.hostname ?? '').toLowerCase().includes(this.filter)
        || hostName(id, host.info).toLowerCase().includes(this.filter)) ids.push(id);
    }
    const { key, dir } = this.sort;
    const keyed = ids.map((id) => [id, this.value(id, state.hosts.get(id), key, alerting)]);
    keyed.sort(([a, va], [b, vb]) => (va < vb ? -1 : va > vb ? 1 : 0) * dir || a.localeCompare(b));
    const pages = Math.max(1, Math.ceil(keyed.length / PAGE_SIZE));
    this.page = Math.min(Math.max(0, this.page), pages - 1);
    const shown = keyed.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE).map(([id]) => id);
    const visible = new Set(shown);
    for (const [id, row] of this.rows) {
      if (!visible.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    const nowMs = state.now();
    shown.forEach((id, i) => {
      const row = this.rows.get(id) ?? this.createRow(id);
      this.fillRow(row, id, state.hosts.get(id), nowMs, alerting);
      if (this.tbody.children[i] !== row.tr) this.tbody.insertBefore(row.tr, this.tbody.children[i] ?? null);
    });
    this.pager.hidden = pages <= 1;
    setText(this.pageInfo, keyed.length
      ? `Hosts ${this.page * PAGE_SIZE + 1}–${this.page * PAGE_SIZE + shown.length} of ${keyed.length}`
      : 'No host matches');
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
    this.empty.hidden = state.hosts.size > 0;
    seedTraces(state, shown);
  }

  createRow(id) {
    const cell = (label) => h('td', { dataset: { label } });
    const usage = (label) => {
      const td = h('td', { class: 'usage', dataset: { label } });
      td.text = h('span', { class: 'usage-value' });
      td.fill = h('span', { class: 'bar-fill' });
      td.spark = h('canvas', { class: 'spark', width: 90, height: 22, 'aria-hidden': 'true' });
      td.append(td.text, h('span', { class: 'bar', 'aria-hidden': 'true' }, td.fill), td.spark);
      return td;
    };
    const link = h('a', { href: `#/host/${encodeURIComponent(id)}`, class: 'host-link' });
    const sub = h('span', { class: 'host-sub muted' });
    const status = h('span', { class: 'status' });
    const row = {
      tr: h('tr', { dataset: { host: id } }),
      link, sub, status,
      cpu: usage('CPU'), memory: usage('Memory'), disk: cell('Fullest disk'), net: cell('Network'), load: cell('Load 1m'),
      workers: cell('Workers'), seen: cell('Last sample'),
      drawn: { cpu: '', memory: '' },
    };
    row.tr.append(
      h('th', { scope: 'row', class: 'host-cell' }, link, sub),
      h('td', { dataset: { label: 'Status' } }, status),
      row.cpu, row.memory, row.disk, row.net, row.load, row.workers, row.seen,
    );
    this.rows.set(id, row);
    return row;
  }

  fillRow(row, id, host, now, alerting) {
    const s = host.summary;
    setText(row.link, hostName(id, host.info));
    const hostname = host.info.hostname ?? '';
    setText(row.sub, hostname && hostname !== hostName(id, host.info) ? hostname : '');
    const status = this.status(id, host, alerting);
    setText(row.status, status);
    row.status.className = `status status-${status}`;
    const cls = `host-row row-${status}`;
    if (row.tr.className !== cls) row.tr.className = cls;
    // An offline host's numbers are its last ones: say so and how old.
    const staleTitle = status === 'offline' && host.lastSeenMs ? `last values, from ${clock(host.lastSeenMs)}` : null;
    this.fillUsage(row, 'cpu', s?.cpu_percent, 90, host, now, staleTitle);
    this.fillUsage(row, 'memory', s?.memory_percent, 85, host, now, staleTitle);
    setText(row.disk, s ? pct(s.disk_used_percent_max) : '–');
    row.disk.classList.toggle('hot', (s?.disk_used_percent_max ?? 0) >= 90);
    const net = netOf(host);
    setText(row.net, net ? `↓ ${rate(net.rx)} ↑ ${rate(net.tx)}` : '–');
    setText(row.load, s ? num(s.load1) : '–');
    const groups = groupsOf(host);
    const sig = groups.map((g) => `${g.name}:${g.alive}/${g.min_alive}`).join('|');
    if (row.workers.dataset.sig !== sig) {
      row.workers.dataset.sig = sig;
      replace(row.workers, groups.length
        ? groups.map((g) => h('span', { class: `pool${g.alive < g.min_alive ? ' below-min' : ''}`, title: g.alive < g.min_alive ? 'below its minimum' : '' },
          `${g.name} ${g.alive}/${g.min_alive}`))
        : h('span', { class: 'muted', text: 'none' }));
    }
    setText(row.seen, ago(host.lastSeenMs, now));
    for (const td of [row.disk, row.net, row.load, row.workers]) {
      td.classList.toggle('stale', Boolean(staleTitle));
      if (staleTitle) td.title = staleTitle;
      else td.removeAttribute('title');
    }
  }

  fillUsage(row, key, v, hot, host, now, staleTitle) {
    const td = row[key];
    setText(td.text, Number.isFinite(v) ? pct(v) : '–');
    td.fill.style.width = `${Number.isFinite(v) ? Math.max(0, Math.min(100, v)) : 0}%`;
    td.classList.toggle('hot', (v ?? 0) >= hot);
    td.classList.toggle('stale', Boolean(staleTitle));
    if (staleTitle) td.title = staleTitle;
    else td.removeAttribute('title');
    // Redrawn when the trace changed or the window moved on.
    const mark = `${host.trace.version}|${Math.floor(now / 10000)}`;
    if (row.drawn[key] !== mark) {
      row.drawn[key] = mark;
      drawSparkline(td.spark, host.trace.series(key === 'cpu' ? 'cpu' : 'mem', now), 100);
      td.spark.dataset.points = String(host.trace.filled());
    }
  }

  renderCounts(alerting) {
    const state = this.state;
    let online = 0;
    let offline = 0;
    let alertingN = 0;
    for (const [id, host] of state.hosts) {
      const st = this.status(id, host, alerting);
      if (st === 'offline') offline += 1;
      else if (st === 'alerting') alertingN += 1;
      else online += 1;
    }
    const sev = { critical: 0, warning: 0 };
    let silenced = 0;
    for (const a of state.alerts.values()) {
      if (a.state !== 'firing') continue;
      if (state.isSilenced(a)) silenced += 1;
      else if (a.severity in sev) sev[a.severity] += 1;
    }
    const values = [state.hosts.size, online, alertingN, offline, sev.critical, sev.warning, silenced];
    const sig = values.join(',');
    if (this.counts.dataset.sig === sig) return;
    this.counts.dataset.sig = sig;
    const count = (n, label, cls) => h('div', { class: `count ${cls}`, dataset: { count: cls } },
      h('span', { class: 'count-n', text: String(n) }), h('span', { class: 'count-label', text: label }));
    replace(this.counts,
      count(values[0], 'hosts', 'hosts'),
      count(values[1], 'online', 'online'),
      count(values[2], 'alerting', 'alerting'),
      count(values[3], 'offline', 'offline'),
      count(values[4], 'critical alerts', 'critical'),
      count(values[5], 'warnings', 'warning'),
      count(values[6], 'silenced', 'silenced'));
  }
}

function groupsOf(host) {
  return host.summary?.groups ?? host.groups ?? [];
}

/** Network rates: from the live summary when it carries them, else polled. */
function netOf(host) {
  const s = host.summary;
  const rx = s?.net_rx_bytes_per_sec ?? host.net?.rx ?? host.latest?.net_rx_bytes_per_sec;
  const tx = s?.net_tx_bytes_per_sec ?? host.net?.tx ?? host.latest?.net_tx_bytes_per_sec;
  if (!Number.isFinite(rx) && !Number.isFinite(tx)) return null;
  return { rx, tx, total: (rx || 0) + (tx || 0) };
}
