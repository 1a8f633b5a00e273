// Nothing the user does is lost or corrupted, in Chromium against the real server and a
// real sandbox: autosave, unsaved edits kept across a reload and a lost network, a question
// before leaving unsaved work, a terminal that types only what the user types after a
// program queried it and the page was reloaded, focus that stays in the terminal when the
// open file changes underneath, a tree that misses nothing, downloads that download.
import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import {
  artifacts,
  createWorkspace,
  expectTerminalLine,
  openFile,
  replaceText,
  runInTerminal,
  signUp,
  terminalLines,
  terminalReady,
} from './helpers.js';

/** What the server has stored for `path` (the page's own session). */
async function stored(page, id, path) {
  const response = await page.context().request.post('/api/files/read', {
    headers: { origin: new URL(page.url()).origin },
    data: { workspace: id, path },
  });
  expect(response.ok()).toBeTruthy();
  return (await response.json()).data;
}

test('autosave saves after a pause; offline edits wait, say so, and land when the network is back', async ({ page, context }) => {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await signUp(page, 'autosaver');
  const id = await createWorkspace(page, 'autosave');
  await terminalReady(page);
  await expect(page.locator('#autosave')).toHaveText('Autosave: on');
  await openFile(page, 'main.py');

  // No Ctrl+S: a second after typing stops, it is saved.
  await replaceText(page, 'print("autosaved")\n');
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeHidden({ timeout: 10_000 });
  await expect(page.locator('#save-state')).toHaveText('all changes saved');
  expect(await stored(page, id, 'main.py')).toBe('print("autosaved")\n');
  await runInTerminal(page, 'python3 main.py');
  await expectTerminalLine(page, 'autosaved');

  // Offline: the save fails, the tab and the status bar say so, and nothing is lost.
  await context.setOffline(true);
  await replaceText(page, 'print("typed offline")\n');
  await expect(page.locator('.save-problem')).toContainText('Not saved — retrying', { timeout: 10_000 });
  await expect(page.locator('#save-state')).toHaveText('not saved — retrying');
  await page.screenshot({ path: `${artifacts}ide-offline.png` });
  // Back online: it lands without a keystroke.
  await context.setOffline(false);
  await expect(page.locator('#save-state')).toHaveText('all changes saved', { timeout: 30_000 });
  await expect(page.locator('.save-problem')).toBeHidden();
  expect(await stored(page, id, 'main.py')).toBe('print("typed offline")\n');

  // Autosave is a setting; with it off, edits wait for Ctrl+S.
  await page.click('#autosave');
  await expect(page.locator('#autosave')).toHaveText('Autosave: off');
  await replaceText(page, 'print("not yet")\n');
  await page.waitForTimeout(2_500);
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeVisible();
  expect(await stored(page, id, 'main.py')).toBe('print("typed offline")\n');
  await page.keyboard.press('ControlOrMeta+s');
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeHidden();
  expect(await stored(page, id, 'main.py')).toBe('print("not yet")\n');
  expect(errors).toEqual([]);
});

test('unsaved edits survive a reload and a closed tab, and leaving with them asks first', async ({ page, context }) => {
  await signUp(page, 'keeper');
  const id = await createWorkspace(page, 'keep');
  await terminalReady(page);
  await page.click('#autosave');
  await expect(page.locator('#autosave')).toHaveText('Autosave: off');
  await openFile(page, 'main.py');
  await replaceText(page, 'print("kept in the browser")\n');
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeVisible();
  // The copy in this browser is written a moment after typing stops.
  await page.waitForTimeout(1_000);

  // Leaving asks.
  let asked = false;
  page.once('dialog', async (dialog) => {
    asked = dialog.type() === 'beforeunload';
    await dialog.accept();
  });
  await page.reload();
  expect(asked).toBe(true);
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  // The file opens by itself with the edits put back, unsaved.
  await expect(page.locator('.editor-tab.active[data-path="main.py"]')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('kept in the browser');
  await expect(page.locator('.restored')).toBeVisible();
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeVisible();
  await page.screenshot({ path: `${artifacts}ide-restored.png` });

  // A tab that crashes or is closed: the next one finds them too.
  const crashed = await context.newPage();
  await page.close({ runBeforeUnload: false });
  await crashed.goto(`/w/${id}`);
  await expect(crashed.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await expect(crashed.locator('.monaco-editor .view-lines')).toContainText('kept in the browser', { timeout: 30_000 });
  await crashed.keyboard.press('ControlOrMeta+s');
  await expect(crashed.locator('.editor-tab.active .dirty-dot')).toBeHidden();
  expect(await stored(crashed, id, 'main.py')).toBe('print("kept in the browser")\n');
  await expect(crashed.locator('.restored')).toBeHidden();
});

test('after vim, three reloads leave the shell clean; a file changed by the terminal keeps the focus there', async ({ page }) => {
  await signUp(page, 'vimmer');
  const id = await createWorkspace(page, 'vim');
  await terminalReady(page);
  // vim, waiting for keys, asks the terminal for its version, the cursor position and the
  // colours; then it is quit as a user does.
  await runInTerminal(page, 'vim');
  await expectTerminalLine(page, /^~$/);
  await page.waitForTimeout(500);
  await page.keyboard.type(':q');
  await page.keyboard.press('Enter');
  await expect
    .poll(async () => (await terminalLines(page)).filter((line) => line.endsWith('$')).length, { timeout: 20_000 })
    .toBeGreaterThanOrEqual(1);
  for (let reload = 0; reload < 3; reload += 1) {
    await page.reload();
    await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.locator('.xterm-host.active .xterm-rows')).toBeVisible({ timeout: 30_000 });
    await page.waitForTimeout(1_000);
  }
  await runInTerminal(page, 'echo ok-$((1+1))');
  await expectTerminalLine(page, 'ok-2');
  const text = (await terminalLines(page)).join('\n');
  expect(text).not.toContain('command not found');
  expect(text).not.toMatch(/\d+;\d+R|rgb:/);
  await page.screenshot({ path: `${artifacts}terminal-after-vim.png` });

  // main.py is open and clean; the terminal changes it: the editor shows the change, and
  // the next keys still go to the terminal.
  await openFile(page, 'main.py');
  await runInTerminal(page, 'echo "print(\'appended\')" >> main.py');
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('appended', { timeout: 10_000 });
  await page.keyboard.type('echo still-here');
  await page.keyboard.press('Enter');
  await expectTerminalLine(page, 'still-here');
  expect(await stored(page, id, 'main.py')).not.toContain('still-here');
});

test('a file written right after the page opened is in the tree; downloads start downloads', async ({ page, baseURL }) => {
  await signUp(page, 'treeuser');
  const id = await createWorkspace(page, 'tree');
  // Written as the page loads: before or after the socket subscribed, the tree shows it.
  await page.reload();
  const written = page.context().request.post('/api/files/write', {
    headers: { origin: baseURL },
    data: { workspace: id, path: 'early.py', content: { encoding: 'utf8', data: 'x = 1\n' } },
  });
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  expect((await written).ok()).toBeTruthy();
  await expect(page.locator('.tree-row[data-path="early.py"]')).toBeVisible({ timeout: 10_000 });

  // The zip link downloads the workspace (the app's router does not catch it).
  const zip = page.waitForEvent('download');
  await page.click('#download-zip');
  const archive = await zip;
  expect(archive.suggestedFilename()).toBe('tree.zip');
  const bytes = readFileSync(await archive.path());
  expect(bytes.subarray(0, 2).toString()).toBe('PK');
  await expect(page).toHaveURL(new RegExp(`/w/${id}$`));
  // So does a file's.
  await page.locator('.tree-row[data-path="early.py"]').hover();
  const file = page.waitForEvent('download');
  await page.locator('.tree-row[data-path="early.py"] .tree-download').click();
  const download = await file;
  expect(download.suggestedFilename()).toBe('early.py');
  expect(readFileSync(await download.path(), 'utf8')).toBe('x = 1\n');
});

test('20,000 files made in the terminal at once, and an edit a second later, reach the tree; past the limit the user is told why', async ({ page }) => {
  // Waits, not timings: storing 26,000 files through a debug server takes minutes here.
  test.setTimeout(600_000);
  await signUp(page, 'burster');
  await createWorkspace(page, 'burst');
  await terminalReady(page);
  await runInTerminal(
    page,
    `python3 -c "import os; os.mkdir('burst'); [open(f'burst/f{i}.txt', 'w').write(str(i)) for i in range(20000)]"; sleep 1; echo edited > burst/last.txt; echo burst-done`,
  );
  await expectTerminalLine(page, 'burst-done', 60_000);
  // The tree draws only the rows in view; each row says its place among its siblings, so
  // the first file of the folder tells how many it holds: 20,000 and last.txt.
  const first = page.locator('.tree-row[data-path="burst/f0.txt"]');
  await expect(first).toHaveAttribute('aria-setsize', '20001', { timeout: 180_000 });
  await expect(first).toHaveAttribute('aria-posinset', '1');
  expect(await page.locator('.tree-row').count()).toBeLessThan(200);
  // Scrolled to the end, the tree shows the last of them (names sort with their numbers as
  // numbers: f0, f1, f2, …, f19999, last.txt) and their places.
  await page.locator('.tree-scroll').evaluate((scroller) => {
    scroller.scrollTop = scroller.scrollHeight;
  });
  const last = page.locator('.tree-row[data-path="burst/last.txt"]');
  await expect(last).toBeVisible();
  await expect(last).toHaveAttribute('aria-posinset', '20001');
  await expect(page.locator('.tree-row[data-path="burst/f19999.txt"]')).toHaveAttribute('aria-posinset', '20000');
  await expect(page.locator('.tree-row[data-path="burst/f9999.txt"]')).toHaveCount(0);
  await page.screenshot({ path: `${artifacts}ide-burst.png` });

  // The server takes 25,000 files and folders per workspace: 6,000 more do not all fit.
  await runInTerminal(
    page,
    `python3 -c "import os; os.mkdir('more'); [open(f'more/g{i}.txt', 'w').write(str(i)) for i in range(6000)]"; echo more-done`,
  );
  await expect(page.locator('.not-kept')).toContainText('could not be saved: the workspace holds at most 25000 files and folders', {
    timeout: 300_000,
  });
  await page.screenshot({ path: `${artifacts}ide-not-kept.png` });
  await page.click('.not-kept-dismiss');
  await expect(page.locator('.not-kept')).toBeHidden();
});
