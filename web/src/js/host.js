// The host view: what the host is, its live charts (history from
// /api/metrics/history for the chosen range, then appended from the
// WebSocket), and its worker tables.

import { h, replace } from './dom.js';
import { TimeChart, available as chartsAvailable } from './charts.js';
import { WorkersView } from './workers.js';
import { ago, bytes, duration, hostName, num, pct, rate } from './format.js';

export const RANGES = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400 };
const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const TARGET_POINTS = 300;

const fsPercent = (fs) => (fs.total_bytes > 0 ? ((fs.total_bytes - fs.available_bytes) * 100) / fs.total_bytes : null);

/** The charts of a host; `series` lists history metric and live value per line. */
function chartSpecs(host) {
  const cores = host.latest?.cpu_per_core?.length || host.info.cpu_count || 1;
  const mounts = (host.latest?.filesystems ?? []).map((f) => f.mount_point);
  return [
    { id: 'cpu', title: 'CPU total', fmt: pct, max: 100, series: [
      { label: 'CPU', metric: 'cpu_percent', live: (s) => s.system.cpu_percent }] },
    { id: 'cores', title: 'CPU per core (live since the page opened)', fmt: pct, max: 100,
      series: Array.from({ length: cores }, (_, i) => ({ label: `core ${i}`, live: (s) => s.system.cpu_per_core?.[i] })) },
    { id: 'memory', title: 'Memory and swap used', fmt: pct, max: 100, series: [
      { label: 'memory', metric: 'memory_percent', live: (s) => s.memory_percent },
      { label: 'swap', metric: 'swap_percent', live: (s) => s.swap_percent }] },
    { id: 'disk', title: 'Disk use per mount', fmt: pct, max: 100,
      series: mounts.map((m) => ({ label: m, metric: `fs_used_percent:${m}`,
        live: (s) => { const fs = s.system.filesystems?.find((f) => f.mount_point === m); return fs ? fsPercent(fs) : null; } })) },
    { id: 'diskio', title: 'Disk I/O', fmt: rate, series: [
      { label: 'read', metric: 'disk_read_bytes_per_sec', live: (s) => s.system.disk_read_bytes_per_sec },
      { label: 'write', metric: 'disk_write_bytes_per_sec', live: (s) => s.system.disk_write_bytes_per_sec }] },
    { id: 'net', title: 'Network I/O', fmt: rate, series: [
      { label: 'received', metric: 'net_rx_bytes_per_sec', live: (s) => s.system.net_rx_bytes_per_sec },
      { label: 'sent', metric: 'net_tx_bytes_per_sec', live: (s) => s.system.net_tx_bytes_per_sec }] },
    { id: 'load', title: 'Load average', fmt: (v) => num(v), series: [
      { label: '1 min', metric: 'load1', live: (s) => s.system.load1 },
      { label: '5 min', metric: 'load5', live: (s) => s.system.load5 },
      { label: '15 min', metric: 'load15', live: (s) => s.system.load15 }] },
  ];
}

export class HostView {
  constructor(state, hostId, { range = '15m', onRange }) {
    this.state = state;
    this.hostId = hostId;
    this.range = RANGES[range] ? range : '15m';
    this.onRange = onRange;
    this.charts = [];
    this.specs = [];
    this.pending = null; // live samples that arrive while history loads
    this.loadSeq = 0;
    this.info = h('div', { class: 'host-info' });
    this.rangeBar = h('div', { class: 'ranges', role: 'group', 'aria-label': 'Time range' });
    this.chartGrid = h('div', { class: 'charts' });
    this.workers = new WorkersView();
    this.root = h('section', { class: 'host', id: 'host', dataset: { host: hostId } },
      this.info, this.rangeBar, this.chartGrid, this.workers.root);
    this.renderRanges();
    this.update();
    this.load();
  }

  host() {
    return this.state.hosts.get(this.hostId);
  }

  renderRanges() {
    replace(this.rangeBar, Object.keys(RANGES).map((r) => h('button', {
      type: 'button', class: `range${r === this.range ? ' active' : ''}`, 'aria-pressed': String(r === this.range),
      dataset: { range: r }, text: r,
      on: { click: () => { this.range = r; this.renderRanges(); this.onRange?.(r); this.load(); } },
    })));
  }

  /** Loads history for the range and rebuilds the charts. */
  async load() {
    const host = this.host();
    if (!host) return;
    const seq = ++this.loadSeq;
    this.pending = [];
    const windowSecs = RANGES[this.range];
    const intervalSecs = Math.max(1, (host.info.interval_ms ?? 5000) / 1000);
    const step = NICE_STEPS.find((s) => s >= Math.max(windowSecs / TARGET_POINTS, intervalSecs)) ?? 3600;
    const to = Math.floor(this.state.now() / 1000);
    const from = to - windowSecs;
    const specs = chartSpecs(host);
    const fetches = specs.map((spec) => Promise.all(spec.series.map((s) => (s.metric ? this.fetchHistory(s.metric, from, to, step) : null))));
    let results;
    try {
      results = await Promise.all(fetches);
    } catch (e) {
      if (seq === this.loadSeq) this.root.dataset.error = String(e.message ?? e);
      results = specs.map((spec) => spec.series.map(() => null));
    }
    if (seq !== this.loadSeq || this.destroyed) return;
    this.charts.forEach((c) => c.destroy());
    this.specs = specs;
    this.gapSecs = Math.max(intervalSecs * 2.5, step * 1.5);
    const start = Math.floor(from / step) * step;
    const grid = [];
    for (let t = start; t <= to; t += step) grid.push(t);
    this.charts = specs.map((spec, ci) => {
      const chart = new TimeChart(this.chartGrid, { id: spec.id, title: spec.title, fmt: spec.fmt, max: spec.max, series: spec.series });
      const hasHistory = spec.series.some((s) => s.metric);
      if (hasHistory) {
        const ys = spec.series.map((s, si) => {
          const byT = new Map((results[ci][si]?.buckets ?? []).map((b) => [Math.floor(b.t / 1000), b.avg]));
          return grid.map((t) => (byT.has(t) ? byT.get(t) : null));
        });
        chart.setData([...grid], ys);
      }
      chart.setWindow(from, to);
      return chart;
    });
    this.windowSecs = windowSecs;
    const queued = this.pending;
    this.pending = null;
    for (const msg of queued) this.onSample(msg);
    this.root.dataset.loaded = String(seq);
  }

  async fetchHistory(metric, from, to, step) {
    const q = new URLSearchParams({ host: this.hostId, metric, from: String(from), to: String(to), step: String(step) });
    const res = await fetch(`/api/metrics/history?${q}`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`history ${metric}: ${res.status}`);
    return res.json();
  }

  /** A live sample message for any host. */
  onSample(msg) {
    if (msg.host_id !== this.hostId || !msg.sample) return;
    if (this.pending) {
      this.pending.push(msg);
      return;
    }
    const s = msg.sample;
    const t = s.timestamp_ms / 1000;
    // New mounts or a different core count: rebuild with fresh history.
    const cores = this.specs.find((c) => c.id === 'cores')?.series.length ?? 0;
    const mounts = this.specs.find((c) => c.id === 'disk')?.series.map((x) => x.label) ?? [];
    const newMounts = (s.system.filesystems ?? []).map((f) => f.mount_point);
    if ((s.system.cpu_per_core?.length ?? cores) !== cores || newMounts.join('\n') !== mounts.join('\n')) {
      this.load();
      return;
    }
    this.charts.forEach((chart, i) => {
      chart.append(t, this.specs[i].series.map((x) => {
        const v = x.live(s);
        return Number.isFinite(v) ? v : null;
      }), this.gapSecs);
      chart.trim(t - this.windowSecs);
      chart.setWindow(t - this.windowSecs, t);
    });
  }

  /** Re-renders the host's details and workers from the state. */
  update() {
    const host = this.host();
    if (!host) {
      replace(this.info, h('p', { class: 'muted', text: `Unknown host ${this.hostId}.` }));
      return;
    }
    const i = host.info;
    const status = this.state.status(this.hostId);
    const now = this.state.now();
    const l = host.latest;
    const fact = (label, value) => h('div', { class: 'fact' }, h('dt', { text: label }), h('dd', { text: value }));
    replace(this.info,
      h('h1', {}, h('span', { class: 'host-name', text: hostName(this.hostId, i) }),
        h('span', { class: `status status-${status}`, text: status })),
      h('dl', { class: 'facts' },
        fact('hostname', i.hostname || '–'),
        fact('OS', [i.os, i.kernel].filter(Boolean).join(' · ') || '–'),
        fact('CPUs', String(i.cpu_count ?? '–')),
        fact('memory', bytes(i.memory_total_bytes)),
        fact('CPU now', l ? pct(l.cpu_percent) : '–'),
        fact('memory now', l ? pct(l.memory_percent) : '–'),
        fact('load', l ? `${num(l.load1)} ${num(l.load5)} ${num(l.load15)}` : '–'),
        fact('uptime', l ? duration(l.uptime_secs) : '–'),
        fact('processes', l ? String(l.process_count) : '–'),
        fact('agent', `${i.agent_version ?? '?'} every ${duration((i.interval_ms ?? 0) / 1000)}`),
        fact('last sample', ago(host.lastSeenMs, now))),
      chartsAvailable ? null : h('p', { class: 'notice', text: 'Charts are unavailable in this build.' }));
    this.workers.render(host.groups ?? [], now);
  }

  destroy() {
    this.destroyed = true;
    this.loadSeq += 1;
    this.charts.forEach((c) => c.destroy());
    this.charts = [];
  }
}
