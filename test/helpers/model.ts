/**
 * Test doubles and fixtures for the model layer.
 *
 * - `startFakeEngine()` and `ScriptedBackend`: the model-layer test doubles, which live in
 *   src/model/testing/ (benches use them too) and are re-exported here.
 * - `tinyModelDir()`: the random-weight test model (src/model/tiny-model.ts), one per run (or process).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTinyModel } from '../../src/model/tiny-model.js';
import { SHARED_MEDIA_DIR_ENV } from '../../src/media/test-source.js';
import { OpenAIBackend } from '../../src/model/openai.js';
import { startFakeEngine } from '../../src/model/testing/fake-engine.js';
export * from '../../src/model/testing/fake-engine.js';
export { ScriptedBackend } from '../../src/model/testing/scripted-backend.js';
export { testJpeg, tone } from '../../src/model/testing/fixtures.js';

/** A 127.0.0.1 port with nothing listening (bound then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * The audio pad for engine-path backends in pipeline and server tests: 1 s (the engine's minimum)
 * instead of the production 30 s, i.e. a thirtieth of the WAV to encode, send and parse per request.
 * Nothing those tests check depends on the pad length; test/model/openai.test.ts and the backend
 * contract run the default.
 */
export const TEST_AUDIO_PAD_SAMPLES = 16_000;

let tinyDir: Promise<string> | undefined;

/**
 * The random-weight test model. Under `npm test` one copy serves the whole run, in the run's shared
 * cache dir (makeTinyModel writes atomically and leaves a current model alone, so files generating it
 * at once are safe); otherwise it is generated once per process into a temp dir removed at exit.
 */
export function tinyModelDir(): Promise<string> {
  tinyDir ??= (async () => {
    let root = process.env[SHARED_MEDIA_DIR_ENV];
    if (!root) {
      const own = mkdtempSync(join(tmpdir(), 'tiny-gemma3n-'));
      process.once('exit', () => rmSync(own, { recursive: true, force: true }));
      root = own;
    }
    const dir = join(root, 'tiny-random-gemma3n');
    await makeTinyModel(dir);
    return dir;
  })();
  return tinyDir;
}

/** An OpenAIBackend on a fresh fake engine (8 images per request), both closed when the test ends. */
export async function fakeEngineBackend(t: { after: (fn: () => Promise<void>) => void }): Promise<OpenAIBackend> {
  const engine = await startFakeEngine();
  const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 8 }, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
  t.after(async () => {
    await backend.close();
    await engine.close();
  });
  return backend;
}
