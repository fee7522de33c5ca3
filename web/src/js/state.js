// The page's model of the fleet, fed by the WebSocket: hosts (info, online,
// newest summary, newest full sample when subscribed, worker groups, a
// 15-minute trace for the sparklines), alerts, the alert rules and the
// silences in force. Views read it and listen for changes; nothing here
// touches the DOM.

import { metricOf, silenceMatches } from './alertwords.js';
import { Trace } from './trace.js';

const RECENT_ALERTS = 50;

export class FleetState extends EventTarget {
  constructor() {
    super();
    /** host_id -> host record (see `applySnapshot`). */
    this.hosts = new Map();
    /** alert key -> alert, for pending and firing alerts. */
    this.alerts = new Map();
    /** Resolved alerts seen since the page loaded, newest first. */
    this.recent = [];
    this.serverOffsetMs = 0;
    /** rule name -> rule, from GET /api/alerts/rules. */
    this.rules = new Map();
    /** Silences in force, from GET /api/silences; null until loaded. */
    this.silences = null;
    /**
     * Bumped by everything but a sample (alerts, silences, hosts coming and
     * going): views that throttle sample updates redraw at once on these.
     */
    this.version = 0;
  }

  emitChange(structural) {
    if (structural) this.version += 1;
    this.emit('change');
  }

  setRules(rules) {
    this.rules = new Map((rules ?? []).map((r) => [r.name, r]));
    this.emitChange(true);
  }

  setSilences(silences) {
    this.silences = [...(silences ?? [])];
    this.emit('silences');
    this.emitChange(true);
  }

  /**
   * Whether an alert is silenced now: by the silences this page knows (so a
   * new or ended silence shows at once), else as the aggregator said.
   */
  isSilenced(alert) {
    if (!this.silences) return Boolean(alert.silenced);
    const ctx = {
      hostname: this.hosts.get(alert.host_id)?.info.hostname,
      metric: metricOf(alert, this.rules),
      now: this.now(),
    };
    return this.silences.some((s) => silenceMatches(s, alert, ctx));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Replaces everything with the server's snapshot. */
  applySnapshot(msg) {
    const old = new Map(this.hosts);
    this.hosts.clear();
    for (const host of msg.hosts ?? []) {
      this.hosts.set(host.host_id, {
        info: host,
        online: !!host.online,
        summary: host.summary ?? null,
        latest: host.latest ?? null,
        groups: host.groups ?? [],
        lastSeenMs: host.summary?.timestamp_ms ?? host.last_seen_ms ?? 0,
        // A reconnect keeps what the page had seen of the last 15 minutes.
        trace: old.get(host.host_id)?.trace ?? new Trace(),
      });
      if (host.summary) this.hosts.get(host.host_id).trace.add(host.summary);
    }
    this.alerts.clear();
    for (const alert of msg.alerts ?? []) this.alerts.set(alertKey(alert), alert);
    if (Number.isFinite(msg.server_time_ms)) this.serverOffsetMs = msg.server_time_ms - Date.now();
    this.emit('snapshot');
    this.emitChange(true);
  }

  applySample(msg) {
    const host = this.hosts.get(msg.host_id);
    if (!host) {
      // A host we have not heard of (its hello was before our snapshot):
      // ask for a snapshot; until then show what the sample says.
      this.hosts.set(msg.host_id, {
        info: { host_id: msg.host_id, hostname: msg.host_id, worker_groups: [] },
        online: true, summary: msg.summary, latest: null, groups: [], lastSeenMs: msg.timestamp_ms,
        trace: new Trace(),
      });
      if (msg.summary) this.hosts.get(msg.host_id).trace.add(msg.summary);
      this.emit('unknown-host', msg.host_id);
    } else {
      if (host.summary && msg.timestamp_ms < host.summary.timestamp_ms) {
        // A late sample (an agent's backlog after an outage): it fills gaps
        // in charts and sparklines but is not the host's current state.
        if (msg.summary) host.trace.add(msg.summary);
        this.emit('backfill', msg);
        return;
      }
      host.summary = msg.summary;
      if (msg.summary) host.trace.add(msg.summary);
      host.lastSeenMs = msg.timestamp_ms;
      host.online = true;
      if (msg.sample) {
        const s = msg.sample;
        host.latest = { ...s.system, timestamp_ms: s.timestamp_ms, memory_percent: s.memory_percent, swap_percent: s.swap_percent };
        host.groups = (s.groups ?? []).map((g) => ({ ...g, workers: (s.workers ?? []).filter((w) => w.group === g.name) }));
      } else if (msg.summary?.groups) {
        // Summary only: keep worker lists, refresh the counts.
        const workersByGroup = new Map(host.groups.map((g) => [g.name, g.workers]));
        host.groups = msg.summary.groups.map((g) => ({ ...g, workers: workersByGroup.get(g.name) ?? [] }));
      }
    }
    this.emit('sample', msg);
    this.emit('change');
  }

  /** The newest full values and worker lists of a subscribed host, sent
   *  when we subscribe (snapshots and summaries leave them out). */
  applyDetail(msg) {
    const host = this.hosts.get(msg.host_id);
    if (!host) return;
    const ts = msg.latest?.timestamp_ms;
    // A newer full sample got here first: keep it.
    if (host.latest && Number.isFinite(ts) && ts < (host.latest.timestamp_ms ?? 0)) return;
    host.latest = msg.latest ?? null;
    host.groups = msg.groups ?? [];
    this.emit('detail', msg.host_id);
    this.emit('change');
  }

  applyHostOnline(msg) {
    const info = msg.host;
    if (!info?.host_id) return;
    const host = this.hosts.get(info.host_id);
    if (host) {
      host.info = { ...host.info, ...info };
      host.online = true;
    } else {
      this.hosts.set(info.host_id, {
        info, online: true, summary: null, latest: null, groups: [], lastSeenMs: 0, trace: new Trace(),
      });
    }
    this.emitChange(true);
  }

  applyHostOffline(msg) {
    const host = this.hosts.get(msg.host_id);
    if (host) host.online = false;
    this.emitChange(true);
  }

  applyAlert(msg) {
    const alert = msg.alert;
    if (!alert) return;
    const key = alertKey(alert);
    if (alert.state === 'resolved') {
      this.alerts.delete(key);
      this.recent.unshift(alert);
      this.recent.length = Math.min(this.recent.length, RECENT_ALERTS);
    } else {
      this.alerts.set(key, alert);
    }
    this.emitChange(true);
  }

  /** Firing (not pending) alerts of one host. */
  firingFor(hostId) {
    return [...this.alerts.values()].filter((a) => a.host_id === hostId && a.state === 'firing');
  }

  /** "offline", "alerting" or "online"; silenced alerts do not alert. */
  status(hostId) {
    const host = this.hosts.get(hostId);
    if (!host || !host.online) return 'offline';
    return this.firingFor(hostId).some((a) => !this.isSilenced(a)) ? 'alerting' : 'online';
  }

  /** The rule (from /api/alerts/rules) of an alert, if known. */
  metricOf(alert) {
    return metricOf(alert, this.rules);
  }

  now() {
    return Date.now() + this.serverOffsetMs;
  }
}

export function alertKey(a) {
  return `${a.rule}\u0000${a.host_id}\u0000${a.scope ?? ''}`;
}
