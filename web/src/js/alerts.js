// The alert bar at the top of every view: pending and firing alerts with
// severity, host, rule, value and since when, a Silence button each, and
// the alerts resolved since the page loaded.

import { NeedsLogin, errorMessage } from './auth.js';
import { h, replace } from './dom.js';
import { ago, clock, num } from './format.js';

const SEVERITY_ORDER = { critical: 0, warning: 1 };

/**
 * `silencing` is "yes" (an admin), "login" (nobody signed in: the button
 * asks for a login) or "no" (a read-only user: no button).
 */
export function renderAlerts(root, state, { onSilence, silencing = 'yes' }) {
  const active = [...state.alerts.values()].sort(
    (a, b) => (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9)
      || (a.state === 'firing' ? 0 : 1) - (b.state === 'firing' ? 0 : 1)
      || (a.started_at_ms ?? 0) - (b.started_at_ms ?? 0),
  );
  root.hidden = active.length === 0 && state.recent.length === 0;
  const now = state.now();
  const items = active.map((a) => h('li', { class: `alert sev-${safeClass(a.severity)} state-${safeClass(a.state)}`, dataset: { rule: a.rule ?? '', host: a.host_id ?? '' } },
    h('span', { class: `badge sev-${safeClass(a.severity)}`, text: a.severity ?? 'alert' }),
    a.state !== 'firing' ? h('span', { class: 'badge muted', text: a.state }) : null,
    h('a', { class: 'alert-host', href: `#/host/${encodeURIComponent(a.host_id ?? '')}`, text: a.host_id ?? '?' }),
    h('span', { class: 'alert-rule', text: a.scope ? `${a.rule} · ${a.scope}` : a.rule }),
    h('span', { class: 'alert-value', text: `${num(a.value, 1)} (threshold ${num(a.threshold, 1)})` }),
    h('span', { class: 'alert-since', title: clock(a.started_at_ms), text: `since ${ago(a.started_at_ms, now)}` }),
    a.message ? h('span', { class: 'alert-message', text: a.message }) : null,
    a.silenced
      ? h('span', { class: 'badge muted', text: 'silenced' })
      : silenceButton(a, silencing, onSilence),
  ));
  const recent = state.recent.length
    ? h('details', { class: 'recent' },
      h('summary', { text: `${state.recent.length} resolved recently` }),
      h('ul', {}, state.recent.map((a) => h('li', {},
        h('span', { class: `badge sev-${safeClass(a.severity)}`, text: a.severity }),
        ` ${a.host_id} · ${a.rule}${a.scope ? ` · ${a.scope}` : ''} · resolved ${ago(a.ended_at_ms, now)}`,
      ))))
    : null;
  replace(root,
    active.length ? h('ul', { class: 'alert-list' }, items) : h('p', { class: 'muted', text: 'No alerts firing.' }),
    recent);
}

function silenceButton(alert, silencing, onSilence) {
  if (silencing === 'no') return null;
  return h('button', {
    type: 'button',
    class: 'silence',
    text: silencing === 'login' ? 'Sign in to silence' : 'Silence 1h',
    on: { click: (ev) => onSilence(alert, ev.currentTarget) },
  });
}

/** POSTs a one-hour silence for the alert's rule, host and pool. */
export async function silence(alert) {
  const res = await fetch('/api/silences', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // The scope is a pool name or a mount point; only a pool is a silence matcher.
    body: JSON.stringify({
      rule: alert.rule,
      host: alert.host_id,
      pool: alert.scope && !alert.scope.startsWith('/') ? alert.scope : null,
      duration: '1h',
    }),
  });
  if (res.status === 401) throw new NeedsLogin(await errorMessage(res));
  if (!res.ok) throw new Error(await errorMessage(res));
}

/** Severity and state words become class names; keep them to [a-z-]. */
export function safeClass(s) {
  return String(s ?? '').toLowerCase().replace(/[^a-z-]/g, '');
}
