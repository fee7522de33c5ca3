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
// A rule that applies to every host and never fires here: its thresholds
// are drawn on the load chart.
const LOAD_RULE = ['[[alerts.rules]]', 'name = "load-very-high"', 'metric = "load_per_core"',
  'comparison = ">="', 'warning = 500.0', 'critical = 1000.0'];
// After the aggregator's restart: a rule that fires at once on this host,
// so that its start shows on the memory chart.
const MEMORY_RULE = ['[[alerts.rules]]', 'name = "memory-any"', 'metric = "memory_percent"',
  'comparison = ">="', 'warning = 0.0', `hosts = ["${HOST}"]`];

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
    await world.startAggregator({ grpcPort, httpPort, config: LOAD_RULE });
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
    // Nobody signs in here, and still nothing is logged as an error and no
    // request fails: not GET /api/me, not per-core history.
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      const url = m.location()?.url ?? '';
      if (m.type() === 'error') pageErrors.push(`${m.text()} ${url}`);
    });
    page.on('response', (r) => { if (r.status() >= 400) pageErrors.push(`${r.status()} ${r.url()}`); });
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
    for (const range of ['7d', '30d', '15m']) {
      const before = await page.locator('#host').getAttribute('data-loaded');
      await page.locator(`button[data-range="${range}"]`).click();
      await waitFor(`${range} range to load`, async () => (await page.locator('#host').getAttribute('data-loaded')) !== before
        && Number(await page.locator('#chart-cpu').getAttribute('data-points')) >= 2, 15000);
    }
  });

  test('legends show the latest values until hovered, and rules draw thresholds', async () => {
    await waitFor('a value in the CPU legend without hovering', async () => {
      await page.mouse.move(0, 0);
      const legend = await page.locator('#chart-cpu .u-legend').textContent();
      return /\d+(\.\d)? %/.test(legend) && !legend.includes('–');
    }, 10000);
    // warning and critical of the load rule; no CPU rule is enabled here.
    assert.equal(await page.locator('#chart-load').getAttribute('data-thresholds'), '2');
    assert.equal(await page.locator('#chart-cpu').getAttribute('data-thresholds'), '0');
  });

  test('one crosshair across every chart of the host', async () => {
    const box = await page.locator('#chart-cpu .u-over').boundingBox();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
    const times = await page.evaluate(() => [...document.querySelectorAll('#host .chart')].map((c) => ({
      id: c.dataset.chart,
      time: c.querySelector('.u-legend .u-series:first-child .u-value')?.textContent,
      cursor: c.querySelector('.u-cursor-x')?.style.transform ?? '',
    })));
    assert.equal(times.length, 7);
    for (const t of times) {
      assert.equal(t.time, times[0].time, `chart ${t.id} shows the hovered time`);
      assert.match(t.time, /\d+:\d+/);
      assert.match(t.cursor, /translate/, `chart ${t.id} draws the crosshair`);
    }
    await page.mouse.move(0, 0);
  });

  test('dragging across a chart zooms all of them, and Reset zoom goes back', async () => {
    const scales = () => page.evaluate(() => window.fleetwatch.hostView.charts.map((c) => [c.plot.scales.x.min, c.plot.scales.x.max]));
    const [[fullMin, fullMax]] = await scales();
    const box = await page.locator('#chart-memory .u-over').boundingBox();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.locator('#zoom-reset').waitFor({ state: 'visible', timeout: 5000 });
    let zoomed;
    await waitFor('every chart zoomed', async () => {
      zoomed = await scales();
      return zoomed.every(([min, max]) => max - min < (fullMax - fullMin) * 0.5);
    }, 5000);
    for (const [min, max] of zoomed) {
      assert.ok(Math.abs(min - zoomed[0][0]) < 1e-6 && Math.abs(max - zoomed[0][1]) < 1e-6, 'all charts show the same span');
    }
    assert.ok(zoomed[0][0] > fullMin && zoomed[0][1] < fullMax);
    await page.click('#zoom-reset');
    await waitFor('the full window back', async () => {
      const back = await scales();
      return back.every(([min, max]) => max - min > (fullMax - fullMin) * 0.9);
    }, 5000);
    assert.equal(await page.locator('#zoom-reset').isVisible(), false);
    // From the keyboard: Zoom in halves the span on every chart.
    await page.locator('#zoom-in').focus();
    await page.keyboard.press('Enter');
    await waitFor('half the span', async () => {
      const half = await scales();
      return half.every(([min, max]) => Math.abs((max - min) - (fullMax - fullMin) / 2) < 2);
    }, 5000);
    await page.locator('#zoom-reset').focus();
    await page.keyboard.press('Enter');
    await waitFor('the full window back again', async () => (await scales()).every(([min, max]) => max - min > (fullMax - fullMin) * 0.9), 5000);
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

  test('losing the aggregator marks everything stale at once; its return brings the page live within 2 s, gap filled', async () => {
    await page.goto(`${base}/#/host/${HOST}`);
    await waitFor('live', async () => (await text('#conn')) === 'live', 15000);
    await waitFor('charts', async () => Number(await page.locator('#chart-cpu').getAttribute('data-points')) >= 2, 15000);
    const aggregator = [...world.procs].find((p) => p.name === 'aggregator');
    const stoppedAt = Date.now();
    await world.stopProcess(aggregator);
    // The page is told at once (the socket closes); 2 s is the promise.
    await waitFor('"reconnecting" and stale marking', async () => (await text('#conn')) === 'reconnecting'
      && (await page.locator('body').getAttribute('data-stale')) === 'true'
      && await page.locator('#stale').isVisible(), 2000, 50);
    assert.match(await page.locator('#stale').textContent(), /Live feed lost (just now|.* ago); reconnecting/);
    const [value, muted] = await page.evaluate(() => {
      const probe = document.createElement('span');
      probe.style.color = 'var(--muted)';
      document.body.append(probe);
      const colours = [getComputedStyle(document.querySelector('#host .fact dd')).color, getComputedStyle(probe).color];
      probe.remove();
      return colours;
    });
    assert.equal(value, muted, 'values are greyed');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'host-stale.png') });
    // Out long enough that the agent keeps a backlog the page has not seen.
    await new Promise((r) => setTimeout(r, 4000));
    await world.startAggregator({ grpcPort, httpPort, config: [...LOAD_RULE, ...MEMORY_RULE] });
    const backAt = Date.now();
    await waitFor('"live" again within 2 s of the aggregator\'s return', async () => (await text('#conn')) === 'live', 2000, 50);
    console.log(`# live again ${Date.now() - backAt} ms after /health answered`);
    assert.equal(await page.locator('#stale').isVisible(), false);
    assert.equal(await page.locator('body').getAttribute('data-stale'), null);
    await waitFor('a sample taken after the restart', () => page.evaluate(
      ([host, since]) => (window.fleetwatch.state.hosts.get(host)?.summary?.timestamp_ms ?? 0) > since,
      [HOST, backAt]), 30000);
    // The seconds the aggregator was away come back from the agent's spool.
    const outage = [stoppedAt / 1000 + 1, backAt / 1000 - 1];
    await waitFor('the chart to fill the outage', () => page.evaluate(([from, to]) => {
      const c = window.fleetwatch.hostView.charts[0];
      return c.x.filter((t, i) => t > from && t < to && c.ys[0][i] != null).length >= 2;
    }, outage), 30000);
  });

  test('an alert\'s start is marked on the charts of its metric, with its threshold', async () => {
    await waitFor('the memory alert stored', async () => {
      const firing = await (await fetch(`${base}/api/alerts?state=firing&host=${HOST}`)).json();
      return firing.some((a) => a.rule === 'memory-any');
    }, 20000);
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/host/${HOST}`);
    await waitFor('a marker on the memory chart', async () => Number(await page.locator('#chart-memory').getAttribute('data-markers')) >= 1, 10000);
    assert.equal(await page.locator('#chart-memory').getAttribute('data-thresholds'), '1');
    assert.equal(await page.locator('#chart-cpu').getAttribute('data-markers'), '0');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'host-alert-marker.png') });
  });

  test('an offline host keeps its last values, marked stale with their time', async () => {
    const agent = [...world.procs].find((p) => p.name === `agent-${HOST}`);
    await world.stopProcess(agent);
    await page.goto(`${base}/#/`);
    const row = page.locator(`tr[data-host="${HOST}"]`);
    await waitFor('the host offline', async () => (await row.locator('.status').textContent()) === 'offline', 20000);
    const cpu = row.locator('td.usage').first();
    assert.match(await cpu.getAttribute('class'), /\bstale\b/);
    assert.match(await cpu.getAttribute('title'), /^last values, from /);
    assert.match(await cpu.textContent(), /\d+(\.\d)? %/, 'the last value stays');
    await page.goto(`${base}/#/host/${HOST}`);
    await page.locator('#host-stale').waitFor({ timeout: 10000 });
    assert.match(await page.locator('#host-stale').textContent(), /Offline: the values below are its last/);
    assert.ok(await page.locator('#host .fact.stale').count() >= 1);
  });
});
