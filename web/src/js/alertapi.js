// The alert endpoints the page calls: rules, history, and silences (list,
// create, end). Writes throw `NeedsLogin` on 401 so that the caller can
// ask for a login; other refusals throw an Error with the server's words.

import { NeedsLogin, errorMessage } from './auth.js';
import { poolOf } from './alertwords.js';

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (res.status === 401) throw new NeedsLogin(await errorMessage(res));
  if (!res.ok) throw new Error(await errorMessage(res));
  return res.json();
}

async function write(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401 || res.status === 403) throw new NeedsLogin(await errorMessage(res));
  if (!res.ok) throw new Error(await errorMessage(res));
  return res.status === 204 ? null : res.json();
}

export function fetchRules() {
  return getJson('/api/alerts/rules');
}

export function fetchSilences() {
  return getJson('/api/silences');
}

/** Stored alert history, newest first; `params`: state, host, severity, limit. */
export function fetchHistory(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, String(v));
  return getJson(`/api/alerts?${q}`);
}

/** Creates a silence: `{rule, host, pool, duration, comment}` (unset matchers omitted). */
export function createSilence({ rule, host, pool, duration, comment }) {
  const body = { duration, comment: comment ?? '' };
  if (rule) body.rule = rule;
  if (host) body.host = host;
  if (pool) body.pool = pool;
  return write('POST', '/api/silences', body);
}

/** A one-hour silence of this alert's rule on its host (and pool). */
export function silenceAlert(alert, metric, duration = '1h') {
  return createSilence({
    rule: alert.rule,
    host: alert.host_id,
    pool: poolOf(alert, metric),
    duration,
    comment: 'silenced from the alert bar',
  });
}

export function endSilence(id) {
  return write('DELETE', `/api/silences/${encodeURIComponent(String(id))}`);
}
