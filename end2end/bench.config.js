// The browser benchmark (bench/run.sh browser): same server and Chromium as the tests.
import base from './playwright.config.js';

export default { ...base, testDir: './bench', reporter: [['list']] };
