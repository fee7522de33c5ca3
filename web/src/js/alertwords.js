// Alerts in plain words with units: what an alert is about ("CPU", "pool
// api", "disk /var") and its value as a person reads it ("97.1 %",
// "1 of 3 workers alive", "no sample for 2 min 17 s"). The unit comes from
// the rule's metric, read once from GET /api/alerts/rules; the silence
// matching mirrors the aggregator's (alerts/silence.rs) so that a silence
// shows on the page the moment it is made.

import { bytes, durationWords, num, pct, rate } from './format.js';

const WORKER_METRICS = new Set(['worker_pool_alive', 'worker_cpu_percent', 'worker_rss_bytes', 'worker_restarts']);

/** The metric behind an alert: from the rules, else guessed from the rule name. */
export function metricOf(alert, rules) {
  const rule = rules?.get(alert.rule);
  if (rule?.metric) return rule.metric;
  switch (alert.rule) {
    case 'cpu': return 'cpu_percent';
    case 'memory': return 'memory_percent';
    case 'disk': return 'filesystem_used_percent';
    case 'offline': return 'host_silence';
    case 'worker_pool': return 'worker_pool_alive';
    default: return '';
  }
}

/** A value in its metric's unit. */
export function valueWords(metric, v) {
  if (!Number.isFinite(v)) return '–';
  switch (metric) {
    case 'cpu_percent': case 'memory_percent': case 'swap_percent':
    case 'filesystem_used_percent': case 'worker_cpu_percent':
      return pct(v);
    case 'load_per_core': return `${num(v)} per core`;
    case 'disk_read_bytes_per_sec': case 'disk_write_bytes_per_sec':
    case 'net_rx_bytes_per_sec': case 'net_tx_bytes_per_sec':
      return rate(v);
    case 'worker_rss_bytes': return bytes(v);
    case 'worker_pool_alive': return `${Math.round(v)} alive`;
    case 'worker_restarts': return `${Math.round(v)} restarts`;
    case 'host_silence': return durationWords(v);
    default: return num(v, 1);
  }
}

/** What the alert is about: "CPU", "disk /var", "pool api". */
export function subject(alert, metric) {
  const scope = alert.scope ?? '';
  switch (metric) {
    case 'cpu_percent': return 'CPU';
    case 'memory_percent': return 'memory';
    case 'swap_percent': return 'swap';
    case 'filesystem_used_percent': return `disk ${scope}`;
    case 'load_per_core': return 'load';
    case 'disk_read_bytes_per_sec': return 'disk read';
    case 'disk_write_bytes_per_sec': return 'disk write';
    case 'net_rx_bytes_per_sec': return 'network receive';
    case 'net_tx_bytes_per_sec': return 'network send';
    case 'worker_pool_alive': return `pool ${scope}`;
    case 'worker_cpu_percent': return `busiest worker in pool ${scope}`;
    case 'worker_rss_bytes': return `largest worker in pool ${scope}`;
    case 'worker_restarts': return `restarts in pool ${scope}`;
    case 'host_silence': return 'no samples';
    default: return scope ? `${alert.rule} ${scope}` : String(alert.rule ?? 'alert');
  }
}

/**
 * The alert's reading in words: "97.1 % (limit 90.0 %)",
 * "1 of 3 workers alive", "no sample for 2 min 17 s".
 */
export function reading(alert, metric, value = alert.value) {
  switch (metric) {
    case 'worker_pool_alive':
      return `${Math.round(value)} of ${Math.round(alert.threshold)} workers alive`;
    case 'host_silence':
      return `no sample for ${durationWords(value)}`;
    default:
      return `${valueWords(metric, value)} (limit ${valueWords(metric, alert.threshold)})`;
  }
}

/** The pool a silence of this alert may name: only worker rules have one. */
export function poolOf(alert, metric) {
  if (!alert.scope) return null;
  if (metric) return WORKER_METRICS.has(metric) ? alert.scope : null;
  return alert.scope.startsWith('/') ? null : alert.scope;
}

/** `*` and `?` globs, as the aggregator matches them. */
export function globMatch(pattern, text) {
  const p = [...String(pattern)];
  const t = [...String(text)];
  let pi = 0;
  let ti = 0;
  let star = null;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === t[ti]))) {
      pi += 1;
      ti += 1;
    } else if (pi < p.length && p[pi] === '*') {
      star = [pi, ti];
      pi += 1;
    } else if (star) {
      pi = star[0] + 1;
      ti = star[1] + 1;
      star = [star[0], star[1] + 1];
    } else {
      return false;
    }
  }
  return p.slice(pi).every((c) => c === '*');
}

/** Whether the silence covers the alert now (see `Silence::matches`). */
export function silenceMatches(silence, alert, { hostname, metric, now }) {
  if (!(now < silence.expires_at_ms)) return false;
  if (silence.rule && !globMatch(silence.rule, alert.rule ?? '')) return false;
  if (silence.host && !globMatch(silence.host, alert.host_id ?? '')
    && !globMatch(silence.host, hostname ?? '')) return false;
  if (silence.pool) {
    const pool = poolOf(alert, metric);
    if (pool === null || !globMatch(silence.pool, pool)) return false;
  }
  return true;
}
