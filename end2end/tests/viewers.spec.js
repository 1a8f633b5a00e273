// Files shown as what they are: a PNG written by code opens as an image and is drawn again
// when the file changes; an SVG with a script is drawn as an image and its script never
// runs; a CSV opens as a table (header, rows, row count) with a switch to its text; a
// binary file shows its size and a download.
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, expectTerminalLine, runInTerminal, signUp, terminalReady } from './helpers.js';

async function open(page, path) {
  await expect(page.locator(`.tree-row[data-path="${path}"]`)).toBeVisible({ timeout: 20_000 });
  await page.locator(`.tree-row[data-path="${path}"] .tree-item`).click();
  await expect(page.locator(`.editor-tab.active[data-path="${path}"]`)).toBeVisible();
}

test('images, tables and binary files open as what they are', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  const dialogs = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss();
  });
  await signUp(page, 'viewer');
  await createWorkspace(page, 'viewers');
  await terminalReady(page);
  await runInTerminal(
    page,
    `python3 -c 'import matplotlib.pyplot as plt; plt.figure(figsize=(4, 3)); plt.plot([1, 3, 2]); plt.savefig("chart.png")' && printf 'city,population,country\\nParis,2102650,France\\n"Washington, D.C.",689545,USA\\nTokyo,14094034,Japan\\n' > cities.csv && head -c 3000 /dev/urandom > blob.bin && printf '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><script>alert("svg script ran")</script><rect width="120" height="80" fill="teal"/></svg>' > shape.svg && echo "MADE""-FILES"`,
  );
  await expectTerminalLine(page, 'MADE-FILES');

  // The PNG: an image 400 × 300.
  await open(page, 'chart.png');
  const image = page.locator('.viewer-image img');
  await expect(image).toBeVisible();
  await expect.poll(() => image.evaluate((img) => img.naturalWidth)).toBe(400);
  await expect(page.locator('.monaco-host')).toBeHidden();
  await page.screenshot({ path: `${artifacts}viewer-image.png` });
  // Written again by code (another size): drawn again.
  const before = await image.getAttribute('src');
  await runInTerminal(page, `python3 -c 'import matplotlib.pyplot as plt; plt.figure(figsize=(2, 2)); plt.plot([0, 1]); plt.savefig("chart.png")'`);
  await expect.poll(() => image.getAttribute('src'), { timeout: 20_000 }).not.toBe(before);
  await expect.poll(() => image.evaluate((img) => img.naturalWidth)).toBe(200);

  // The SVG: an image; its script does not run.
  await open(page, 'shape.svg');
  await expect(page.locator('.viewer-image img')).toBeVisible();
  await expect.poll(() => page.locator('.viewer-image img').evaluate((img) => img.naturalWidth)).toBe(120);
  expect(dialogs).toEqual([]);

  // The CSV: a table, then its text.
  await open(page, 'cities.csv');
  const table = page.locator('.viewer-table');
  await expect(table.locator('thead th')).toHaveText(['#', 'city', 'population', 'country']);
  await expect(table.locator('tbody tr')).toHaveCount(3);
  await expect(table.locator('tbody tr').nth(1).locator('td').nth(1)).toHaveText('Washington, D.C.');
  await expect(table.locator('.viewer-summary')).toHaveText('3 rows · 3 columns');
  await page.screenshot({ path: `${artifacts}viewer-table.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${artifacts}viewer-table-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });
  await table.locator('.viewer-switch').click();
  await expect(page.locator('.monaco-host[data-ready=true] .monaco-editor')).toBeVisible();
  await expect(page.locator('.monaco-editor .view-lines')).toContainText('Paris,2102650,France');
  await page.locator('.viewer-switch', { hasText: 'Show as table' }).click();
  await expect(table).toBeVisible();

  // Markdown: a preview beside its source; raw HTML stays text; typing updates it.
  await runInTerminal(
    page,
    `printf '# Notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert("md script ran")</script>\n\n[bad](javascript:alert(1))\n' > README.md && echo "MADE""-README"`,
  );
  await expectTerminalLine(page, 'MADE-README');
  await open(page, 'README.md');
  const preview = page.locator('.markdown-preview');
  await expect(preview.locator('h1')).toHaveText('Notes');
  await expect(preview.locator('td')).toHaveText(['1', '2']);
  await expect(preview).toContainText('<script>alert("md script ran")</script>');
  await expect(preview.locator('script')).toHaveCount(0);
  await expect(preview.locator('a', { hasText: 'bad' })).toHaveAttribute('href', '#');
  await expect(page.locator('.monaco-host[data-ready=true] .monaco-editor')).toBeVisible();
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press('ControlOrMeta+End');
  await page.keyboard.insertText('\n## Added live\n');
  await expect(preview.locator('h2')).toHaveText('Added live');
  await page.screenshot({ path: `${artifacts}viewer-markdown.png` });

  // A binary file: its size and a download.
  await open(page, 'blob.bin');
  await expect(page.locator('.viewer-binary')).toContainText('A binary file of 2.9 KiB.');
  const download = page.waitForEvent('download');
  await page.locator('.viewer-download').click();
  expect((await download).suggestedFilename()).toBe('blob.bin');
  expect(dialogs).toEqual([]);
});
