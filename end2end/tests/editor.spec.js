// Monaco's own editor features, as a user of any code editor reaches for them: find and
// replace, comment toggle, the command palette, go to line, multi-cursor, folding, word
// completion, the context menu, hover. (What a language server adds is issue 20's rest.)
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, openFile, replaceText, signUp } from './helpers.js';

const SOURCE = 'import os\n\ndef greet(name):\n    greeting = "hello"\n    return greeting + name\n\nprint(greet("ada"))\n';

test('find, comment, palette, go to line, multi-cursor, folding, completion and the context menu work', async ({ page }) => {
  await signUp(page, 'editor_user');
  await createWorkspace(page, 'editing');
  await openFile(page, 'main.py');
  await replaceText(page, SOURCE);
  const editor = page.locator('.monaco-editor');
  const lines = page.locator('.monaco-editor .view-lines');

  // Find (Ctrl+F): the widget opens and counts the matches.
  await page.keyboard.press('ControlOrMeta+f');
  await expect(page.locator('.find-widget.visible')).toBeVisible();
  await page.keyboard.type('greeting');
  await expect(page.locator('.find-widget .matchesCount')).toHaveText(/1 of 2/);
  await page.keyboard.press('Escape');
  await expect(page.locator('.find-widget.visible')).toHaveCount(0);

  // Comment toggle (Ctrl+/) on the first line.
  await page.keyboard.press('ControlOrMeta+Home');
  await page.keyboard.press('ControlOrMeta+/');
  await expect(lines).toContainText('# import os');
  await page.keyboard.press('ControlOrMeta+/');
  await expect(lines).not.toContainText('# import os');

  // The command palette (F1) lists editor commands.
  await page.keyboard.press('F1');
  await expect(page.locator('.quick-input-widget')).toBeVisible();
  await page.keyboard.type('Toggle Line Comment');
  await expect(page.locator('.quick-input-list')).toContainText('Toggle Line Comment');
  await page.keyboard.press('Escape');

  // Go to line (Ctrl+G).
  await page.keyboard.press('Control+g');
  await expect(page.locator('.quick-input-widget')).toBeVisible();
  await page.keyboard.type('7');
  await page.keyboard.press('Enter');
  await expect(page.locator('.monaco-editor .line-numbers.active-line-number')).toHaveText('7');

  // Multi-cursor: Alt+click adds a cursor; typing goes to both.
  await page.locator('.monaco-editor .view-line', { hasText: 'greeting = "hello"' }).click();
  await page.locator('.monaco-editor .view-line', { hasText: 'return greeting' }).click({ modifiers: ['Alt'] });
  await expect(page.locator('.monaco-editor .cursors-layer .cursor')).toHaveCount(2);
  await page.keyboard.press('Home');
  await page.keyboard.type('#');
  await expect(lines).toContainText('#greeting = "hello"');
  await expect(lines).toContainText('#return greeting');
  await page.keyboard.press('ControlOrMeta+z');
  await page.keyboard.press('Escape');

  // Folding: the function's block has a fold control.
  await expect(page.locator('.monaco-editor .margin .codicon-folding-expanded').first()).toBeAttached();

  // Word completion: typing offers the file's words.
  await page.keyboard.press('ControlOrMeta+End');
  await page.keyboard.press('Enter');
  await page.keyboard.type('gree');
  await expect(page.locator('.suggest-widget.visible')).toContainText('greeting');
  await page.keyboard.press('Escape');

  // The context menu.
  await lines.click({ button: 'right' });
  await expect(page.locator('.context-view .monaco-menu')).toBeVisible();
  await expect(page.locator('.context-view')).toContainText('Command Palette');
  await page.screenshot({ path: `${artifacts}editor-features.png` });
  await page.keyboard.press('Escape');
  await expect(editor).toBeVisible();
});
