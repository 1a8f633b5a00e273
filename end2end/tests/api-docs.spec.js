// The API docs page (/docs): Swagger UI from the vendor bundles reads the generated OpenAPI
// document and lists every operation, under the site's Content-Security-Policy (no CDN, no
// inline script), and "Try it out" calls the live API with the page's session.
import { expect, test } from '@playwright/test';
import { artifacts, signUp } from './helpers.js';

test('the API docs list every operation and try one out, without a CSP violation', async ({ page, baseURL }) => {
  const violations = [];
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  // Every file the page asks for exists (its icon was a 404 once).
  const missing = [];
  page.on('response', (response) => {
    if (response.status() === 404) missing.push(response.url());
  });
  // Nothing comes from anywhere but this server.
  const outside = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(baseURL) && !url.startsWith('data:') && !url.startsWith('blob:')) outside.push(url);
  });
  await signUp(page, 'api_reader');
  const document = await (await page.request.get('/api/openapi.json')).json();
  expect(document.openapi).toBe('3.1.0');
  const operations = Object.values(document.paths).flatMap((item) => Object.keys(item)).length;

  await page.goto('/docs');
  await expect(page.locator('.swagger-ui .info .title')).toContainText('Codepod API');
  await expect(page.locator('.opblock')).toHaveCount(operations);
  await page.screenshot({ path: `${artifacts}api-docs.png` });

  // Try it out: the signed-in user, through the page's own cookie.
  const me = page.locator('.opblock', { hasText: '/api/users/me' });
  await me.locator('.opblock-summary').click();
  await me.getByRole('button', { name: 'Try it out' }).click();
  await me.getByRole('button', { name: 'Execute' }).click();
  await expect(me.locator('.responses-wrapper .live-responses-table')).toContainText('api_reader');
  await me.locator('.live-responses-table').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${artifacts}api-docs-try.png` });

  expect(violations).toEqual([]);
  expect(outside).toEqual([]);
  expect(missing).toEqual([]);
});
