/**
 * `gemma3n-trickle demo` stops cleanly whatever phase a signal lands in: after SIGTERM the process
 * exits, no ffmpeg it started is left running (looked up by its temp-dir path in `ps`, so a child
 * re-parented to init still counts) and its temp directory is gone. The model backend is the OpenAI
 * one pointed at a closed loopback port, so the model is deterministically "not ready" (retrying).
 * Also pins the not-ready lines: a permanent failure is never called "retrying".
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTestStream } from '../../src/media/test-source.js';
import { describeNotReady } from '../../src/cli/demo-run.js';
import { sourceCliArgs } from '../helpers/cli.js';

/** A loopback port with nothing listening (bound, read, released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Processes whose command line mentions `needle` (the child's private TMPDIR). */
function processesMentioning(needle: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
}

async function runDemoUntil(extraArgs: string[], ready: (stderr: string, tmp: string) => boolean) {
  const tmp = await mkdtemp(join(tmpdir(), 'demo-shutdown-tmp-'));
  const cache = await mkdtemp(join(tmpdir(), 'demo-shutdown-cache-'));
  const port = await closedPort();
  const child = spawn(
    process.execPath,
    sourceCliArgs('demo', '--backend', 'openai', '--base-url', `http://127.0.0.1:${port}/v1`, ...extraArgs),
    { env: { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: cache, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Wait for the phase under test (polling the child's own output, bounded by the test timeout).
  while (!ready(stderr, tmp)) {
    if (child.exitCode !== null) assert.fail(`demo exited early: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  const deadline = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000).unref());
  const code = await Promise.race([exited, deadline]);
  const left = processesMentioning(tmp);
  if (code === 'hung') child.kill('SIGKILL');
  for (const line of left) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
  // tsx-* is tsx's own compile cache (the test runs the CLI from source), not the demo's.
  const tmpEntries = (await readdir(tmp)).filter((n) => !n.startsWith('tsx-'));
  await rm(tmp, { recursive: true, force: true });
  await rm(cache, { recursive: true, force: true });
  return { code, stderr, left, tmpEntries };
}

describe('demo shutdown', () => {
  it('SIGTERM while the model is not ready: exits, no ffmpeg left, temp dir empty', { timeout: 90_000 }, async () => {
    const input = await generateTestStream({ durationS: 4, fps: 10, width: 160, height: 90, gopS: 2, audio: 'aac' });
    const r = await runDemoUntil(['--input', input], (stderr) => /model backend loading/.test(stderr));
    assert.notEqual(r.code, 'hung', `demo did not exit after SIGTERM:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.left, [], 'processes left running');
    assert.deepEqual(r.tmpEntries, [], 'temp entries left');
    assert.match(r.stderr, /--- demo summary ---|SIGTERM: stopping/);
  });

  it('SIGTERM while encoding the test pattern: the encoder is killed and its temp dir removed', { timeout: 90_000 }, async () => {
    const r = await runDemoUntil([], (stderr, tmp) => /encoding a 20 s test pattern/.test(stderr) && processesMentioning(tmp).some((l) => l.includes('ffmpeg')));
    assert.notEqual(r.code, 'hung', `demo did not exit after SIGTERM:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.left, [], 'processes left running');
    assert.deepEqual(r.tmpEntries, [], 'temp entries left');
  });
});

describe('demo not-ready lines', () => {
  it('a permanent failure says it will not recover, never "retrying"', () => {
    const line = describeNotReady({ state: 'error', message: 'no such directory /m', permanent: true, code: 'model_load_failed' } as never);
    assert.match(line, /will not recover: no such directory \/m \[model_load_failed\]/);
    assert.doesNotMatch(line, /retrying/);
  });
  it('a transient failure says it is still retrying', () => {
    assert.match(describeNotReady({ state: 'error', message: 'engine unreachable', permanent: false } as never), /\(still retrying\)/);
  });
  it('a status without the permanent flag claims nothing about retrying', () => {
    assert.doesNotMatch(describeNotReady({ state: 'error', message: 'boom' }), /retrying|recover/);
  });
});
