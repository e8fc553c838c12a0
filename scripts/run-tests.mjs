#!/usr/bin/env node
// Runs every test/**/*.test.ts through node's own test runner with tsx as the TypeScript loader.
// Node 20's --test does not expand globs, so the file list is built here. Extra arguments
// (file paths or a folder such as test/trickle) narrow the run. Three files run at once: many tests
// wait on sockets, children or a browser, and 3 measured 137 s against 182 s for 2 on the 2-core machine.
//
// Every test file shares one media cache dir for the run (see below).
//
// A full run (no arguments) also type-checks the tests, the page and the sources (tsx strips types
// without checking them) alongside the tests, and fails when either fails; TYPECHECK=0 skips that.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

function run(cmd, args, opts) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, opts);
    let out = '';
    child.stdout?.on('data', (c) => (out += c));
    child.stderr?.on('data', (c) => (out += c));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), out }));
  });
}

const narrowed = process.argv.slice(2).length > 0;
const roots = narrowed ? process.argv.slice(2) : ['test'];
const files = roots.flatMap((root) => collect(root, []));
if (files.length === 0) {
  process.stderr.write('no test files found\n');
  process.exit(1);
}

const typecheck =
  !narrowed && process.env.TYPECHECK !== '0'
    ? (async () => {
        const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
        const started = Date.now();
        for (const project of ['tsconfig.test.json', 'viewer/page/tsconfig.json']) {
          const r = await run(process.execPath, [tsc, '-p', project, '--noEmit'], { stdio: ['ignore', 'pipe', 'pipe'] });
          if (r.code !== 0) return { ok: false, text: `type check of ${project} failed:\n${r.out}` };
        }
        return { ok: true, text: `type check passed (sources, tests, benches, scripts, page) in ${((Date.now() - started) / 1000).toFixed(1)} s` };
      })()
    : Promise.resolve(undefined);

// One media cache for every test file of the run: a stream one file encoded is reused by the others
// (src/media/test-source.ts writes into it atomically); this script made it, so it removes it.
const mediaDir = mkdtempSync(join(tmpdir(), 'gemma3n-trickle-test-media-'));
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    rmSync(mediaDir, { recursive: true, force: true });
    process.exit(130);
  });
}
let tests;
try {
  tests = await run(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=3', ...files],
    { stdio: 'inherit', env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', GEMMA3N_TEST_MEDIA_DIR: mediaDir } },
  );
} finally {
  rmSync(mediaDir, { recursive: true, force: true });
}
const tc = await typecheck;
if (tc) process.stdout.write(`\n${tc.ok ? 'ℹ' : '✖'} ${tc.text}\n`);
process.exit(tests.code !== 0 ? tests.code : tc && !tc.ok ? 1 : 0);
