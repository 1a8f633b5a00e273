// Autosave's cost and latency in Chromium (localhost): a user types a small program for a
// minute as people do — bursts of keys at ~8 per second with short and long pauses between
// them — with autosave on. Counts the saves it sends (`/api/files/write`): per second over
// the minute and in the busiest second, and the time from the last key of a burst to its
// save being answered. Run by `bench/run.sh browser`; prints numbers, asserts no timing.
import { expect, test } from '@playwright/test';

const SECONDS = Number(process.env.CODEPOD_BENCH_TYPING_SECONDS ?? 60);

test('autosave while typing', async ({ page, baseURL }) => {
  test.setTimeout(SECONDS * 1000 + 120_000);
  const headers = { origin: baseURL };
  const request = page.context().request;
  const name = `typist_${Date.now()}`;
  await request.post('/api/users/register', {
    headers,
    data: { username: name, email: `${name}@example.org`, password: 'correct horse battery' },
  });
  const { id } = await (await request.post('/api/workspaces/create', { headers, data: { name: 'typing' } })).json();
  await page.goto(`/w/${id}`);
  await expect(page.locator('.ide')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('.tree-row[data-path="main.py"] .tree-item').click();
  await expect(page.locator('.monaco-host[data-ready=true] .monaco-editor')).toBeVisible({ timeout: 60_000 });
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press('ControlOrMeta+End');

  const saves = [];
  const answered = [];
  page.on('request', (req) => {
    if (req.url().endsWith('/api/files/write')) saves.push(Date.now());
  });
  page.on('response', (res) => {
    if (res.url().endsWith('/api/files/write')) answered.push(Date.now());
  });

  // A deterministic "random" typist: bursts of 5–40 keys, pauses of 0.2–3 s.
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const line = 'total = sum(value * weight for value, weight in zip(values, weights))\n';
  const bursts = [];
  const started = Date.now();
  let at = 0;
  while (Date.now() - started < SECONDS * 1000) {
    const keys = 5 + Math.floor(random() * 35);
    for (let k = 0; k < keys; k++) {
      await page.keyboard.type(line[at % line.length], { delay: 0 });
      at += 1;
      await page.waitForTimeout(125);
    }
    bursts.push(Date.now());
    await page.waitForTimeout(200 + Math.floor(random() * 2800));
  }
  const typed = (Date.now() - started) / 1000;
  await expect(page.locator('#save-state')).toHaveText('all changes saved', { timeout: 30_000 });

  const perSecond = saves.length / typed;
  let busiest = 0;
  for (const t of saves) busiest = Math.max(busiest, saves.filter((u) => u >= t && u < t + 1000).length);
  // Burst end → the first save answered after it (a burst whose pause was too short for a
  // save is saved with a later one: its wait is counted until then).
  const waits = bursts.map((end) => answered.find((t) => t >= end)).filter(Boolean).map((t, i) => t - bursts[i]);
  const sorted = waits.slice().sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  console.log(
    `autosave while typing ${typed.toFixed(0)} s (${at} keys in ${bursts.length} bursts): ` +
      `${saves.length} saves, ${perSecond.toFixed(2)} per second, at most ${busiest} in any one second`,
  );
  console.log(`burst end → saved: p50 ${q(0.5)} ms   p95 ${q(0.95)} ms   (${waits.length} bursts)`);
});
