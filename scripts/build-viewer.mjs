#!/usr/bin/env node
// Builds the live viewer's browser side (viewer/page/) into dist/viewer-page/: one esbuild bundle of
// the page code with mux.js inside it (no CDN, works offline), plus the HTML and CSS copied as they
// are. Runs from `prepare` (so `npm ci` / `npm install` leave a ready viewer) and from the viewer test.
// `buildViewer()` is exported for callers in-process; run directly it builds and prints one line.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Writes viewer.js, index.html and viewer.css into `outdir` (default dist/viewer-page). */
export async function buildViewer(outdir = join(root, 'dist', 'viewer-page')) {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: [join(root, 'viewer', 'page', 'main.ts')],
    outfile: join(outdir, 'viewer.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    logLevel: 'warning',
    // mux.js reads `global`/`process` shims only through its own small dependencies; none are needed.
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  for (const f of ['index.html', 'viewer.css']) await copyFile(join(root, 'viewer', 'page', f), join(outdir, f));
  return outdir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildViewer(process.argv[2]);
  process.stderr.write(`viewer page built into ${out}\n`);
}
