#!/usr/bin/env node
// Runs every test/**/*.test.ts through node's own test runner. Node 20's --test does not expand globs,
// so the file list is built here. Extra arguments (file paths or a folder such as test/trickle) narrow
// the run.
//
// The TypeScript is transpiled once, up front, by esbuild (types stripped, as tsx does, in well under
// a second for the whole tree) into a per-run folder inside the checkout (.test-build/, so packages
// resolve from node_modules as before); each test file's process then loads plain JavaScript instead of
// paying tsx's loader start-up and per-module transform. The folder mirrors the repository, with
// README.md, docs/, dist/ and package.json linked in for the tests that read them, and is removed at
// the end. Stack traces map back to the .ts sources (inline source maps).
//
// Every test file shares one media cache dir, kept between runs (see below).
//
// A full run (no arguments) also type-checks the tests, the page and the sources (tsx strips types
// without checking them) alongside the tests, and fails when either fails; TYPECHECK=0 skips that.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Every file under `path` (or `path` itself) whose name ends with `suffix`, in name order. */
function collect(path, suffix, out = []) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), suffix, out);
  } else if (path.endsWith(suffix) && !path.endsWith('.d.ts')) {
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

// Files run at once. Many tests wait on sockets, children, real-time media or a browser rather than
// on the CPU, so more than the 2 cores' worth keeps both busy: on the 2-core machine 6 measured 75 s,
// against 85 s for 4, 79 s for 8 and 109 s for 3.
const CONCURRENCY = Number(process.env.TEST_CONCURRENCY ?? 6);

const root = fileURLToPath(new URL('..', import.meta.url));
const narrowed = process.argv.slice(2).length > 0;
const roots = narrowed ? process.argv.slice(2) : ['test'];
// The files that take longest on the wall clock (real-time media, a 30 s server outage, a browser)
// start first, so the run does not end waiting on one that started last (longest-first scheduling);
// the rest follow in name order. Measured in a full run on the 2-core machine (walls under load, in
// this order: 35 s down to 4 s; a batch counts as one); a file missing from the list only starts later.
const LONGEST_FIRST = [
  'test/pipeline/data-server-restart.test.ts',
  // a batch (see SHARED_PROCESSES) is placed by name; the loopback ones are ~15 s of files one after
  // another, with little CPU
  'loopback-pipeline',
  'loopback-server',
  'test/cli/trickle-cli.test.ts',
  'test/media/sampler.test.ts',
  'test/media/relay.test.ts',
  'test/server/outputs.test.ts',
  'test/pipeline/session-timeline.test.ts',
  'test/cli/watch.test.ts',
  'test/cli/demo.test.ts',
  'test/cli/serve.test.ts',
  'test/pipeline/session-connections.test.ts',
  'test/pipeline/session.test.ts',
  'test/pipeline/soak.test.ts',
  'test/pipeline/data-outage.test.ts',
  'test/server/many-streams.test.ts',
  'test/model/backend-contract.test.ts',
  'sessions-a',
  'sessions-b',
  'loopback-trickle',
  'test/media/decoder.test.ts',
  'test/cli/log.test.ts',
  'test/model/transformers.test.ts',
];
const key = (f) => relative(root, resolve(f)).replaceAll('\\', '/');
const rank = (f) => {
  const i = LONGEST_FIRST.indexOf(batchOf.get(key(f)) ?? key(f));
  return i < 0 ? LONGEST_FIRST.length : i;
};
// Files whose tests spend well under a second or two each, none of it in child processes, run one
// after another in a shared process (one entry of the run) rather than one process each: a process
// of their own would spend most of its CPU starting node and loading the same modules (~0.5 CPU-s
// apiece; the run is CPU-bound on 2 cores). They keep their own names in the report and a failure
// points at its own file (source maps). Batches: pure in-memory units, files that start servers on
// loopback, and whole sessions (each closes what it opens; none counts the process's file descriptors
// or children, sets process-wide state or spawns a CLI; files that do keep a process of their own).
const SHARED_PROCESSES = {
  'in-memory-units': [
    'test/config/content-params.test.ts',
    'test/config/params.test.ts',
    'test/config/runtime.test.ts',
    'test/error-codes.test.ts',
    'test/media/audio-activity.test.ts',
    'test/media/jpeg.test.ts',
    'test/media/signature.test.ts',
    'test/model/fair-scheduler.test.ts',
    'test/model/measure.test.ts',
    'test/model/sampling.test.ts',
    'test/pipeline/buffers.test.ts',
    'test/pipeline/control.test.ts',
    'test/pipeline/cycle.test.ts',
    'test/pipeline/gating.test.ts',
    'test/pipeline/item-queue.test.ts',
    'test/pipeline/params-store.test.ts',
    'test/pipeline/records.test.ts',
    'test/pipeline/scheduler.test.ts',
    'test/pipeline/timing.test.ts',
    'test/util/json-schema.test.ts',
  ],
  // The loopback batches are split to about 15 s of wall each (timers, sockets), so none ends the run.
  'loopback-pipeline': [
    'test/pipeline/alerts.test.ts',
    'test/pipeline/content-loop.test.ts',
    'test/pipeline/data-channel.test.ts',
    'test/pipeline/data-writer.test.ts',
    'test/pipeline/events.test.ts',
    'test/pipeline/loop.test.ts',
    'test/pipeline/partials.test.ts',
    'test/pipeline/structured.test.ts',
  ],
  'loopback-server': [
    'test/model/config.test.ts',
    'test/model/openai.test.ts',
    'test/server/channel-url-security.test.ts',
    'test/server/control-api.test.ts',
    'test/server/register.test.ts',
    'test/server/request-limits.test.ts',
    'test/server/stream-id.test.ts',
    'test/server/streams.test.ts',
  ],
  // Whole sessions on loopback with real ffmpeg decoding: the children are the code under test's, and
  // each test closes its session (and so its decoders) before the next starts.
  'sessions-a': [
    'test/pipeline/session-content.test.ts',
    'test/pipeline/session-lifecycle.test.ts',
    'test/pipeline/session-restart.test.ts',
  ],
  'sessions-b': [
    'test/pipeline/content-aware.test.ts',
    'test/pipeline/input-end-drain.test.ts',
    'test/server/readme-examples.test.ts',
    'test/server/stop-mid-cycle.test.ts',
  ],
  'loopback-trickle': [
    'test/trickle/clients.test.ts',
    'test/trickle/interop.test.ts',
    'test/trickle/server-limits.test.ts',
    'test/trickle/server.test.ts',
    'test/trickle/tls.test.ts',
    'test/viewer/server.test.ts',
  ],
};
const batchOf = new Map(Object.entries(SHARED_PROCESSES).flatMap(([batch, list]) => list.map((f) => [f, batch])));
const files = roots.flatMap((root) => collect(root, '.test.ts')).sort((a, b) => rank(a) - rank(b));
if (files.length === 0) {
  process.stderr.write('no test files found\n');
  process.exit(1);
}

const typecheck =
  !narrowed && process.env.TYPECHECK !== '0'
    ? (async () => {
        // TypeScript 7 (the native compiler: a few seconds for the whole tree, where 5.x took ~25 CPU-s)
        // exports no bin path, so the launcher is found from its package.json.
        const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
        const started = Date.now();
        for (const project of ['tsconfig.test.json', 'viewer/page/tsconfig.json']) {
          // Incremental: a re-run checks only what changed since the last one (the state is kept under
          // node_modules/.cache, so a fresh clone checks everything once).
          const info = join(root, 'node_modules', '.cache', 'gemma3n-trickle', `${project.replaceAll('/', '_')}.tsbuildinfo`);
          const r = await run(process.execPath, [tsc, '-p', project, '--noEmit', '--incremental', '--tsBuildInfoFile', info], { stdio: ['ignore', 'pipe', 'pipe'] });
          if (r.code !== 0) return { ok: false, text: `type check of ${project} failed:\n${r.out}` };
        }
        return { ok: true, text: `type check passed (sources, tests, benches, scripts, page) in ${((Date.now() - started) / 1000).toFixed(1)} s` };
      })()
    : Promise.resolve(undefined);

// One media cache for every test file: a stream one file encoded is reused by the others (and the
// tiny model and the demo's encoded pattern are written once), all written atomically by their
// generators. What is in it is a function of the generators' code and of ffmpeg, so it is kept between
// runs (like the type checker's state, under node_modules/.cache) in a folder named by a hash of both:
// a change to either starts a new folder, and one unused for an hour is removed. A re-run then decodes
// streams instead of encoding them first. TEST_MEDIA_CACHE=0 uses a fresh folder for this run only.
function mediaCacheKey() {
  const h = createHash('sha256');
  // The stream generators, and the demo's (its encoded pattern is cached too; the tiny model names its
  // own generator in a fingerprint file and rewrites itself when that changes).
  for (const f of ['src/media/test-source.ts', 'src/media/test-scenes.ts', 'src/cli/demo-run.ts']) h.update(f).update(readFileSync(join(root, f)));
  const ffmpeg = spawnSync('ffmpeg', ['-version'], { encoding: 'utf8' });
  h.update(ffmpeg.stdout ?? '');
  return h.digest('hex').slice(0, 16);
}
const keepMedia = process.env.TEST_MEDIA_CACHE !== '0';
let mediaDir;
if (keepMedia) {
  const cacheRoot = join(root, 'node_modules', '.cache', 'gemma3n-trickle', 'test-media');
  const cacheKey = mediaCacheKey();
  mkdirSync(cacheRoot, { recursive: true });
  mediaDir = join(cacheRoot, cacheKey);
  mkdirSync(mediaDir, { recursive: true });
  const now = new Date();
  utimesSync(mediaDir, now, now);
  // Another checkout sharing node_modules (a worktree) may be running on another folder right now: only
  // folders no run has started on for an hour go.
  for (const name of readdirSync(cacheRoot)) {
    const dir = join(cacheRoot, name);
    if (name !== cacheKey && now.getTime() - statSync(dir).mtimeMs > 3600_000) rmSync(dir, { recursive: true, force: true });
  }
} else {
  mediaDir = mkdtempSync(join(tmpdir(), 'gemma3n-trickle-test-media-'));
}
mkdirSync(join(root, '.test-build'), { recursive: true });
const out = mkdtempSync(join(root, '.test-build', 'run-'));
const cleanup = () => {
  if (!keepMedia) rmSync(mediaDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });
}
let tests;
try {
  const sources = ['src', 'test', 'scripts'].flatMap((dir) => collect(join(root, dir), '.ts'));
  await build({
    entryPoints: sources,
    outdir: out,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
    tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
  });
  // `import x from './y.js'` already names the emitted files; the .ts entry points map to .js.
  for (const name of ['README.md', 'docs', 'dist', 'package.json']) symlinkSync(join(root, name), join(out, name));
  const builtOf = (f) => join(out, relative(root, resolve(f))).replace(/\.ts$/, '.js');
  // `node --test` sorts the paths it is given, so the start order is set by names: each entry is a
  // one-line-per-file module under test/.order/ whose name begins with its place in the schedule.
  // (Without this the 35 s data-server test started a third of the way in and ended the run.)
  const orderDir = join(out, 'test', '.order');
  mkdirSync(orderDir);
  const entry = (place, name, imports) => {
    const path = join(orderDir, `${String(place).padStart(3, '0')}-${name}.test.js`);
    writeFileSync(path, imports.map((f) => `import ${JSON.stringify(`./${relative(orderDir, builtOf(f)).replaceAll('\\', '/')}`)};\n`).join(''));
    return path;
  };
  // Entry name → the files it imports, in schedule order (a Map keeps first insertion): a batch (see
  // SHARED_PROCESSES) takes the place of its first file.
  const entries = new Map();
  for (const f of files) {
    const name = batchOf.get(key(f)) ?? key(f).replace(/^test\//, '').replace(/\.test\.ts$/, '').replaceAll('/', '_');
    entries.set(name, [...(entries.get(name) ?? []), f]);
  }
  const built = [...entries].map(([name, imports], i) => entry(i, name, imports));
  tests = await run(
    process.execPath,
    ['--enable-source-maps', '--test', '--test-reporter=spec', `--test-concurrency=${CONCURRENCY}`, ...built],
    { stdio: 'inherit', env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', GEMMA3N_TEST_MEDIA_DIR: mediaDir } },
  );
} finally {
  cleanup();
}
const tc = await typecheck;
if (tc) process.stdout.write(`\n${tc.ok ? 'ℹ' : '✖'} ${tc.text}\n`);
process.exit(tests.code !== 0 ? tests.code : tc && !tc.ok ? 1 : 0);
