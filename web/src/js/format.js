// Number, size and time formatting for the page.

export function pct(v) {
  return Number.isFinite(v) ? `${v.toFixed(v >= 99.95 ? 0 : 1)} %` : '–';
}

export function num(v, digits = 2) {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(v) {
  if (!Number.isFinite(v)) return '–';
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < UNITS.length - 1) {
    x /= 1024;
    i += 1;
  }
  return `${Math.sign(v) < 0 ? '-' : ''}${x.toFixed(x >= 100 || i === 0 ? 0 : 1)} ${UNITS[i]}`;
}

export function rate(v) {
  return Number.isFinite(v) ? `${bytes(v)}/s` : '–';
}

/** "3d 4h", "5h 2m", "4m 10s", "12s". */
export function duration(secs) {
  if (!Number.isFinite(secs) || secs < 0) return '–';
  const s = Math.floor(secs);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function ago(ms, now = Date.now()) {
  if (!Number.isFinite(ms) || ms <= 0) return 'never';
  const secs = (now - ms) / 1000;
  return secs < 1 ? 'just now' : `${duration(secs)} ago`;
}

export function clock(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return '–';
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** Plain words: "45 s", "2 min 17 s", "3 h 5 min", "2 d 4 h". */
export function durationWords(secs) {
  if (!Number.isFinite(secs) || secs < 0) return '–';
  const s = Math.floor(secs);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return hh ? `${d} d ${hh} h` : `${d} d`;
  if (hh) return m ? `${hh} h ${m} min` : `${hh} h`;
  if (m) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${s} s`;
}

/** The name a host goes by on the page: its id (or a display name). */
export function hostName(hostId, info) {
  return String(info?.display_name || hostId || '?');
}
