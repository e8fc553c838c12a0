/**
 * Publishes a media file to a trickle channel at real-time pace, one MPEG-TS segment per trickle
 * segment, cut at keyframes — how a gateway feeds a runner, for demos and manual tests.
 * ffmpeg does the cutting (`-re -c copy -f segment -segment_format mpegts`) into a temp directory and
 * announces each finished file on stdout (`-segment_list pipe:1`); each file is then streamed into the
 * next trickle segment and deleted. At most `maxBacklog` finished files wait; older ones are dropped
 * (counted) so a stalled server cannot fill the disk.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { childLogger, type Logger } from '../log.js';
import { TricklePublisher, type TrickleSegmentOut } from './publisher.js';

export interface FilePublishOptions {
  file: string;
  url: string;
  segmentSeconds?: number;
  loop?: boolean;
  mimeType?: string;
  maxBacklog?: number;
  signal?: AbortSignal;
  logger?: Logger;
  /** Called after each segment (published or failed), for progress output. */
  onSegment?: (progress: { seq: number; ok: boolean; bytes: number } & FilePublishStats) => void;
}

export interface FilePublishStats {
  published: number;
  failed: number;
  dropped: number;
}

export async function publishFile(opts: FilePublishOptions): Promise<FilePublishStats> {
  const log = opts.logger ?? childLogger('trickle-file-publisher', { url: opts.url });
  const dir = await mkdtemp(join(tmpdir(), 'trickle-pub-'));
  const stats: FilePublishStats = { published: 0, failed: 0, dropped: 0 };
  const maxBacklog = opts.maxBacklog ?? 3;
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
    ...(opts.loop ? ['-stream_loop', '-1'] : []),
    '-i', opts.file,
    '-map', '0:v:0?', '-map', '0:a:0?', '-c', 'copy',
    '-f', 'segment', '-segment_time', String(opts.segmentSeconds ?? 2), '-segment_format', 'mpegts',
    '-segment_list', 'pipe:1', '-segment_list_type', 'flat',
    join(dir, '%d.ts'),
  ];
  const ff = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  ff.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const onAbort = (): void => {
    ff.kill('SIGTERM');
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // A stop that landed while the temp dir was being made fired before the listener existed.
  if (opts.signal?.aborted) onAbort();
  const exited = new Promise<number | null>((resolve) => ff.on('close', (code) => resolve(code)));

  const pub = new TricklePublisher({ url: opts.url, mimeType: opts.mimeType ?? 'video/MP2T', logger: log });
  const backlog: string[] = [];
  let wake: (() => void) | undefined;
  let ffDone = false;
  const lines = createInterface({ input: ff.stdout });
  lines.on('line', (name) => {
    backlog.push(join(dir, name.trim()));
    while (backlog.length > maxBacklog) {
      const old = backlog.shift() as string;
      stats.dropped += 1;
      log.warn({ file: old }, 'publisher behind: segment dropped');
      void unlink(old).catch(() => undefined);
    }
    wake?.();
  });
  lines.on('close', () => {
    ffDone = true;
    wake?.();
  });

  try {
    for (;;) {
      const file = backlog.shift();
      if (!file) {
        if (ffDone) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      let seg: TrickleSegmentOut;
      try {
        seg = await pub.next();
      } catch (err) {
        // The server cannot be reached right now: this segment is lost to a live stream (counted),
        // the next one asks again.
        stats.failed += 1;
        log.warn({ err: (err as Error).message }, 'segment failed: server unreachable');
        opts.onSegment?.({ seq: pub.nextSeq, ok: false, bytes: 0, ...stats });
        await unlink(file).catch(() => undefined);
        continue;
      }
      let bytes = 0;
      try {
        for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
          bytes += (chunk as Buffer).length;
          await seg.write(chunk as Buffer);
        }
        await seg.end();
        stats.published += 1;
        log.debug({ seq: seg.seq, file }, 'segment published');
        opts.onSegment?.({ seq: seg.seq, ok: true, bytes, ...stats });
      } catch (err) {
        stats.failed += 1;
        log.warn({ seq: seg.seq, err: (err as Error).message }, 'segment failed');
        await seg.abort('publish failed');
        opts.onSegment?.({ seq: seg.seq, ok: false, bytes, ...stats });
      }
      await unlink(file).catch(() => undefined);
    }
    const code = await exited;
    if (code !== 0 && !opts.signal?.aborted) throw new Error(`ffmpeg exited with ${code}: ${stderr.trim()}`);
    return stats;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (ff.exitCode === null) ff.kill('SIGKILL');
    await pub.close();
    await rm(dir, { recursive: true, force: true });
  }
}
