/**
 * `npm run bench -- content`: content-aware cycles against the fixed cadence, in the same run, on one
 * generated 3-minute clip (src/media/test-scenes.ts) mixing static test cards, testsrc2 motion and a
 * stretch of hard cuts every 5 s, with espeak-ng speech, a tone burst and silence.
 *
 * The clip is decoded once by the real sampler (ffmpeg, 768×768 letterboxed frames at 3 fps + 16 kHz
 * audio, the defaults); its output is replayed in presentation-time order into two generation loops,
 * one per mode, with the defaults otherwise (generate_every_s 4, max_frames 30, 8 images per request).
 * The model is the scripted backend, answering MODEL_MS of stream time after each request (a model
 * call of about a second, as vLLM on one GPU), so cycles overlap media as they do live.
 *
 * Reports per mode: model calls and image tokens per stream-minute, cycles skipped as unchanged, and
 * the latency from each scene cut (media time) to the first record covering it (published, in stream
 * time); and the signature's CPU (main thread, inside the sampler) against the whole sampling CPU
 * (node + ffmpeg). Flags: --model-ms=N.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseStartParams, type ParamsInput } from '../src/config/params.js';
import { rootLogger } from '../src/log.js';
import { decodeClip, generateSceneClip, replay, type DecodedClip, type SceneClip, type SceneClipSpec } from '../src/media/test-scenes.js';
import { ScriptedBackend } from '../src/model/testing/scripted-backend.js';
import type { DataRecord } from '../src/pipeline/records.js';
import { GenerationLoop } from '../src/pipeline/loop.js';
import type { GenerationRecord } from '../src/pipeline/records.js';
import { TOKENS_PER_IMAGE } from '../src/model/backend.js';
import { percentile } from '../src/util/stats.js';
import { cpuNow } from './cpu.js';

const cards = ['colorchart', 'color:navy', 'pal75bars', 'color:orange', 'smptebars', 'rgbtestsrc'] as const;

/** 180 s: static 120 s, moving 30 s, cuts every 5 s for 30 s; speech ×3, one tone burst, silence otherwise. */
export const CONTENT_CLIP: SceneClipSpec = {
  width: 1280,
  height: 720,
  fps: 30,
  scenes: [
    { kind: 'static', card: 'smptebars', durationS: 30 },
    { kind: 'moving', durationS: 15 },
    { kind: 'static', card: 'rgbtestsrc', durationS: 30 },
    ...cards.map((card) => ({ kind: 'static' as const, card, durationS: 5 })),
    { kind: 'moving', durationS: 15 },
    { kind: 'static', card: 'colorchart', durationS: 30 },
    { kind: 'static', card: 'color:navy', durationS: 30 },
  ],
  sounds: [
    { kind: 'silence', durationS: 20 },
    { kind: 'speech', text: 'Welcome back. The test card is on screen now.', durationS: 5 },
    { kind: 'silence', durationS: 15 },
    { kind: 'tone', hz: 660, durationS: 1.5 },
    { kind: 'silence', durationS: 28.5 },
    { kind: 'speech', text: 'Here come the cuts, one every five seconds.', durationS: 5 },
    { kind: 'silence', durationS: 50 },
    { kind: 'speech', text: 'That is all for today. Thank you for watching.', durationS: 5 },
    { kind: 'silence', durationS: 51 },
  ],
};

interface ModeResult {
  calls: number;
  images: number;
  unchanged: number;
  triggers: Record<string, number>;
  cutLatencyMs: number[];
  uncovered: number;
}

async function runMode(decoded: DecodedClip, clip: SceneClip, params: ParamsInput, modelMs: number): Promise<ModeResult> {
  const backend = new ScriptedBackend('gated');
  const published: Array<{ at: number; record: DataRecord }> = [];
  let streamMs = 0;
  const loop = new GenerationLoop('bench-content', parseStartParams(params).params, {
    backend,
    publish: (r) => published.push(...r.map((record) => ({ at: streamMs, record }))),
    reportError: () => undefined,
    log: rootLogger(),
  });
  const releaseAt: number[] = [];
  let seen = 0;
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  };
  await replay(loop, decoded, async (at) => {
    streamMs = at;
    await settle();
    while (backend.calls.length > seen) {
      seen++;
      releaseAt.push(at + modelMs);
    }
    while (releaseAt.length > 0 && releaseAt[0]! <= at) {
      releaseAt.shift();
      backend.release();
      await settle();
      while (backend.calls.length > seen) {
        seen++;
        releaseAt.push(at + modelMs);
      }
    }
  });
  while (releaseAt.length > 0) {
    streamMs = releaseAt.shift()!;
    backend.release();
    await settle();
  }
  loop.close();
  const gens = published.filter((p): p is { at: number; record: GenerationRecord } => p.record.type === 'generation');
  const triggers: Record<string, number> = {};
  for (const g of gens) triggers[g.record.trigger ?? 'interval'] = (triggers[g.record.trigger ?? 'interval'] ?? 0) + 1;
  const cutLatencyMs: number[] = [];
  let uncovered = 0;
  for (const c of clip.cutsMs) {
    const g = gens.find((x) => x.record.window.end_ms >= c);
    if (g) cutLatencyMs.push(g.at - c);
    else uncovered++;
  }
  return {
    calls: backend.calls.length,
    images: gens.reduce((n, g) => n + g.record.stats.frame_count, 0),
    unchanged: loop.counters().cycles_unchanged,
    triggers,
    cutLatencyMs,
    uncovered,
  };
}

export async function run(args: string[]): Promise<void> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const modelMs = Number(args.find((a) => a.startsWith('--model-ms='))?.slice(11) ?? 1000);
  const t0 = performance.now();
  // Kept between runs (the encode takes minutes on 2 cores), beside the demo's cached pattern.
  const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gemma3n-trickle', 'bench');
  const clip = await generateSceneClip(CONTENT_CLIP, { dir: cacheDir });
  out(`clip: ${clip.durationS} s 720p30 H.264 + AAC (static 120 s, moving 30 s, 6 cuts 5 s apart; ${clip.cutsMs.length} cuts, ${clip.soundEndsMs.length} sound ends), ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (encoded once, then cached in ${cacheDir})`);
  const c0 = cpuNow();
  const decoded = await decodeClip(clip.path, { targetFps: 3, downscalePx: 768, letterbox: true });
  const samplingCpuS = cpuNow() - c0;
  if (decoded.errors.length > 0) out(`sampler reported: ${decoded.errors.slice(0, 5).join('; ')}`);
  out(
    `sampling (ffmpeg + node, 3 fps 768×768 JPEG + audio): ${samplingCpuS.toFixed(2)} CPU-s for ${decoded.frames.length} frames (${(samplingCpuS / clip.durationS).toFixed(4)} CPU-s/stream-s); ` +
      `signatures ${decoded.signatureMs.toFixed(1)} ms (${((decoded.signatureMs / decoded.frames.length) * 1000).toFixed(0)} µs/frame) = ${((100 * decoded.signatureMs) / 1000 / samplingCpuS).toFixed(2)} % of sampling CPU`,
  );
  const base: ParamsInput = {};
  const minutes = clip.durationS / 60;
  const fixed = await runMode(decoded, clip, { ...base, content_aware: false }, modelMs);
  const aware = await runMode(decoded, clip, { ...base, content_aware: true }, modelMs);
  const gen = parseStartParams(base).params.generate_every_s;
  out(`model answers ${modelMs} ms (stream time) after each request; generate_every_s ${gen}, max_frames 30, 8 images per request`);
  out('| mode | model calls / stream-min | image tokens / stream-min | unchanged cycles | triggers | cut → first covering record p50 / max | cuts covered |');
  out('|---|---|---|---|---|---|---|');
  for (const [name, r] of [['fixed cadence', fixed], ['content-aware', aware]] as const) {
    out(
      `| ${name} | ${(r.calls / minutes).toFixed(1)} | ${((r.images * TOKENS_PER_IMAGE) / minutes).toFixed(0)} | ${r.unchanged} | ${Object.entries(r.triggers).map(([k, v]) => `${k} ${v}`).join(', ')} | ` +
        `${percentile(r.cutLatencyMs, 50).toFixed(0)} / ${Math.max(...r.cutLatencyMs).toFixed(0)} ms | ${r.cutLatencyMs.length}/${clip.cutsMs.length} |`,
    );
  }
  out(
    `content-aware vs fixed: ${((100 * aware.calls) / fixed.calls).toFixed(1)} % of the model calls, ${((100 * aware.images) / fixed.images).toFixed(1)} % of the image tokens; ` +
      `cut → record max ${Math.max(...aware.cutLatencyMs).toFixed(0)} ms vs half of generate_every_s ${(gen * 500).toFixed(0)} ms`,
  );
}
