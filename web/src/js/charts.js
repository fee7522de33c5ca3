// Time-series charts over uPlot: a chart owns its columns (x in seconds,
// one array per series), draws nulls as gaps, appends live points, trims to
// the visible window, redraws at most once per animation frame, and follows
// its container's width.

import uPlot from '/assets/vendor/uPlot.esm.js';
import { h } from './dom.js';

/** False when the aggregator was built without uPlot (npm ci not run). */
export const available = typeof uPlot === 'function';

const PALETTE = ['#2f7ed8', '#e4572e', '#29a36a', '#a05fd6', '#e0a100', '#17a2b8', '#d6457a', '#7a8b99'];

export function color(i) {
  return PALETTE[i % PALETTE.length];
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export class TimeChart {
  /**
   * @param {HTMLElement} parent
   * @param {{title: string, id: string, series: {label: string}[], fmt: (v: number) => string, max?: number}} opts
   */
  constructor(parent, opts) {
    this.opts = opts;
    this.x = [];
    this.ys = opts.series.map(() => []);
    this.frame = 0;
    this.body = h('div', { class: 'chart-body' });
    this.root = h('figure', { class: 'chart', id: `chart-${opts.id}`, dataset: { chart: opts.id } },
      h('figcaption', { text: opts.title }), this.body);
    parent.appendChild(this.root);
    if (!available) {
      this.body.appendChild(h('p', { class: 'muted', text: 'Charts unavailable: this aggregator was built without its chart library (npm ci --prefix web).' }));
      return;
    }
    const fg = cssVar('--muted', '#888');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.2)');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    this.plot = new uPlot({
      width: this.width(),
      height: 180,
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      scales: { x: { time: true, range: (u, min, max) => (this.window ?? [min, max]) }, y: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(opts.max ?? 0, (max ?? 1) * 1.1 || 1)] } },
      axes: [axis, { ...axis, size: 84, values: (u, vals) => vals.map((v) => opts.fmt(v)) }],
      series: [
        { value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleTimeString()) },
        ...opts.series.map((s, i) => ({
          label: s.label, stroke: color(i), width: 1.5, spanGaps: false, points: { show: false },
          value: (u, v) => (v == null ? '–' : opts.fmt(v)),
        })),
      ],
    }, [this.x, ...this.ys], this.body);
    this.resizer = new ResizeObserver(() => this.plot.setSize({ width: this.width(), height: 180 }));
    this.resizer.observe(this.root);
  }

  width() {
    return Math.max(200, Math.floor(this.root.clientWidth || 300) - 8);
  }

  /** Fixes the visible time window, in seconds. */
  setWindow(from, to) {
    this.window = [from, to];
    this.redraw();
  }

  /** Replaces the data: `x` in seconds, `ys[i]` aligned with it (null = gap). */
  setData(x, ys) {
    this.x = x;
    this.ys = ys;
    this.redraw();
  }

  /**
   * Appends one point at `t` seconds. When the previous point is more than
   * `gapSecs` older, a null point goes in between so the line breaks there.
   */
  append(t, values, gapSecs) {
    const last = this.x.length ? this.x[this.x.length - 1] : null;
    if (last !== null && t <= last) return;
    if (last !== null && t - last > gapSecs) {
      this.x.push(last + gapSecs / 2);
      this.ys.forEach((col) => col.push(null));
    }
    this.x.push(t);
    this.ys.forEach((col, i) => col.push(values[i] ?? null));
    this.redraw();
  }

  /** Drops points before `minT` seconds. */
  trim(minT) {
    let n = 0;
    while (n < this.x.length && this.x[n] < minT) n += 1;
    if (n) {
      this.x.splice(0, n);
      this.ys.forEach((col) => col.splice(0, n));
    }
  }

  /** Number of non-null points in the chart (tests read this). */
  points() {
    return this.ys.reduce((n, col) => n + col.filter((v) => v != null).length, 0);
  }

  redraw() {
    if (!this.plot || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.plot.setData([this.x, ...this.ys]);
      this.root.dataset.points = String(this.points());
    });
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.resizer?.disconnect();
    this.plot?.destroy();
    this.root.remove();
  }
}
