// Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser.
// scripts/test.sh builds the server and the site, then runs this with CODEPOD_BIN and
// CODEPOD_SITE_DIR set. Screenshots go to end2end/artifacts/.
import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const port = Number(process.env.CODEPOD_E2E_PORT ?? 3111);
// The package index's upstream: the test wheels setup downloaded, served on loopback.
const indexPort = port + 1;
const bin = process.env.CODEPOD_BIN ?? '../target/debug/codepod';
const dataDir = mkdtempSync(join(tmpdir(), 'codepod-e2e-'));

export default defineConfig({
  testDir: './tests',
  outputDir: './artifacts/results',
  timeout: 60_000,
  retries: 0,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  webServer: [
    {
      command: `python3 ../scripts/wheel-index.py ${process.env.CODEPOD_TEST_WHEELS ?? '/opt/codepod/wheels'} ${indexPort}`,
      url: `http://127.0.0.1:${indexPort}/simple/idna/`,
      reuseExistingServer: false,
      timeout: 20_000,
    },
    {
      command: bin,
      url: `http://127.0.0.1:${port}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
      env: {
        CODEPOD_LISTEN: `127.0.0.1:${port}`,
        CODEPOD_METRICS_LISTEN: '127.0.0.1:0',
        CODEPOD_DATA_DIR: dataDir,
        CODEPOD_SITE_DIR: process.env.CODEPOD_SITE_DIR ?? '../target/site',
        CODEPOD_LOG: 'warn',
        // Shorter than the 5-minute warning, so the idle countdown's "Keep alive" shows.
        CODEPOD_IDLE_TIMEOUT: '4m',
        // Every test signs up from this one address and leaves its sandbox running: the
        // sign-up throttle and the machine-sized sandbox limit are for real users.
        CODEPOD_SIGNUPS_PER_IP: '1000',
        CODEPOD_MAX_SANDBOXES: '200',
        // The 20,000-file burst of nothing-lost.spec.js, and past it the limit.
        CODEPOD_MAX_FILES_PER_WORKSPACE: '25000',
        CODEPOD_PACKAGE_INDEX: `http://127.0.0.1:${indexPort}/simple/`,
      },
    },
  ],
});
