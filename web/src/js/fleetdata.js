// What the fleet view fetches besides the live feed: the last 15 minutes
// of CPU and memory for the sparklines of the hosts on screen (once per
// host, a few requests at a time), and every host's network rates, which
// the feed's summaries do not carry yet (polled while the fleet is shown;
// dropped as soon as summaries bring `net_rx_bytes_per_sec`).

import { TRACE_BUCKETS, TRACE_BUCKET_MS } from './trace.js';

const SEED_CONCURRENCY = 3;
const NET_POLL_MS = 15000;

const queue = [];
const queued = new Set();
let running = 0;

/** Asks for history of the shown hosts whose sparklines are not seeded. */
export function seedTraces(state, ids) {
  for (const id of ids) {
    const host = state.hosts.get(id);
    if (!host || host.trace.seeded || queued.has(id)) continue;
    queued.add(id);
    queue.push(id);
  }
  while (running < SEED_CONCURRENCY && queue.length) {
    running += 1;
    const id = queue.shift();
    seedOne(state, id).finally(() => {
      running -= 1;
      queued.delete(id);
      seedTraces(state, []);
    });
  }
}

async function seedOne(state, id) {
  const windowSecs = (TRACE_BUCKETS * TRACE_BUCKET_MS) / 1000;
  const q = (metric) => new URLSearchParams({
    host: id, metric, from: `-${windowSecs}s`, to: 'now', step: `${TRACE_BUCKET_MS / 1000}s`,
  });
  try {
    const [cpu, mem] = await Promise.all(['cpu_percent', 'memory_percent'].map(async (metric) => {
      const res = await fetch(`/api/metrics/history?${q(metric)}`);
      return res.ok ? (await res.json()).buckets : [];
    }));
    const host = state.hosts.get(id);
    if (host) {
      host.trace.seed(cpu, mem);
      state.emit('change');
    }
  } catch { /* the aggregator is away: the live feed still fills the trace */ }
}

/** Polls /api/metrics/current for network rates while the fleet is shown. */
export class NetPoller {
  constructor(state) {
    this.state = state;
    this.timer = 0;
    this.lastAt = 0;
  }

  start() {
    if (this.timer || this.state.hosts.size === 0) return;
    const summaries = [...this.state.hosts.values()].some((x) => Number.isFinite(x.summary?.net_rx_bytes_per_sec));
    if (summaries) return;
    // The answer grows with the fleet (a full sample per host): poll a big
    // fleet less often (1,000 hosts: every 30 s).
    const every = Math.max(NET_POLL_MS, this.state.hosts.size * 30);
    const due = Math.max(0, this.lastAt + every - Date.now());
    this.timer = setTimeout(() => this.poll(), due);
  }

  async poll() {
    this.lastAt = Date.now();
    try {
      const res = await fetch('/api/metrics/current');
      if (res.ok) {
        for (const c of await res.json()) {
          const host = this.state.hosts.get(c.host_id);
          if (host) host.net = { rx: c.net_rx_bytes_per_sec, tx: c.net_tx_bytes_per_sec, at: c.timestamp_ms };
        }
        this.state.emit('change');
      }
    } catch { /* away: the next update tries again */ }
    this.timer = 0;
  }
}
