// The alert bar, silences and alert history in a real browser, with ten
// alerts firing: two real agents (1 s samples) whose worker pools have no
// process, one of which a real worker later brings back.
//
// It proves what issue 13 asks: the fleet's first row stays on screen at
// desktop and phone sizes; the bar's buttons work on every click while
// samples stream; a silence shows at once, is listed on the Silences page
// and can be ended there; silencing works from the keyboard alone; and the
// Alerts page shows the stored history (firing and resolved) after a reload.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { SCREENSHOTS, World, contrastProblems, freePort, waitFor } from './harness.mjs';

const USER = 'bar-admin';
const PASSWORD = 'correct horse battery';
// Unique sleep lengths so that no other process on this machine matches.
const SECS = 600000 + (process.pid % 40000) * 2;
const HOST_A = 'bar-a';
const HOST_B = 'bar-b';
const POOLS_A = ['a0', 'a1', 'a2', 'a3', 'comeback'];
const POOLS_B = ['b0', 'b1', 'b2', 'b3', 'b4'];

describe('alert bar, silences and history in a real browser', () => {
  const world = new World();
  let page;
  let base;
  const problems = [];

  before(async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    await world.addUser(USER, PASSWORD, 'admin');
    await world.startAggregator({ grpcPort, httpPort });
    // Every pool wants one process of a command line nothing runs (yet).
    const pools = (names, offset) => names.map((n, i) => `${n}=^sleep ${SECS + offset + i}$:1`);
    world.startAgent({ grpcPort, hostId: HOST_A, workers: pools(POOLS_A, 0) });
    world.startAgent({ grpcPort, hostId: HOST_B, workers: pools(POOLS_B, 10) });
    await waitFor('ten alerts firing', async () => {
      const firing = await (await fetch(`${base}/api/alerts?state=firing`)).json();
      return firing.length === 10;
    }, 60000);
    const context = await world.launchBrowser();
    page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      // An anonymous load logs no error at all (GET /api/me answers 200).
      if (m.type() === 'error') problems.push(m.text());
    });
  });

  after(async () => {
    await world.stop();
  });

  const firstRowTop = async () => (await page.locator('tr.host-row').first().boundingBox())?.y ?? Infinity;

  test('with ten alerts firing the fleet\'s first row is on screen at desktop and phone sizes', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const [name, size] of [['desktop', { width: 1440, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
      await page.setViewportSize(size);
      await page.goto(`${base}/`);
      await page.locator('tr.host-row').first().waitFor({ timeout: 15000 });
      await waitFor('ten firing in the bar', async () => (await page.locator('#alerts').getAttribute('data-firing')) === '10', 15000);
      const top = await firstRowTop();
      const bottom = top + ((await page.locator('tr.host-row').first().boundingBox())?.height ?? 0);
      await page.screenshot({ path: path.join(SCREENSHOTS, `alerts-10-fleet-${name}.png`) });
      assert.ok(bottom <= size.height, `${name}: the first host row ends at y=${bottom}, below the ${size.height} px screen`);
      // Ten alerts of one rule: one group line, not ten rows.
      assert.equal(await page.locator('#alert-list > li').count(), 1);
      assert.match(await page.locator('#alert-list > li').textContent(), /worker_pool: 10 alerts on 2 hosts/);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('the bar\'s buttons work on every click while samples stream', async () => {
    await page.goto(`${base}/`);
    const group = page.locator('#alert-list > li.alert-group');
    await group.locator('summary').click();
    const row = page.locator(`#alert-list li.alert[data-host="${HOST_A}"]`).filter({ hasText: 'pool a0' });
    await row.waitFor({ timeout: 5000 });
    assert.match(await row.textContent(), /0 of 1 workers alive/);
    const nodeBefore = await row.elementHandle();
    for (let i = 0; i < 10; i += 1) {
      // Samples keep arriving between clicks (1 s interval, two hosts).
      await page.waitForTimeout(300);
      await row.locator('button.silence').click({ timeout: 3000 });
      await page.locator('#login-form').waitFor({ state: 'visible', timeout: 2000 });
      await page.click('#login-cancel');
      await page.locator('#login-form').waitFor({ state: 'hidden', timeout: 2000 });
    }
    // The row is the node it was: updated in place, never rebuilt.
    assert.ok(await nodeBefore.evaluate((el) => el.isConnected), 'the row was replaced');
    assert.equal(await page.locator('#alert-list > li.alert-group details').getAttribute('open'), '', 'the group stayed open');
  });

  test('a silence shows at once, is listed, and ends from the Silences page', async () => {
    const row = page.locator(`#alert-list li.alert[data-host="${HOST_A}"]`).filter({ hasText: 'pool a0' });
    await row.locator('button.silence').click();
    await page.fill('#login-user', USER);
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-submit');
    await page.locator('#sign-out').waitFor({ timeout: 10000 });
    await waitFor('the admin\'s Silence button', async () => (await row.locator('button.silence').textContent()) === 'Silence 1h', 5000);
    const silencedBefore = Number(await page.locator('[data-count="silenced"] .count-n').textContent());
    await row.locator('button.silence').click();
    // At once: no reconnect, no reload; the alert leaves the firing list.
    await waitFor('the alert to leave the firing list', async () => (await row.count()) === 0, 3000);
    assert.match(await page.locator('#alerts-silenced').textContent(), /bar-a · pool a0/);
    assert.equal(await page.locator('#alerts').getAttribute('data-firing'), '9');
    await waitFor('the silenced count', async () => Number(await page.locator('[data-count="silenced"] .count-n').textContent()) === silencedBefore + 1, 3000);
    assert.equal(await page.locator('[data-count="critical"] .count-n').textContent(), '9', 'a silenced alert is not counted as critical');

    await page.click('nav.pages a[href="#/silences"]');
    // The router marks the link on the hashchange that follows the click.
    await waitFor('the Silences link marked current', async () => (await page.locator('nav.pages a[href="#/silences"]').getAttribute('aria-current')) === 'page', 5000);
    const listed = page.locator('#silences-table tbody tr');
    await waitFor('the silence listed', async () => (await listed.count()) === 1, 5000);
    assert.match(await listed.textContent(), /rule worker_pool · host bar-a · pool a0/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'silences-page.png') });

    // One made from the form: by rule and host, with a duration and a comment.
    await page.selectOption('#silence-rule', 'worker_pool');
    await page.fill('#silence-host', HOST_B);
    await page.selectOption('#silence-duration', '4h');
    await page.fill('#silence-comment', 'maintenance of bar-b');
    await page.click('#silence-create');
    await waitFor('two silences listed', async () => (await listed.count()) === 2, 5000);
    const made = (await page.evaluate(async () => (await fetch('/api/silences')).json())).find((s) => s.host === HOST_B);
    assert.equal(made.comment, 'maintenance of bar-b');
    assert.ok(Math.abs(made.expires_at_ms - Date.now() - 4 * 3600e3) < 60e3, 'four hours');
    assert.equal(await page.locator('#alerts').getAttribute('data-firing'), '4', 'bar-b\'s five alerts went quiet at once');

    // Ending both brings the alerts back at once.
    for (let n = 2; n > 0; n -= 1) {
      await listed.first().locator('button.end-silence').click();
      await waitFor(`${n - 1} silences listed`, async () => (await listed.count()) === n - 1, 5000);
    }
    assert.deepEqual(await page.evaluate(async () => (await fetch('/api/silences')).json()), []);
    await waitFor('ten firing again', async () => (await page.locator('#alerts').getAttribute('data-firing')) === '10', 3000);
  });

  test('silencing works from the keyboard alone', async () => {
    await page.goto(`${base}/`);
    await page.locator('#alert-list > li.alert-group').waitFor({ timeout: 10000 });
    await page.locator('body').focus();
    const active = () => page.evaluate(() => {
      const el = document.activeElement;
      return `${el?.tagName ?? ''}.${el?.className ?? ''}`;
    });
    const tabTo = async (what, test) => {
      for (let i = 0; i < 40; i += 1) {
        await page.keyboard.press('Tab');
        if (test(await active())) return;
      }
      throw new Error(`Tab never reached ${what}`);
    };
    await tabTo('the group of alerts', (a) => a.startsWith('SUMMARY'));
    await page.keyboard.press('Enter');
    await tabTo('a Silence button', (a) => a === 'BUTTON.silence');
    const target = await page.evaluate(() => document.activeElement.closest('li.alert').dataset.host);
    await page.keyboard.press('Enter');
    await waitFor('nine firing', async () => (await page.locator('#alerts').getAttribute('data-firing')) === '9', 5000);
    const silences = await page.evaluate(async () => (await fetch('/api/silences')).json());
    assert.equal(silences.length, 1);
    assert.equal(silences[0].host, target);
  });

  test('the Alerts page shows stored history, firing and resolved, after a reload', async () => {
    world.startWorker(SECS + 4); // the "comeback" pool's process
    await waitFor('the comeback alert to resolve', async () => {
      const resolved = await (await fetch(`${base}/api/alerts?state=resolved`)).json();
      return resolved.some((a) => a.scope === 'comeback');
    }, 30000);
    await page.goto(`${base}/#/alerts`);
    await page.reload();
    const rows = page.locator('#history-table tbody tr');
    await waitFor('the ten stored alerts', async () => (await rows.count()) === 10, 10000);
    const resolved = page.locator('#history-table tbody tr.state-resolved');
    assert.equal(await resolved.count(), 1);
    const text = await resolved.textContent();
    assert.match(text, /pool comeback/);
    assert.match(text, /resolved/);
    assert.doesNotMatch(text, /still firing/);
    assert.match(await rows.filter({ hasText: 'pool b0' }).textContent(), /still firing/);
    // Filters: the server's state filter, and the rule filter.
    await page.selectOption('#history-state', 'resolved');
    await waitFor('only the resolved one', async () => (await rows.count()) === 1, 5000);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'alert-history.png') });
    assert.deepEqual(problems, [], 'no script errors or CSP violations');
  });

  test('text contrast is at least 4.5:1 in the light and the dark theme', async () => {
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const route of ['#/', '#/alerts', '#/silences', `#/host/${HOST_A}`]) {
        await page.goto(`${base}/${route}`);
        await page.locator('#alerts').waitFor({ timeout: 10000 });
        await page.waitForTimeout(500);
        // The group opened, so that its rows and buttons are on screen too.
        if (route === '#/') await page.locator('#alert-list summary').first().click();
        const problems = await contrastProblems(page);
        assert.deepEqual(problems, [], `${scheme} theme, ${route}`);
      }
      await page.screenshot({ path: path.join(SCREENSHOTS, `alerts-${scheme}.png`) });
    }
    await page.emulateMedia({ colorScheme: 'light' });
  });
});
