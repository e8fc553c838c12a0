/**
 * The ModelBackend contract, run against every backend: the OpenAI-compatible one (against the fake
 * engine), the in-process one (on the random-weight test model) and the scripted test double. What
 * the pipeline relies on: capabilities that say what to send (image encoding, image limit, audio form,
 * token costs), a stream of deltas ending in exactly one `done` whose text is the deltas joined and
 * whose timings are measured (all by src/model/measure.ts), abort rejecting with an AbortError soon
 * and, mid-stream or when the caller stops reading, leaving the backend free for the next request,
 * and a text-token count.
 * A third backend joins by adding one entry to BACKENDS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mediaTokenCosts, type GenerateEvent, type GenerateRequest, type ImageInput, type ModelBackend } from '../../src/model/backend.js';
import { OpenAIBackend } from '../../src/model/openai.js';
import { TransformersBackend } from '../../src/model/transformers.js';
import { ScriptedBackend, startFakeEngine, testJpeg, tinyModelDir, tone, type FakeEngine } from '../helpers/model.js';

interface Subject {
  backend: ModelBackend;
  close(): Promise<void>;
}

const BACKENDS: Record<string, () => Promise<Subject>> = {
  'openai (fake engine)': async () => {
    const engine: FakeEngine = await startFakeEngine({ chunkDelayMs: 5 });
    const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 4 } });
    return { backend, close: async () => (await backend.close(), await engine.close()) };
  },
  'transformers (tiny model)': async () => {
    const backend = new TransformersBackend({ model: await tinyModelDir(), maxImages: 2 });
    return { backend, close: () => backend.close() };
  },
  'scripted (test double)': async () => {
    const backend = new ScriptedBackend('instant');
    return { backend, close: () => backend.close() };
  },
};

function imageFor(b: ModelBackend, pts: number): ImageInput {
  return (b.capabilities.imageEncoding ?? 'jpeg') === 'rgb'
    ? { ptsMs: pts, width: 64, height: 48, rgb: Buffer.alloc(64 * 48 * 3, 100) }
    : { ptsMs: pts, width: 64, height: 48, jpeg: testJpeg() };
}

function request(b: ModelBackend, over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: 'What is happening?',
    images: [imageFor(b, 0)],
    audio: b.capabilities.audio ? { startPtsMs: 0, sampleRate: 16000, samples: tone(1000) } : undefined,
    maxNewTokens: 16,
    ...over,
  };
}

/** One full generation; fails unless it ends in exactly one done, within 10 s (a backend left busy hangs). */
async function collectDone(b: ModelBackend): Promise<Extract<GenerateEvent, { type: 'done' }>> {
  const signal = AbortSignal.timeout(10_000);
  const events: GenerateEvent[] = [];
  for await (const ev of b.generate(request(b, { signal }))) events.push(ev);
  const done = events.at(-1);
  assert.ok(done?.type === 'done' && events.filter((e) => e.type === 'done').length === 1, 'exactly one done, last');
  return done;
}

for (const [name, make] of Object.entries(BACKENDS)) {
  describe(`ModelBackend contract: ${name}`, () => {
    let s: Subject;
    before(async () => {
      s = await make();
      await s.backend.load();
    });
    after(() => s.close());

    it('is ready after load() and declares what it takes and what it costs', () => {
      const b = s.backend;
      assert.equal(b.status().state, 'ready');
      assert.ok(['jpeg', 'rgb', undefined].includes(b.capabilities.imageEncoding));
      assert.ok(b.capabilities.maxImages >= 1);
      const costs = mediaTokenCosts(b.capabilities);
      assert.ok(costs.image > 0 && costs.audioClip > 0);
      assert.ok(b.countTextTokens('a few words of prompt') > 0);
    });

    it('streams deltas, then exactly one done: its text is the deltas joined and its timings are measured', async () => {
      const events: GenerateEvent[] = [];
      for await (const ev of s.backend.generate(request(s.backend))) events.push(ev);
      const dones = events.filter((e) => e.type === 'done');
      assert.equal(dones.length, 1, 'exactly one done');
      assert.equal(events.at(-1)?.type, 'done', 'and it is last');
      const done = dones[0]!;
      assert.ok(done.type === 'done');
      const joined = events.filter((e) => e.type === 'delta').map((e) => (e.type === 'delta' ? e.text : '')).join('');
      assert.equal(done.text, joined);
      assert.ok(done.text.length > 0);
      assert.ok(done.timings.modelMs >= 0 && done.timings.encodeMs >= 0);
      // measured by measure.ts on one clock for every backend: text means a first token, before the end
      assert.ok(done.timings.firstTokenMs !== undefined && done.timings.firstTokenMs >= 0, 'a reply with text has a first token');
      assert.ok(done.timings.firstTokenMs <= done.timings.modelMs);
    });

    it('an abort after the first delta rejects with an AbortError and leaves the backend free for the next generation', async () => {
      const ac = new AbortController();
      let deltas = 0;
      const run = (async () => {
        for await (const ev of s.backend.generate(request(s.backend, { maxNewTokens: 64, signal: ac.signal }))) {
          if (ev.type === 'done') return 'done';
          deltas++;
          ac.abort();
        }
        return 'ended';
      })();
      await assert.rejects(run, (e: Error) => e.name === 'AbortError');
      assert.equal(deltas, 1, 'nothing after the abort');
      const next = await collectDone(s.backend);
      assert.ok(next.text.length > 0);
    });

    it('a caller that stops reading after the first delta frees the backend for the next generation', async () => {
      for await (const ev of s.backend.generate(request(s.backend, { maxNewTokens: 64 }))) {
        assert.equal(ev.type, 'delta');
        break;
      }
      const next = await collectDone(s.backend);
      assert.ok(next.text.length > 0);
    });

    it('an abort rejects the stream with an AbortError, promptly', async () => {
      const ac = new AbortController();
      const started = Date.now();
      const run = (async () => {
        for await (const ev of s.backend.generate(request(s.backend, { maxNewTokens: 64, signal: ac.signal }))) void ev;
      })();
      ac.abort();
      await assert.rejects(run, (e: Error) => e.name === 'AbortError' || /abort/i.test(e.message));
      assert.ok(Date.now() - started < 5000, 'within 5 s');
      // Still usable afterwards.
      let n = 0;
      for await (const ev of s.backend.generate(request(s.backend))) if (ev.type === 'done') n++;
      assert.equal(n, 1);
    });
  });
}
