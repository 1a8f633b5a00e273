// Figures (bench/run.sh plots): `plt.show()` in the sandbox → the figure drawn in the Plots
// pane. A script typed into the terminal notes the time (ms since the epoch, the machine's
// one clock) just before `plt.show()`, then exits; the page notes when each new figure's
// image has loaded. Prints p50/p99 and asserts no timing.
import { expect, test } from '@playwright/test';
import { createWorkspace, runInTerminal, signUp, terminalLines, terminalReady } from '../tests/helpers.js';

const FIGURES = 30;

const at = (samples, q) => {
  const sorted = samples.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
};

test('plt.show() to figure visible', async ({ page }) => {
  test.setTimeout(600_000);
  await signUp(page, `plots_${Date.now()}`);
  await createWorkspace(page, 'plots');
  await terminalReady(page);
  // The time each figure's image finished loading, by its alt text ("Figure N").
  await page.evaluate(() => {
    window.figureLoaded = {};
    document.addEventListener(
      'load',
      (event) => {
        if (event.target.matches?.('.plots-view img')) window.figureLoaded[event.target.alt] = Date.now();
      },
      true,
    );
  });
  const samples = [];
  for (let n = 1; n <= FIGURES; n += 1) {
    await runInTerminal(
      page,
      `python3 -c 'import time, matplotlib.pyplot as plt; plt.plot(range(${n + 2})); t = time.time(); plt.show(); print("SHOWN", ${n}, int(t * 1000))'`,
    );
    await expect.poll(() => page.evaluate((n) => window.figureLoaded[`Figure ${n}`] ?? null, n), { timeout: 60_000 }).not.toBeNull();
    let shown = null;
    await expect
      .poll(async () => {
        const line = (await terminalLines(page)).find((row) => row.startsWith(`SHOWN ${n} `));
        shown = line ? Number(line.split(' ')[2]) : null;
        return shown;
      })
      .not.toBeNull();
    const loaded = await page.evaluate((n) => window.figureLoaded[`Figure ${n}`], n);
    samples.push(loaded - shown);
    await runInTerminal(page, 'clear');
  }
  console.log(`plt.show() → figure loaded in the Plots pane, ${FIGURES} figures: p50 ${at(samples, 0.5)} ms, p99 ${at(samples, 0.99)} ms`);
});
