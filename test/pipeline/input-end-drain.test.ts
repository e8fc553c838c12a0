/**
 * The input's end waits for the decoder's backlog: what ffmpeg decodes after the last segment arrived
 * (on a loaded host it runs seconds behind its input) still reaches the generation loop and gets its
 * cycles before the session ends with input_ended. Before this was pinned, the loop closed as soon as
 * the input channel ended, and the tail of the stream was silently lost (a cadence test saw 1–2 of 4
 * cycles under load). The lag is made deterministic with a fault-injection decoder: real ffmpeg that
 * starts 1.5 s late, so the whole stream is still undecoded when the input ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestSegments } from '../helpers/media.js';
import { fakeEngineBackend } from '../helpers/model.js';
import { startPipelineHarness } from '../helpers/pipeline.js';

/** A `ffmpeg` that sleeps before it starts: stands in for a decoder running behind its input. */
async function lateStartingFfmpeg(delayS: number): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'late-ffmpeg-'));
  const path = join(dir, 'ffmpeg');
  await writeFile(path, `#!/bin/sh\nsleep ${delayS}\nexec ffmpeg "$@"\n`);
  await chmod(path, 0o755);
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

test('a stream whose input ends while the decoder is still behind gets the cycles of its whole length, not only of what was decoded by then', async (t) => {
  const segs = await makeTestSegments({ durationS: 8, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  const ffmpeg = await lateStartingFfmpeg(1.5);
  t.after(() => ffmpeg.remove());
  const backend = await fakeEngineBackend(t);
  const h = await startPipelineHarness({
    backend,
    params: { generate_every_s: 2, target_fps: 2, max_frames: 4, audio_window_s: 2 },
    deps: { ffmpegPath: ffmpeg.path },
  });
  t.after(() => h.close());

  await h.feed(segs);
  await h.endInput();
  const end = await h.session.done;
  assert.equal(end.reason, 'input_ended');
  const c = h.session.status().counters;
  assert.ok((c.audio_ms_in ?? 0) >= 7000, `the whole 8 s of audio reached the loop (got ${c.audio_ms_in} ms)`);
  const gens = h.generations();
  assert.ok(gens.length >= 3, `a cycle per 2 s of the 8 s stream (got ${gens.length}; counters ${JSON.stringify(c)})`);
});
