// The fleet view with 1,000 hosts: a synthetic fleet fed into the page's
// own state (the messages the WebSocket would carry: one snapshot, then a
// sample per host per second) on the real page served by a real
// aggregator. Proves that the view pages the fleet (a page's rows, not a
// thousand) and stays correct while samples stream; measures frame times
// and reports them (never asserted: CI shares two cores).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { SCREENSHOTS, World, freePort, waitFor } from './harness.mjs';

const HOSTS = 1000;
const SECONDS = 5;

describe('a fleet of 1,000 hosts in a real browser', () => {
  const world = new World();
  let page;
  let base;
  const pageErrors = [];

  before(async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    await world.startAggregator({ grpcPort, httpPort });
    const context = await world.launchBrowser();
    page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await world.stop();
  });

  test('pages the fleet, keeps up with a sample per host per second, and reports frame times', async () => {
    await page.goto(`${base}/`);
    await waitFor('the live feed', async () => (await page.locator('#conn').textContent()) === 'live', 15000);
    const frames = await page.evaluate(async ([hosts, seconds]) => {
      const { state } = window.fleetwatch;
      const now = Date.now();
      const summary = (i, t) => ({
        timestamp_ms: t, cpu_percent: (i * 7 + t / 1000) % 100, memory_percent: (i * 3) % 100,
        disk_used_percent_max: 40 + (i % 50), load1: (i % 16) / 4,
        groups: [{ name: 'queue', min_alive: 2, alive: i % 97 === 0 ? 1 : 2, restarts: 0 }],
      });
      state.applySnapshot({
        type: 'snapshot', server_time_ms: now,
        hosts: Array.from({ length: hosts }, (_, i) => ({
          host_id: `synthetic-${String(i).padStart(4, '0')}`, hostname: `vm-${i % 10}`, online: i % 50 !== 0,
          interval_ms: 1000, cpu_count: 4, worker_groups: [{ name: 'queue', min_alive: 2 }],
          summary: summary(i, now), latest: null, groups: [],
        })),
        alerts: [],
      });
      // Frame times while a sample per host per second streams in, spread
      // over the second as a busy feed would deliver them.
      const gaps = [];
      let last = performance.now();
      let running = true;
      const tick = (t) => {
        gaps.push(t - last);
        last = t;
        if (running) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      const perBatch = hosts / 20;
      for (let n = 0; n < seconds * 20; n += 1) {
        const t = now + 50 * (n + 1);
        for (let k = 0; k < perBatch; k += 1) {
          const i = (n * perBatch + k) % hosts;
          if (i % 50 === 0) continue; // offline hosts send nothing
          const host_id = `synthetic-${String(i).padStart(4, '0')}`;
          state.applySample({ type: 'sample', host_id, timestamp_ms: t, summary: summary(i, t) });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      running = false;
      gaps.sort((a, b) => a - b);
      const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
      return { frames: gaps.length, p50: q(0.5), p95: q(0.95), max: gaps.at(-1), over50: gaps.filter((g) => g > 50).length };
    }, [HOSTS, SECONDS]);
    console.log(`# ${HOSTS} hosts, ${HOSTS} samples/s for ${SECONDS} s: ${frames.frames} frames, `
      + `frame time median ${frames.p50.toFixed(1)} ms, p95 ${frames.p95.toFixed(1)} ms, max ${frames.max.toFixed(1)} ms, ${frames.over50} frames over 50 ms`);

    // One page of rows, not a thousand; the pager says where we are.
    await waitFor('a page of rows', async () => (await page.locator('tr.host-row').count()) === 100, 5000);
    assert.equal(await page.locator('#fleet-page-info').textContent(), `Hosts 1–100 of ${HOSTS}`);
    assert.equal(await page.locator('[data-count="hosts"] .count-n').textContent(), String(HOSTS));
    assert.equal(await page.locator('[data-count="offline"] .count-n').textContent(), String(HOSTS / 50));
    assert.equal(await page.locator('tr.host-row').first().getAttribute('data-host'), 'synthetic-0000');
    // The live values reached the rows on screen.
    const cpu = await page.locator('tr[data-host="synthetic-0001"] td.usage').first().textContent();
    assert.match(cpu, /\d+(\.\d)? %/);
    await page.click('#fleet-next');
    await waitFor('the second page', async () => (await page.locator('#fleet-page-info').textContent()) === `Hosts 101–200 of ${HOSTS}`, 5000);
    assert.equal(await page.locator('tr.host-row').first().getAttribute('data-host'), 'synthetic-0100');
    assert.equal(await page.locator('tr.host-row').count(), 100);
    // Filtering searches the whole fleet, not the page.
    await page.fill('#fleet-filter', 'synthetic-0999');
    await waitFor('one host', async () => (await page.locator('tr.host-row').count()) === 1, 5000);
    assert.equal(await page.locator('#fleet-pager').isVisible(), false);
    await page.fill('#fleet-filter', '');
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-1000-hosts.png') });
    assert.deepEqual(pageErrors, [], 'no script errors');
  });
});
