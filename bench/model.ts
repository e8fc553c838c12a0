/**
 * `npm run bench -- model`
 * 1. In-process backend on the random-weight test model (CPU): load time, time-to-first-token and
 *    tokens/s for text-only and text + 2 frames + 1 s audio prompts. These measure our pipeline +
 *    Transformers.js + ORT overhead on tiny graphs, not Gemma 3n speed.
 * 2. OpenAI backend overhead: the same 8-frame + 4 s audio request (audio padded to 30 s, as sent)
 *    through OpenAIBackend vs a raw fetch of a pre-built identical body to the same fake engine.
 * 3. Per-token sampling cost over Gemma 3n's 262 400-token vocabulary, as Transformers.js 4.3.1's
 *    MultinomialSampler does it (topk + softmax): k = 64 (the model's top_k) against k = vocab (what
 *    `top_k: 0` forced), same run, plus our nucleus (top_p) processor at k = 64.
 */
import { softmax, Tensor, topk } from '@huggingface/transformers';
import { nucleusProcessor } from '../src/model/sampling.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GenerateEvent, GenerateRequest, ImageInput } from '../src/model/backend.js';
import { DEFAULT_AUDIO_PAD_SAMPLES, encodeWavPcm16, fitAudioSamples } from '../src/model/audio.js';
import { OpenAIBackend } from '../src/model/openai.js';
import { makeTinyModel } from '../src/model/tiny-model.js';
import { TransformersBackend } from '../src/model/transformers.js';
import { startFakeEngine } from '../src/model/testing/fake-engine.js';
import { testJpeg, tone } from '../src/model/testing/fixtures.js';
import { median } from '../src/util/stats.js';

const out = (s: string) => process.stdout.write(`${s}\n`);

async function drain(it: AsyncIterable<GenerateEvent>): Promise<Extract<GenerateEvent, { type: 'done' }>> {
  let done: GenerateEvent | undefined;
  for await (const ev of it) done = ev;
  if (!done || done.type !== 'done') throw new Error('no done event');
  return done;
}

async function benchTiny(iterations: number): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'bench-tiny-'));
  try {
    const t0 = performance.now();
    await makeTinyModel(join(root, 'tiny'));
    const genMs = performance.now() - t0;
    const b = new TransformersBackend({ model: join(root, 'tiny'), maxImages: 2 });
    const t1 = performance.now();
    await b.load();
    out(`tiny model: generate ${genMs.toFixed(0)} ms, load ${(performance.now() - t1).toFixed(0)} ms (random-weight test model, CPU)`);
    const frame: ImageInput = { ptsMs: 0, width: 640, height: 360, rgb: Buffer.alloc(640 * 360 * 3, 90) };
    const cases: Array<[string, Partial<GenerateRequest>]> = [
      ['text', {}],
      ['text+2 frames+1 s audio', { images: [frame, frame], audio: { startPtsMs: 0, sampleRate: 16000, samples: tone(1000) } }],
    ];
    for (const [label, extra] of cases) {
      await drain(b.generate({ prompt: 'Describe.', images: [], maxNewTokens: 32, ...extra })); // warm
      const ttft: number[] = [];
      const tps: number[] = [];
      const enc: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const d = await drain(b.generate({ prompt: 'Describe.', images: [], maxNewTokens: 32, ...extra }));
        ttft.push(d.timings.firstTokenMs ?? d.timings.modelMs);
        enc.push(d.timings.encodeMs);
        tps.push((d.usage.completionTokens ?? 0) / (d.timings.modelMs / 1000));
      }
      out(`  ${label.padEnd(24)} ttft p50 ${median(ttft).toFixed(1)} ms | processor ${median(enc).toFixed(1)} ms | ${median(tps).toFixed(1)} tokens/s (9 tokens/reply)`);
    }
    await b.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function benchOpenAI(iterations: number): Promise<void> {
  const engine = await startFakeEngine();
  const backend = new OpenAIBackend({ baseURL: engine.baseURL });
  const jpeg = testJpeg();
  const images: ImageInput[] = Array.from({ length: 8 }, (_, i) => ({ ptsMs: i * 500, width: 64, height: 48, jpeg }));
  const audio = { startPtsMs: 0, sampleRate: 16000 as const, samples: tone(4000) };
  const req: GenerateRequest = { prompt: 'Describe.', images, audio, maxNewTokens: 64 };
  // Baseline: the same body built once up front, sent with fetch, SSE read to the end.
  const body = JSON.stringify({
    model: 'google/gemma-3n-E4B-it',
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 64,
    temperature: 0,
    top_p: 1,
    messages: [
      {
        role: 'user',
        content: [
          ...images.map((im) => ({ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${im.jpeg!.toString('base64')}` } })),
          { type: 'input_audio', input_audio: { data: encodeWavPcm16(fitAudioSamples(audio.samples, DEFAULT_AUDIO_PAD_SAMPLES)).toString('base64'), format: 'wav' } },
          { type: 'text', text: 'Describe.' },
        ],
      },
    ],
  });
  const raw = async () => {
    const res = await fetch(`${engine.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer EMPTY' }, body });
    await res.text();
  };
  const viaBackend = async () => {
    await drain(backend.generate(req));
  };
  for (let i = 0; i < 5; i++) {
    await raw();
    await viaBackend();
  }
  const rawMs: number[] = [];
  const backendMs: number[] = [];
  for (let i = 0; i < iterations; i++) {
    let t = performance.now();
    await raw();
    rawMs.push(performance.now() - t);
    t = performance.now();
    await viaBackend();
    backendMs.push(performance.now() - t);
  }
  const r = median(rawMs);
  const o = median(backendMs);
  out(`openai backend vs raw fetch (fake engine, 8 JPEG frames + 4 s audio, ${(body.length / 1024).toFixed(0)} KiB body):`);
  out(`  raw fetch p50 ${r.toFixed(2)} ms | OpenAIBackend p50 ${o.toFixed(2)} ms | overhead ${(o - r).toFixed(2)} ms (${(o / r).toFixed(2)}x)`);
  await backend.close();
  await engine.close();
}

async function benchSampling(iterations: number): Promise<void> {
  const VOCAB = 262_400;
  const data = new Float32Array(VOCAB);
  let seed = 1;
  for (let i = 0; i < VOCAB; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = ((seed / 2 ** 32) - 0.5) * 20;
  }
  const sampleStep = async (k: number) => {
    const [v] = await topk(new Tensor('float32', data.slice(), [1, VOCAB]), k);
    softmax(v.data as Float32Array);
  };
  const nucleus = nucleusProcessor(0.95, 64)!;
  const measure = async (fn: () => Promise<unknown> | unknown) => {
    for (let i = 0; i < 3; i++) await fn();
    const ms: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const t = performance.now();
      await fn();
      ms.push(performance.now() - t);
    }
    return median(ms);
  };
  const k64 = await measure(() => sampleStep(64));
  const kAll = await measure(() => sampleStep(VOCAB));
  const copy = await measure(() => data.slice());
  const topP = await measure(() => nucleus([], { dims: [1, VOCAB], data: data.slice() }));
  out(`sampling step over ${VOCAB} logits (Transformers.js topk + softmax, as MultinomialSampler):`);
  out(`  top_k 64 p50 ${k64.toFixed(2)} ms | top_k 0 (whole vocab) p50 ${kAll.toFixed(2)} ms (${(kAll / k64).toFixed(0)}x) | nucleus top_p 0.95 within 64 p50 ${(topP - copy).toFixed(2)} ms (+ ${copy.toFixed(2)} ms copy)`);
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  await benchSampling(quick ? 5 : 20);
  await benchTiny(quick ? 3 : 10);
  await benchOpenAI(quick ? 20 : 100);
}
