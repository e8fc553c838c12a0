import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_SAMPLER_SETTINGS, MediaSampler } from '../../src/media/sampler.js';
import type { SamplerSettings } from '../../src/media/types.js';
import { capture, concatAudio, dominantFrequency, feedSegments, makeTestSegments } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';

function sampler(patch: Partial<SamplerSettings> = {}, extra: { maxPendingBytes?: number; skipNonRef?: boolean | 'auto'; ffmpegPath?: string } = {}): MediaSampler {
  return new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, ...patch }, ...extra });
}

function gaps(pts: number[]): number[] {
  return pts.slice(1).map((p, i) => p - pts[i]!);
}

/**
 * 6 s of 360p30 with a 440 Hz tone, 1 s GOPs: what most cases decode. The size does not matter to what
 * they pin (the 1080p case covers a large picture), and 360p costs a quarter of 720p to decode.
 */
function stream6s(): Promise<Buffer[]> {
  return makeTestSegments({ durationS: 6, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac', toneHz: 440 });
}

describe('MediaSampler', () => {
  it('samples 6 s of 360p30 at target_fps 3 into 18±1 frames ~333 ms apart, longest side = downscale_px', async () => {
    const segs = await stream6s();
    const s = sampler({ targetFps: 3, downscalePx: 512, wantJpeg: true, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.ok(Math.abs(c.frames.length - 18) <= 1, `got ${c.frames.length} frames`);
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
    const segs = await stream6s();
    const s = sampler({ targetFps: 3, wantJpeg: false, wantRgb: true }, { skipNonRef: false });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    for (const d of gaps(c.frames.map((f) => f.ptsMs)).slice(1)) assert.ok(Math.abs(d - 333.3) < 1, `gap ${d}`);
  });

  it('recovers the tone frequency from 16 kHz mono audio, with continuous start pts (AAC)', async () => {
    const segs = await stream6s();
    const s = sampler({ modality: 'audio' });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.equal(c.frames.length, 0, 'modality audio decodes no video');
    const all = concatAudio(c.audio);
    assert.ok(Math.abs(all.length / 16000 - 6) < 0.2, `audio ${all.length / 16000} s`);
    assert.ok(Math.abs(dominantFrequency(all) - 440) <= 2);
    for (let i = 1; i < c.audio.length; i++) {
      const prev = c.audio[i - 1]!;
      const expected = prev.startPtsMs + (prev.samples.length * 1000) / 16000;
      assert.ok(Math.abs(c.audio[i]!.startPtsMs - expected) < 25, `chunk ${i} starts at ${c.audio[i]!.startPtsMs}, expected ${expected}`);
    }
  });

  it('recovers the tone from H.264 + Opus 1080p with 2 s GOPs, frames scaled to 512 px', async () => {
    // 10 fps: the size and codecs are the point, not the frame rate (a third of the encode and decode work).
    const segs = await makeTestSegments({ durationS: 4, fps: 10, width: 1920, height: 1080, gopS: 2, audio: 'opus', toneHz: 1000 });
    assert.equal(segs.length, 2);
    const s = sampler({ targetFps: 1, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.ok(Math.abs(c.frames.length - 4) <= 1, `${c.frames.length} frames`);
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
    const segs = await stream6s();
    const s = sampler({ targetFps: 1, downscalePx: 512, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs.slice(0, 3));
    s.updateSettings({ targetFps: 5, downscalePx: 256 });
    feedSegments(s, segs.slice(3), 3);
    await s.close();
    const early = c.frames.filter((f) => f.width === 512);
    const late = c.frames.filter((f) => f.width === 256);
    assert.ok(early.length >= 2 && early.length <= 4, `${early.length} frames at 1 fps`);
    assert.ok(late.length >= 13 && late.length <= 16, `${late.length} frames at 5 fps`);
    assert.ok(late[0]!.ptsMs > early.at(-1)!.ptsMs, 'order kept across the decoder restart');
    assert.ok(gaps(c.frames.map((f) => f.ptsMs)).every((d) => d > 0));
    assert.equal(s.stats().decoderRestarts, 1);
  });

  it('drops whole segments, counted and reported, when the decoder is too far behind', async () => {
    const segs = await stream6s();
    // about 95 kB per 360p segment: a bound of one segment's worth is soon overrun when fed all at once
    const s = sampler({ targetFps: 3 }, { maxPendingBytes: 100_000 });
    const c = capture(s);
    const accepted: boolean[] = [];
    for (const [i, seg] of segs.entries()) {
      accepted.push(s.beginSegment(i));
      s.push(seg);
      s.endSegment();
    }
    const st = s.stats();
    assert.ok(st.pendingBytes <= 2 * 100_000 + 100_000, `pending ${st.pendingBytes}`);
    await s.close();
    assert.ok(accepted.includes(false));
    assert.equal(s.stats().segmentsDropped, accepted.filter((a) => !a).length);
    assert.equal(c.errors.filter((e) => e.code === 'segment_dropped').length, s.stats().segmentsDropped);
    assert.ok(c.frames.length > 0, 'accepted segments still decode');
  });

  it('survives empty, garbage, truncated and corrupted segments and resyncs at the next keyframe', async () => {
    const segs = await stream6s();
    const garbage = Buffer.alloc(200_000);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
    const corrupt = Buffer.from(segs[3]!);
    for (let i = 4000; i < corrupt.length; i += 997) corrupt[i] = corrupt[i]! ^ 0x5a;
    const input = [segs[0]!, Buffer.alloc(0), garbage, segs[1]!, segs[2]!.subarray(0, Math.floor(segs[2]!.length / 2)), corrupt, segs[4]!, segs[5]!];
    const s = sampler({ targetFps: 3, wantJpeg: true });
    const c = capture(s);
    feedSegments(s, input);
    await s.close();
    assert.ok(c.errors.length > 0, 'bad input reported');
    for (const e of c.errors) assert.ok(typeof e.code === 'string');
    // Frames keep coming after the bad segments, up to the last good one (segment 5 ends near 6 s).
    const last = c.frames.at(-1)!.ptsMs;
    assert.ok(last > c.frames[0]!.ptsMs + 5000, `last frame at ${last}`);
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
    const a = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const b = await makeTestSegments({ durationS: 2, fps: 30, width: 360, height: 640, gopS: 1, audio: 'aac', tsOffsetS: 2 });
    const s = sampler({ targetFps: 2, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, [...a, ...b]);
    await s.close();
    const sizes = c.frames.map((f) => `${f.width}x${f.height}`);
    assert.ok(sizes.includes('512x288') && sizes.includes('288x512'), sizes.join(' '));
    assert.equal(sizes.indexOf('288x512'), sizes.lastIndexOf('512x288') + 1, 'switches once');
  });

  it('replaces the decoder when the codecs change mid-stream (AAC → Opus, H.264 → HEVC)', async () => {
    // 320x180: the codecs are the point, not the size (x265 is the slowest encoder the tests run)
    const a = await makeTestSegments({ durationS: 2, fps: 30, width: 320, height: 180, gopS: 1, audio: 'aac', toneHz: 440 });
    const b = await makeTestSegments({ durationS: 2, fps: 30, width: 320, height: 180, gopS: 1, audio: 'opus', toneHz: 880, tsOffsetS: 2 });
    const h = await makeTestSegments({ durationS: 2, fps: 30, width: 320, height: 180, gopS: 1, audio: 'opus', videoCodec: 'hevc', tsOffsetS: 4 });
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

/** Mean of |a-b| over the content rectangle of a letterboxed frame against an unpadded frame of the same size. */
function meanAbsDiff(letterboxed: { rgb: Buffer; width: number }, rect: { x: number; y: number; width: number; height: number }, plain: Buffer): number {
  let sum = 0;
  for (let y = 0; y < rect.height; y++) {
    for (let x = 0; x < rect.width * 3; x++) {
      sum += Math.abs(letterboxed.rgb[((rect.y + y) * letterboxed.width + rect.x) * 3 + x]! - plain[(y * rect.width) * 3 + x]!);
    }
  }
  return sum / (rect.width * rect.height * 3);
}

/** Largest channel value over the frame outside `rect` (the padding). */
function maxOutside(f: { rgb: Buffer; width: number; height: number }, rect: { x: number; y: number; width: number; height: number }): number {
  let max = 0;
  for (let y = 0; y < f.height; y++) {
    for (let x = 0; x < f.width; x++) {
      if (x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height) continue;
      const o = (y * f.width + x) * 3;
      max = Math.max(max, f.rgb[o]!, f.rgb[o + 1]!, f.rgb[o + 2]!);
    }
  }
  return max;
}

/** End (ms) of the last audio packet of a segment, by ffprobe. */
function segmentAudioEndMs(seg: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffprobe', ['-v', 'error', '-f', 'mpegts', '-i', 'pipe:0', '-select_streams', 'a:0', '-show_entries', 'packet=pts_time,duration_time', '-of', 'csv=p=0'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => (out += d));
    p.on('error', reject);
    p.on('close', () => {
      let end = 0;
      for (const line of out.trim().split('\n')) {
        const [pts, dur] = line.split(',').map(Number);
        if (Number.isFinite(pts)) end = Math.max(end, (pts! + (Number.isFinite(dur) ? dur! : 0)) * 1000);
      }
      resolve(end);
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(seg);
  });
}

describe('MediaSampler letterbox, long runs, stop and audio pace', () => {
  for (const [label, w, h, rect] of [
    ['16:9', 640, 360, { x: 0, y: 56, width: 256, height: 144 }],
    ['4:3', 640, 480, { x: 0, y: 32, width: 256, height: 192 }],
  ] as const) {
    it(`letterbox: ${label} input becomes an exact 256×256 square, picture unsquashed in the middle, padding black`, async () => {
      const segs = await makeTestSegments({ durationS: 2, fps: 30, width: w, height: h, gopS: 1, audio: null });
      const boxed = sampler({ targetFps: 2, downscalePx: 256, letterbox: true, wantJpeg: true, wantRgb: true }, { skipNonRef: false });
      const plain = sampler({ targetFps: 2, downscalePx: 256, letterbox: false, wantJpeg: false, wantRgb: true }, { skipNonRef: false });
      const cb = capture(boxed);
      const cp = capture(plain);
      feedSegments(boxed, segs);
      feedSegments(plain, segs);
      await Promise.all([boxed.close(), plain.close()]);
      assert.deepEqual(cb.errors, []);
      assert.ok(cb.frames.length >= 3);
      assert.deepEqual(cb.frames.map((f) => f.ptsMs), cp.frames.map((f) => f.ptsMs), 'same frames chosen');
      for (const [i, f] of cb.frames.entries()) {
        assert.deepEqual([f.width, f.height, f.rgb!.length], [256, 256, 256 * 256 * 3]);
        assert.deepEqual(f.content, rect);
        const meta = await sharp(f.jpeg!).metadata();
        assert.deepEqual([meta.width, meta.height], [256, 256]);
        assert.ok(maxOutside({ rgb: f.rgb!, width: 256, height: 256 }, rect) <= 2, 'padding is black');
        // The picture inside is the aspect-kept scaling of the source (what letterbox:false produces).
        const p = cp.frames[i]!;
        assert.deepEqual([p.width, p.height], [rect.width, rect.height]);
        assert.equal(p.content, undefined);
        const d = meanAbsDiff({ rgb: f.rgb!, width: 256 }, rect, p.rgb!);
        assert.ok(d < 3, `content differs from the unsquashed picture by ${d.toFixed(2)} per channel`);
      }
    });
  }

  it('letterbox scales a small source up to the full square (model input size), e.g. 320×240 → 768×768', async () => {
    const segs = await makeTestSegments({ durationS: 1, fps: 30, width: 320, height: 240, gopS: 1, audio: null });
    const s = sampler({ targetFps: 2, downscalePx: 768, letterbox: true, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    assert.ok(c.frames.length >= 1);
    for (const f of c.frames) {
      assert.deepEqual([f.width, f.height], [768, 768]);
      assert.deepEqual(f.content, { x: 0, y: 96, width: 768, height: 576 });
    }
  });

  it('letterbox can be switched live (next segment boundary)', async () => {
    const segs = await makeTestSegments({ durationS: 4, fps: 30, width: 640, height: 360, gopS: 1, audio: null });
    const s = sampler({ targetFps: 2, downscalePx: 256, wantJpeg: false, wantRgb: true });
    const c = capture(s);
    feedSegments(s, segs.slice(0, 2));
    s.updateSettings({ letterbox: true });
    feedSegments(s, segs.slice(2), 2);
    await s.close();
    const sizes = [...new Set(c.frames.map((f) => `${f.width}x${f.height}`))];
    assert.deepEqual(sizes, ['256x144', '256x256']);
  });

  it('emits no decode_error over a run of more than 1500 output frames (output timestamps never collide)', async () => {
    // 60 fps sampled at 60 fps: every frame is an output frame; tiny so it decodes in about a second.
    const segs = await makeTestSegments({ durationS: 30, fps: 60, width: 64, height: 36, gopS: 2, audio: null, bframes: false });
    const s = sampler({ targetFps: 60, enableDownscale: false, wantJpeg: false, wantRgb: true }, { maxPendingBytes: 64 << 20 });
    const c = capture(s);
    feedSegments(s, segs);
    await s.close();
    // Frames may be dropped for the hand-off queue (frame_dropped, 1800 frames in ~1 s); none for timestamps.
    assert.deepEqual(c.errors.filter((e) => e.code !== 'frame_dropped').map((e) => `${e.code}: ${e.message}`), []);
    const st = s.stats();
    assert.ok(st.framesOut + st.framesDropped > 1700, `${st.framesOut} + ${st.framesDropped} frames`);
    assert.ok(gaps(c.frames.map((f) => f.ptsMs)).every((d) => d > 0));
  });

  it('closing mid-segment (stop) reports no decode_error for the cut tail', async () => {
    const segs = await makeTestSegments({ durationS: 3, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac' });
    // Cut points at which ffmpeg 5.1 logs an h264 error for the truncated last packet.
    for (const [frac, how] of [[0.1, 'endSegment(false)'], [0.5, 'open'], [0.77, 'endSegment(false)']] as const) {
      const s = sampler({ targetFps: 3 });
      const c = capture(s);
      feedSegments(s, [segs[0]!]);
      s.beginSegment(1);
      const cut = segs[1]!.subarray(0, Math.floor(segs[1]!.length * frac));
      for (let o = 0; o < cut.length; o += 64 * 1024) s.push(cut.subarray(o, o + 64 * 1024));
      if (how === 'endSegment(false)') s.endSegment(false);
      await s.close();
      assert.deepEqual(c.errors.map((e) => `${e.code}: ${e.message}`), [], `cut at ${frac} (${how})`);
      assert.ok(c.frames.length >= 3);
    }
  });

  it('audio-only TS fed segment by segment: audio stream time keeps up with each segment, in ≤ 100 ms chunks', async () => {
    const segs = await makeTestSegments({ durationS: 5, noVideo: true, audio: 'aac', toneHz: 600 });
    const ends = await Promise.all(segs.map(segmentAudioEndMs));
    const s = sampler();
    const c = capture(s);
    let streamEnd = 0;
    s.on('audio', (a) => (streamEnd = Math.max(streamEnd, a.startPtsMs + (a.samples.length * 1000) / 16000)));
    const firstPts = Math.min(...ends.filter((e) => e > 0));
    let audioSegs = 0;
    for (const [i, seg] of segs.entries()) {
      feedSegments(s, [seg], i);
      // ffmpeg needs a few AAC packets to open the stream (the muxer's first segments hold one each);
      // once half a second has been fed, everything fed must come out with its segment, not ~1 s later.
      if (ends[i]! - firstPts < 500) continue;
      audioSegs++;
      const want = ends[i]! - 100;
      await waitFor(`audio up to ${want.toFixed(0)} ms after segment ${i} (at ${streamEnd.toFixed(0)})`, () => streamEnd >= want, 5000);
    }
    await s.close();
    assert.ok(audioSegs >= 6, `${audioSegs} segments with audio`);
    assert.deepEqual(c.errors, []);
    for (const a of c.audio) assert.ok(a.samples.length <= 1600, `chunk of ${a.samples.length} samples`);
    assert.ok(Math.abs(dominantFrequency(concatAudio(c.audio)) - 600) <= 2);
  });
});
