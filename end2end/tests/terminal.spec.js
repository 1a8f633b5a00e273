// The terminal in the browser: xterm.js over the IDE WebSocket to a shell in a real
// bubblewrap sandbox. Types, sees the answer, survives a reload and a dropped socket.
import { expect, test } from '@playwright/test';

const artifacts = new URL('../artifacts/', import.meta.url).pathname;

/** Registers a fresh user in this page's cookie jar and creates a workspace; its id. */
async function workspaceFor(page, baseURL, name) {
  const headers = { origin: baseURL };
  const request = page.context().request;
  const register = await request.post('/api/users/register', {
    headers,
    data: { username: name, email: `${name}@example.org`, password: 'correct horse battery' },
  });
  expect(register.ok(), await register.text()).toBeTruthy();
  const created = await request.post('/api/workspaces/create', { headers, data: { name: 'term' } });
  expect(created.ok()).toBeTruthy();
  return (await created.json()).id;
}

/** The visible terminal (xterm's DOM renderer draws each row as a div of text). */
function activeRows(page) {
  return page.locator('.xterm-host.active .xterm-rows');
}

/** The active terminal's rows as trimmed lines (non-breaking spaces made plain). */
async function lines(page) {
  const rows = await page.locator('.xterm-host.active .xterm-rows > div').allInnerTexts();
  return rows.map((row) => row.replaceAll('\u00a0', ' ').trim());
}

/** Waits until the active terminal shows `text` somewhere. */
async function expectText(page, text, timeout = 15_000) {
  await expect
    .poll(async () => (await lines(page)).join('\n').includes(text), { timeout, message: `terminal text ${text}` })
    .toBe(true);
}

/** Waits until some row of the active terminal is exactly, or matches, `want`. */
async function expectLine(page, want, timeout = 15_000) {
  await expect
    .poll(async () => (await lines(page)).some((line) => (want instanceof RegExp ? want.test(line) : line === want)), {
      timeout,
      message: `a terminal line ${want}`,
    })
    .toBe(true);
}

test('a shell in the browser: type, see 42, reload and still see it', async ({ page, baseURL }) => {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const id = await workspaceFor(page, baseURL, 'term_user');

  await page.goto(`/w/${id}`);
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  const rows = activeRows(page);
  await expect(rows).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('#sandbox-state')).toHaveText('sandbox ready');
  // The prompt of a login shell in /workspace.
  await expectText(page, '$', 15_000);

  await page.locator('.xterm-host.active').click();
  await page.keyboard.type('echo $((6*7))');
  await page.keyboard.press('Enter');
  await expectLine(page, '42');
  await page.screenshot({ path: `${artifacts}terminal.png` });

  // The terminal's size follows the panel: the PTY agrees with xterm's grid.
  await page.keyboard.type('stty size');
  await page.keyboard.press('Enter');
  const grid = await page.locator('.xterm-host.active .xterm-rows > div').count();
  await expectLine(page, new RegExp(`^${grid} \\d+$`));

  // A reload reattaches to the same shell and replays its scrollback.
  await page.reload();
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await expectText(page, 'echo $((6*7))', 30_000);
  await expectText(page, '42');
  await expect(page.locator('.panel-tab')).toHaveCount(1);
  await page.screenshot({ path: `${artifacts}terminal-reloaded.png` });
  expect(errors).toEqual([]);
});

test('several terminal tabs, and a dropped socket reconnects to the same shells', async ({ page, baseURL }) => {
  // Every IDE socket passes through Playwright, so that the test can cut one.
  const sockets = [];
  await page.routeWebSocket(/\/ws\/workspaces\//, (ws) => {
    ws.connectToServer();
    sockets.push(ws);
  });
  const id = await workspaceFor(page, baseURL, 'tabs_user');
  await page.goto(`/w/${id}`);
  await expectText(page, '$', 30_000);
  await page.locator('.xterm-host.active').click();
  await page.keyboard.type('export MARK=first-tab; echo ok-$((1+1))');
  await page.keyboard.press('Enter');
  await expectText(page, 'ok-2');

  await page.click('.new-terminal');
  await expect(page.locator('.panel-tab')).toHaveCount(2);
  await expectText(page, '$', 15_000);
  await page.keyboard.type('echo second-$((2+2))');
  await page.keyboard.press('Enter');
  await expectText(page, 'second-4');
  expect((await lines(page)).join('\n')).not.toContain('ok-2');

  // Back to the first tab: its shell kept its own state.
  await page.locator('.panel-tab').first().click();
  await expectText(page, 'ok-2');
  await page.keyboard.type('echo $MARK');
  await page.keyboard.press('Enter');
  await expectLine(page, 'first-tab');

  // The connection drops (as a flaky network would): the page reconnects by itself and
  // resumes both shells, scrollback included.
  expect(sockets).toHaveLength(1);
  await sockets[0].close({ code: 3001, reason: 'network trouble' });
  await expect.poll(() => sockets.length, { timeout: 15_000 }).toBe(2);
  await expect(page.locator('#sandbox-state')).toHaveText('sandbox ready');
  await expect(page.locator('.panel-tab')).toHaveCount(2);
  await expectText(page, 'first-tab');
  await page.locator('.xterm-host.active').click();
  await page.keyboard.type('echo back-$((5*5))');
  await page.keyboard.press('Enter');
  await expectText(page, 'back-25');

  // Close the second tab: its shell ends and the tab goes away, for good.
  await page.locator('.panel-tab').nth(1).locator('.tab-close').click();
  await expect(page.locator('.panel-tab')).toHaveCount(1);
  await page.reload();
  await expect(page.locator('.panel-tab')).toHaveCount(1, { timeout: 30_000 });
  await expectText(page, 'back-25');
  await page.screenshot({ path: `${artifacts}terminal-tabs.png` });
});
