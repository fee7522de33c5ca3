// Worker tables, one per pool: pid, name, command line, state, CPU % and
// RSS each with a sparkline of what this page has seen of that worker,
// uptime; sortable by any column; a pool below its minimum stands out.

import { h, replace } from './dom.js';
import { bytes, duration, num } from './format.js';
import { drawSparkline } from './sparkline.js';

/** Points kept per worker for its sparklines (2 minutes at 1 s). */
const WORKER_POINTS = 120;

const COLUMNS = [
  { key: 'pid', label: 'PID', get: (w) => w.pid },
  { key: 'name', label: 'Name', get: (w) => w.name ?? '' },
  { key: 'cmdline', label: 'Command line', get: (w) => w.cmdline ?? '' },
  { key: 'state', label: 'State', get: (w) => w.state ?? '' },
  { key: 'cpu', label: 'CPU %', get: (w) => w.cpu_percent ?? 0 },
  { key: 'rss', label: 'RSS', get: (w) => w.rss_bytes ?? 0 },
  { key: 'uptime', label: 'Uptime', get: (w) => -(w.start_time_secs ?? 0) },
];

export class WorkersView {
  constructor() {
    this.sort = { key: 'pid', dir: 1 };
    this.root = h('section', { class: 'workers', id: 'workers' });
    this.last = null;
    /** pid -> {t, cpu: [], rss: []}: what the live feed said of each worker. */
    this.seen = new Map();
  }

  /** A full live sample of the host: remembers each worker's CPU and RSS. */
  observe(sample) {
    const t = sample.timestamp_ms;
    const alive = new Set();
    for (const w of sample.workers ?? []) {
      alive.add(w.pid);
      let trace = this.seen.get(w.pid);
      if (!trace) {
        trace = { t: 0, cpu: [], rss: [] };
        this.seen.set(w.pid, trace);
      }
      if (t <= trace.t) continue;
      trace.t = t;
      trace.cpu.push(w.cpu_percent ?? NaN);
      trace.rss.push(w.rss_bytes ?? NaN);
      if (trace.cpu.length > WORKER_POINTS) {
        trace.cpu.shift();
        trace.rss.shift();
      }
    }
    for (const pid of this.seen.keys()) if (!alive.has(pid)) this.seen.delete(pid);
  }

  /** A cell with the value and a sparkline of the worker's recent values. */
  sparkCell(label, text, pid, key, max) {
    const trace = this.seen.get(pid);
    const canvas = h('canvas', { class: 'spark', width: 90, height: 22, 'aria-hidden': 'true', dataset: { points: String(trace?.[key].length ?? 0) } });
    if (trace?.[key].length) {
      const values = trace[key];
      drawSparkline(canvas, Float32Array.from(values), max ?? Math.max(1, ...values.filter(Number.isFinite)) * 1.1);
    }
    return h('td', { class: 'spark-cell', dataset: { label } }, h('span', { text }), canvas);
  }

  sortBy(key) {
    this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
    this.sig = null;
    if (this.last) this.render(...this.last);
  }

  /** `groups`: [{name, min_alive, alive, restarts, workers: [...]}]. */
  render(groups, nowMs) {
    // Rebuilt when the workers changed, or once a second for the ages.
    const sig = `${this.sort.key}${this.sort.dir}|${groups.map((g) => `${g.name}${g.alive}/${g.min_alive}:${(g.workers ?? []).map((w) => `${w.pid}${w.state}${w.cpu_percent}${w.rss_bytes}`).join(',')}`).join('|')}`;
    if (sig === this.sig && nowMs - (this.renderedAt ?? 0) < 1000) return;
    this.sig = sig;
    this.renderedAt = nowMs;
    this.last = [groups, nowMs];
    const col = COLUMNS.find((c) => c.key === this.sort.key) ?? COLUMNS[0];
    const { dir } = this.sort;
    const tables = groups.map((g) => {
      const below = g.alive < g.min_alive;
      const workers = [...(g.workers ?? [])].sort((a, b) => {
        const va = col.get(a);
        const vb = col.get(b);
        return (va < vb ? -1 : va > vb ? 1 : 0) * dir;
      });
      return h('div', { class: `pool-block${below ? ' below-min' : ''}`, dataset: { pool: g.name } },
        h('h3', {},
          h('span', { text: `Pool ${g.name}` }),
          h('span', { class: `pool-count${below ? ' below-min' : ''}`, text: `${g.alive} alive / ${g.min_alive} expected` }),
          below ? h('span', { class: 'badge sev-critical', text: 'below minimum' }) : null,
          h('span', { class: 'muted', text: `restarts ${g.restarts ?? 0}` })),
        h('div', { class: 'table-scroll' },
          h('table', { class: 'workers-table' },
            h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' },
              h('button', {
                type: 'button', class: 'sort', dataset: { key: c.key },
                text: `${c.label}${c.key === col.key ? (dir > 0 ? ' ▲' : ' ▼') : ''}`,
                on: { click: () => this.sortBy(c.key) },
              }))))),
            h('tbody', {}, workers.length
              ? workers.map((w) => h('tr', { dataset: { pid: String(w.pid) } },
                h('td', { dataset: { label: 'PID' }, text: String(w.pid) }),
                h('td', { dataset: { label: 'Name' }, text: w.name ?? '' }),
                h('td', { class: 'cmdline', dataset: { label: 'Command line' }, text: w.cmdline ?? '' }),
                h('td', { dataset: { label: 'State' }, text: w.state ?? '' }),
                this.sparkCell('CPU %', num(w.cpu_percent, 1), w.pid, 'cpu', 100),
                this.sparkCell('RSS', bytes(w.rss_bytes), w.pid, 'rss', null),
                h('td', { dataset: { label: 'Uptime' }, text: w.start_time_secs ? duration(nowMs / 1000 - w.start_time_secs) : '–' })))
              : h('tr', {}, h('td', { colSpan: COLUMNS.length, class: 'muted', text: 'No worker of this pool is running.' }))))));
    });
    replace(this.root,
      h('h2', { text: 'Workers' }),
      tables.length ? tables : h('p', { class: 'muted', text: 'This host declares no worker pools.' }));
  }
}
