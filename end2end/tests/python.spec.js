// The editor knows Python: the workspace's language server (ty, run by the agent inside
// the sandbox) completes pandas members, shows their signatures on hover, marks undefined
// names, jumps to a definition in another file and renames across files.
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, openFile, replaceText, signUp } from './helpers.js';

test.describe.configure({ timeout: 120_000 });

/** Puts the cursor inside `token` on the (unindented) editor line containing `line`. */
async function cursorOn(page, line, token) {
  await page.locator('.monaco-editor .view-line', { hasText: line }).first().click();
  await page.keyboard.press('Home');
  const column = line.indexOf(token) + 1;
  for (let i = 0; i < column; i++) await page.keyboard.press('ArrowRight');
}

/** Shows the hover of `token` on the line containing `line` (Ctrl+K Ctrl+I, as a keyboard user). */
async function hoverOn(page, line, token) {
  await cursorOn(page, line, token);
  await page.keyboard.press('ControlOrMeta+k');
  await page.keyboard.press('ControlOrMeta+i');
}

/** Writes a file through the API, as another tab's save would. */
async function writeFile(page, workspace, path, data) {
  const status = await page.evaluate(
    async ([workspace, path, data]) => {
      const response = await fetch('/api/files/write', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workspace, path, content: { encoding: 'utf8', data } }),
      });
      return response.status;
    },
    [workspace, path, data],
  );
  expect(status).toBe(200);
}

test('pd. lists pandas, hover shows signatures, undefined names are marked', async ({ page }) => {
  await signUp(page, 'python_user');
  await createWorkspace(page, 'analysis');
  await openFile(page, 'main.py');
  await replaceText(page, 'import pandas as pd\n\n');
  await page.keyboard.press('ControlOrMeta+End');

  // `pd.` offers pandas' members.
  await page.keyboard.type('pd.');
  const suggest = page.locator('.suggest-widget.visible');
  await expect(suggest).toContainText('DataFrame', { timeout: 30_000 });
  await page.keyboard.type('read_c');
  await expect(suggest).toContainText('read_csv');
  await page.screenshot({ path: `${artifacts}python-completion.png` });
  await page.keyboard.press('Escape');

  // Hover on read_csv shows its signature.
  await replaceText(page, 'import pandas as pd\n\nframe = pd.read_csv("data.csv")\nprint(undefined_name)\n');
  await hoverOn(page, 'frame = pd.read_csv(', 'read_csv');
  const hover = page.locator('.monaco-hover:not(.hidden)');
  await expect(hover).toContainText('filepath_or_buffer', { timeout: 30_000 });
  await page.screenshot({ path: `${artifacts}python-hover.png` });

  // F12 on a library function shows its source (read-only, in a peek view).
  await page.keyboard.press('Escape');
  await cursorOn(page, 'frame = pd.read_csv(', 'read_csv');
  await page.keyboard.press('F12');
  const peek = page.locator('.peekview-widget');
  await expect(peek).toBeVisible({ timeout: 30_000 });
  await expect(peek).toContainText('def read_csv', { timeout: 30_000 });
  await page.screenshot({ path: `${artifacts}python-library-source.png` });
  await page.keyboard.press('Escape');

  // Signature help while typing a call.
  await page.keyboard.press('ControlOrMeta+End');
  await page.keyboard.type('pd.read_csv(');
  const hints = page.locator('.parameter-hints-widget.visible');
  await expect(hints).toContainText('filepath_or_buffer', { timeout: 30_000 });
  await page.screenshot({ path: `${artifacts}python-signature.png` });
  await page.keyboard.press('Escape');

  // An undefined name is marked as an error.
  await expect(page.locator('.monaco-editor .squiggly-error').first()).toBeAttached({ timeout: 30_000 });
  await page.keyboard.press('Escape');
  await hoverOn(page, 'print(undefined_name)', 'undefined_name');
  await expect(hover).toContainText('undefined_name');
  await page.screenshot({ path: `${artifacts}python-diagnostic.png` });
});

test('F12 opens the imported function in its file, and a rename reaches both files', async ({ page }) => {
  await signUp(page, 'python_nav');
  const workspace = await createWorkspace(page, 'navigation');
  await writeFile(page, workspace, 'util.py', 'def helper(x: int) -> int:\n    return x * 2\n');
  await writeFile(page, workspace, 'app.py', 'from util import helper\n\nprint(helper(21))\n');
  await openFile(page, 'app.py');
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('print(helper(');

  // F12 on `helper` in the call opens util.py at its definition.
  await cursorOn(page, 'print(helper(', 'helper');
  await page.keyboard.press('F12');
  await expect(page.locator('.editor-tab.active[data-path="util.py"]')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('def helper(x: int)');
  await expect(page.locator('.monaco-editor .line-numbers.active-line-number')).toHaveText('1');

  // Rename (F2) in util.py renames the use in main.py too.
  await cursorOn(page, 'def helper', 'helper');
  await page.keyboard.press('F2');
  const input = page.locator('.rename-box input');
  await expect(input).toBeVisible({ timeout: 30_000 });
  await input.fill('double');
  await page.keyboard.press('Enter');
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('def double(x: int)');
  await page.locator('.editor-tab[data-path="app.py"]').click();
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('from util import double');
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('print(double(');
  await page.screenshot({ path: `${artifacts}python-rename.png` });
});

test('ruff: lint marks an unused import, Ctrl+S formats the file before saving it', async ({ page }) => {
  await signUp(page, 'python_fmt');
  const workspace = await createWorkspace(page, 'formatting');
  await openFile(page, 'main.py');
  await replaceText(page, 'import os\nx=1\ndef f( a ):\n  return a\n');
  // Ruff's lint: `os` imported but unused (a warning).
  await expect(page.locator('.monaco-editor .squiggly-warning').first()).toBeAttached({ timeout: 30_000 });
  await page.keyboard.press('ControlOrMeta+s');
  const lines = page.locator('.monaco-editor .view-lines');
  await expect(lines).toContainText('x = 1', { timeout: 30_000 });
  await expect(lines).toContainText('def f(a):');
  await expect(page.locator('.editor-tab.active[data-path="main.py"]')).not.toHaveClass(/dirty/);
  await expect(page.locator('.statusbar')).toContainText('all changes saved');
  // What was stored is the formatted text.
  const stored = await page.evaluate(async (workspace) => {
    const response = await fetch('/api/files/read', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workspace, path: 'main.py' }),
    });
    return (await response.json()).data;
  }, workspace);
  expect(stored).toBe('import os\n\nx = 1\n\n\ndef f(a):\n    return a\n');
  await page.screenshot({ path: `${artifacts}python-format.png` });

  // A quick fix adds the missing import (ty's), Ctrl+. on the undefined name.
  await replaceText(page, 'sqrt(2)\n');
  await expect(page.locator('.monaco-editor .squiggly-error').first()).toBeAttached({ timeout: 30_000 });
  await cursorOn(page, 'sqrt(2)', 'sqrt');
  // ty offers imports once its index of the environment is built (it builds it in the
  // background): ask again until it is.
  const fixes = page.locator('.action-widget').first();
  await expect(async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('ControlOrMeta+.');
    await expect(fixes).toContainText('import math.sqrt', { timeout: 2_000 });
  }).toPass({ timeout: 60_000 });
  await page.screenshot({ path: `${artifacts}python-quick-fix.png` });
  await fixes.getByText('import math.sqrt').click();
  await expect(lines).toContainText('from math import sqrt');
});
