// Run: Ctrl+Enter runs the open file in a Run tab of its own; a failure ends with a red
// "✗ failed with exit code 1" (and the tab says so), told once; `File "util.py", line 2` in
// the traceback opens util.py at line 2; running the file again reuses its tab, and success
// ends with "✓ finished"; arguments given once are kept for the file.
import { expect, test } from '@playwright/test';
import {
  artifacts,
  createWorkspace,
  expectTerminalLine,
  openFile,
  replaceText,
  signUp,
  terminalLines,
  terminalReady,
} from './helpers.js';

/** Clicks the first occurrence of `text` in the active terminal (xterm's DOM rows). */
async function clickTerminalText(page, text) {
  const point = await page.evaluate((text) => {
    for (const row of document.querySelectorAll('.xterm-host.active .xterm-rows > div')) {
      const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.textContent.replaceAll('\u00a0', ' ').indexOf(text);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at + 2);
        range.setEnd(node, at + 6);
        const box = range.getBoundingClientRect();
        return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      }
    }
    return null;
  }, text);
  expect(point, `${text} on screen`).not.toBeNull();
  await page.mouse.move(point.x, point.y);
  await page.mouse.click(point.x, point.y);
}

test('run reads like one: Ctrl+Enter, failure marked, traceback links, one tab per file', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'runner');
  await createWorkspace(page, 'run');
  await terminalReady(page);
  page.once('dialog', (dialog) => dialog.accept('util.py'));
  await page.click('#new-file');
  await expect(page.locator('.tree-row[data-path="util.py"]')).toBeVisible();
  await openFile(page, 'util.py');
  // One indented line: the editor indents after the colon by itself.
  await replaceText(page, 'def check(value):\n    return 1 / value\n');
  await page.keyboard.press('ControlOrMeta+s');
  await openFile(page, 'main.py');
  await replaceText(page, 'from util import check\n\nprint("checked", check(0))\n');

  // Ctrl+Enter in the editor: saved, then run.
  await page.keyboard.press('ControlOrMeta+Enter');
  const runTab = page.locator('.panel-tab', { hasText: /python3 '?main\.py/ });
  await expect(runTab).toHaveCount(1);
  await expectTerminalLine(page, /✗ failed with exit code 1 · \d+ ms/);
  await expect(runTab).toHaveClass(/failed/);
  const lines = await terminalLines(page);
  expect(lines.filter((line) => line.includes('process exited'))).toEqual([]);
  await page.screenshot({ path: `${artifacts}run-failed.png` });

  // The traceback's link into util.py.
  await expectTerminalLine(page, 'ZeroDivisionError: division by zero');
  await clickTerminalText(page, 'File "/workspace/util.py", line 2');
  await expect(page.locator('.editor-tab.active[data-path="util.py"]')).toBeVisible();
  await expect(page.locator('.monaco-editor .line-numbers.active-line-number')).toHaveText('2');

  // Fixed and run again: the same tab, now a success.
  await openFile(page, 'main.py');
  await replaceText(page, 'from util import check\n\nprint("checked", check(1))\n');
  await page.keyboard.press('ControlOrMeta+Enter');
  await expectTerminalLine(page, /✓ finished · \d+ ms/);
  await expectTerminalLine(page, 'checked 1.0');
  await expect(runTab).toHaveCount(1);
  await expect(runTab).not.toHaveClass(/failed/);
  await page.screenshot({ path: `${artifacts}run-finished.png` });
  // In the terminal, Ctrl+Enter stays the terminal's: no run starts.
  const finished = async () => (await terminalLines(page)).filter((line) => /✓ finished/.test(line)).length;
  const before = await finished();
  await page.locator('.xterm-host.active .xterm-helper-textarea').focus();
  await page.keyboard.press('ControlOrMeta+Enter');
  await page.waitForTimeout(1500);
  expect(await finished()).toBe(before);

  // Arguments: asked once, kept for the file, still one tab.
  await replaceText(page, 'import sys\n\nprint("args", sys.argv[1:])\n');
  page.once('dialog', (dialog) => dialog.accept('--n 5 "two words"'));
  await page.click('#run-args');
  await expectTerminalLine(page, "args ['--n', '5', 'two words']");
  await expect(page.locator('.panel-tab', { hasText: /python3 '?main\.py/ })).toHaveCount(1);
  await page.click('#run');
  await expect(page.locator('.panel-tab', { hasText: /python3 '?main\.py/ })).toHaveCount(1);
  await expectTerminalLine(page, "args ['--n', '5', 'two words']");
});
