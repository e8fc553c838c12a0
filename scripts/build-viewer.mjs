#!/usr/bin/env node
// Builds the live viewer's browser side (viewer/page/) into dist/viewer-page/: one esbuild bundle of
// the page code with mux.js inside it (no CDN, works offline), plus the HTML and CSS copied as they
// are, each file replaced atomically. Runs from `prepare` (so `npm ci` / `npm install` leave a ready viewer) and from the viewer test.
// `buildViewer()` is exported for callers in-process; run directly it builds and prints one line.
import { build } from 'esbuild';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Writes viewer.js, index.html and viewer.css into `outdir` (default dist/viewer-page). */
export async function buildViewer(outdir = join(root, 'dist', 'viewer-page')) {
  await mkdir(outdir, { recursive: true });
  const result = await build({
    write: false,
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
    banner: { js: '/*! gemma3n-trickle viewer. Includes mux.js, Copyright (c) Brightcove, Apache-2.0: https://github.com/videojs/mux.js */' },
  });
  const files = [[join(outdir, 'viewer.js'), result.outputFiles[0].contents]];
  for (const f of ['index.html', 'viewer.css']) files.push([join(outdir, f), await readFile(join(root, 'viewer', 'page', f))]);
  // Each file is replaced whole (write aside, then rename), so a viewer starting while another build
  // runs (tests run two files at once) never reads half a file.
  for (const [path, bytes] of files) {
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }
  return outdir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildViewer(process.argv[2]);
  process.stderr.write(`viewer page built into ${out}\n`);
}
