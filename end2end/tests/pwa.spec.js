// The installable app: a service worker that caches the bundles, shows an offline page
// when the network is gone, and never stands between the page and /api or /ws.
import { chromium, expect, test } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifacts, signUp } from './helpers.js';

test('the service worker activates, Chromium finds the app installable, and offline shows the offline page', async ({ page, request }) => {
  const sw = await request.get('/sw.js');
  expect(sw.ok()).toBeTruthy();
  expect(sw.headers()['cache-control']).toBe('no-cache');
  const script = await sw.text();
  expect(script).toContain('/offline.html');
  expect(script).toMatch(/\/pkg\/codepod\.[0-9a-f]+\.wasm/);
  expect(script).toMatch(/\/vendor\/xterm-/);

  // The sign-in page is a plain form: no script, no wasm, no service worker yet.
  const wasm = [];
  page.on('request', (request) => {
    if (request.url().endsWith('.wasm')) wasm.push(request.url());
  });
  await page.goto('/signin');
  await expect(page.locator('h1')).toHaveText('Sign in');
  await page.waitForLoadState('networkidle');
  expect(wasm).toEqual([]);
  expect(await page.evaluate(() => navigator.serviceWorker.getRegistrations().then((r) => r.length))).toBe(0);
  // Signed in, the app hydrates and registers it.
  await signUp(page, 'pwa-user');
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect
    .poll(() => page.evaluate(async () => (await navigator.serviceWorker.ready).active.state), { timeout: 15_000 })
    .toBe('activated');
  // Controls the page from the next navigation on.
  await page.reload();
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);


  await page.context().setOffline(true);
  await page.goto('/signin');
  await expect(page.locator('h1')).toHaveText('You are offline');
  await page.screenshot({ path: `${artifacts}offline.png` });
  // The API is never answered from a cache.
  const api = await page.evaluate(() => fetch('/api/meta/info').then(() => 'answered', () => 'failed'));
  expect(api).toBe('failed');
  await page.context().setOffline(false);
  await page.goto('/');
  await expect(page.locator('h1')).toHaveText('Workspaces');
});

test('Chromium reports no installability errors (in a regular, non-incognito profile)', async ({ baseURL, browserName }, testInfo) => {
  // Playwright's contexts are incognito, which is never installable: use a real profile.
  const profile = mkdtempSync(join(tmpdir(), 'codepod-pwa-'));
  const context = await chromium.launchPersistentContext(profile, {
    ...testInfo.project.use.launchOptions,
    baseURL,
  });
  try {
    const page = await context.newPage();
    await signUp(page, 'pwa-installer');
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload();
    const cdp = await context.newCDPSession(page);
    await expect
      .poll(async () => (await cdp.send('Page.getInstallabilityErrors')).installabilityErrors, { timeout: 15_000 })
      .toEqual([]);
    const manifest = await cdp.send('Page.getAppManifest');
    expect(manifest.errors).toEqual([]);
  } finally {
    await context.close();
  }
  expect(browserName).toBe('chromium');
});
