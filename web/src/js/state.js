// The page's model of the fleet, fed by the WebSocket: hosts (info, online,
// newest summary, newest full sample when subscribed, worker groups) and
// alerts. Views read it and listen for changes; nothing here touches the DOM.

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
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Replaces everything with the server's snapshot. */
  applySnapshot(msg) {
    this.hosts.clear();
    for (const host of msg.hosts ?? []) {
      this.hosts.set(host.host_id, {
        info: host,
        online: !!host.online,
        summary: host.summary ?? null,
        latest: host.latest ?? null,
        groups: host.groups ?? [],
        lastSeenMs: host.summary?.timestamp_ms ?? host.last_seen_ms ?? 0,
      });
    }
    this.alerts.clear();
    for (const alert of msg.alerts ?? []) this.alerts.set(alertKey(alert), alert);
    if (Number.isFinite(msg.server_time_ms)) this.serverOffsetMs = msg.server_time_ms - Date.now();
    this.emit('snapshot');
    this.emit('change');
  }

  applySample(msg) {
    const host = this.hosts.get(msg.host_id);
    if (!host) {
      // A host we have not heard of (its hello was before our snapshot):
      // ask for a snapshot; until then show what the sample says.
      this.hosts.set(msg.host_id, {
        info: { host_id: msg.host_id, hostname: msg.host_id, worker_groups: [] },
        online: true, summary: msg.summary, latest: null, groups: [], lastSeenMs: msg.timestamp_ms,
      });
      this.emit('unknown-host', msg.host_id);
    } else {
      if (host.summary && msg.timestamp_ms < host.summary.timestamp_ms) return; // stale resend
      host.summary = msg.summary;
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
      this.hosts.set(info.host_id, { info, online: true, summary: null, latest: null, groups: [], lastSeenMs: 0 });
    }
    this.emit('change');
  }

  applyHostOffline(msg) {
    const host = this.hosts.get(msg.host_id);
    if (host) host.online = false;
    this.emit('change');
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
    this.emit('change');
  }

  /** Firing (not pending) alerts of one host. */
  firingFor(hostId) {
    return [...this.alerts.values()].filter((a) => a.host_id === hostId && a.state === 'firing');
  }

  /** "offline", "alerting" or "online". */
  status(hostId) {
    const host = this.hosts.get(hostId);
    if (!host || !host.online) return 'offline';
    return this.firingFor(hostId).some((a) => !a.silenced) ? 'alerting' : 'online';
  }

  now() {
    return Date.now() + this.serverOffsetMs;
  }
}

export function alertKey(a) {
  return `${a.rule}\u0000${a.host_id}\u0000${a.scope ?? ''}`;
}
