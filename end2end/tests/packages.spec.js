// Packages: `pip install` in the terminal works by default (through the server's package
// index, here pointed at a local index of the test wheels), the status bar's Packages panel
// lists what is kept with the workspace, and "Remove all" removes it.
import { expect, test } from '@playwright/test';
import { artifacts, createWorkspace, expectTerminalLine, runInTerminal, signUp, terminalReady } from './helpers.js';

test('installed packages are listed with their size and can be removed', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await signUp(page, 'packager');
  await createWorkspace(page, 'packages');
  await terminalReady(page);
  await runInTerminal(page, 'pip install --quiet idna markupsafe && echo "INSTALLED""-OK"');
  await expectTerminalLine(page, 'INSTALLED-OK', 60_000);

  await page.click('#packages');
  const panel = page.locator('.packages-panel');
  await expect(panel).toBeVisible();
  await expect(panel.locator('.packages-list li')).toHaveText(['idna==3.10', 'MarkupSafe==3.0.2']);
  await expect(panel).toContainText(/2 packages · \d+ KiB of 256 MiB kept/);
  await page.screenshot({ path: `${artifacts}packages.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${artifacts}packages-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });

  await page.click('#packages-clear');
  await expect(panel).toContainText('Remove all 2 packages?');
  await page.click('#packages-clear-confirm');
  await expect(panel).toContainText('No packages installed.');
  await expect(panel.locator('.packages-list li')).toHaveCount(0);

  // Gone from the sandbox too.
  await runInTerminal(page, 'python3 -c "import idna" 2>/dev/null || echo "IMPORT""-GONE"');
  await expectTerminalLine(page, 'IMPORT-GONE');
  await page.click('.packages-close');
  await expect(panel).toBeHidden();
});
