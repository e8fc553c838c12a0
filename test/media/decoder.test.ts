/**
 * The ffmpeg decoder child at end of input (real ffmpeg, real MPEG-TS): close() lets it drain a
 * backlog for as long as it keeps producing, and kills it only after a stretch of silence.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FfmpegDecoder, type DecoderConfig, type DecodedFrame } from '../../src/media/decoder.js';
import { makeTestSegments } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Fault injection: an ffmpeg that reads its input at the stream's own rate (`-re`), so a backlog
 * written at once takes the stream's duration to decode whatever the machine's speed.
 */
function realTimeFfmpeg(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gemma3n-trickle-slow-ffmpeg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'ffmpeg');
  writeFileSync(path, '#!/bin/sh\nexec ffmpeg -re "$@"\n');
  chmodSync(path, 0o755);
  return path;
}

function config(ffmpegPath: string): DecoderConfig {
  return { video: true, audio: false, targetFps: 10, maxSidePx: null, skipNonRef: false, ffmpegPath };
}

describe('FfmpegDecoder.close', () => {
  it('drains a backlog that takes longer than the grace, as long as frames keep coming', { timeout: 30_000 }, async (t) => {
    const segs = await makeTestSegments({ durationS: 4, fps: 10, width: 160, height: 120, gopS: 1, audio: null });
    const decode = async (ffmpegPath: string, graceMs: number) => {
      const frames: DecodedFrame[] = [];
      let exit: { expected: boolean; signal: NodeJS.Signals | null } | undefined;
      const d = new FfmpegDecoder(config(ffmpegPath), {
        frame: (f) => frames.push(f),
        audio: () => undefined,
        decodeError: () => undefined,
        exit: (e) => (exit = e),
      });
      for (const s of segs) d.write(s);
      // Closed once it is producing (a start-up slowed by a busy machine is not what this pins).
      await waitFor('the first frame', () => frames.length > 0, 20_000);
      const started = performance.now();
      await d.close(graceMs);
      return { pts: frames.map((f) => f.ptsMs), ms: performance.now() - started, signal: exit?.signal };
    };
    const all = await decode('ffmpeg', 3000);
    assert.ok(all.pts.length >= 30, `the reference decode has the stream's frames (${all.pts.length})`);
    // ~3.5 s of stream left at real time against a 1.5 s grace: a deadline on the whole drain would cut it.
    const slow = await decode(realTimeFfmpeg(t), 1500);
    assert.ok(slow.ms > 1500, 'the drain outlasted the grace (the double reads in real time)');
    assert.deepEqual(slow.pts, all.pts);
    assert.equal(slow.signal, null, 'ffmpeg exited by itself');
  });

  it('kills a decoder that stays silent for the grace', { timeout: 30_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gemma3n-trickle-hung-ffmpeg-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // Fault injection: a decoder that ignores end of input and never writes a byte.
    const path = join(dir, 'ffmpeg');
    writeFileSync(path, '#!/bin/sh\nexec sleep 60\n');
    chmodSync(path, 0o755);
    let exit: { expected: boolean; signal: NodeJS.Signals | null } | undefined;
    const d = new FfmpegDecoder(config(path), { frame: () => undefined, audio: () => undefined, decodeError: () => undefined, exit: (e) => (exit = e) });
    const started = performance.now();
    await d.close(300);
    const took = performance.now() - started;
    assert.ok(took >= 290 && took < 5000, `closed after ${took.toFixed(0)} ms`);
    assert.equal(exit?.signal, 'SIGKILL');
    assert.equal(exit?.expected, true);
  });
});
