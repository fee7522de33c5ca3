// Measures (never asserts) what the dashboard costs a browser against a
// running aggregator: requests and bytes over the wire (as encoded, so
// gzip counts) for the fleet view and a host view, on a first visit and
// on a second one with the browser's cache warm, and the time from
// navigation to the first chart with points.
//
//   node tests/browser/weight.mjs http://127.0.0.1:7401 HOST_ID

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [base = 'http://127.0.0.1:7401', host = ''] = process.argv.slice(2);
const profile = mkdtempSync(path.join(tmpdir(), 'fw-weight-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** Loads `url` afresh and counts what came over the network (CDP events). */
async function visit(page, cdp, name, url, ready) {
  const seen = new Map();
  const onResponse = (ev) => seen.set(ev.requestId, { cached: ev.response.fromDiskCache || ev.response.fromPrefetchCache, bytes: 0, url: ev.response.url });
  const onServed = (ev) => { const r = seen.get(ev.requestId); if (r) r.cached = true; };
  const onFinished = (ev) => { const r = seen.get(ev.requestId); if (r) r.bytes = ev.encodedDataLength; };
  cdp.on('Network.responseReceived', onResponse);
  cdp.on('Network.requestServedFromCache', onServed);
  cdp.on('Network.loadingFinished', onFinished);
  await page.goto('about:blank');
  const t0 = Date.now();
  await page.goto(`${base}${url}`);
  await ready();
  const ms = Date.now() - t0;
  // Let the requests the view makes right after it shows finish too.
  await page.waitForTimeout(1500);
  cdp.off('Network.responseReceived', onResponse);
  cdp.off('Network.requestServedFromCache', onServed);
  cdp.off('Network.loadingFinished', onFinished);
  const network = [...seen.values()].filter((r) => !r.cached && !r.url.startsWith('data:'));
  const bytes = network.reduce((n, r) => n + r.bytes, 0);
  const assets = network.filter((r) => r.url.includes('/assets/') || r.url.endsWith('/'));
  console.log(`${name}: ${network.length} requests, ${(bytes / 1024).toFixed(1)} KiB over the wire `
    + `(page and assets: ${assets.length} requests, ${(assets.reduce((n, r) => n + r.bytes, 0) / 1024).toFixed(1)} KiB); ready in ${ms} ms`);
}

try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  const fleetReady = () => page.locator('tr.host-row').first().waitFor({ timeout: 30000 });
  const hostReady = () => page.waitForFunction(() => Number(document.querySelector('#chart-cpu')?.dataset.points ?? 0) > 0, null, { timeout: 30000 });
  const hostUrl = `/#/host/${encodeURIComponent(host)}`;
  await cdp.send('Network.clearBrowserCache');
  await visit(page, cdp, 'fleet view, empty cache', '/', fleetReady);
  await cdp.send('Network.clearBrowserCache');
  await visit(page, cdp, 'host view, empty cache (ready = first chart with points)', hostUrl, hostReady);
  await visit(page, cdp, 'fleet view, warm cache', '/', fleetReady);
  await visit(page, cdp, 'host view, warm cache', hostUrl, hostReady);
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
