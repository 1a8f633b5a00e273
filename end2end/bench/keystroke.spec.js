// Keypress → glyph on screen in Chromium: from the keydown event to the moment xterm.js has
// drawn the echoed character into its rows (the DOM renderer updates them inside an
// animation frame, so that frame paints it). Run by `bench/run.sh browser`; prints p50/p99
// and asserts no timing.
import { expect, test } from '@playwright/test';

const KEYSTROKES = 200;

test('keypress to glyph', async ({ page, baseURL }) => {
  test.setTimeout(300_000);
  const headers = { origin: baseURL };
  const request = page.context().request;
  const name = `glyph_${Date.now()}`;
  await request.post('/api/users/register', {
    headers,
    data: { username: name, email: `${name}@example.org`, password: 'correct horse battery' },
  });
  const { id } = await (await request.post('/api/workspaces/create', { headers, data: { name: 'glyph' } })).json();
  await page.goto(`/w/${id}`);
  const rows = page.locator('.xterm-host.active .xterm-rows');
  await expect(rows).toContainText('$', { timeout: 30_000 });
  await page.locator('.xterm-host.active').click();

  await page.evaluate(() => {
    const rows = document.querySelector('.xterm-host.active .xterm-rows');
    window.__glyph = { start: null, samples: [] };
    document.addEventListener('keydown', (event) => {
      if (event.key === 'x') window.__glyph.start = performance.now();
    }, true);
    new MutationObserver(() => {
      const state = window.__glyph;
      if (state.start !== null && rows.textContent.includes('x')) {
        state.samples.push(performance.now() - state.start);
        state.start = null;
      }
    }).observe(rows, { childList: true, subtree: true, characterData: true });
  });

  for (let i = 0; i < KEYSTROKES; i++) {
    await page.keyboard.press('x');
    await page.waitForFunction((n) => window.__glyph.samples.length > n, i);
    await page.keyboard.press('Backspace');
    await expect.poll(() => page.evaluate(() => document.querySelector('.xterm-host.active .xterm-rows').textContent.includes('x'))).toBe(false);
  }
  const samples = await page.evaluate(() => window.__glyph.samples.slice().sort((a, b) => a - b));
  const at = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)];
  console.log(`keypress → glyph in Chromium: p50 ${at(0.5).toFixed(2)} ms   p99 ${at(0.99).toFixed(2)} ms   (${samples.length} samples)`);
});
