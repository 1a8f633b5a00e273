// The IDE as a person uses it, in Chromium against the real server and a real sandbox:
// sign up, create a workspace, edit in Monaco, save, run in the terminal, see terminal
// changes in the tree, rename, conflicts between two tabs, and who may see what.
import { expect, test } from '@playwright/test';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  artifacts,
  createWorkspace,
  expectTerminalLine,
  openFile,
  PASSWORD,
  replaceText,
  runInTerminal,
  signUp,
  terminalLines,
  terminalReady,
} from './helpers.js';

test('signed-out visitors are sent to sign in; a wrong password is shown inline', async ({ page }) => {
  const response = await page.goto('/');
  expect(response.url()).toMatch(/\/signin$/);
  await expect(page.locator('h1')).toHaveText('Sign in');
  await page.goto('/w/00000000-0000-4000-8000-000000000000');
  await expect(page).toHaveURL(/\/signin\?next=%2Fw%2F/);

  await page.fill('input[name=login]', 'nobody');
  await page.fill('input[name=password]', 'wrong password!');
  await page.click('button[type=submit]');
  await expect(page.locator('.form-error')).toHaveText('Wrong username or password.');
  // What was typed is kept, except the password.
  await expect(page.locator('input[name=login]')).toHaveValue('nobody');
  await expect(page.locator('input[name=password]')).toHaveValue('');
  await page.screenshot({ path: `${artifacts}signin-error.png` });

  // Sign-up errors come back inline too (the name is taken).
  await signUp(page, 'taken_name');
  await page.click('#sign-out');
  await expect(page).toHaveURL(/\/signin$/);
  await page.goto('/signup');
  await page.fill('input[name=username]', 'taken_name');
  await page.fill('input[name=email]', 'other@example.org');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await expect(page.locator('.form-error')).toContainText('taken');
  await expect(page.locator('input[name=email]')).toHaveValue('other@example.org');
  await page.screenshot({ path: `${artifacts}signup-error.png` });

  // Signing in with the form goes back to where the visitor wanted to go.
  await page.goto('/account');
  await expect(page).toHaveURL(/\/signin\?next=%2Faccount$/);
  await page.fill('input[name=login]', 'taken_name');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.locator('h1')).toHaveText('Account');
  await page.screenshot({ path: `${artifacts}account.png` });
});

test('edit main.py in Monaco, save, run it; terminal changes reach the tree; Run reports exit codes', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await signUp(page, 'ide_user');
  await page.screenshot({ path: `${artifacts}dashboard-empty.png` });
  await createWorkspace(page, 'demo');
  await terminalReady(page);
  // The status bar counts down to the idle stop (the test server's is 4 minutes, inside
  // the 5-minute warning) and offers to keep the sandbox alive.
  await expect(page.locator('#idle-countdown')).toHaveText(/^idle stop in [34]:\d\d$/);
  await expect(page.locator('#idle-countdown')).toHaveClass(/warning/);
  await expect(page.locator('#lifetime')).toHaveText(/^[12]:\d\d:\d\d left$/);
  await page.waitForTimeout(4_500);
  await expect(page.locator('#idle-countdown')).toHaveText(/^idle stop in 3:([0-4]\d|5[0-6])$/);
  await page.click('#keep-alive');
  await expect(page.locator('#idle-countdown')).toHaveText(/^idle stop in (4:00|3:59|3:58)$/);

  // No file open yet: the editor says how to open one and lists the keys, in the middle of
  // the editor rather than under an empty editor body.
  const empty = page.locator('.editor-empty');
  await expect(empty).toBeVisible();
  await expect(empty).toContainText('Ctrl+P');
  await expect(empty.locator('dd')).toContainText(['Open a file by name', 'Run the Python file', 'Save', 'Show or hide the terminal']);
  const area = await page.locator('main.editor').boundingBox();
  const tabs = await page.locator('.editor-tabs').boundingBox();
  const hint = await empty.boundingBox();
  expect(hint.height).toBeGreaterThanOrEqual(area.height - tabs.height - 2);
  await openFile(page, 'main.py');
  await expect(empty).toBeHidden();
  await replaceText(page, 'print("edited", 6 * 7)\n');
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeVisible();
  await page.keyboard.press('ControlOrMeta+s');
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeHidden();
  await page.screenshot({ path: `${artifacts}ide-edited.png` });

  // The save is in the sandbox at once.
  await runInTerminal(page, 'python3 main.py');
  await expectTerminalLine(page, 'edited 42');
  await runInTerminal(page, `python3 -c "import numpy, pandas, scipy; print('ok')"`);
  await expectTerminalLine(page, 'ok');

  // A file made in the terminal appears in the tree.
  await runInTerminal(page, 'echo hi > made.txt');
  await expect(page.locator('.tree-row[data-path="made.txt"]')).toBeVisible({ timeout: 10_000 });

  // Rename in place in the tree (a new folder in the path moves it); ls agrees.
  await page.locator('.tree-row[data-path="made.txt"]').hover();
  await page.locator('.tree-row[data-path="made.txt"] .tree-rename').click();
  await page.locator('.tree-row[data-path="made.txt"] .tree-rename-input').fill('notes/renamed.txt');
  await page.locator('.tree-row[data-path="made.txt"] .tree-rename-input').press('Enter');
  await expect(page.locator('.tree-row[data-path="notes/renamed.txt"]')).toBeVisible();
  await runInTerminal(page, 'ls notes; ls made.txt 2>&1 | head -1');
  await expectTerminalLine(page, 'renamed.txt');
  await expectTerminalLine(page, /No such file or directory/);

  // A new folder, then drag the file into it; the terminal agrees.
  page.once('dialog', (dialog) => dialog.accept('src'));
  await page.click('#new-folder');
  await expect(page.locator('.tree-row[data-path="src"]')).toBeVisible();
  await page.dragAndDrop('.tree-row[data-path="notes/renamed.txt"]', '.tree-row[data-path="src"]');
  await expect(page.locator('.tree-row[data-path="src/renamed.txt"]')).toBeVisible();
  await runInTerminal(page, 'ls src');
  await expectTerminalLine(page, 'renamed.txt');

  // Upload files and a whole folder with the pickers; cat shows them.
  await page.setInputFiles('#upload-files', {
    name: 'data.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('a,b\n1,uploaded\n'),
  });
  await expect(page.locator('.tree-row[data-path="data.csv"]')).toBeVisible();
  await runInTerminal(page, 'cat data.csv');
  await expectTerminalLine(page, '1,uploaded');
  // Files dropped on the tree are uploaded too.
  await page.evaluate(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['dropped in\n'], 'dropped.txt', { type: 'text/plain' }));
    document
      .querySelector('.tree')
      .dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
  await expect(page.locator('.tree-row[data-path="dropped.txt"]')).toBeVisible();
  await runInTerminal(page, 'cat dropped.txt');
  await expectTerminalLine(page, 'dropped in');
  // A binary file opens as its size and a download, not in the editor.
  await page.setInputFiles('#upload-files', {
    name: 'blob.bin',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from([0, 255, 254, 1, 128]),
  });
  await page.locator('.tree-row[data-path="blob.bin"] .tree-item').click();
  await expect(page.locator('.viewer-binary')).toContainText('A binary file of 5 bytes.');
  await expect(page.locator('.monaco-host')).toBeHidden();
  const folder = mkdtempSync(join(tmpdir(), 'codepod-upload-'));
  mkdirSync(join(folder, 'pkg'));
  writeFileSync(join(folder, 'pkg', 'util.py'), 'VALUE = "from a folder"\n');
  await page.setInputFiles('#upload-folder', folder);
  const uploaded = `${basename(folder)}/pkg/util.py`;
  await expect(page.locator(`.tree-row[data-path="${uploaded}"]`)).toBeVisible();
  await runInTerminal(page, `cat ${uploaded}`);
  await expectTerminalLine(page, 'VALUE = "from a folder"');
  await page.screenshot({ path: `${artifacts}ide-tree.png` });

  // Run: exit code 0, then 1 for a failing script.
  await page.locator('.tree-row[data-path="main.py"] .tree-item').click();
  await expect(page.locator('.editor-tab.active[data-path="main.py"]')).toBeVisible();
  await expect(page.locator('#run')).toBeEnabled();
  await page.click('#run');
  await expect(page.locator('.panel-tab', { hasText: 'python3' })).toHaveCount(1, { timeout: 15_000 });
  await expectTerminalLine(page, /^✓ finished · \d+ ms · peak \d+ MiB$/);
  await replaceText(page, 'import sys\nprint("failing")\nsys.exit(1)\n');
  // Run saves first.
  await page.click('#run');
  await expectTerminalLine(page, /^✗ failed with exit code 1 · \d+ ms · peak \d+ MiB$/);
  // The same file's run, in its one tab.
  await expect(page.locator('.panel-tab', { hasText: 'python3' })).toHaveCount(1);
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeHidden();
  await page.screenshot({ path: `${artifacts}ide-run.png` });

  // Ctrl/Cmd+P opens a file by part of its name.
  await page.keyboard.press('ControlOrMeta+p');
  await expect(page.locator('.quick-open input')).toBeFocused();
  await page.keyboard.type('dat');
  await page.keyboard.press('Enter');
  await expect(page.locator('.editor-tab.active[data-path="data.csv"]')).toBeVisible();
  await expect(page.locator('.quick-open')).toBeHidden();

  // The split between editor and terminal is dragged, and remembered after a reload.
  const handle = page.locator('.resize-handle.horizontal');
  const box = await handle.boundingBox();
  await page.mouse.move(box.x + 100, box.y + 3);
  await page.mouse.down();
  await page.mouse.move(box.x + 100, box.y - 120, { steps: 5 });
  await page.mouse.up();
  const grown = await page.locator('.terminal-panel').evaluate((panel) => panel.getBoundingClientRect().height);

  // A reload keeps the terminal output.
  await page.reload();
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  // The shell and main.py's one Run tab.
  await expect(page.locator('.panel-tab')).toHaveCount(2, { timeout: 30_000 });
  await page.locator('.panel-tab').first().click();
  await expectTerminalLine(page, 'edited 42');
  await expect
    .poll(() => page.locator('.terminal-panel').evaluate((panel) => panel.getBoundingClientRect().height))
    .toBeCloseTo(grown, 0);
  expect(errors).toEqual([]);
});

test('two tabs on one file: saves reach the other tab, and unsaved edits get the conflict dialog', async ({ page, context }) => {
  await signUp(page, 'two_tabs');
  const id = await createWorkspace(page, 'shared');
  // Saves by hand here (autosave would save the edits before they could conflict).
  await page.click('#autosave');
  await expect(page.locator('#autosave')).toHaveText('Autosave: off');
  await openFile(page, 'main.py');
  const other = await context.newPage();
  await other.goto(`/w/${id}`);
  await expect(other.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await expect(other.locator('#autosave')).toHaveText('Autosave: off');
  await openFile(other, 'main.py');

  // Tab 1 saves; tab 2, with no edits of its own, shows the new text.
  await replaceText(page, 'print("from tab one")\n');
  await page.keyboard.press('ControlOrMeta+s');
  await expect(page.locator('.editor-tab.active .dirty-dot')).toBeHidden();
  await expect(other.locator('.monaco-editor .view-lines')).toContainText('from tab one', { timeout: 10_000 });

  // Tab 2 starts editing; tab 1 saves again: tab 2 is not overwritten, it is asked.
  await replaceText(other, 'print("from tab two")\n');
  await replaceText(page, 'print("tab one again")\n');
  await page.keyboard.press('ControlOrMeta+s');
  await expect(other.locator('.conflict')).toBeVisible({ timeout: 10_000 });
  await expect(other.locator('.monaco-editor .view-lines')).toContainText('from tab two');
  await other.screenshot({ path: `${artifacts}ide-conflict.png` });
  // Saving anyway is refused with the same dialog; overwriting is a choice.
  await other.keyboard.press('ControlOrMeta+s');
  await expect(other.locator('.conflict')).toBeVisible();
  await other.click('.conflict-overwrite');
  await expect(other.locator('.conflict')).toBeHidden();
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('from tab two', { timeout: 10_000 });
});

test("another user opening a workspace's address gets the 404 page", async ({ page, browser }) => {
  await signUp(page, 'owner_user');
  const id = await createWorkspace(page, 'private');
  const stranger = await browser.newContext();
  const theirs = await stranger.newPage();
  await signUp(theirs, 'stranger');
  const response = await theirs.goto(`/w/${id}`);
  expect(response.status()).toBe(404);
  await expect(theirs.locator('h1')).toHaveText('404 · Not found');
  // And the workspace does not show on their dashboard.
  await theirs.goto('/');
  await expect(theirs.locator('.workspace-row')).toHaveCount(0);
  await theirs.screenshot({ path: `${artifacts}dashboard-stranger.png` });
  await stranger.close();

  // The owner's dashboard lists it as running; rename and delete work.
  await page.goto('/');
  const row = page.locator('.workspace-row');
  await expect(row).toHaveCount(1);
  await expect(row.locator('.badge')).toHaveText('running');
  await page.screenshot({ path: `${artifacts}dashboard.png` });
  await expect(page.locator('.dashboard')).toHaveAttribute('data-live', 'true');
  await row.locator('.rename').click();
  await row.locator('.rename-input').fill('renamed');
  await row.locator('.rename-input').press('Enter');
  await expect(row.locator('.workspace-name')).toHaveText('renamed');
  // Delete asks first, in the row; Cancel keeps the workspace.
  await row.locator('.delete').click();
  await expect(row.locator('.delete-confirm')).toContainText('Delete the workspace \u201crenamed\u201d and all its files?');
  await page.screenshot({ path: `${artifacts}dashboard-delete.png` });
  await row.locator('.delete-confirm a', { hasText: 'Cancel' }).click();
  await expect(row.locator('.delete-confirm')).toHaveCount(0);
  await row.locator('.delete').click();
  await row.locator('.delete-confirm button').click();
  await expect(page.locator('.workspace-row')).toHaveCount(0);
  await expect(page.locator('.empty')).toBeVisible();
});

test('a fourth running workspace is refused with a sentence that says what to do', async ({ page }) => {
  test.setTimeout(120_000);
  await signUp(page, 'quota-ada');
  // Three workspaces, each opened in the IDE: three running sandboxes, as many as allowed.
  for (const name of ['one', 'two', 'three']) {
    await page.goto('/');
    await createWorkspace(page, name);
    await expect(page.locator('.link-state')).toHaveAttribute('data-link', 'Ready', { timeout: 30_000 });
  }
  await page.goto('/');
  await createWorkspace(page, 'four');
  const state = page.locator('.link-state');
  await expect(state).toContainText('stop another workspace first', { timeout: 30_000 });
  await expect(page.locator('.restart')).toBeVisible();
  await page.screenshot({ path: `${artifacts}/ide-too-many-sandboxes.png` });
});
