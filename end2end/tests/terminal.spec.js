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

test('links in the output open, Ctrl+Shift+C copies, a paste is typed, and a lost socket says reconnecting…', async ({
  page,
  baseURL,
}) => {
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  // Every IDE socket passes through Playwright; while `refuse` is set, new ones are cut at once.
  const sockets = [];
  let refuse = false;
  await page.routeWebSocket(/\/ws\/workspaces\//, (ws) => {
    sockets.push(ws);
    if (refuse) {
      ws.close({ code: 3002, reason: 'still down' });
    } else {
      ws.connectToServer();
    }
  });
  const id = await workspaceFor(page, baseURL, 'links_user');
  await page.goto(`/w/${id}`);
  await expectText(page, '$', 30_000);

  // A URL in the output is a link: hovering underlines it, a click opens it in a new tab.
  const url = `${baseURL}/healthz?from=terminal`;
  await page.locator('.xterm-host.active').click();
  await page.keyboard.type(`echo ${url.replace('?', '"?"')}`);
  await page.keyboard.press('Enter');
  await expectLine(page, url);
  const row = page.locator('.xterm-host.active .xterm-rows > div', { hasText: new RegExp(`^${url.replace(/[?.]/g, '\\$&')}`) });
  const box = await row.locator('span').first().boundingBox();
  await page.mouse.move(box.x + 20, box.y + box.height / 2);
  const [popup] = await Promise.all([
    page.waitForEvent('popup'),
    page.mouse.click(box.x + 20, box.y + box.height / 2),
  ]);
  await popup.waitForURL(url);
  await popup.close();

  // Ctrl+Shift+C copies the selection (a double-click selects a word); Ctrl+C stays ^C.
  await page.keyboard.type('echo copy-me-$((7*6))');
  await page.keyboard.press('Enter');
  await expectLine(page, 'copy-me-42');
  // (At the word's place on screen: xterm's layers above the rows take the mouse.)
  const word = page.locator('.xterm-host.active .xterm-rows > div', { hasText: /^copy-me-42/ });
  const at = await word.locator('span').first().boundingBox();
  await page.mouse.dblclick(at.x + 10, at.y + at.height / 2);
  await page.keyboard.press('Control+Shift+C');
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('copy-me-42');

  // A paste (Ctrl+Shift+V, the browser's own paste) reaches the shell as typed input.
  await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((3*4))'));
  await page.locator('.xterm-host.active').click();
  await page.keyboard.press('Control+Shift+V');
  await expectText(page, 'echo pasted-$((3*4))');
  await page.keyboard.press('Enter');
  await expectLine(page, 'pasted-12');

  // The socket drops and the server cannot be reached for a while: the status says so,
  // and the page gets back to the same shell once it can.
  refuse = true;
  await sockets[0].close({ code: 3001, reason: 'network trouble' });
  await expect(page.locator('#sandbox-state')).toHaveText(/reconnecting…/);
  await expect.poll(() => sockets.length, { timeout: 15_000 }).toBeGreaterThan(2);
  refuse = false;
  await expect(page.locator('#sandbox-state')).toHaveText('sandbox ready', { timeout: 20_000 });
  await expectText(page, 'pasted-12');
  await page.screenshot({ path: `${artifacts}terminal-links.png` });
});

test('a flood of output is drawn to its end, and acknowledged as it is drawn', async ({ page, baseURL }) => {
  // What went over the IDE socket: output data bytes (after each 4-byte channel header)
  // and the page's acknowledgements.
  let received = 0;
  const acks = [];
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/ws/workspaces/')) return;
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string') received += payload.length - 4;
    });
    ws.on('framesent', ({ payload }) => {
      if (typeof payload === 'string' && payload.includes('"ack"')) acks.push(JSON.parse(payload).bytes);
    });
  });
  const id = await workspaceFor(page, baseURL, 'flood_user');
  await page.goto(`/w/${id}`);
  await expectText(page, '$', 30_000);
  await page.locator('.xterm-host.active').click();
  // 2 MB: twice the server's window, so it only all arrives if the page acknowledges.
  await page.keyboard.type('seq 1 300000; echo fl""ood-$((4+5))');
  await page.keyboard.press('Enter');
  await expectLine(page, 'flood-9', 60_000);
  expect(await lines(page)).toContain('300000');
  expect(received).toBeGreaterThan(2_000_000);

  // Held to the window from the start, then acknowledged step by step, never ahead.
  expect(acks[0]).toBe(0);
  expect(acks.length).toBeGreaterThan(10);
  for (let i = 1; i < acks.length; i++) expect(acks[i]).toBeGreaterThan(acks[i - 1]);
  expect(acks.at(-1)).toBeLessThanOrEqual(received);
  expect(acks.at(-1)).toBeGreaterThan(received - 256 * 1024);
  await page.screenshot({ path: `${artifacts}terminal-flood.png` });
});
