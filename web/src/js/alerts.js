// The alert bar at the top of every view. It is small and calm: a summary
// line (counts and a collapse button; the top bar links the history and
// silences pages),
// then one compact line per firing alert (severity, host id, what, value
// with its unit, since when, a Silence button), grouped by rule when many
// fire; pending alerts are one summary line, silenced ones another.
//
// Rows are keyed by alert and updated in place: a sample changes their text,
// never their nodes, so a button under the pointer or holding focus is the
// same button when the click lands.

import { h, setAttr, setText, syncKeyed } from './dom.js';
import { durationWords, hostName } from './format.js';
import { reading, subject } from './alertwords.js';
import { alertKey } from './state.js';

const SEVERITY_ORDER = { critical: 0, warning: 1 };
/** More firing alerts than this: rules with several are grouped. */
const GROUP_AFTER = 4;
const COLLAPSED_KEY = 'fleetwatch.alerts.collapsed';
/** Names listed in a summary line before "+N more". */
const NAMES_SHOWN = 4;

export class AlertBar {
  /**
   * `onSilence(alert, button)` silences; `silencing()` says what the
   * buttons offer: "yes" (an admin), "login" (nobody signed in) or "no".
   */
  constructor(root, state, { onSilence, silencing }) {
    this.root = root;
    this.state = state;
    this.onSilence = onSilence;
    this.silencing = silencing;
    this.rows = new Map();
    this.collapsed = readCollapsed();
    this.toggle = h('button', {
      type: 'button', id: 'alerts-toggle', class: 'alerts-toggle', 'aria-controls': 'alert-body',
      on: { click: () => this.setCollapsed(!this.collapsed) },
    });
    this.summary = h('span', { class: 'alerts-summary', id: 'alerts-summary' });
    this.list = h('ul', { class: 'alert-list', id: 'alert-list' });
    this.pending = h('p', { class: 'alerts-line alerts-pending', id: 'alerts-pending' });
    this.silenced = h('p', { class: 'alerts-line alerts-silenced', id: 'alerts-silenced' });
    this.body = h('div', { id: 'alert-body', class: 'alert-body' }, this.list, this.pending, this.silenced);
    root.append(
      h('div', { class: 'alerts-head' },
        this.toggle, this.summary),
      this.body);
    this.setCollapsed(this.collapsed);
  }

  setCollapsed(collapsed) {
    this.collapsed = collapsed;
    try {
      localStorage.setItem(COLLAPSED_KEY, collapsed ? '1' : '0');
    } catch { /* private mode */ }
    this.body.hidden = collapsed;
    setAttr(this.toggle, 'aria-expanded', String(!collapsed));
    this.render();
  }

  /** Brings the bar up to date with the state; cheap when nothing changed. */
  render() {
    const state = this.state;
    const now = state.now();
    const firing = [];
    const pending = [];
    const silenced = [];
    for (const a of state.alerts.values()) {
      if (state.isSilenced(a)) silenced.push(a);
      else if (a.state === 'firing') firing.push(a);
      else pending.push(a);
    }
    firing.sort(byUrgency);
    const critical = firing.filter((a) => a.severity === 'critical').length;
    const total = firing.length + pending.length + silenced.length;
    this.root.hidden = total === 0;
    this.root.dataset.firing = String(firing.length);
    setText(this.toggle, `${this.collapsed ? '▸' : '▾'} ${firing.length} firing`);
    setAttr(this.toggle, 'aria-label', `${firing.length} alerts firing; ${this.collapsed ? 'show' : 'hide'} them`);
    setText(this.summary, [
      critical ? `${critical} critical` : null,
      firing.length - critical ? `${firing.length - critical} warning` : null,
      pending.length ? `${pending.length} pending` : null,
      silenced.length ? `${silenced.length} silenced` : null,
    ].filter(Boolean).join(' · '));
    if (this.collapsed) return;

    syncKeyed(this.list, this.rows, this.entries(firing), (e) => e.key,
      (e) => (e.group ? this.createGroup(e) : this.createRow(e.alert)),
      (el, e) => (e.group ? this.updateGroup(el, e, now) : this.updateRow(el, e.alert, now)));
    this.pending.hidden = pending.length === 0;
    setText(this.pending, pending.length ? `Pending: ${names(pending, (a) => this.label(a))}` : '');
    this.silenced.hidden = silenced.length === 0;
    setText(this.silenced, silenced.length ? `Silenced: ${names(silenced, (a) => this.label(a))}` : '');
  }

  /** One entry per alert, or per rule with several when many fire. */
  entries(firing) {
    if (firing.length <= GROUP_AFTER) return firing.map((alert) => ({ key: alertKey(alert), alert }));
    const byRule = new Map();
    for (const a of firing) {
      if (!byRule.has(a.rule)) byRule.set(a.rule, []);
      byRule.get(a.rule).push(a);
    }
    const out = [];
    for (const a of firing) {
      const members = byRule.get(a.rule);
      if (members.length === 1) out.push({ key: alertKey(a), alert: a });
      else if (members[0] === a) out.push({ key: `rule\u0000${a.rule}`, group: true, rule: a.rule, members });
    }
    return out;
  }

  /** "web-3 · pool api" */
  label(a) {
    const host = this.state.hosts.get(a.host_id);
    return `${hostName(a.host_id, host?.info)} · ${subject(a, this.state.metricOf(a))}`;
  }

  createRow(alert) {
    const el = h('li', { class: 'alert', dataset: { rule: alert.rule ?? '', host: alert.host_id ?? '' } });
    // The row's parts, by name (an <li> has a `value` of its own).
    el.fw = {};
    el.fw.badge = h('span', { class: 'badge' });
    el.fw.host = h('a', { class: 'alert-host', href: `#/host/${encodeURIComponent(alert.host_id ?? '')}` });
    el.fw.what = h('span', { class: 'alert-what' });
    el.fw.value = h('span', { class: 'alert-value' });
    el.fw.since = h('span', { class: 'alert-since' });
    el.fw.button = h('button', {
      type: 'button', class: 'silence',
      on: { click: (ev) => this.onSilence(el.fw.alert, ev.currentTarget) },
    });
    el.append(el.fw.badge, h('span', { class: 'alert-text' }, el.fw.host, ' ', el.fw.what, ' ', el.fw.value, ' ', el.fw.since), el.fw.button);
    return el;
  }

  updateRow(el, alert, now) {
    el.fw.alert = alert;
    const metric = this.state.metricOf(alert);
    const sev = safeClass(alert.severity);
    const cls = `alert sev-${sev}`;
    if (el.className !== cls) el.className = cls;
    el.fw.badge.className = `badge sev-${sev}`;
    setText(el.fw.badge, alert.severity ?? 'alert');
    const host = this.state.hosts.get(alert.host_id);
    setText(el.fw.host, hostName(alert.host_id, host?.info));
    setText(el.fw.what, subject(alert, metric));
    setText(el.fw.value, reading(alert, metric));
    setText(el.fw.since, `since ${durationWords((now - (alert.started_at_ms ?? now)) / 1000)}`);
    const hostname = host?.info.hostname;
    setAttr(el, 'title', [alert.message, hostname && hostname !== alert.host_id ? `hostname ${hostname}` : null]
      .filter(Boolean).join(' · ') || null);
    const offer = this.silencing();
    el.fw.button.hidden = offer === 'no';
    if (!el.fw.button.disabled) setText(el.fw.button, offer === 'login' ? 'Sign in to silence' : 'Silence 1h');
    setAttr(el.fw.button, 'aria-label', `${offer === 'login' ? 'Sign in to silence' : 'Silence for 1 hour'}: ${this.label(alert)}`);
  }

  createGroup(entry) {
    const el = h('li', { class: 'alert alert-group', dataset: { rule: entry.rule } });
    el.fw = {};
    el.fw.badge = h('span', { class: 'badge' });
    el.fw.text = h('span', { class: 'alert-text' });
    el.fw.inner = new Map();
    el.fw.list = h('ul', { class: 'alert-list alert-members' });
    el.fw.details = h('details', { class: 'alert-details' },
      h('summary', { class: 'alert-group-line' }, el.fw.badge, el.fw.text), el.fw.list);
    el.fw.details.addEventListener('toggle', () => this.render());
    el.append(el.fw.details);
    return el;
  }

  updateGroup(el, entry, now) {
    const { members } = entry;
    const worst = members.some((a) => a.severity === 'critical') ? 'critical' : 'warning';
    el.className = `alert alert-group sev-${worst}`;
    el.fw.badge.className = `badge sev-${worst}`;
    setText(el.fw.badge, worst);
    const metric = this.state.metricOf(members[0]);
    const hosts = new Set(members.map((a) => a.host_id));
    setText(el.fw.text, `${entry.rule}: ${members.length} alerts on ${hosts.size} host${hosts.size === 1 ? '' : 's'} — ${
      names(members, (a) => `${hostName(a.host_id, this.state.hosts.get(a.host_id)?.info)} ${
        metric === 'worker_pool_alive' || metric === 'filesystem_used_percent' ? `${a.scope} ` : ''}${reading(a, metric).replace(/ \(limit.*\)$/, '')}`)}`);
    if (el.fw.details.open) {
      syncKeyed(el.fw.list, el.fw.inner, members, alertKey, (a) => this.createRow(a), (row, a) => this.updateRow(row, a, now));
    }
  }
}

function byUrgency(a, b) {
  return (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9)
    || (a.started_at_ms ?? 0) - (b.started_at_ms ?? 0)
    || alertKey(a).localeCompare(alertKey(b));
}

function names(alerts, label) {
  const shown = alerts.slice(0, NAMES_SHOWN).map(label);
  const more = alerts.length - shown.length;
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}

function readCollapsed() {
  try {
    return localStorage.getItem(COLLAPSED_KEY) === '1';
  } catch {
    return false;
  }
}

/** Severity and state words become class names; keep them to [a-z-]. */
export function safeClass(s) {
  return String(s ?? '').toLowerCase().replace(/[^a-z-]/g, '');
}
