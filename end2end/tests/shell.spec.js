// The IDE shell: rendered on the server, then hydrated into a working page.
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, signUp } from './helpers.js';

test('the shell is server-rendered, hydrates, and its panels respond', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });

  await signUp(page, 'shell_user');
  await expect(page).toHaveTitle('Workspaces · Codepod');
  await createWorkspace(page, 'shell');
  await expect(page).toHaveTitle('shell · Codepod');
  await expect(page.locator('.topbar')).toBeVisible();
  await expect(page.locator('.sidebar')).toBeVisible();
  await expect(page.locator('.editor')).toBeVisible();
  await expect(page.locator('.statusbar')).toContainText('sqlite');

  // Only the wasm bundle can flip this: it proves hydration ran.
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('#save-state')).toHaveText('all changes saved');
  await expect(page.locator('#autosave')).toHaveText('Autosave: on');

  const terminal = page.locator('.terminal-panel');
  await expect(terminal).toBeVisible();
  await page.screenshot({ path: `${artifacts}shell.png` });
  // The theme follows the OS: the same page in dark mode.
  await page.emulateMedia({ colorScheme: 'dark' });
  await expect(page.locator('body')).toHaveCSS('background-color', 'rgb(30, 31, 36)');
  await page.screenshot({ path: `${artifacts}shell-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });
  await expect(page.locator('body')).toHaveCSS('background-color', 'rgb(246, 247, 249)');

  // The button works only after hydration.
  await page.click('#toggle-terminal');
  await expect(terminal).toBeHidden();
  await expect(page.locator('#toggle-terminal')).toHaveAttribute('aria-pressed', 'false');

  // So does the keyboard shortcut.
  await page.keyboard.press('Control+Backquote');
  await expect(terminal).toBeVisible();

  await page.click('#toggle-sidebar');
  await expect(page.locator('.sidebar')).toBeHidden();
  await page.screenshot({ path: `${artifacts}shell-toggled.png` });

  expect(errors).toEqual([]);
});

test('an unknown address shows the 404 page with a 404 status', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response.status()).toBe(404);
  await expect(page.locator('h1')).toHaveText('404 · Not found');
  await page.screenshot({ path: `${artifacts}not-found.png` });
});

test('the web app manifest and icons are served', async ({ request }) => {
  const manifest = await request.get('/manifest.webmanifest');
  expect(manifest.ok()).toBeTruthy();
  const body = await manifest.json();
  expect(body.display).toBe('standalone');
  for (const icon of body.icons) {
    const response = await request.get(icon.src);
    expect(response.ok(), icon.src).toBeTruthy();
    expect(response.headers()['content-type']).toBe('image/png');
  }
});

test('a newcomer can register, create a workspace and start its sandbox', async ({ request, baseURL }) => {
  // Through the public API, as the UI will: the server's own build must include the agent.
  const headers = { origin: baseURL };
  const register = await request.post('/api/users/register', {
    headers,
    data: { username: 'e2e_user', email: 'e2e@example.org', password: 'correct horse battery' },
  });
  expect(register.ok()).toBeTruthy();
  const workspace = await (await request.post('/api/workspaces/create', { headers, data: { name: 'e2e' } })).json();
  const started = await (await request.post('/api/workspaces/start', { headers, data: { id: workspace.id } })).json();
  expect(started.state, JSON.stringify(started)).toBe('ready');
  const stopped = await (await request.post('/api/workspaces/stop', { headers, data: { id: workspace.id } })).json();
  expect(stopped.state).toBe('stopped');
});

test.describe('a failure in the page', () => {
  // page.route sees no request a service worker answers: keep the worker out of this one.
  test.use({ serviceWorkers: 'block' });

test("when the page's code fails, the page says so and offers a reload", async ({ page }) => {
  await signUp(page, 'crash_user');
  await createWorkspace(page, 'crash');
  await expect(page.locator('.crashed')).toHaveCount(0);
  // The IDE's HTML without one of its elements: the browser's code, hydrating, finds the
  // next one where it expects it, and then nothing where it expects the last, and panics.
  const ide = /\/w\/[0-9a-f-]{36}$/;
  await page.route(ide, async (route) => {
    const response = await route.fetch();
    const html = (await response.text()).replace('<div class="drawer-backdrop"></div>', '');
    await route.fulfill({ response, body: html });
  });
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.reload();
  const banner = page.locator('.crashed[role=alert]');
  await expect(banner).toBeVisible({ timeout: 15_000 });
  await expect(banner).toHaveCount(1);
  await expect(banner).toContainText('Codepod stopped working in this tab');
  expect(errors.length).toBeGreaterThan(0);
  await page.screenshot({ path: `${artifacts}crashed.png` });
  // Reload fetches the page again; unmodified, it works.
  await page.unroute(ide);
  await banner.getByRole('link', { name: 'Reload' }).click();
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.crashed')).toHaveCount(0);
});
});
