// Time-series charts over uPlot. A chart owns its columns (x in seconds;
// per series the average and, from history, the bucket's min and max drawn
// as a band around it), draws nulls as gaps, appends live points and slots
// in late ones, trims to the visible window, and redraws at most once per
// animation frame. The charts of one host share a crosshair (uPlot's
// cursor sync) and a zoom (dragging across one zooms them all, through the
// `onZoom` callback); legends show the values under the cursor, else the
// latest. Threshold lines and alert start/end markers are drawn on top.

import { h } from './dom.js';

/**
 * uPlot's minified build, a classic script that index.html runs first.
 * Missing when the aggregator was built without it (npm ci not run).
 */
const uPlot = globalThis.uPlot;
export const available = typeof uPlot === 'function';

const PALETTE = ['#2f7ed8', '#e4572e', '#29a36a', '#a05fd6', '#e0a100', '#17a2b8', '#d6457a', '#7a8b99'];
const HEIGHT = 180;

export function color(i) {
  return PALETTE[i % PALETTE.length];
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

export class TimeChart {
  /**
   * @param {HTMLElement} parent
   * @param {{title: string, id: string, series: {label: string}[], fmt: (v: number) => string,
   *   max?: number, syncKey?: string, onZoom?: (min: number, max: number) => void}} opts
   */
  constructor(parent, opts) {
    this.opts = opts;
    const n = opts.series.length;
    this.x = [];
    this.ys = opts.series.map(() => []);
    this.lo = opts.series.map(() => []);
    this.hi = opts.series.map(() => []);
    this.thresholds = [];
    this.markers = [];
    this.zoom = null;
    this.hovering = false;
    this.frame = 0;
    this.body = h('div', { class: 'chart-body' });
    this.note = h('span', { class: 'chart-note muted' });
    this.root = h('figure', { class: 'chart', id: `chart-${opts.id}`, dataset: { chart: opts.id } },
      h('figcaption', {}, opts.title, ' ', this.note), this.body);
    parent.appendChild(this.root);
    if (!available) {
      this.body.appendChild(h('p', { class: 'muted', text: 'Charts unavailable: this aggregator was built without its chart library (npm ci --prefix web).' }));
      return;
    }
    const fg = cssVar('--muted', '#888');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.2)');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const value = (u, v) => (v == null ? '–' : opts.fmt(v));
    const bandSeries = [];
    const bands = [];
    opts.series.forEach((s, i) => {
      // Series 1..n are the averages; then a (max, min) pair per series.
      const hiIdx = 1 + n + 2 * i;
      bandSeries.push(
        { label: `${s.label} max`, stroke: 'transparent', width: 0, points: { show: false }, value },
        { label: `${s.label} min`, stroke: 'transparent', width: 0, points: { show: false }, value },
      );
      bands.push({ series: [hiIdx, hiIdx + 1], fill: withAlpha(color(i), 0.18) });
    });
    this.plot = new uPlot({
      width: this.width(),
      height: HEIGHT,
      cursor: {
        drag: { x: true, y: false, setScale: false },
        sync: opts.syncKey ? { key: opts.syncKey, setSeries: false } : undefined,
      },
      legend: { live: true },
      bands,
      scales: {
        x: { time: true, range: (u, min, max) => (this.zoom ?? this.window ?? [min, max]) },
        y: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(opts.max ?? 0, (max ?? 1) * 1.1 || 1)] },
      },
      axes: [axis, { ...axis, size: 84, values: (u, vals) => vals.map((v) => opts.fmt(v)) }],
      series: [
        { value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })) },
        ...opts.series.map((s, i) => ({
          label: s.label, stroke: color(i), width: 1.5, spanGaps: false, points: { show: false }, value,
        })),
        ...bandSeries,
      ],
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        setCursor: [(u) => { if (u.cursor.idx == null) this.showLatest(); }],
        draw: [(u) => this.drawOverlay(u)],
      },
    }, this.columns(), this.body);
    // The band series' own legend rows would only repeat the band.
    this.plot.root.querySelectorAll('.u-legend .u-series').forEach((row, i) => {
      if (i > n) row.hidden = true;
    });
    this.resizer = new ResizeObserver(() => this.plot.setSize({ width: this.width(), height: HEIGHT }));
    this.resizer.observe(this.root);
  }

  columns() {
    const bandCols = [];
    this.ys.forEach((_, i) => bandCols.push(this.hi[i], this.lo[i]));
    return [this.x, ...this.ys, ...bandCols];
  }

  width() {
    return Math.max(200, Math.floor(this.root.clientWidth || 300) - 8);
  }

  /** A drag across the plot: zoom every chart of the host to it. */
  onSelect(u) {
    const { left, width } = u.select;
    if (width < 4) return;
    const min = u.posToVal(left, 'x');
    const max = u.posToVal(left + width, 'x');
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (this.opts.onZoom) this.opts.onZoom(min, max);
    else this.setZoom([min, max]);
  }

  /** Shows `[min, max]` seconds instead of the window; null goes back. */
  setZoom(range) {
    this.zoom = range;
    this.root.dataset.zoomed = range ? 'true' : 'false';
    this.redraw();
  }

  /** Legend values of the newest point while the cursor is elsewhere. */
  showLatest() {
    if (!this.plot) return;
    for (let i = this.x.length - 1; i >= 0; i -= 1) {
      if (this.ys.some((col) => col[i] != null)) {
        this.plot.setLegend({ idx: i }, false);
        return;
      }
    }
  }

  /** A short remark beside the title, such as where its data comes from. */
  setNote(text) {
    this.note.textContent = text ? `(${text})` : '';
  }

  /** Horizontal lines: `[{value, severity, label}]`. */
  setThresholds(list) {
    this.thresholds = list;
    this.root.dataset.thresholds = String(list.length);
    this.redraw();
  }

  /** Vertical lines: `[{t (seconds), kind: "start"|"end", label}]`. */
  setMarkers(list) {
    this.markers = list;
    this.root.dataset.markers = String(list.length);
    this.redraw();
  }

  drawOverlay(u) {
    if (!this.thresholds.length && !this.markers.length) return;
    const { ctx, bbox } = u;
    const ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = 1 * ratio;
    ctx.setLineDash([6 * ratio, 4 * ratio]);
    for (const th of this.thresholds) {
      const y = u.valToPos(th.value, 'y', true);
      if (y < bbox.top || y > bbox.top + bbox.height) continue;
      ctx.strokeStyle = th.severity === 'critical' ? cssVar('--crit', '#b42318') : cssVar('--warn', '#8a5a00');
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
    }
    ctx.setLineDash([2 * ratio, 3 * ratio]);
    for (const m of this.markers) {
      const x = u.valToPos(m.t, 'x', true);
      if (x < bbox.left || x > bbox.left + bbox.width) continue;
      ctx.strokeStyle = m.kind === 'end' ? cssVar('--ok', '#1d7f4e') : cssVar('--crit', '#b42318');
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  /** Fixes the visible time window, in seconds. */
  setWindow(from, to) {
    this.window = [from, to];
    this.redraw();
  }

  /**
   * Replaces the data: `x` in seconds, `ys[i]` aligned with it (null = gap),
   * and optionally each bucket's `lows[i]` and `highs[i]`.
   */
  setData(x, ys, lows = null, highs = null) {
    this.x = x;
    this.ys = ys;
    this.lo = lows ?? ys.map((col) => [...col]);
    this.hi = highs ?? ys.map((col) => [...col]);
    this.redraw();
  }

  /**
   * Appends one point at `t` seconds. When the previous point is more than
   * `gapSecs` older, a null point goes in between so the line breaks there.
   * A point older than the newest is slotted in where it belongs (a backlog
   * the agent resends after an outage fills the gap it left).
   */
  append(t, values, gapSecs) {
    const last = this.x.length ? this.x[this.x.length - 1] : null;
    if (last !== null && t <= last) {
      this.insert(t, values);
      return;
    }
    if (last !== null && t - last > gapSecs) this.push(last + gapSecs / 2, values.map(() => null));
    this.push(t, values);
    this.redraw();
  }

  push(t, values) {
    this.x.push(t);
    this.ys.forEach((col, i) => col.push(values[i] ?? null));
    this.lo.forEach((col, i) => col.push(values[i] ?? null));
    this.hi.forEach((col, i) => col.push(values[i] ?? null));
  }

  insert(t, values) {
    let i = this.x.length;
    while (i > 0 && this.x[i - 1] > t) i -= 1;
    if (i > 0 && this.x[i - 1] === t) {
      // A gap marker or a bucket at this very time: fill what is missing.
      this.ys.forEach((col, k) => { if (col[i - 1] == null) col[i - 1] = values[k] ?? null; });
    } else {
      this.x.splice(i, 0, t);
      this.ys.forEach((col, k) => col.splice(i, 0, values[k] ?? null));
      this.lo.forEach((col, k) => col.splice(i, 0, values[k] ?? null));
      this.hi.forEach((col, k) => col.splice(i, 0, values[k] ?? null));
    }
    this.redraw();
  }

  /** Drops points before `minT` seconds. */
  trim(minT) {
    let n = 0;
    while (n < this.x.length && this.x[n] < minT) n += 1;
    if (n) {
      this.x.splice(0, n);
      for (const cols of [this.ys, this.lo, this.hi]) cols.forEach((col) => col.splice(0, n));
    }
  }

  /** Number of non-null points in the chart (tests read this). */
  points() {
    return this.ys.reduce((k, col) => k + col.filter((v) => v != null).length, 0);
  }

  redraw() {
    if (!this.plot || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.plot.setData(this.columns());
      this.root.dataset.points = String(this.points());
      if (this.plot.cursor.idx == null) this.showLatest();
    });
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.resizer?.disconnect();
    this.plot?.destroy();
    this.root.remove();
  }
}
