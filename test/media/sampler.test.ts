import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_SAMPLER_SETTINGS, MediaSampler } from '../../src/media/sampler.js';
import type { SamplerSettings } from '../../src/media/types.js';
import { capture, concatAudio, dominantFrequency, feedSegments, makeTestSegments } from '../helpers/media.js';

function sampler(patch: Partial<SamplerSettings> = {}, extra: { maxPendingBytes?: number; skipNonRef?: boolean | 'auto'; ffmpegPath?: string } = {}): MediaSampler {
  return new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, ...patch }, ...extra });
}

function gaps(pts: number[]): number[] {
  return pts.slice(1).map((p, i) => p - pts[i]!);
}

describe('MediaSampler', () => {
  it('samples 10 s of 720p30 at target_fps 3 into 30±1 frames ~333 ms apart, longest side = downscale_px', async () => {
    const segs = await makeTestSegments({ durationS: 10, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac', toneHz: 440 });
    const s = sampler({ targetFps: 3, downscalePx: 512, wantJpeg: true, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.ok(Math.abs(c.frames.length - 30) <= 1, `got ${c.frames.length} frames`);
    const pts = c.frames.map((f) => f.ptsMs);
    const g = gaps(pts);
    assert.ok(g.every((d) => d > 0), 'pts strictly increasing');
    // After the first (partial) bucket, picks sit on a 333 ms grid give or take one skipped B-frame.
    for (const d of g.slice(1)) assert.ok(Math.abs(d - 333.3) <= 40, `gap ${d}`);
    const mean = (pts.at(-1)! - pts[1]!) / (pts.length - 2);
    assert.ok(Math.abs(mean - 333.3) < 5, `mean gap ${mean}`);
    for (const f of c.frames) {
      assert.equal(Math.max(f.width, f.height), 512);
      assert.equal(f.width, 512);
      assert.equal(f.height, 288);
      assert.equal(f.rgb?.length, f.width * f.height * 3);
      const meta = await sharp(f.jpeg!).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.equal(meta.width, 512);
      assert.equal(meta.height, 288);
    }
    assert.deepEqual(c.errors, []);
    assert.equal(s.stats().framesOut, c.frames.length);
  });

  it('picks frames exactly 333 ms apart when every frame is decoded (skipNonRef off)', async () => {
    const segs = await makeTestSegments({ durationS: 10, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac', toneHz: 440 });
    const s = sampler({ targetFps: 3, wantJpeg: false, wantRgb: true }, { skipNonRef: false });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    for (const d of gaps(c.frames.map((f) => f.ptsMs)).slice(1)) assert.ok(Math.abs(d - 333.3) < 1, `gap ${d}`);
  });

  it('recovers the tone frequency from 16 kHz mono audio, with continuous start pts (AAC)', async () => {
    const segs = await makeTestSegments({ durationS: 10, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac', toneHz: 440 });
    const s = sampler({ modality: 'audio' });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.equal(c.frames.length, 0, 'modality audio decodes no video');
    const all = concatAudio(c.audio);
    assert.ok(Math.abs(all.length / 16000 - 10) < 0.2, `audio ${all.length / 16000} s`);
    assert.ok(Math.abs(dominantFrequency(all) - 440) <= 2);
    for (let i = 1; i < c.audio.length; i++) {
      const prev = c.audio[i - 1]!;
      const expected = prev.startPtsMs + (prev.samples.length * 1000) / 16000;
      assert.ok(Math.abs(c.audio[i]!.startPtsMs - expected) < 25, `chunk ${i} starts at ${c.audio[i]!.startPtsMs}, expected ${expected}`);
    }
  });

  it('recovers the tone from H.264 + Opus 1080p with 2 s GOPs, frames scaled to 512 px', async () => {
    const segs = await makeTestSegments({ durationS: 6, fps: 30, width: 1920, height: 1080, gopS: 2, audio: 'opus', toneHz: 1000 });
    assert.equal(segs.length, 3);
    const s = sampler({ targetFps: 1, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.ok(Math.abs(c.frames.length - 6) <= 1, `${c.frames.length} frames`);
    for (const f of c.frames) assert.deepEqual([f.width, f.height], [512, 288]);
    assert.ok(Math.abs(dominantFrequency(concatAudio(c.audio)) - 1000) <= 2);
    // Audio and video share one clock (the input's presentation time).
    assert.ok(Math.abs(c.audio[0]!.startPtsMs - c.frames[0]!.ptsMs) < 500);
  });

  it('with modality vision decodes no audio; with no audio track emits no audio events', async () => {
    const withAudio = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const noAudio = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: null });
    for (const [segs, modality] of [[withAudio, 'vision'], [noAudio, 'auto']] as const) {
      const s = sampler({ modality, targetFps: 2, enableDownscale: false, wantJpeg: false, wantRgb: true });
      const c = capture(s);
      feedSegments(s, segs);
      await s.close();
      assert.equal(c.audio.length, 0);
      assert.ok(c.frames.length >= 3);
      for (const f of c.frames) assert.deepEqual([f.width, f.height], [640, 360], 'no downscale when disabled');
    }
  });

  it('an audio-only stream yields audio and no frames', async () => {
    const segs = await makeTestSegments({ durationS: 3, noVideo: true, audio: 'aac', toneHz: 600 });
    const s = sampler();
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.equal(c.frames.length, 0);
    assert.ok(Math.abs(dominantFrequency(concatAudio(c.audio)) - 600) <= 2);
  });

  it('applies target_fps and downscale changes live, at the next segment boundary', async () => {
    const segs = await makeTestSegments({ durationS: 10, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac' });
    const s = sampler({ targetFps: 1, downscalePx: 512, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs.slice(0, 5));
    s.updateSettings({ targetFps: 5, downscalePx: 256 });
    feedSegments(s, segs.slice(5), 5);
    await s.close();
    const early = c.frames.filter((f) => f.width === 512);
    const late = c.frames.filter((f) => f.width === 256);
    assert.ok(early.length >= 4 && early.length <= 6, `${early.length} frames at 1 fps`);
    assert.ok(late.length >= 23 && late.length <= 26, `${late.length} frames at 5 fps`);
    assert.ok(late[0]!.ptsMs > early.at(-1)!.ptsMs, 'order kept across the decoder restart');
    assert.ok(gaps(c.frames.map((f) => f.ptsMs)).every((d) => d > 0));
    assert.equal(s.stats().decoderRestarts, 1);
  });

  it('drops whole segments, counted and reported, when the decoder is too far behind', async () => {
    const segs = await makeTestSegments({ durationS: 10, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac' });
    const s = sampler({ targetFps: 3 }, { maxPendingBytes: 400_000 });
    const c = capture(s);
    const accepted: boolean[] = [];
    for (const [i, seg] of segs.entries()) {
      accepted.push(s.beginSegment(i));
      s.push(seg);
      s.endSegment();
    }
    const st = s.stats();
    assert.ok(st.pendingBytes <= 2 * 400_000 + 400_000, `pending ${st.pendingBytes}`);
    await s.close();
    assert.ok(accepted.includes(false));
    assert.equal(s.stats().segmentsDropped, accepted.filter((a) => !a).length);
    assert.equal(c.errors.filter((e) => e.code === 'segment_dropped').length, s.stats().segmentsDropped);
    assert.ok(c.frames.length > 0, 'accepted segments still decode');
  });

  it('survives empty, garbage, truncated and corrupted segments and resyncs at the next keyframe', async () => {
    const segs = await makeTestSegments({ durationS: 10, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac', toneHz: 440 });
    const garbage = Buffer.alloc(200_000);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
    const corrupt = Buffer.from(segs[5]!);
    for (let i = 4000; i < corrupt.length; i += 997) corrupt[i] ^= 0x5a;
    const input = [segs[0]!, segs[1]!, Buffer.alloc(0), garbage, segs[2]!, segs[3]!.subarray(0, Math.floor(segs[3]!.length / 2)), segs[4]!, corrupt, segs[6]!, segs[7]!];
    const s = sampler({ targetFps: 3, wantJpeg: true });
    const c = capture(s);
    feedSegments(s, input);
    await s.close();
    assert.ok(c.errors.length > 0, 'bad input reported');
    for (const e of c.errors) assert.ok(typeof e.code === 'string');
    // Frames keep coming after the bad segments, up to the last good one (segment 7 ends near 9.4 s).
    const last = c.frames.at(-1)!.ptsMs;
    assert.ok(last > c.frames[0]!.ptsMs + 7500, `last frame at ${last}`);
    assert.ok(gaps(c.frames.map((f) => f.ptsMs)).every((d) => d > 0));
  });

  it('starts decoding at the first decodable segment when the stream opens with garbage', async () => {
    const segs = await makeTestSegments({ durationS: 3, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const s = sampler({ targetFps: 2, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, [Buffer.from('not a transport stream at all'.repeat(500)), ...segs]);
    await s.close();
    assert.ok(c.errors.some((e) => e.code === 'unrecognised_input'));
    assert.ok(c.frames.length >= 5);
  });

  it('follows a resolution change mid-stream (aspect kept)', async () => {
    const a = await makeTestSegments({ durationS: 3, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac' });
    const b = await makeTestSegments({ durationS: 3, fps: 30, width: 720, height: 1280, gopS: 1, audio: 'aac', tsOffsetS: 3 });
    const s = sampler({ targetFps: 2, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, [...a, ...b]);
    await s.close();
    const sizes = c.frames.map((f) => `${f.width}x${f.height}`);
    assert.ok(sizes.includes('512x288') && sizes.includes('288x512'), sizes.join(' '));
    assert.equal(sizes.indexOf('288x512'), sizes.lastIndexOf('512x288') + 1, 'switches once');
  });

  it('replaces the decoder when the codecs change mid-stream (AAC → Opus, H.264 → HEVC)', async () => {
    const a = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac', toneHz: 440 });
    const b = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: 'opus', toneHz: 880, tsOffsetS: 2 });
    const h = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: 'opus', videoCodec: 'hevc', tsOffsetS: 4 });
    const s = sampler({ targetFps: 2, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, [...a, ...b, ...h]);
    await s.close();
    assert.equal(c.errors.filter((e) => e.code === 'decoder_restart').length, 2);
    assert.ok(c.frames.some((f) => f.ptsMs > 5000), 'frames from the HEVC part');
    const late = concatAudio(c.audio.filter((x) => x.startPtsMs > 3600 && x.startPtsMs < 5000));
    assert.ok(Math.abs(dominantFrequency(late) - 880) <= 2, 'audio from the Opus part');
  });

  it('reports a missing ffmpeg as an error event without throwing', async () => {
    const segs = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const s = sampler({}, { ffmpegPath: '/nonexistent/ffmpeg' });
    const c = capture(s);
    feedSegments(s, segs);
    await new Promise((r) => setTimeout(r, 100));
    await s.close();
    assert.ok(c.errors.some((e) => e.code === 'decoder_exited'));
    assert.equal(c.frames.length, 0);
  });
});
