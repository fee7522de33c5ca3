// The dashboard in headless Chromium against a real aggregator fed by a real
// agent that watches real worker processes, one of them with a hostile
// command line.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { SCREENSHOTS, World, freePort, waitFor } from './harness.mjs';

const HOST = 'browser-test';
const XSS = '<img src=x onerror=alert(1)>';
// Unique sleep lengths so that other runs' workers on this machine don't match.
const SECS = 900000 + (process.pid % 40000) * 2;

describe('dashboard in a real browser', () => {
  const world = new World();
  let grpcPort;
  let httpPort;
  let base;
  let page;
  let workers;
  const dialogs = [];
  const pageErrors = [];

  before(async () => {
    grpcPort = await freePort();
    httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    workers = [world.startWorker(SECS), world.startWorker(SECS + 1, `${XSS} worker`)];
    await world.startAggregator({ grpcPort, httpPort });
    world.startAgent({ grpcPort, hostId: HOST, workers: [`pool=(sleep ${SECS}|worker ${SECS + 1})$:2`] });
    await waitFor('the first samples with both workers', async () => {
      const res = await fetch(`${base}/api/workers/status?host=${HOST}`);
      if (!res.ok) return false;
      const [h] = await res.json();
      return h?.groups?.[0]?.alive === 2;
    }, 30000);
    const context = await world.launchBrowser();
    page = context.pages()[0] ?? await context.newPage();
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    // Nobody signs in here: the page's GET /api/me is answered 401 on purpose.
    const expected = (url) => url.endsWith('/api/me');
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !expected(m.location()?.url ?? '')) pageErrors.push(`${m.text()} ${m.location()?.url ?? ''}`); });
    page.on('response', (r) => { if (r.status() >= 400 && !(r.status() === 401 && expected(r.url()))) pageErrors.push(`${r.status()} ${r.url()}`); });
  });

  after(async () => {
    await world.stop();
  });

  const text = (sel) => page.locator(sel).first().textContent({ timeout: 5000 });

  test('fleet view lists the host with status, numbers and workers', async () => {
    await page.goto(`${base}/`);
    const row = page.locator(`tr[data-host="${HOST}"]`);
    await row.waitFor({ timeout: 15000 });
    await waitFor('the connection to be live', async () => (await text('#conn')) === 'live', 15000);
    await waitFor('the host to show online', async () => (await row.locator('.status').textContent()) === 'online', 15000);
    await waitFor('CPU and workers in the row', async () => {
      const t = await row.textContent();
      return /\d+(\.\d)? %/.test(t) && t.includes('pool 2/2');
    }, 15000);
    assert.equal(await page.locator('[data-count="hosts"] .count-n').textContent(), '1');
  });

  test('host view charts contain data points', async () => {
    await page.locator(`tr[data-host="${HOST}"] a.host-link`).click();
    await page.locator('#host').waitFor({ timeout: 10000 });
    for (const id of ['cpu', 'cores', 'memory', 'disk', 'diskio', 'net', 'load']) {
      await waitFor(`chart ${id} to have data points`, async () => {
        const n = await page.locator(`#chart-${id}`).getAttribute('data-points', { timeout: 2000 });
        return Number(n) >= 2;
      }, 20000);
    }
    assert.ok(await page.locator('#chart-cpu canvas').count() >= 1, 'uPlot drew on a canvas');
    // Hovering shows a value and a time in the legend.
    const box = await page.locator('#chart-cpu .u-over').boundingBox();
    await page.mouse.move(box.x + box.width - 5, box.y + box.height / 2);
    const legend = await page.locator('#chart-cpu .u-legend').textContent();
    assert.match(legend, /\d+:\d+/);
    await page.locator('button[data-range="1h"]').click();
    await waitFor('1h range to load', async () => Number(await page.locator('#chart-cpu').getAttribute('data-points')) >= 2, 15000);
  });

  test('workers table lists the workers', async () => {
    for (const w of workers) {
      await page.locator(`#workers tr[data-pid="${w.pid}"]`).waitFor({ timeout: 15000 });
    }
    const pool = page.locator('.pool-block[data-pool="pool"]');
    assert.match(await pool.locator('h3').textContent(), /2 alive \/ 2 expected/);
    assert.equal(await pool.locator('.badge.sev-critical').count(), 0, 'a pool at its minimum does not stand out');
    assert.ok((await pool.locator('tbody').textContent()).includes(`sleep ${SECS}`));
  });

  test('a hostile command line shows as text and runs nothing', async () => {
    const cell = page.locator(`#workers tr[data-pid="${workers[1].pid}"] td.cmdline`);
    assert.equal(await cell.textContent(), `${XSS} worker ${SECS + 1}`);
    assert.equal(await page.locator('img').count(), 0, 'no img element was created');
    assert.deepEqual(dialogs, [], 'no dialog fired');
    await page.goto(`${base}/`);
    await page.locator(`tr[data-host="${HOST}"]`).waitFor({ timeout: 10000 });
    assert.equal(await page.locator('img').count(), 0);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(pageErrors, [], 'no script errors or CSP violations');
  });

  test('screenshots of fleet and host views at desktop and phone width', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const [name, size] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 375, height: 812 }]]) {
      await page.setViewportSize(size);
      await page.goto(`${base}/#/`);
      await page.locator(`tr[data-host="${HOST}"] .status`).waitFor({ timeout: 10000 });
      await page.screenshot({ path: path.join(SCREENSHOTS, `fleet-${name}.png`), fullPage: true });
      await page.goto(`${base}/#/host/${HOST}`);
      await waitFor('charts', async () => Number(await page.locator('#chart-cores').getAttribute('data-points', { timeout: 2000 })) >= 4, 20000);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name}: the page scrolls sideways by ${overflow} px`);
      await page.screenshot({ path: path.join(SCREENSHOTS, `host-${name}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('stopping the aggregator shows reconnecting; restarting brings live data back', async () => {
    await page.goto(`${base}/#/host/${HOST}`);
    await waitFor('live', async () => (await text('#conn')) === 'live', 15000);
    const aggregator = [...world.procs].find((p) => p.name === 'aggregator');
    await world.stopProcess(aggregator);
    await waitFor('"reconnecting"', async () => (await text('#conn')) === 'reconnecting', 10000);
    const restartedAt = Date.now();
    await world.startAggregator({ grpcPort, httpPort });
    await waitFor('"live" again', async () => (await text('#conn')) === 'live', 30000);
    await waitFor('a sample taken after the restart', () => page.evaluate(
      ([host, since]) => (window.fleetwatch.state.hosts.get(host)?.summary?.timestamp_ms ?? 0) > since,
      [HOST, restartedAt]), 30000);
    await waitFor('the CPU chart to show data', async () => Number(await page.locator('#chart-cpu').getAttribute('data-points')) >= 2, 15000);
  });
});
