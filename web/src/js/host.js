// The host view: what the host is, its charts (history from
// /api/metrics/history for the chosen range with min–max bands, then
// appended from the WebSocket), a shared crosshair and zoom, threshold
// lines and alert markers (hostcharts.js), and its worker tables.

import { h, replace, setText } from './dom.js';
import { TimeChart, available as chartsAvailable } from './charts.js';
import { WorkersView } from './workers.js';
import { chartSpecs, markersFor, thresholdsFor } from './hostcharts.js';
import { fetchHistory as fetchAlertHistory } from './alertapi.js';
import { ago, bytes, clock, duration, hostName, num, pct } from './format.js';

export const RANGES = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800, '30d': 2592000 };
const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
const TARGET_POINTS = 300;

export class HostView {
  constructor(state, hostId, { range = '15m', onRange }) {
    this.state = state;
    this.hostId = hostId;
    this.range = RANGES[range] ? range : '15m';
    this.onRange = onRange;
    this.charts = [];
    this.specs = [];
    this.alertRecords = [];
    this.pending = null; // live samples that arrive while history loads
    this.loadSeq = 0;
    this.info = h('div', { class: 'host-info' });
    this.rangeBar = h('div', { class: 'ranges', role: 'group', 'aria-label': 'Time range' });
    this.resetZoom = h('button', {
      type: 'button', id: 'zoom-reset', class: 'zoom-reset', text: 'Reset zoom', hidden: true,
      on: { click: () => this.zoomTo(null) },
    });
    // The keyboard's way to zoom: halve the span shown, about its middle.
    this.zoomIn = h('button', {
      type: 'button', id: 'zoom-in', class: 'zoom-reset', text: 'Zoom in',
      on: { click: () => this.zoomBy(0.5) },
    });
    this.hint = h('span', { class: 'muted chart-hint', text: 'Drag across a chart to zoom.' });
    this.chartGrid = h('div', { class: 'charts' });
    this.workers = new WorkersView();
    this.root = h('section', { class: 'host', id: 'host', dataset: { host: hostId } },
      this.info, h('div', { class: 'chart-tools' }, this.rangeBar, this.zoomIn, this.resetZoom, this.hint), this.chartGrid, this.workers.root);
    this.onBackfill = (ev) => this.onSample(ev.detail);
    state.addEventListener('backfill', this.onBackfill);
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

  /** Zooms every chart of the host to `[min, max]` seconds; null resets. */
  zoomTo(range) {
    this.zoom = range;
    this.resetZoom.hidden = !range;
    this.charts.forEach((c) => c.setZoom(range));
    if (!range) this.resetZoom.blur();
  }

  /** Scales the span shown by `factor` about its middle. */
  zoomBy(factor) {
    const chart = this.charts[0];
    const [min, max] = this.zoom ?? chart?.window ?? [0, 0];
    if (!(max > min)) return;
    const mid = (min + max) / 2;
    const half = Math.max(5, ((max - min) * factor) / 2);
    this.zoomTo([mid - half, mid + half]);
  }

  /** Loads history for the range and rebuilds the charts. */
  async load() {
    const host = this.host();
    if (!host) return;
    const seq = ++this.loadSeq;
    this.pending = [];
    const windowSecs = RANGES[this.range];
    const intervalSecs = Math.max(1, (host.info.interval_ms ?? 5000) / 1000);
    const step = NICE_STEPS.find((s) => s >= Math.max(windowSecs / TARGET_POINTS, intervalSecs)) ?? 86400;
    const to = Math.floor(this.state.now() / 1000);
    const from = to - windowSecs;
    const specs = chartSpecs(host);
    this.wanted = specs; // what the newest load builds
    const fetches = specs.map((spec) => Promise.all(spec.series.map((s) => this.fetchHistory(s, from, to, step))));
    let results;
    try {
      [results, this.alertRecords] = await Promise.all([
        Promise.all(fetches),
        fetchAlertHistory({ state: 'all', host: this.hostId, limit: 500 }).catch(() => []),
      ]);
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
    const syncKey = `host:${this.hostId}`;
    this.charts = specs.map((spec, ci) => {
      const chart = new TimeChart(this.chartGrid, {
        id: spec.id, title: spec.title, fmt: spec.fmt, max: spec.max, series: spec.series,
        syncKey, onZoom: (min, max) => this.zoomTo([min, max]),
      });
      const cols = ['avg', 'min', 'max'].map((k) => spec.series.map((s, si) => {
        const byT = new Map((results[ci][si]?.buckets ?? []).map((b) => [Math.floor(b.t / 1000), b[k]]));
        return grid.map((t) => (byT.has(t) ? byT.get(t) : null));
      }));
      chart.setData([...grid], cols[0], cols[1], cols[2]);
      // Say so when a chart's history is not kept (yet): it fills live only.
      if (spec.series.length && spec.series.every((x, si) => x.optional && !results[ci][si])) {
        chart.setNote('history not kept by this aggregator yet: live since the page opened');
      }
      chart.setWindow(from, to);
      return chart;
    });
    this.windowSecs = windowSecs;
    this.zoomTo(null);
    this.decorated = null;
    this.decorate();
    const queued = this.pending;
    this.pending = null;
    for (const msg of queued) this.onSample(msg);
    this.root.dataset.loaded = String(seq);
  }

  async fetchHistory(series, from, to, step) {
    if (!series.metric) return null;
    const q = new URLSearchParams({ host: this.hostId, metric: series.metric, from: String(from), to: String(to), step: String(step) });
    const res = await fetch(`/api/metrics/history?${q}`);
    if (res.status === 404) return null;
    // A metric this aggregator does not keep yet (per-core history).
    if (res.status === 400 && series.optional) return null;
    if (!res.ok) throw new Error(`history ${series.metric}: ${res.status}`);
    return res.json();
  }

  /** Thresholds of the rules that apply, and alert markers. */
  decorate() {
    const host = this.host();
    if (!host) return;
    const active = this.state.firingFor(this.hostId);
    const sig = `${this.state.rules.size}|${active.map((a) => `${a.rule}${a.scope}${a.started_at_ms}`).join(',')}`;
    if (sig === this.decorated) return;
    this.decorated = sig;
    this.charts.forEach((chart, i) => {
      chart.setThresholds(thresholdsFor(this.specs[i].id, this.state.rules, host));
      chart.setMarkers(markersFor(this.specs[i].id, this.alertRecords, active, this.state.rules));
    });
  }

  /** A live sample message for any host (or a late one, from a backlog). */
  onSample(msg) {
    if (msg.host_id !== this.hostId || !msg.sample) return;
    if (this.pending) {
      this.pending.push(msg);
      return;
    }
    const s = msg.sample;
    this.workers.observe(s);
    const t = s.timestamp_ms / 1000;
    // New mounts or a different core count: rebuild with fresh history.
    const cores = this.specs.find((c) => c.id === 'cores')?.series.length ?? 0;
    const mounts = this.specs.find((c) => c.id === 'disk')?.series.map((x) => x.label) ?? [];
    const newMounts = (s.system.filesystems ?? []).map((f) => f.mount_point);
    if ((s.system.cpu_per_core?.length ?? cores) !== cores || newMounts.join('\n') !== mounts.join('\n')) {
      this.load();
      return;
    }
    const newest = Math.max(t, this.charts[0]?.x.at(-1) ?? t);
    this.charts.forEach((chart, i) => {
      chart.append(t, this.specs[i].series.map((x) => {
        const v = x.live(s);
        return Number.isFinite(v) ? v : null;
      }), this.gapSecs);
      chart.trim(newest - this.windowSecs);
      chart.setWindow(newest - this.windowSecs, newest);
    });
  }

  /** The host's detail arrived (we subscribed to it): charts built before
   *  its cores and mounts were known are built again. */
  onDetail(hostId) {
    const host = this.host();
    if (hostId !== this.hostId || this.destroyed || !host) return;
    const labels = (specs, id) => (specs.find((c) => c.id === id)?.series ?? []).map((s) => s.label).join('\n');
    const want = chartSpecs(host);
    const built = this.wanted ?? this.specs;
    if (labels(want, 'cores') !== labels(built, 'cores') || labels(want, 'disk') !== labels(built, 'disk')) this.load();
  }

  /**
   * Re-renders the host's details and workers from the state: at most four
   * times a second, however busy the rest of the fleet's feed is.
   */
  update() {
    const wait = (this.updatedAt ?? 0) + 250 - performance.now();
    if (wait > 0 && this.state.version === this.seenVersion) {
      if (!this.updateTimer) this.updateTimer = setTimeout(() => { this.updateTimer = 0; this.update(); }, wait);
      return;
    }
    this.updatedAt = performance.now();
    this.seenVersion = this.state.version;
    const host = this.host();
    if (!host) {
      replace(this.info, h('p', { class: 'muted', text: `Unknown host ${this.hostId}.` }));
      return;
    }
    this.decorate();
    const i = host.info;
    const status = this.state.status(this.hostId);
    const now = this.state.now();
    const l = host.latest;
    const offline = status === 'offline';
    const fact = (label, value, live = false) => h('div', { class: `fact${live && offline ? ' stale' : ''}` },
      h('dt', { text: label }), h('dd', { text: value }));
    replace(this.info,
      h('h1', {}, h('span', { class: 'host-name', text: hostName(this.hostId, i) }),
        h('span', { class: `status status-${status}`, text: status })),
      offline && host.lastSeenMs
        ? h('p', { class: 'stale-note', id: 'host-stale', text: `Offline: the values below are its last, from ${clock(host.lastSeenMs)} (${ago(host.lastSeenMs, now)}).` })
        : null,
      h('dl', { class: 'facts' },
        fact('hostname', i.hostname || '–'),
        fact('OS', [i.os, i.kernel].filter(Boolean).join(' · ') || '–'),
        fact('CPUs', String(i.cpu_count ?? '–')),
        fact('memory', bytes(i.memory_total_bytes)),
        fact('CPU now', l ? pct(l.cpu_percent) : '–', true),
        fact('memory now', l ? pct(l.memory_percent) : '–', true),
        fact('load', l ? `${num(l.load1)} ${num(l.load5)} ${num(l.load15)}` : '–', true),
        fact('uptime', l ? duration(l.uptime_secs) : '–', true),
        fact('processes', l ? String(l.process_count) : '–', true),
        fact('agent', `${i.agent_version ?? '?'} every ${duration((i.interval_ms ?? 0) / 1000)}`),
        fact('last sample', ago(host.lastSeenMs, now))),
      chartsAvailable ? null : h('p', { class: 'notice', text: 'Charts are unavailable in this build.' }));
    this.workers.render(host.groups ?? [], now);
    setText(this.hint, this.zoom ? 'Zoomed: live points keep arriving outside the view.' : 'Drag across a chart to zoom.');
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.updateTimer);
    this.loadSeq += 1;
    this.state.removeEventListener('backfill', this.onBackfill);
    this.charts.forEach((c) => c.destroy());
    this.charts = [];
  }
}
