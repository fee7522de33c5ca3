// Fixtures for the browser tests: free loopback ports, the real aggregator
// and agent binaries (from $FLEETWATCH_BIN_DIR, default target/debug), real
// worker processes, headless Chromium through playwright-core, waiting on
// conditions with deadlines, and cleanup of everything started.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, openSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN_DIR = path.resolve(REPO, process.env.FLEETWATCH_BIN_DIR ?? 'target/debug');
export const SCREENSHOTS = path.join(REPO, 'target', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Waits until `check()` returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = 20000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Everything one test file starts, stopped by `stop()` whatever happened. */
export class World {
  constructor() {
    this.procs = new Set();
    this.dir = mkdtempSync(path.join(tmpdir(), 'fleetwatch-browser-'));
    this.browser = null;
    // The aggregator accepts it (FLEETWATCH_AGENT_TOKEN); agents send it.
    this.agentToken = `fwa_${randomBytes(32).toString('hex')}`;
    process.once('exit', () => this.killAll());
  }

  spawn(name, cmd, args, env = {}) {
    const log = openSync(path.join(this.dir, `${name}.log`), 'a');
    const child = spawn(cmd, args, {
      stdio: ['ignore', log, log], detached: false, env: { ...process.env, ...env },
    });
    child.name = name;
    child.exited = new Promise((resolve) => child.once('exit', resolve));
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  /**
   * `args`: extra flags, such as `['--read-auth', 'login']`; `config`: extra
   * lines for its TOML config, such as alert rules.
   */
  async startAggregator({ grpcPort, httpPort, args = [], config: extra = [] }) {
    // The tests drive worker pools. This machine's own CPU, memory and disk
    // (a busy CI box) must not raise alerts that change what the page shows.
    const config = path.join(this.dir, 'aggregator.toml');
    writeFileSync(config, [
      '[alerts.defaults.cpu]', 'enabled = false',
      '[alerts.defaults.memory]', 'enabled = false',
      '[alerts.defaults.disk]', 'enabled = false', '',
      ...extra, '',
    ].join('\n'));
    const child = this.spawn('aggregator', path.join(BIN_DIR, 'fleetwatch-aggregator'), [
      '--config', config,
      '--db', path.join(this.dir, 'fleetwatch.db'),
      '--grpc-listen', `127.0.0.1:${grpcPort}`,
      '--http-listen', `127.0.0.1:${httpPort}`,
      ...args,
    ], { FLEETWATCH_AGENT_TOKEN: this.agentToken });
    await waitFor('the aggregator to answer /health', async () => {
      if (child.exitCode !== null) throw new Error(`aggregator exited with ${child.exitCode}; see ${this.dir}/aggregator.log`);
      const res = await fetch(`http://127.0.0.1:${httpPort}/health`);
      return res.ok;
    }, 20000);
    return child;
  }

  /**
   * Adds a dashboard user to this world's database with the real
   * `fleetwatch-aggregator user add … --password-stdin`.
   */
  addUser(name, password, role) {
    return new Promise((resolve, reject) => {
      const child = spawn(path.join(BIN_DIR, 'fleetwatch-aggregator'), [
        'user', 'add', name, '--role', role, '--password-stdin',
        '--db', path.join(this.dir, 'fleetwatch.db'),
      ], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => { output += d; });
      child.stderr.on('data', (d) => { output += d; });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`user add ${name} exited with ${code}: ${output}`))));
      child.stdin.end(`${password}\n`);
    });
  }

  startAgent({ grpcPort, hostId, workers }) {
    return this.spawn(`agent-${hostId}`, path.join(BIN_DIR, 'fleetwatch-agent'), [
      '--aggregator', `http://127.0.0.1:${grpcPort}`, '--interval', '1s', '--host-id', hostId,
      ...workers.flatMap((w) => ['--worker', w]),
    ], { FLEETWATCH_TOKEN: this.agentToken });
  }

  /** A worker process; `argv0` renames it (its command line then starts with it). */
  startWorker(seconds, argv0) {
    return argv0
      ? this.spawn(`worker-${seconds}`, 'bash', ['-c', `exec -a "$0" sleep ${seconds}`, argv0])
      : this.spawn(`worker-${seconds}`, 'sleep', [String(seconds)]);
  }

  async stopProcess(child, signal = 'SIGTERM') {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await child.exited;
    clearTimeout(timer);
  }

  async launchBrowser() {
    const profile = path.join(this.dir, 'chromium-profile');
    mkdirSync(profile, { recursive: true });
    this.browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 800 },
    });
    return this.browser;
  }

  killAll() {
    for (const child of this.procs) {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
    }
  }

  async stop() {
    try { await this.browser?.close(); } catch { /* already closed */ }
    await Promise.all([...this.procs].map((c) => this.stopProcess(c)));
    if (!process.env.FLEETWATCH_KEEP_TMP) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Text on the page whose contrast with what is behind it is below `min`
 * (WCAG AA: 4.5:1): every visible element with text of its own, its colour
 * against the first opaque background among it and its ancestors
 * (translucent ones blended in). Disabled controls are exempt, as in WCAG.
 */
export function contrastProblems(page, min = 4.5) {
  return page.evaluate((minRatio) => {
    const parse = (c) => {
      const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(c);
      return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])] : null;
    };
    const blend = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
    const lum = (c) => {
      const [r, g, b] = c.slice(0, 3).map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const bg = parse(getComputedStyle(e).backgroundColor);
        if (bg && bg[3] > 0) {
          layers.push(bg);
          if (bg[3] >= 1) break;
        }
      }
      let colour = [255, 255, 255, 1];
      for (const layer of layers.reverse()) colour = blend(layer, colour);
      return colour;
    };
    const problems = [];
    for (const el of document.querySelectorAll('body *')) {
      const ownText = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
      if (!ownText || el.closest('[disabled], noscript, script, style')) continue;
      const rect = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (!rect.width || !rect.height || style.visibility === 'hidden') continue;
      let fg = parse(style.color);
      if (!fg) continue;
      const bg = background(el);
      fg = blend(fg, bg);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      if (ratio < minRatio) problems.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}:1`);
    }
    return problems;
  }, min);
}
