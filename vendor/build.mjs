// Bundles Monaco, xterm.js and the API docs page (Swagger UI) into content-hashed files, writes `manifest.json` (logical name →
// file name) for the server, and precompresses the bundles with brotli and gzip.
//
// Usage: node build.mjs <out-dir>
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { precompress } from '../scripts/precompress.mjs';

const here = new URL('.', import.meta.url).pathname;
const outDir = resolve(process.argv[2] ?? join(here, 'dist'));

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox115', 'safari16'],
  outdir: outDir,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.ttf': 'file' },
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
};

const results = await Promise.all([
  build({ ...common, entryPoints: { monaco: join(here, 'src/monaco.js') } }),
  build({ ...common, entryPoints: { 'editor-worker': join(here, 'src/editor-worker.js') } }),
  build({ ...common, entryPoints: { xterm: join(here, 'src/xterm.js') } }),
  // The API docs page only (/docs); not part of the app, not precached.
  build({ ...common, entryPoints: { 'api-docs': join(here, 'src/api-docs.js') } }),
]);

// manifest: { "monaco.js": "monaco-HASH.js", "monaco.css": "monaco-HASH.css", ... }
const manifest = {};
for (const result of results) {
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    const file = basename(output);
    // Entry points, their stylesheets and fonts (the codicons), which the service worker
    // precaches.
    if (!meta.entryPoint && !file.endsWith('.css') && !file.endsWith('.ttf')) continue;
    const logical = file.replace(/-[A-Z0-9]{8,}\./, '.');
    manifest[logical] = file;
  }
}
await writeFile(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

// The UI's icons: codicons' SVGs as CSS masks (`<span class="icon icon-NAME">`, drawn in the
// text colour), appended to the app's stylesheet by scripts/build.sh — no font, nothing in
// the wasm, and they render where an emoji or a missing glyph would not.
const ICONS = [
  'chevron-right', 'chevron-down', 'folder', 'folder-opened', 'file', 'file-code', 'python',
  'json', 'markdown', 'file-media', 'file-pdf', 'file-zip', 'file-binary', 'table', 'file-text',
  'terminal', 'new-file', 'new-folder', 'cloud-upload', 'desktop-download', 'edit', 'trash',
  'copy', 'play', 'ellipsis', 'close', 'debug-stop', 'three-bars', 'settings-gear', 'warning', 'collapse-all',
  'loading',
];
const iconDir = join(here, 'node_modules/@vscode/codicons/src/icons');
let iconCss =
  '/* Icons: codicons (@vscode/codicons, CC BY 4.0, https://github.com/microsoft/vscode-codicons). */\n' +
  '.icon { display: inline-block; flex: none; width: 16px; height: 16px; vertical-align: -3px; ' +
  'background: currentColor; -webkit-mask: var(--icon) center / 16px 16px no-repeat; ' +
  'mask: var(--icon) center / 16px 16px no-repeat; }\n';
for (const name of ICONS) {
  const svg = (await readFile(join(iconDir, `${name}.svg`), 'utf8')).trim().replace(/\s+/g, ' ');
  iconCss += `.icon-${name} { --icon: url("data:image/svg+xml,${encodeURIComponent(svg)}"); }\n`;
}
await writeFile(join(outDir, 'icons.css'), iconCss);

const { raw, brotli } = await precompress(outDir);
console.log(
  `vendor: ${Object.keys(manifest).length} bundles in ${outDir} (${(raw / 1024).toFixed(0)} KiB raw, ${(brotli / 1024).toFixed(0)} KiB brotli)`,
);
