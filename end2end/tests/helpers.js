// Shared steps of the end-to-end tests, done the way a person does them: through the forms.
import { expect } from '@playwright/test';

export const artifacts = new URL('../artifacts/', import.meta.url).pathname;
export const PASSWORD = 'correct horse battery';

/** Signs up through the sign-up form; ends on the dashboard. */
export async function signUp(page, username) {
  await page.goto('/signup');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=email]', `${username}@example.org`);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('h1')).toHaveText('Workspaces');
}

/** Creates a workspace from the dashboard; ends in its IDE. Returns its id. */
export async function createWorkspace(page, name) {
  // A plain form: it works before (and without) the wasm.
  await page.fill('.create-workspace input', name);
  await page.click('.create-workspace button');
  await expect(page).toHaveURL(/\/w\/[0-9a-f-]{36}$/, { timeout: 15_000 });
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  return page.url().split('/w/')[1];
}

/** The active terminal's rows as trimmed lines. */
export async function terminalLines(page) {
  const rows = await page.locator('.xterm-host.active .xterm-rows > div').allInnerTexts();
  return rows.map((row) => row.replaceAll('\u00a0', ' ').trim());
}

/** Waits until a row of the active terminal is `want` (a string) or matches it (a RegExp). */
export async function expectTerminalLine(page, want, timeout = 20_000) {
  await expect
    .poll(async () => (await terminalLines(page)).some((line) => (want instanceof RegExp ? want.test(line) : line === want)), {
      timeout,
      message: `a terminal line ${want}`,
    })
    .toBe(true);
}

/** Types a command into the active terminal. */
export async function runInTerminal(page, command) {
  await page.locator('.xterm-host.active').click();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

/** Waits for the terminal's prompt. */
export async function terminalReady(page) {
  await expect
    .poll(async () => (await terminalLines(page)).join('\n').includes('$'), { timeout: 30_000, message: 'a prompt' })
    .toBe(true);
}

/** Opens a file from the tree and waits for Monaco to show it. */
export async function openFile(page, path) {
  await page.locator(`.tree-row[data-path="${path}"] .tree-item`).click();
  await expect(page.locator(`.editor-tab.active[data-path="${path}"]`)).toBeVisible();
  await expect(page.locator('.monaco-host[data-ready=true] .monaco-editor')).toBeVisible({ timeout: 30_000 });
}

/** Replaces the whole text of the open file (no auto-closing brackets: inserted, not typed). */
export async function replaceText(page, text) {
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}
