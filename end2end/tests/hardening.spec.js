// The web side as an attacker meets it, in Chromium: no other site can frame Codepod, the
// IDE (Monaco, its worker, xterm.js, the service worker) runs under the Content-Security-
// Policy without a single violation, and a terminal open in another browser closes — and
// says why — the moment its session is signed out from elsewhere.
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, openFile, replaceText, signUp, terminalReady } from './helpers.js';

test('the IDE runs under the CSP, and no other site can frame any page', async ({ page, context, baseURL }) => {
  const violations = [];
  const listen = (target) =>
    target.on('console', (message) => {
      if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
  listen(page);
  await signUp(page, 'csp_user');
  const id = await createWorkspace(page, 'csp');
  await terminalReady(page);
  await openFile(page, 'main.py');
  await replaceText(page, 'import os\nprint(os.getcwd())\n');
  // Monaco's suggestions and links run in its worker.
  await page.keyboard.type('os.');
  await page.waitForTimeout(1_000);
  await page.reload();
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await terminalReady(page);
  expect(violations).toEqual([]);

  // An attacker's page frames the sign-in page and the IDE: the browser refuses both.
  const attacker = await context.newPage();
  const blocked = [];
  attacker.on('console', (message) => blocked.push(message.text()));
  await attacker.setContent(
    `<iframe id="signin" src="${baseURL}/signin"></iframe><iframe id="ide" src="${baseURL}/w/${id}"></iframe>`,
  );
  await attacker.waitForTimeout(2_000);
  await expect(attacker.frameLocator('#signin').locator('form')).toHaveCount(0);
  await expect(attacker.frameLocator('#ide').locator('.ide')).toHaveCount(0);
  expect(blocked.join('\n')).toMatch(/frame-ancestors|X-Frame-Options/);
});

test('signing out everywhere else closes the other browser\'s terminal, which says so', async ({ page, browser }) => {
  await signUp(page, 'two_browsers');
  const id = await createWorkspace(page, 'shared');
  await terminalReady(page);

  // The same user in another browser, on the account page.
  const other = await browser.newContext();
  const elsewhere = await other.newPage();
  await elsewhere.goto('/signin');
  await elsewhere.fill('input[name=login]', 'two_browsers');
  await elsewhere.fill('input[name=password]', 'correct horse battery');
  await elsewhere.click('button[type=submit]');
  await expect(elsewhere).toHaveURL(/\/$/);
  await elsewhere.goto('/account');
  // Clicked until it answers (a click before the page has hydrated does nothing).
  await expect(async () => {
    await elsewhere.click('#sign-out-others');
    await expect(elsewhere.locator('.card:has(#sign-out-others) .form-ok')).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 20_000 });

  await expect(page.locator('.link-state')).toHaveText('signed out — sign in again to go on', { timeout: 10_000 });
  await expect(page.locator('.sign-in-again')).toBeVisible();
  await expect(page.locator('.sign-in-again')).toHaveAttribute('href', `/signin?next=%2Fw%2F${id}`);
  await page.screenshot({ path: `${artifacts}ide-signed-out.png` });
  await other.close();
});
