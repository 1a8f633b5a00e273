// Plots: a script run with the Run button calls plt.show() twice; the figures appear in the
// Plots pane beside the terminal, the newest shown, the earlier one a click away, each with
// a "Save PNG" link.
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, openFile, replaceText, signUp, terminalReady } from './helpers.js';

test('figures from plt.show() appear in the Plots pane and can be saved', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'plotter');
  await createWorkspace(page, 'plots');
  await terminalReady(page);
  await openFile(page, 'main.py');
  await replaceText(
    page,
    [
      'import matplotlib.pyplot as plt',
      '',
      'plt.plot([1, 4, 2, 8], label="first")',
      'plt.title("First figure")',
      'plt.legend()',
      'plt.show()',
      'plt.bar(["a", "b", "c"], [3, 5, 2])',
      'plt.title("Second figure")',
      'plt.show()',
      '',
    ].join('\n'),
  );
  const pane = page.locator('.plots-pane');
  await expect(pane).toBeHidden();
  await page.click('#run');
  await expect(pane).toBeVisible({ timeout: 60_000 });
  await expect(pane.locator('.plots-position')).toHaveText('Figure 2 of 2', { timeout: 30_000 });
  const image = pane.locator('.plots-view img');
  await expect(image).toHaveAttribute('alt', 'Figure 2');
  await expect.poll(() => image.evaluate((img) => img.naturalWidth)).toBe(640);
  await expect(pane.locator('.plots-save')).toHaveAttribute('download', 'figure-2.png');
  await page.screenshot({ path: `${artifacts}plots.png` });

  await pane.locator('.plots-previous').click();
  await expect(pane.locator('.plots-position')).toHaveText('Figure 1 of 2');
  await expect(image).toHaveAttribute('alt', 'Figure 1');
  const download = page.waitForEvent('download');
  await pane.locator('.plots-save').click();
  expect((await download).suggestedFilename()).toBe('figure-1.png');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${artifacts}plots-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });

  await pane.locator('.plots-close').click();
  await expect(pane).toBeHidden();
});
