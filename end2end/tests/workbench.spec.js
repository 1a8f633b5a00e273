// The workbench around the editor: the file tree (folders, context menu, keyboard,
// multi-select, uploads into a folder, icons, rename fields), tabs restored after a reload,
// the phone layout, the sandbox's state over the terminal and on the dashboard.
import { test, expect } from '@playwright/test';
import {
  artifacts,
  createWorkspace,
  expectTerminalLine,
  openFile,
  replaceText,
  runInTerminal,
  signUp,
  terminalReady,
} from './helpers.js';

const row = (page, path) => page.locator(`.tree-row[data-path="${path}"]`);

/** Calls a JSON API with the page's session. */
async function api(page, path, data) {
  const response = await page.context().request.post(path, {
    headers: { origin: new URL(page.url()).origin },
    data,
  });
  expect(response.ok(), `${path}: ${response.status()}`).toBeTruthy();
  return response.json();
}

/** Screenshots of the current page in light and dark. */
async function shoot(page, name) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(150);
    await page.screenshot({ path: `${artifacts}${name}-${scheme}.png` });
  }
  await page.emulateMedia({ colorScheme: null });
}

/** The page is no wider than the viewport (nothing to scroll sideways). */
async function expectNoHorizontalOverflow(page) {
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  expect(widths[0], 'page width at most the viewport').toBeLessThanOrEqual(widths[1]);
}

test('the tree: icons that render without an emoji font, a rename field that has the focus with the name selected, drops into a folder', async ({ page }) => {
  test.setTimeout(120_000);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'explorer-user');
  await createWorkspace(page, 'tree');
  await terminalReady(page);
  await runInTerminal(page, 'mkdir -p src data && touch src/app.py data/a.csv notes.md && echo ok');
  await expectTerminalLine(page, 'ok');
  await expect(row(page, 'data/a.csv')).toBeVisible({ timeout: 10_000 });

  // Icons are drawn (CSS masks of codicons' SVGs), not glyphs a font may lack.
  await row(page, 'main.py').hover();
  const trash = row(page, 'main.py').locator('.tree-delete.icon-trash');
  await expect(trash).toBeVisible();
  const mask = await trash.evaluate((element) => getComputedStyle(element).maskImage || getComputedStyle(element).webkitMaskImage);
  expect(mask).toContain('data:image/svg+xml');
  expect(await trash.textContent()).toBe('');
  await expect(row(page, 'main.py').locator('.icon-python')).toBeVisible();
  await expect(row(page, 'data/a.csv').locator('.icon-table')).toBeVisible();
  await expect(row(page, 'src').locator('.icon-folder')).toBeVisible();
  await expect(page.locator('#new-file .icon-new-file')).toBeVisible();

  // Rename: the field has the focus, the name without its extension selected; typing replaces it.
  await row(page, 'notes.md').hover();
  await row(page, 'notes.md').locator('.tree-rename').click();
  const rename = row(page, 'notes.md').locator('.tree-rename-input');
  await expect(rename).toBeFocused();
  expect(await rename.evaluate((input) => [input.selectionStart, input.selectionEnd])).toEqual([0, 5]);
  await page.keyboard.type('readme');
  await page.keyboard.press('Enter');
  await expect(row(page, 'readme.md')).toBeVisible();
  await expect(row(page, 'notes.md')).toHaveCount(0);
  // Escape leaves the name as it was.
  await row(page, 'readme.md').hover();
  await row(page, 'readme.md').locator('.tree-rename').click();
  await expect(row(page, 'readme.md').locator('.tree-rename-input')).toBeFocused();
  await page.keyboard.type('other');
  await page.keyboard.press('Escape');
  await expect(row(page, 'readme.md').locator('.tree-item')).toBeVisible();

  // Files dropped on a folder row go into that folder.
  await page.evaluate(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['dropped in data\n'], 'drop.txt', { type: 'text/plain' }));
    document
      .querySelector('.tree-row[data-path="data"]')
      .dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
  await expect(row(page, 'data/drop.txt')).toBeVisible();
  await runInTerminal(page, 'cat data/drop.txt');
  await expectTerminalLine(page, 'dropped in data');

  await row(page, 'readme.md').hover();
  await shoot(page, 'workbench-tree-1440');
  expect(errors).toEqual([]);
});

test('tabs come back after a reload with the active one, the cursor and the scroll; Ctrl+Tab, middle-click, a dirty close asks', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'tabsuser');
  await createWorkspace(page, 'tabs');
  await terminalReady(page);
  const long = Array.from({ length: 300 }, (_, i) => `line_${i} = ${i}`).join('\n');
  await runInTerminal(page, `python3 -c "open('long.py','w').write('''${long}\\n''')" && touch other.py && echo made`);
  await expectTerminalLine(page, 'made');
  await expect(row(page, 'long.py')).toBeVisible({ timeout: 10_000 });
  await openFile(page, 'other.py');
  await openFile(page, 'long.py');
  // The cursor on line 250 (Ctrl+G), which scrolls there.
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press('Control+g');
  await page.keyboard.type('250');
  await page.keyboard.press('Enter');
  await expect(page.locator('.monaco-editor .view-line', { hasText: 'line_249 = 249' })).toBeVisible();
  await expect(page.locator('.monaco-editor .view-line', { hasText: 'line_0 = 0' })).toHaveCount(0);

  await page.reload();
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  // Both tabs, in their order, long.py active, its cursor line and scroll as they were.
  await expect(page.locator('.editor-tab')).toHaveCount(2, { timeout: 30_000 });
  expect(await page.locator('.editor-tab').evaluateAll((tabs) => tabs.map((t) => t.dataset.path))).toEqual(['other.py', 'long.py']);
  await expect(page.locator('.editor-tab.active[data-path="long.py"]')).toBeVisible();
  await expect(page.locator('.monaco-editor .view-line', { hasText: 'line_249 = 249' })).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('.monaco-editor .view-line', { hasText: 'line_0 = 0' })).toHaveCount(0);
  // Typing goes where the cursor was (the tab given the keyboard): the end of line 250 after End.
  await page.locator('.editor-tab.active[data-path="long.py"]').click();
  await page.keyboard.press('End');
  await page.keyboard.type('  # here');
  await expect(page.locator('.monaco-editor .view-line', { hasText: 'line_249 = 249  # here' })).toBeVisible();
  await page.screenshot({ path: `${artifacts}workbench-tabs-restored.png` });

  // Ctrl+Tab and Ctrl+Shift+Tab go round the tabs (Alt+PageDown too, where a browser keeps Ctrl+Tab).
  await page.keyboard.press('Control+Tab');
  await expect(page.locator('.editor-tab.active[data-path="other.py"]')).toBeVisible();
  await page.keyboard.press('Control+Shift+Tab');
  await expect(page.locator('.editor-tab.active[data-path="long.py"]')).toBeVisible();
  await page.keyboard.press('Alt+PageDown');
  await expect(page.locator('.editor-tab.active[data-path="other.py"]')).toBeVisible();

  // A dirty tab asks before closing: cancel keeps it.
  await page.locator('.editor-tab[data-path="long.py"]').click();
  await page.locator('#autosave').click(); // autosave off: the edit stays unsaved
  await expect(page.locator('#autosave')).toHaveText('Autosave: off');
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.type('x');
  await expect(page.locator('.editor-tab[data-path="long.py"]')).toHaveClass(/dirty/);
  page.once('dialog', (dialog) => {
    expect(dialog.message()).toContain('long.py has unsaved changes');
    return dialog.dismiss();
  });
  await page.locator('.editor-tab[data-path="long.py"]').click({ button: 'middle' });
  await expect(page.locator('.editor-tab[data-path="long.py"]')).toBeVisible();
  // Middle-click closes a clean tab at once.
  await page.locator('.editor-tab[data-path="other.py"]').click({ button: 'middle' });
  await expect(page.locator('.editor-tab[data-path="other.py"]')).toHaveCount(0);
  await page.locator('#autosave').click();
});

test('a stopped sandbox is a banner with one action; typing into the dead terminal offers the start', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'banneruser');
  const id = await createWorkspace(page, 'banner');
  await terminalReady(page);
  const banner = page.locator('.sandbox-banner');
  await expect(banner).toBeHidden();
  await api(page, '/api/workspaces/stop', { id });
  await expect(banner).toBeVisible({ timeout: 15_000 });
  await expect(banner).toHaveAttribute('data-link', 'Stopped');
  await expect(banner.locator('.link-state')).toHaveText('sandbox stopped');
  await expect(banner.locator('button.restart')).toHaveText('Start sandbox');
  await shoot(page, 'workbench-stopped-1440');
  // Keys typed into the stopped terminal are not lost silently: the banner says so and its
  // button takes the focus, so Enter starts the sandbox.
  await page.locator('.xterm-host.active .xterm-helper-textarea').focus();
  await page.keyboard.type('ls');
  await expect(banner.locator('.banner-detail')).toContainText('You typed into the terminal while the sandbox was stopped');
  await expect(banner.locator('button.restart')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(banner).toBeHidden({ timeout: 30_000 });
  await terminalReady(page);
  await runInTerminal(page, 'echo back');
  await expectTerminalLine(page, 'back');
});

test('the dashboard shows each workspace live and starts and stops it', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'dashuser');
  const id = await createWorkspace(page, 'live');
  await terminalReady(page);
  // A second tab on the dashboard while the IDE stays open.
  const dashboard = await page.context().newPage();
  await dashboard.setViewportSize({ width: 1440, height: 900 });
  await dashboard.goto('/');
  const item = dashboard.locator(`.workspace-row[data-workspace="${id}"]`);
  await expect(item.locator('.badge')).toHaveText('running');
  await expect(item.locator('.activity')).toHaveText('active just now');
  // Rename: the field has the focus and the whole name selected.
  await item.locator('button.rename').click();
  await expect(item.locator('.rename-input')).toBeFocused();
  expect(await item.locator('.rename-input').evaluate((input) => [input.selectionStart, input.selectionEnd])).toEqual([0, 4]);
  await dashboard.keyboard.type('renamed live');
  await dashboard.keyboard.press('Enter');
  await expect(item.locator('.workspace-name')).toHaveText('renamed live');
  // Stop from the dashboard: the badge follows, and the open IDE shows its banner.
  await item.locator('button.power').click();
  await expect(item.locator('.badge')).toHaveText('stopped', { timeout: 15_000 });
  await expect(page.locator('.sandbox-banner')).toHaveAttribute('data-link', 'Stopped', { timeout: 15_000 });
  await shoot(dashboard, 'workbench-dashboard-1440');
  // Start it again from the dashboard; a refresh of the list shows it running.
  await item.locator('button.power').click();
  await expect(item.locator('.badge')).toHaveText('running', { timeout: 30_000 });
  await expect(item.locator('button.power')).toHaveText('Stop');
  // Started elsewhere: the state follows without a reload (the list refreshes itself).
  await api(dashboard, '/api/workspaces/stop', { id });
  await expect(item.locator('.badge')).toHaveText('stopped', { timeout: 15_000 });
  await dashboard.setViewportSize({ width: 390, height: 844 });
  await expectNoHorizontalOverflow(dashboard);
  await shoot(dashboard, 'workbench-dashboard-390');
});

test('a phone: no sideways scrolling, the tree is a drawer, editor, terminal and Run reachable, 40 px targets', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 390, height: 844 });
  await signUp(page, 'phoneuser');
  await expectNoHorizontalOverflow(page);
  await createWorkspace(page, 'phone');
  await terminalReady(page);
  await expectNoHorizontalOverflow(page);
  const sidebar = page.locator('.sidebar');
  await expect(sidebar).toBeHidden();
  // Every button in the top bar is on screen and at least 40 px tall and wide.
  for (const button of await page.locator('.topbar button').all()) {
    const box = await button.boundingBox();
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    expect(box.height).toBeGreaterThanOrEqual(40);
    expect(box.width).toBeGreaterThanOrEqual(40);
  }
  await page.click('#toggle-sidebar');
  await expect(sidebar).toBeVisible();
  await expect(page.locator('#toggle-sidebar')).toHaveAttribute('aria-pressed', 'true');
  const treeRow = row(page, 'main.py');
  const box = await treeRow.boundingBox();
  expect(box.height).toBeGreaterThanOrEqual(40);
  await expectNoHorizontalOverflow(page);
  await shoot(page, 'workbench-drawer-390');
  // Opening a file closes the drawer and shows the editor.
  await treeRow.locator('.tree-item').click();
  await expect(sidebar).toBeHidden();
  await expect(page.locator('.editor-tab.active[data-path="main.py"]')).toBeVisible();
  await expect(page.locator('.monaco-host[data-ready=true] .monaco-editor')).toBeVisible({ timeout: 30_000 });
  await replaceText(page, 'print("from a phone")\n');
  // Run is on screen; its output shows in the terminal.
  await page.click('#run');
  await expectTerminalLine(page, 'from a phone', 30_000);
  await expectNoHorizontalOverflow(page);
  const runBox = await page.locator('#run').boundingBox();
  expect(runBox.height).toBeGreaterThanOrEqual(40);
  await shoot(page, 'workbench-ide-390');
  // The terminal can be hidden and brought back.
  await page.click('#toggle-terminal');
  await expect(page.locator('.terminal-panel')).toBeHidden();
  await page.click('#toggle-terminal');
  await expect(page.locator('.terminal-panel')).toBeVisible();
  // The tree's backdrop closes the drawer.
  await page.click('#toggle-sidebar');
  await expect(sidebar).toBeVisible();
  await page.mouse.click(370, 400);
  await expect(sidebar).toBeHidden();
});

test('screenshots of the changed pages at 1440×900', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto('/signin');
  await shoot(page, 'workbench-signin-1440');
  await page.setViewportSize({ width: 390, height: 844 });
  await expectNoHorizontalOverflow(page);
  await shoot(page, 'workbench-signin-390');
});
