// The fleet view: counts at the top, then one row per host (a card at phone
// width) with status, CPU, memory, fullest disk, load and workers per pool;
// sortable by any column, filterable by name. Rows are kept by host id and
// updated in place, so hundreds of hosts update cheaply.

import { h, replace, setText } from './dom.js';
import { ago, num, pct } from './format.js';

const COLUMNS = [
  { key: 'name', label: 'Host' },
  { key: 'status', label: 'Status' },
  { key: 'cpu', label: 'CPU' },
  { key: 'memory', label: 'Memory' },
  { key: 'disk', label: 'Fullest disk' },
  { key: 'load', label: 'Load 1m' },
  { key: 'workers', label: 'Workers alive / expected' },
  { key: 'seen', label: 'Last sample' },
];
const STATUS_RANK = { alerting: 0, offline: 1, online: 2 };

export class FleetView {
  constructor(state) {
    this.state = state;
    this.sort = { key: 'name', dir: 1 };
    this.filter = '';
    this.rows = new Map();
    this.counts = h('div', { class: 'counts', id: 'counts' });
    this.filterInput = h('input', {
      type: 'search', id: 'fleet-filter', placeholder: 'Filter hosts by name', 'aria-label': 'Filter hosts by name',
      on: { input: (ev) => { this.filter = ev.target.value.trim().toLowerCase(); this.update(); } },
    });
    this.headRow = h('tr');
    this.tbody = h('tbody');
    this.empty = h('p', { class: 'muted empty', text: 'No hosts yet. Start an agent pointed at this aggregator.' });
    this.root = h('section', { class: 'fleet', id: 'fleet' },
      this.counts,
      h('div', { class: 'toolbar' }, this.filterInput, this.sortSelect = h('select', {
        id: 'fleet-sort', 'aria-label': 'Sort hosts by',
        on: { change: (ev) => { this.sort = { key: ev.target.value, dir: 1 }; this.renderHead(); this.update(); } },
      }, COLUMNS.map((c) => h('option', { value: c.key, text: `Sort: ${c.label}` })))),
      h('table', { class: 'fleet-table' }, h('thead', {}, this.headRow), this.tbody),
      this.empty);
    this.renderHead();
  }

  renderHead() {
    if (this.sortSelect) this.sortSelect.value = this.sort.key;
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
    this.update();
  }

  value(id, host, key) {
    const s = host.summary;
    switch (key) {
      case 'name': return (host.info.hostname || id).toLowerCase();
      case 'status': return STATUS_RANK[this.state.status(id)];
      case 'cpu': return s?.cpu_percent ?? -1;
      case 'memory': return s?.memory_percent ?? -1;
      case 'disk': return s?.disk_used_percent_max ?? -1;
      case 'load': return s?.load1 ?? -1;
      case 'workers': return groupsOf(host).reduce((n, g) => n + (g.alive < g.min_alive ? 1000 : 0) - g.alive, 0) * -1;
      case 'seen': return host.lastSeenMs ?? 0;
      default: return 0;
    }
  }

  update() {
    const state = this.state;
    this.renderCounts();
    const ids = [...state.hosts.keys()].filter((id) => {
      if (!this.filter) return true;
      const host = state.hosts.get(id);
      return id.toLowerCase().includes(this.filter) || (host.info.hostname ?? '').toLowerCase().includes(this.filter);
    });
    const { key, dir } = this.sort;
    ids.sort((a, b) => {
      const va = this.value(a, state.hosts.get(a), key);
      const vb = this.value(b, state.hosts.get(b), key);
      return (va < vb ? -1 : va > vb ? 1 : 0) * dir || a.localeCompare(b);
    });
    for (const [id, row] of this.rows) {
      if (!state.hosts.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    const now = state.now();
    ids.forEach((id, i) => {
      const row = this.rows.get(id) ?? this.createRow(id);
      this.fillRow(row, id, state.hosts.get(id), now);
      if (this.tbody.children[i] !== row.tr) this.tbody.insertBefore(row.tr, this.tbody.children[i] ?? null);
    });
    for (const [id, row] of this.rows) if (!ids.includes(id)) row.tr.remove();
    this.empty.hidden = state.hosts.size > 0;
  }

  createRow(id) {
    const cell = (label) => h('td', { dataset: { label } });
    const link = h('a', { href: `#/host/${encodeURIComponent(id)}`, class: 'host-link' });
    const sub = h('span', { class: 'host-id muted' });
    const status = h('span', { class: 'status' });
    const row = {
      tr: h('tr', { dataset: { host: id } }),
      link, sub, status,
      cpu: cell('CPU'), memory: cell('Memory'), disk: cell('Fullest disk'), load: cell('Load 1m'),
      workers: cell('Workers'), seen: cell('Last sample'),
    };
    row.tr.append(
      h('th', { scope: 'row', class: 'host-cell' }, link, sub),
      h('td', { dataset: { label: 'Status' } }, status),
      row.cpu, row.memory, row.disk, row.load, row.workers, row.seen,
    );
    this.rows.set(id, row);
    return row;
  }

  fillRow(row, id, host, now) {
    const s = host.summary;
    const hostname = host.info.hostname || id;
    setText(row.link, hostname);
    setText(row.sub, hostname === id ? '' : id);
    const status = this.state.status(id);
    setText(row.status, status);
    row.status.className = `status status-${status}`;
    row.tr.className = `host-row row-${status}`;
    setText(row.cpu, s ? pct(s.cpu_percent) : '–');
    setText(row.memory, s ? pct(s.memory_percent) : '–');
    setText(row.disk, s ? pct(s.disk_used_percent_max) : '–');
    setText(row.load, s ? num(s.load1) : '–');
    row.cpu.classList.toggle('hot', (s?.cpu_percent ?? 0) >= 90);
    row.memory.classList.toggle('hot', (s?.memory_percent ?? 0) >= 85);
    row.disk.classList.toggle('hot', (s?.disk_used_percent_max ?? 0) >= 90);
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
  }

  renderCounts() {
    const state = this.state;
    let online = 0;
    let offline = 0;
    let alerting = 0;
    for (const id of state.hosts.keys()) {
      const st = state.status(id);
      if (st === 'offline') offline += 1;
      else if (st === 'alerting') alerting += 1;
      else online += 1;
    }
    const sev = { critical: 0, warning: 0 };
    for (const a of state.alerts.values()) if (a.state === 'firing' && a.severity in sev) sev[a.severity] += 1;
    const count = (n, label, cls) => h('div', { class: `count ${cls}`, dataset: { count: cls } },
      h('span', { class: 'count-n', text: String(n) }), h('span', { class: 'count-label', text: label }));
    replace(this.counts,
      count(state.hosts.size, 'hosts', 'hosts'),
      count(online, 'online', 'online'),
      count(alerting, 'alerting', 'alerting'),
      count(offline, 'offline', 'offline'),
      count(sev.critical, 'critical alerts', 'critical'),
      count(sev.warning, 'warnings', 'warning'));
  }
}

function groupsOf(host) {
  return host.summary?.groups ?? host.groups ?? [];
}
