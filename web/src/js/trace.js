// A host's last 15 minutes of CPU and memory for the fleet view's
// sparklines: 90 buckets of 10 s, each holding the highest value seen in it
// (so a spike survives), fed by live summaries and seeded once from
// /api/metrics/history. Fixed-size typed arrays: 1,000 hosts cost ~1.5 MB.

export const TRACE_BUCKET_MS = 10_000;
export const TRACE_BUCKETS = 90;

export class Trace {
  constructor() {
    this.cpu = new Float32Array(TRACE_BUCKETS).fill(NaN);
    this.mem = new Float32Array(TRACE_BUCKETS).fill(NaN);
    /** Bucket number (ms / TRACE_BUCKET_MS) of the newest bucket. */
    this.head = -1;
    this.seeded = false;
    /** Bumped on every change; the view redraws when it moved. */
    this.version = 0;
  }

  /** Moves the window so that `bucket` is the newest; clears skipped ones. */
  advance(bucket) {
    if (this.head < 0) {
      this.head = bucket;
      return;
    }
    const steps = Math.min(TRACE_BUCKETS, bucket - this.head);
    for (let i = 1; i <= steps; i += 1) {
      const slot = (this.head + i) % TRACE_BUCKETS;
      this.cpu[slot] = NaN;
      this.mem[slot] = NaN;
    }
    if (bucket > this.head) this.head = bucket;
  }

  put(tMs, cpu, mem) {
    if (!Number.isFinite(tMs)) return;
    const bucket = Math.floor(tMs / TRACE_BUCKET_MS);
    if (bucket > this.head) this.advance(bucket);
    if (bucket <= this.head - TRACE_BUCKETS) return; // older than the window
    const slot = ((bucket % TRACE_BUCKETS) + TRACE_BUCKETS) % TRACE_BUCKETS;
    if (Number.isFinite(cpu)) this.cpu[slot] = Number.isNaN(this.cpu[slot]) ? cpu : Math.max(this.cpu[slot], cpu);
    if (Number.isFinite(mem)) this.mem[slot] = Number.isNaN(this.mem[slot]) ? mem : Math.max(this.mem[slot], mem);
    this.version += 1;
  }

  /** A live summary (`timestamp_ms`, `cpu_percent`, `memory_percent`). */
  add(summary) {
    this.put(summary.timestamp_ms, summary.cpu_percent, summary.memory_percent);
  }

  /** History buckets (`t`, `max`) of CPU and memory from the API. */
  seed(cpuBuckets, memBuckets) {
    for (const b of cpuBuckets ?? []) this.put(b.t, b.max, NaN);
    for (const b of memBuckets ?? []) this.put(b.t, NaN, b.max);
    this.seeded = true;
    this.version += 1;
  }

  /** The values oldest first, NaN where nothing was seen, ending at `nowMs`. */
  series(which, nowMs) {
    const col = which === 'mem' ? this.mem : this.cpu;
    const out = new Float32Array(TRACE_BUCKETS).fill(NaN);
    const last = Math.floor(nowMs / TRACE_BUCKET_MS);
    for (let i = 0; i < TRACE_BUCKETS; i += 1) {
      const bucket = last - (TRACE_BUCKETS - 1) + i;
      if (bucket > this.head || bucket <= this.head - TRACE_BUCKETS) continue;
      out[i] = col[((bucket % TRACE_BUCKETS) + TRACE_BUCKETS) % TRACE_BUCKETS];
    }
    return out;
  }

  /** Number of buckets holding a value (tests read this). */
  filled() {
    return this.cpu.reduce((n, v) => n + (Number.isNaN(v) ? 0 : 1), 0);
  }
}
