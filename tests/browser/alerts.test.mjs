// An alert appears on the page without a reload when a worker pool falls
// below its minimum, and goes away when the pool recovers.
// The alert arrives as a `{"type":"alert","alert":{...}}` WebSocket message
// from the aggregator's alert engine.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { World, freePort, waitFor } from './harness.mjs';

const HOST = 'browser-alerts';
const USER = 'alerts-admin';
const PASSWORD = 'correct horse battery';
const SECS = 800000 + (process.pid % 40000) * 2;
describe('alerts in a real browser', () => {
  const world = new World();
  let page;
  let base;

  before(async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    world.startWorker(SECS);
    world.startWorker(SECS);
    await world.addUser(USER, PASSWORD, 'admin');
    await world.startAggregator({ grpcPort, httpPort });
    world.startAgent({ grpcPort, hostId: HOST, workers: [`short=^sleep ${SECS}$:3`] });
    const context = await world.launchBrowser();
    page = context.pages()[0] ?? await context.newPage();
  });

  after(async () => {
    await world.stop();
  });

  test('worker pool below minimum raises an alert that clears without reload', async () => {
    await page.goto(`${base}/`);
    await page.locator(`tr[data-host="${HOST}"]`).waitFor({ timeout: 20000 });
    const alert = page.locator(`#alerts li.alert[data-host="${HOST}"]`).filter({ hasText: 'short' });
    await alert.waitFor({ timeout: 60000 });
    const t = await alert.textContent();
    assert.match(t, /critical/i);
    assert.match(t, /since/);
    assert.equal(await page.locator(`tr[data-host="${HOST}"] .status`).textContent(), 'alerting');
    // Reading is open on loopback, changing is not: the button asks for a login.
    const button = alert.locator('button.silence');
    assert.equal(await button.textContent(), 'Sign in to silence');
    await button.click();
    await page.locator('#login-form').waitFor({ state: 'visible', timeout: 5000 });
    assert.match(await page.locator('#login-why').textContent(), /admin/);
    await page.fill('#login-user', USER);
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-submit');
    await page.locator('#sign-out').waitFor({ timeout: 10000 });
    await waitFor('the Silence button for the admin', async () => (await button.textContent()) === 'Silence 1h', 5000);

    // The button silences this pool on this host through the API.
    await button.click();
    let silences = [];
    await waitFor('the silence in the API', async () => {
      silences = await (await fetch(`${base}/api/silences`)).json();
      return silences.length === 1;
    }, 10000);
    assert.equal(silences[0].rule, 'worker_pool');
    assert.equal(silences[0].host, HOST);
    assert.equal(silences[0].pool, 'short');
    const loads = await page.evaluate(() => performance.getEntriesByType('navigation').length);

    world.startWorker(SECS);
    await waitFor('the alert to go away', async () => (await alert.count()) === 0, 60000);
    assert.equal(await page.locator(`tr[data-host="${HOST}"] .status`).textContent(), 'online');
    assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), loads, 'no reload');
  });
});
