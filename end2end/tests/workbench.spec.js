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

test('the tree: folders collapse and stay so, a context menu, the keyboard, multi-select, uploads into a folder', async ({ page }) => {
  test.setTimeout(180_000);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'explorer-user');
  const id = await createWorkspace(page, 'tree');
  await terminalReady(page);
  await runInTerminal(page, 'mkdir -p src/pkg data && touch src/app.py src/pkg/util.py data/a.csv data/b.csv notes.md && echo ok');
  await expectTerminalLine(page, 'ok');
  await expect(row(page, 'src/pkg/util.py')).toBeVisible({ timeout: 10_000 });

  // Icons are drawn (CSS masks), not glyphs that may be missing: the delete action is an SVG icon.
  await row(page, 'main.py').hover();
  const trash = row(page, 'main.py').locator('.tree-delete.icon-trash');
  await expect(trash).toBeVisible();
  const mask = await trash.evaluate((element) => getComputedStyle(element).maskImage || getComputedStyle(element).webkitMaskImage);
  expect(mask).toContain('data:image/svg+xml');
  await expect(row(page, 'main.py').locator('.icon-python')).toBeVisible();
  await expect(row(page, 'data/a.csv').locator('.icon-table')).toBeVisible();
  await expect(row(page, 'src').locator('.icon-folder-opened')).toBeVisible();
  // Folders come first.
  const order = await page.locator('.tree-row').evaluateAll((rows) => rows.map((r) => r.dataset.path));
  expect(order.indexOf('src')).toBeLessThan(order.indexOf('main.py'));

  // Collapse a folder by clicking it: its contents go; after a reload it is still collapsed.
  await row(page, 'src').locator('.tree-item').click();
  await expect(row(page, 'src')).toHaveAttribute('aria-expanded', 'false');
  await expect(row(page, 'src/app.py')).toBeHidden();
  await expect(row(page, 'src/pkg/util.py')).toBeHidden();
  await page.reload();
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await expect(row(page, 'src')).toHaveAttribute('aria-expanded', 'false');
  await expect(row(page, 'src/app.py')).toBeHidden();
  await expect(row(page, 'data/a.csv')).toBeVisible();
  await terminalReady(page); // the terminal takes the focus when it connects

  // The keyboard: focus a row, arrows move, Home/End, type-to-find, Right opens a folder
  // and goes in, Enter opens a file. (Folders first: data, data/a.csv, data/b.csv, src, …)
  await row(page, 'data').locator('.tree-item').focus();
  await page.keyboard.press('ArrowDown');
  await expect(row(page, 'data/a.csv')).toHaveClass(/selected/);
  await expect(row(page, 'data/a.csv').locator('.tree-item')).toBeFocused();
  await page.keyboard.press('End');
  await expect(row(page, 'notes.md')).toHaveClass(/selected/);
  await page.keyboard.press('Home');
  await expect(row(page, 'data')).toHaveClass(/selected/);
  await page.keyboard.press('s');
  await expect(row(page, 'src')).toHaveClass(/selected/);
  await page.keyboard.press('ArrowRight');
  await expect(row(page, 'src/app.py')).toBeVisible();
  await page.keyboard.press('ArrowRight'); // into the folder: its first entry (pkg, a folder)
  await expect(row(page, 'src/pkg')).toHaveClass(/selected/);
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await expect(row(page, 'src/app.py')).toHaveClass(/selected/);
  await page.keyboard.press('Enter');
  await expect(page.locator('.editor-tab.active[data-path="src/app.py"]')).toBeVisible();
  // Left goes to the parent, Left again collapses it.
  await row(page, 'src/app.py').locator('.tree-item').focus();
  await page.keyboard.press('ArrowLeft');
  await expect(row(page, 'src')).toHaveClass(/selected/);
  await page.keyboard.press('ArrowLeft');
  await expect(row(page, 'src/app.py')).toBeHidden();
  await page.keyboard.press('ArrowRight');
  await expect(row(page, 'src/app.py')).toBeVisible();
  // Type-to-find: "n" jumps to notes.md.
  await page.keyboard.press('n');
  await expect(row(page, 'notes.md')).toHaveClass(/selected/);

  // F2: the rename field has the focus and the name without its extension selected.
  await page.keyboard.press('F2');
  const rename = row(page, 'notes.md').locator('.tree-rename-input');
  await expect(rename).toBeFocused();
  const selection = await rename.evaluate((input) => [input.selectionStart, input.selectionEnd]);
  expect(selection).toEqual([0, 5]);
  await page.keyboard.type('readme');
  await page.keyboard.press('Enter');
  await expect(row(page, 'readme.md')).toBeVisible();
  await expect(row(page, 'notes.md')).toHaveCount(0);

  // The context menu on a folder: New File here (the prompt starts in the folder).
  await row(page, 'data').locator('.tree-item').click({ button: 'right' });
  const menu = page.locator('.context-menu');
  await expect(menu).toBeVisible();
  await expect(menu.locator('.menu-item').first()).toBeFocused();
  await page.screenshot({ path: `${artifacts}workbench-context-menu.png` });
  // A press outside the menu closes it; presses inside (below) reach its items.
  await page.locator('.editor-body').click({ position: { x: 300, y: 200 } });
  await expect(menu).toBeHidden();
  await row(page, 'data').locator('.tree-item').click({ button: 'right' });
  await expect(menu).toBeVisible();
  page.once('dialog', async (dialog) => {
    expect(dialog.defaultValue()).toBe('data/');
    await dialog.accept('data/new.py');
  });
  await menu.locator('[data-action="new-file"]').click();
  await expect(row(page, 'data/new.py')).toBeVisible();
  await expect(page.locator('.editor-tab.active[data-path="data/new.py"]')).toBeVisible();
  // Copy Path puts the path on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await row(page, 'data/a.csv').locator('.tree-item').click({ button: 'right' });
  await menu.locator('[data-action="copy-path"]').click();
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('data/a.csv');
  // Upload into a chosen folder (the menu's Upload Files… on the folder).
  await row(page, 'src/pkg').locator('.tree-item').click({ button: 'right' });
  const chooser = page.waitForEvent('filechooser');
  await menu.locator('[data-action="upload-files"]').click();
  await (await chooser).setFiles({ name: 'up.txt', mimeType: 'text/plain', buffer: Buffer.from('uploaded here\n') });
  await expect(row(page, 'src/pkg/up.txt')).toBeVisible();
  // Files dropped on a folder row go into that folder.
  await page.evaluate(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['dropped in data\n'], 'drop.txt', { type: 'text/plain' }));
    document
      .querySelector('.tree-row[data-path="data"]')
      .dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
  await expect(row(page, 'data/drop.txt')).toBeVisible();
  // Open in Terminal: a shell cd's into the folder.
  await row(page, 'src/pkg').locator('.tree-item').click({ button: 'right' });
  await menu.locator('[data-action="reveal"]').click();
  await expect(menu).toBeHidden();
  await runInTerminal(page, 'pwd');
  await expectTerminalLine(page, '/workspace/src/pkg');
  await runInTerminal(page, 'cat up.txt');
  await expectTerminalLine(page, 'uploaded here');

  // Multi-select: Ctrl+click two files, drag them into a folder: both move.
  await row(page, 'data/a.csv').locator('.tree-item').click();
  await row(page, 'data/b.csv').locator('.tree-item').click({ modifiers: ['ControlOrMeta'] });
  await expect(page.locator('.tree-row.selected')).toHaveCount(2);
  await page.dragAndDrop('.tree-row[data-path="data/b.csv"]', '.tree-row[data-path="src"]');
  await expect(row(page, 'src/a.csv')).toBeVisible();
  await expect(row(page, 'src/b.csv')).toBeVisible();
  await expect(row(page, 'data/a.csv')).toHaveCount(0);
  // Shift+click selects a range; Delete deletes them all after one confirmation.
  await row(page, 'src/a.csv').locator('.tree-item').click();
  await row(page, 'src/b.csv').locator('.tree-item').click({ modifiers: ['Shift'] });
  // a.csv, app.py, b.csv (files by name); Ctrl+click takes app.py out again.
  await expect(page.locator('.tree-row.selected')).toHaveCount(3);
  await row(page, 'src/app.py').locator('.tree-item').click({ modifiers: ['ControlOrMeta'] });
  await expect(page.locator('.tree-row.selected')).toHaveCount(2);
  await expect(row(page, 'src/app.py')).not.toHaveClass(/selected/);
  page.once('dialog', (dialog) => {
    expect(dialog.message()).toContain('Delete these 2 items?');
    return dialog.accept();
  });
  await page.keyboard.press('Delete');
  await expect(row(page, 'src/a.csv')).toHaveCount(0);
  await expect(row(page, 'src/b.csv')).toHaveCount(0);
  await runInTerminal(page, 'ls /workspace/src');
  await expectTerminalLine(page, /^app\.py\s+pkg$/);

  await row(page, 'readme.md').hover();
  await shoot(page, 'workbench-tree-1440');
  expect(errors).toEqual([]);
  void id;
});

test('a big folder: only the rows in view are drawn; the keyboard and scrolling reach every one', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'big-folder-user');
  await createWorkspace(page, 'big');
  await terminalReady(page);
  await runInTerminal(page, 'mkdir many && for i in $(seq -w 0 399); do : > many/f$i.txt; done && echo made');
  await expectTerminalLine(page, 'made');
  // Every row says its place: the folder's first file is 1 of 400.
  await expect(row(page, 'many/f000.txt')).toHaveAttribute('aria-setsize', '400', { timeout: 30_000 });
  await expect(row(page, 'many/f000.txt')).toHaveAttribute('aria-posinset', '1');
  expect(await page.locator('.tree-row').count()).toBeLessThan(120);
  await expect(row(page, 'main.py')).toHaveCount(0); // far below, not drawn

  // End goes to the last row (scrolled to and drawn), Home back to the first.
  await row(page, 'many').locator('.tree-item').focus();
  await page.keyboard.press('End');
  await expect(row(page, 'main.py').locator('.tree-item')).toBeFocused();
  await expect(row(page, 'main.py')).toBeInViewport();
  await expect(row(page, 'many/f000.txt')).toHaveCount(0);
  await page.keyboard.press('Home');
  await expect(row(page, 'many').locator('.tree-item')).toBeFocused();
  // Down a few hundred rows by keyboard: each focused row is on screen.
  for (let i = 0; i < 250; i += 1) await page.keyboard.press('ArrowDown');
  await expect(row(page, 'many/f249.txt').locator('.tree-item')).toBeFocused();
  await expect(row(page, 'many/f249.txt')).toBeInViewport();
  // The mouse wheel reaches the end too.
  await page.locator('.tree-scroll').hover();
  for (let i = 0; i < 40; i += 1) await page.mouse.wheel(0, 600);
  await expect(row(page, 'main.py')).toBeInViewport();
  // Collapsed, the folder's rows go and the list is short again.
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowLeft');
  await expect(row(page, 'many')).toHaveAttribute('aria-expanded', 'false');
  await expect(row(page, 'main.py')).toBeInViewport();
  expect(await page.locator('.tree-row').count()).toBeLessThan(10);
  await shoot(page, 'workbench-big-folder-1440');
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

test('the terminal and the editor follow the OS switching between light and dark while open', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.emulateMedia({ colorScheme: 'light' });
  await signUp(page, 'scheme-user');
  await createWorkspace(page, 'scheme');
  await terminalReady(page);
  await openFile(page, 'main.py');
  const editor = page.locator('.monaco-host .monaco-editor').first();
  // xterm.js 6 paints its theme's background on the scrollable element.
  const terminal = page.locator('.xterm-host.active .xterm-scrollable-element');
  const background = (locator) => locator.evaluate((element) => getComputedStyle(element).backgroundColor);
  // The page's own colours (style/main.css): light #f6f7f9, dark #1e1f24.
  await expect(editor).toHaveClass(/\bvs\b/);
  await expect.poll(() => background(terminal)).toBe('rgb(246, 247, 249)');
  // Sunset: the OS turns dark with the page open.
  await page.emulateMedia({ colorScheme: 'dark' });
  await expect(editor).toHaveClass(/\bvs-dark\b/);
  await expect.poll(() => background(terminal)).toBe('rgb(30, 31, 36)');
  // A terminal opened now starts dark too.
  await page.locator('button.new-terminal').click();
  await expect(page.locator('.xterm-host')).toHaveCount(2);
  await expect.poll(() => background(page.locator('.xterm-host.active .xterm-scrollable-element'))).toBe('rgb(30, 31, 36)');
  await page.emulateMedia({ colorScheme: 'light' });
  await expect(editor).toHaveClass(/\bvs\b/);
  await expect.poll(() => background(page.locator('.xterm-host .xterm-scrollable-element').first())).toBe('rgb(246, 247, 249)');
  await expect.poll(() => background(page.locator('.xterm-host .xterm-scrollable-element').last())).toBe('rgb(246, 247, 249)');
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
  // Rename: the field has the focus and the whole name selected; Escape puts it away.
  await item.locator('.rename').click();
  await expect(item.locator('.rename-input')).toBeFocused();
  await expect(dashboard.locator('.dashboard')).toHaveAttribute('data-live', 'true');
  expect(await item.locator('.rename-input').evaluate((input) => [input.selectionStart, input.selectionEnd])).toEqual([0, 4]);
  await dashboard.keyboard.press('Escape');
  await expect(item.locator('.workspace-name')).toHaveText('live');
  await item.locator('.rename').click();
  await expect(item.locator('.rename-input')).toBeFocused();
  await expect(dashboard.locator('.dashboard')).toHaveAttribute('data-live', 'true');
  await shoot(dashboard, 'workbench-dashboard-rename-1440');
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
  // Stopped elsewhere: the state follows without a reload (the rows refresh themselves).
  await dashboard.evaluate(() => { window.notReloaded = true; });
  await api(dashboard, '/api/workspaces/stop', { id });
  await expect(item.locator('.badge')).toHaveText('stopped', { timeout: 15_000 });
  await expect(item.locator('button.power')).toHaveText('Start');
  expect(await dashboard.evaluate(() => window.notReloaded)).toBe(true);
  // A workspace made elsewhere shows up.
  await api(dashboard, '/api/workspaces/create', { name: 'made elsewhere' });
  await expect(dashboard.locator('.workspace-row')).toHaveCount(2, { timeout: 15_000 });
  // The user's name (a link to the account page) sits on the line of the Sign out button.
  const name = await dashboard.locator('.topbar .username').evaluate((link) => {
    // Where the text is drawn (the link's own box may be stretched to the bar's height).
    const range = document.createRange();
    range.selectNodeContents(link);
    const { y, height } = range.getBoundingClientRect();
    return { y, height };
  });
  expect(name.height).toBeGreaterThan(0);
  const signOut = await dashboard.locator('#sign-out').boundingBox();
  expect(Math.abs(name.y + name.height / 2 - (signOut.y + signOut.height / 2))).toBeLessThanOrEqual(2);
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
  // The status bar's buttons (Packages, Keep alive, Autosave) are 40 px too; the bar scrolls
  // sideways on its own when they do not all fit, and each can be scrolled into view.
  const statusButtons = page.locator('.statusbar button:visible');
  expect(await statusButtons.count()).toBeGreaterThanOrEqual(2);
  for (const button of await statusButtons.all()) {
    await button.scrollIntoViewIfNeeded();
    const box = await button.boundingBox();
    expect(box.height, await button.textContent()).toBeGreaterThanOrEqual(40);
    // Scrolled into view: on screen, give or take the sub-pixel widths of text.
    expect(box.x).toBeGreaterThanOrEqual(-1);
    expect(box.x + box.width).toBeLessThanOrEqual(391);
  }
  // It does not fit at 390 px; a fade pinned to its right edge says there is more.
  const bar = await page.locator('.statusbar').evaluate((element) => {
    const fade = getComputedStyle(element, '::after');
    return { more: element.scrollWidth > element.clientWidth, position: fade.position, image: fade.backgroundImage };
  });
  expect(bar.more).toBe(true);
  expect(bar.position).toBe('sticky');
  expect(bar.image).toContain('linear-gradient');
  await page.locator('.statusbar').evaluate((element) => element.scrollTo({ left: 0 }));
  await expectNoHorizontalOverflow(page);
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

test('the account page: each card starts with its heading; buttons are their own size', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'account_look');
  // A plain page: the link from the dashboard loads it, and it loads no wasm.
  const wasm = [];
  page.on('request', (request) => { if (request.url().endsWith('.wasm')) wasm.push(request.url()); });
  await page.click('a.username');
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.locator('h1')).toHaveText('Account');
  expect(wasm).toEqual([]);
  // Its forms work as forms: a wrong current password is said inline, deleting needs the box.
  await page.fill('input[name=current_password]', 'not my password');
  await page.fill('input[name=new_password]', 'a new password here');
  await page.click('text=Change password >> nth=-1');
  await expect(page.locator('.card').first().locator('.form-error')).toHaveText('The current password is wrong.');
  await expect(page.locator('input[name=confirm]')).toHaveAttribute('required', '');
  for (const card of await page.locator('.account .card').all()) {
    const box = await card.boundingBox();
    const heading = await card.locator('h2').boundingBox();
    // Within the card's padding (28 px), not pushed down by the heading's default margin.
    expect(heading.y - box.y).toBeLessThanOrEqual(30);
    for (const button of await card.locator('button').all()) {
      expect((await button.boundingBox()).width).toBeLessThan(box.width / 2);
    }
  }
  await shoot(page, 'workbench-account-1440');
  await page.setViewportSize({ width: 390, height: 844 });
  await expectNoHorizontalOverflow(page);
  // A checkbox's target is its label.
  for (const target of await page.locator('.account .card button, .account .card input:not([type=checkbox]), .account .card label.check').all()) {
    expect((await target.boundingBox()).height).toBeGreaterThanOrEqual(40);
  }
  await shoot(page, 'workbench-account-390');
});
