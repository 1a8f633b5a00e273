// Writes `.br` and `.gz` twins of every .js, .wasm, .css and .ttf file in a directory, so the
// server can send them compressed without compressing on each request.
//
// Usage: node precompress.mjs <dir>     (or import { precompress } from a build script)
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** Compresses the assets in `dir`; returns the total raw and brotli sizes in bytes. */
export async function precompress(dir) {
  let raw = 0;
  let brotli = 0;
  for (const file of await readdir(dir)) {
    if (!/\.(js|wasm|css|ttf)$/.test(file)) continue;
    const bytes = await readFile(join(dir, file));
    const br = brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    });
    await writeFile(join(dir, file + '.br'), br);
    await writeFile(join(dir, file + '.gz'), gzipSync(bytes, { level: 9 }));
    raw += bytes.length;
    brotli += br.length;
  }
  return { raw, brotli };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await precompress(process.argv[2]);
}
