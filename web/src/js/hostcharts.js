// What the host view charts: the chart list for a host (each line's history
// metric and how to read it from a live sample), and what is drawn over
// them: the thresholds of the alert rules that apply to the host, and the
// start and end of its alerts.

import { num, pct, rate } from './format.js';
import { globMatch, metricOf } from './alertwords.js';

const fsPercent = (fs) => (fs.total_bytes > 0 ? ((fs.total_bytes - fs.available_bytes) * 100) / fs.total_bytes : null);

/** Rule metrics drawn on each chart (`scale` turns a rule's number into the chart's). */
const CHART_METRICS = {
  cpu: ['cpu_percent'],
  memory: ['memory_percent', 'swap_percent'],
  disk: ['filesystem_used_percent'],
  diskio: ['disk_read_bytes_per_sec', 'disk_write_bytes_per_sec'],
  net: ['net_rx_bytes_per_sec', 'net_tx_bytes_per_sec'],
  load: ['load_per_core'],
};

/** The charts of a host; `series` lists history metric and live value per line. */
export function chartSpecs(host) {
  const cores = host.latest?.cpu_per_core?.length || host.info.cpu_count || 1;
  const mounts = (host.latest?.filesystems ?? []).map((f) => f.mount_point);
  return [
    { id: 'cpu', title: 'CPU total', fmt: pct, max: 100, series: [
      { label: 'CPU', metric: 'cpu_percent', live: (s) => s.system.cpu_percent }] },
    // `cpu_core:N` is served from the store's tiers like every metric; an
    // older aggregator answers 400, and then the chart fills from the live feed.
    { id: 'cores', title: 'CPU per core', fmt: pct, max: 100,
      series: Array.from({ length: cores }, (_, i) => ({ label: `core ${i}`, metric: `cpu_core:${i}`, optional: true, live: (s) => s.system.cpu_per_core?.[i] })) },
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

/** Whether a rule covers this host (its `hosts` globs name the id or hostname). */
function appliesTo(rule, hostId, hostname) {
  if (rule.enabled === false) return false;
  if (!rule.hosts?.length) return true;
  return rule.hosts.some((g) => globMatch(g, hostId) || globMatch(g, hostname ?? ''));
}

/** Threshold lines for a chart: `[{value, severity, label}]`. */
export function thresholdsFor(chartId, rules, host) {
  const metrics = CHART_METRICS[chartId] ?? [];
  const scale = chartId === 'load' ? (host.info.cpu_count || 1) : 1;
  const out = [];
  for (const rule of rules.values()) {
    if (!metrics.includes(rule.metric) || !appliesTo(rule, host.info.host_id, host.info.hostname)) continue;
    for (const severity of ['warning', 'critical']) {
      const v = rule[severity];
      if (typeof v === 'number' && Number.isFinite(v)) out.push({ value: v * scale, severity, label: `${rule.name} ${severity}` });
    }
  }
  return out;
}

/**
 * Alert start and end markers for a chart from stored alert records and
 * the alerts firing now: `[{t (seconds), kind, label}]`.
 */
export function markersFor(chartId, records, active, rules) {
  const metrics = CHART_METRICS[chartId] ?? [];
  const out = [];
  const seen = new Set();
  for (const a of [...records, ...active]) {
    if (!metrics.includes(metricOf(a, rules))) continue;
    const start = a.fired_at_ms ?? a.started_at_ms;
    const key = `${a.rule}|${a.scope}|${start}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (Number.isFinite(start)) out.push({ t: start / 1000, kind: 'start', label: `${a.rule} fired` });
    if (Number.isFinite(a.ended_at_ms)) out.push({ t: a.ended_at_ms / 1000, kind: 'end', label: `${a.rule} resolved` });
  }
  return out;
}
