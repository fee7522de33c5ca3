// Signing in to the dashboard in a real browser, against an aggregator
// started with `--read-auth login` and a user made by the real
// `fleetwatch-aggregator user add`: the page shows only its login form,
// refuses a wrong password with the server's message, shows the fleet once
// signed in, lets the admin silence an alert, and signs out. No CSP
// violations or script errors on the way.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { World, freePort, waitFor } from './harness.mjs';

const HOST = 'browser-auth';
const USER = 'ops-admin';
const PASSWORD = 'correct horse battery';
// A pool with no process at all alerts from the first sample.
const SECS = 700000 + (process.pid % 40000) * 2;

describe('dashboard login in a real browser', () => {
  const world = new World();
  let page;
  let base;
  const problems = [];

  before(async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    await world.addUser(USER, PASSWORD, 'admin');
    await world.startAggregator({ grpcPort, httpPort, args: ['--read-auth', 'login'] });
    world.startAgent({ grpcPort, hostId: HOST, workers: [`ghost=^sleep ${SECS}$:1`] });
    const context = await world.launchBrowser();
    page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      // 401s are this test's subject (GET /api/me before signing in, the
      // wrong password); anything else logged as an error is a problem,
      // CSP violations included.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text());
    });
  });

  after(async () => {
    await world.stop();
  });

  test('anonymous API reads are refused', async () => {
    const res = await fetch(`${base}/api/hosts`);
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, /login/);
  });

  test('the page asks for a login and shows nothing of the fleet until then', async () => {
    await page.goto(`${base}/`);
    const form = page.locator('#login-form');
    await form.waitFor({ state: 'visible', timeout: 15000 });
    assert.match(await page.locator('#login-why').textContent(), /needs a login/);
    assert.equal(await page.locator('#login-cancel').isVisible(), false, 'no way around it');
    assert.equal(await page.locator('main').isVisible(), false);
    assert.equal(await page.locator(`tr[data-host="${HOST}"]`).count(), 0);

    await page.fill('#login-user', USER);
    await page.fill('#login-password', 'not the password');
    await page.click('#login-submit');
    const error = page.locator('#login-error');
    await error.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await error.textContent(), /wrong user name or password/);
    assert.equal(await page.locator(`tr[data-host="${HOST}"]`).count(), 0);
  });

  test('signing in shows the hosts, and the admin can silence an alert', async () => {
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-submit');
    await page.locator(`tr[data-host="${HOST}"]`).waitFor({ timeout: 20000 });
    assert.equal(await page.locator('#login').isVisible(), false);
    assert.match(await page.locator('#who').textContent(), new RegExp(`${USER}.*admin`));
    await waitFor('the connection to be live', async () => (await page.locator('#conn').textContent()) === 'live', 15000);

    const alert = page.locator(`#alerts li.alert[data-host="${HOST}"]`).filter({ hasText: 'ghost' });
    await alert.waitFor({ timeout: 30000 });
    const button = alert.locator('button.silence');
    assert.equal(await button.textContent(), 'Silence 1h');
    await button.click();
    let silences = [];
    await waitFor('the silence in the API', async () => {
      // Read with the page's own session cookie.
      silences = await page.evaluate(async () => (await fetch('/api/silences')).json());
      return silences.length === 1;
    }, 10000);
    assert.equal(silences[0].rule, 'worker_pool');
    assert.equal(silences[0].host, HOST);
    assert.equal(silences[0].pool, 'ghost');
    // The cookie is out of the script's reach.
    assert.equal(await page.evaluate(() => document.cookie), '');
  });

  test('signing out ends the session and brings the login form back', async () => {
    await page.click('#sign-out');
    await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
    const status = await page.evaluate(async () => (await fetch('/api/hosts')).status);
    assert.equal(status, 401);
    assert.deepEqual(problems, [], 'no script errors or CSP violations');
  });
});
