// Measures (never asserts) against a running aggregator: WebSocket delivery
// latency (sample timestamp on the agent to message on a client; same
// machine, so one clock) with N clients, and page load time to first chart.
//
//   node --experimental-websocket tests/browser/measure.mjs http://127.0.0.1:7401 HOST_ID [clients] [seconds]

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [base = 'http://127.0.0.1:7401', host, clients = '10', seconds = '20'] = process.argv.slice(2);
const lat = [];
const sockets = [];
for (let i = 0; i < Number(clients); i += 1) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'sample') lat.push(Date.now() - msg.timestamp_ms);
  };
  sockets.push(ws);
}
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
sockets.forEach((s) => s.close());
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
console.log(`ws delivery, ${clients} clients, ${lat.length} messages: median ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${lat.at(-1)} ms`);

const profile = mkdtempSync(path.join(tmpdir(), 'fw-measure-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  for (const [name, url] of [['fleet', '/'], ['host', `/#/host/${encodeURIComponent(host ?? '')}`]]) {
    const t0 = Date.now();
    await page.goto(`${base}${url}`);
    if (name === 'fleet') await page.locator('tr.host-row').first().waitFor({ timeout: 30000 });
    else await page.waitForFunction(() => Number(document.querySelector('#chart-cpu')?.dataset.points ?? 0) > 0, null, { timeout: 30000 });
    console.log(`page load to first ${name === 'fleet' ? 'host row' : 'chart'}: ${Date.now() - t0} ms`);
  }
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
