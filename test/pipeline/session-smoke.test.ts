import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GenerateEvent, GenerateRequest, ModelBackend } from '../../src/model/backend.js';
import { ModelAbortError } from '../../src/model/errors.js';
import { makeTestSegments } from '../helpers/media.js';
import { startPipelineHarness, waitFor } from '../helpers/pipeline.js';

class SlowEngineDouble implements ModelBackend {
  readonly kind = 'openai' as const;
  readonly modelId = 'double';
  readonly capabilities = { images: true, maxImages: 8, audio: 'input_audio' as const };
  requests: GenerateRequest[] = [];
  constructor(public delayMs = 50) {}
  async load() {}
  status() { return { state: 'ready' as const }; }
  countTextTokens(t: string) { return Math.ceil(Buffer.byteLength(t) / 3); }
  async close() {}
  async *generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    this.requests.push(req);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, this.delayMs);
      req.signal?.addEventListener('abort', () => { clearTimeout(t); reject(new ModelAbortError()); }, { once: true });
    });
    yield { type: 'done', text: `saw ${req.images.length} frames`, usage: {}, timings: { encodeMs: 1, modelMs: this.delayMs } };
  }
}

test('smoke', async (t) => {
  const segs = await makeTestSegments({ durationS: 6, fps: 15, width: 320, height: 240, gopS: 1, audio: 'aac' });
  const be = new SlowEngineDouble(50);
  const h = await startPipelineHarness({ backend: be, params: { generate_every_s: 1, target_fps: 2 }, deps: { heartbeatMs: 500 } });
  t.after(() => h.close());
  await h.feed(segs, 200);
  await waitFor('records', () => h.generations().length >= 3, 15000);
  await h.endInput();
  await h.session.done;
  console.log(JSON.stringify(h.data.records, null, 1).slice(0, 3000));
  console.log(h.eventTypes());
  console.log(h.session.status());
});
