/**
 * Smoke test of `gemma3n-trickle demo --tiny`: the whole product on one machine (embedded trickle
 * server, runner, real-time publisher of a generated test pattern with a tone, the generated tiny
 * random-weight model in-process) prints generation records on stdout, then the summary, and keeps
 * the encoded test pattern in its cache dir for the next run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModelReply } from '../../src/model/tiny-model.js';
import { testPattern } from '../../src/cli/demo-run.js';
import { demoCacheHome, sourceCliArgs } from '../helpers/cli.js';

describe('demo command', () => {
  it('prints generation records that saw both frames and audio, then a summary', { timeout: 180_000 }, async (t) => {
    const own = await mkdtemp(join(tmpdir(), 'demo-cache-'));
    t.after(() => rm(own, { recursive: true, force: true }));
    const cache = demoCacheHome(own);
    const child = spawn(
      process.execPath,
      // a small pattern (the one the watch test uses, so one encode serves both): what this pins does not
      // depend on the picture size, and 320x180 is a sixteenth of 720p's work
      sourceCliArgs('demo', '--tiny', '--pattern-size', '320x180', '--cycles', '2', '--every', '2', '--duration', '150'),
      { env: { ...process.env, XDG_CACHE_HOME: cache, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr.slice(-2000));
    const records = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; text?: string; stats?: { frame_count?: number; audio_duration_ms?: number } });
    const generations = records.filter((r) => r.type === 'generation');
    assert.ok(generations.length >= 2, `expected 2 generation records, got: ${stdout.slice(0, 2000)}\n${stderr.slice(-2000)}`);
    for (const g of generations) {
      assert.equal(g.text, tinyModelReply('both'));
      assert.ok((g.stats?.frame_count ?? 0) > 0);
      assert.ok((g.stats?.audio_duration_ms ?? 0) > 0);
    }
    assert.match(stdout, /--- demo summary ---/);
    assert.match(stdout, /cycles: \d+ generation/);
    // The encoded pattern is kept for the next run (beside the tiny model), so only the first run waits.
    const cached = (await readdir(join(cache, 'gemma3n-trickle'))).filter((f) => f.startsWith('test-pattern-') && f.endsWith('.ts'));
    assert.equal(cached.length, 1, `cache holds: ${cached.join(', ')}`);
  });
});

describe('demo --pattern-size', () => {
  it('defaults to 720p at a live ingest\'s 3 Mbit/s and scales the bitrate with the area', () => {
    assert.deepEqual([testPattern().width, testPattern().height, testPattern().kbps], [1280, 720, 3000]);
    assert.equal(testPattern('640x360').kbps, 750);
    assert.equal(testPattern('64x64').kbps, 200, 'a floor keeps a tiny picture watchable');
  });
  it('refuses a size that is not WIDTHxHEIGHT with even sides from 64 to 3840, saying so', () => {
    for (const bad of ['720p', '1281x720', '32x32', '4000x2000', '640x360x2', '']) {
      assert.throws(() => testPattern(bad), /--pattern-size must be WIDTHxHEIGHT with even sides from 64 to 3840/, bad);
    }
  });
});
