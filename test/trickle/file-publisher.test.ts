/**
 * The `publish <media-file>` path: real ffmpeg cuts a real H.264/AAC file into MPEG-TS segments at
 * keyframes and they arrive, one per trickle segment, at a subscriber of a real server.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { publishFile } from '../../src/trickle/file-publisher.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { startTrickleServer } from '../helpers/trickle.js';

test('a 2 s H.264 file with 1 s GOPs is published as self-contained MPEG-TS segments starting at keyframes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trickle-file-'));
  const srv = await startTrickleServer();
  t.after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const input = join(dir, 'in.mp4');
  const made = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '2',
    '-c:v', 'libx264', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', '-y', input,
  ]);
  assert.equal(made.status, 0, made.stderr.toString());

  srv.createChannel('in', 'video/MP2T');
  const sub = new TrickleSubscriber({ url: srv.channelUrl('in'), start: 0 });
  const segments: Buffer[] = [];
  const reading = (async () => {
    for await (const seg of sub) {
      const parts: Buffer[] = [];
      for await (const c of seg.body) parts.push(c as Buffer);
      const buf = Buffer.concat(parts);
      if (buf.length > 0) segments.push(buf);
    }
  })();
  const stats = await publishFile({ file: input, url: srv.channelUrl('in'), segmentSeconds: 1 });
  srv.deleteChannel('in');
  await reading;
  await sub.close();

  assert.equal(stats.failed, 0);
  assert.equal(stats.published, segments.length);
  assert.ok(segments.length >= 2, `got ${segments.length} segments`);
  for (const [i, seg] of segments.entries()) {
    assert.equal(seg[0], 0x47, `segment ${i} starts with a TS sync byte`);
    const file = join(dir, `seg${i}.ts`);
    writeFileSync(file, seg);
    const probe = spawnSync('ffprobe', [
      '-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame',
      '-of', 'csv=p=0', file,
    ]);
    assert.equal(probe.stdout.toString().trim().split('\n')[0]?.replace(/,$/, ''), '1', `segment ${i} opens with a keyframe`);
  }
});
