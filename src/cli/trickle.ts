/**
 * Trickle commands: an embedded trickle server, a file publisher (ffmpeg-cut MPEG-TS at real-time
 * pace) and a subscriber that writes a channel to a file or stdout.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { publishFile } from '../trickle/file-publisher.js';
import { TrickleServer } from '../trickle/server.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`not an integer: ${v}`);
  return n;
}

export function registerTrickleCommands(program: Command): void {
  program
    .command('trickle-server')
    .description('Run a standalone trickle server')
    .option('--port <port>', 'TCP port', intArg, 3389)
    .option('--host <host>', 'address to bind', '0.0.0.0')
    .option('--base-path <path>', 'path prefix of every route (the orchestrator uses /ai/trickle/)', '/')
    .option('--autocreate', 'create channels on first POST', false)
    .option('--changefeed', 'publish channel additions/removals on _changes', false)
    .option('--idle-timeout-s <seconds>', 'remove channels with no write for this long (go-livepeer: 300)', intArg, 300)
    .option('--max-segment-mib <MiB>', 'largest segment a POST may write (413 past it)', intArg, 64)
    .option('--max-channels <n>', 'most channels at once (429 for one more)', intArg, 1024)
    .option('--tls-key <file>', 'serve HTTPS: PEM private key (with --tls-cert)')
    .option('--tls-cert <file>', 'serve HTTPS: PEM certificate (with --tls-key)')
    .action(async (o: { port: number; host: string; basePath: string; autocreate: boolean; changefeed: boolean; idleTimeoutS: number; maxSegmentMib: number; maxChannels: number; tlsKey?: string; tlsCert?: string }) => {
      if (Boolean(o.tlsKey) !== Boolean(o.tlsCert)) throw new Error('--tls-key and --tls-cert go together');
      const tls = o.tlsKey && o.tlsCert ? { key: readFileSync(o.tlsKey), cert: readFileSync(o.tlsCert) } : undefined;
      const server = new TrickleServer({ port: o.port, host: o.host, basePath: o.basePath, autocreate: o.autocreate, changefeed: o.changefeed, idleTimeoutMs: o.idleTimeoutS * 1000, sweepIntervalMs: Math.min(60_000, Math.max(1000, (o.idleTimeoutS * 1000) / 5)), maxSegmentBytes: o.maxSegmentMib * 1024 * 1024, maxChannels: o.maxChannels, ...(tls ? { tls } : {}) });
      await server.listen();
      process.stderr.write(`trickle server on ${server.url}\n`);
      await untilSignal();
      await server.close();
    });

  program
    .command('publish <media-file>')
    .description('Publish a media file to a trickle channel as MPEG-TS segments cut at keyframes, at real-time pace')
    .requiredOption('--url <channel-url>', 'channel URL, e.g. http://127.0.0.1:3389/stream1')
    .option('--segment-s <seconds>', 'target segment duration', Number, 2)
    .option('--loop', 'repeat the file forever', false)
    .action(async (file: string, o: { url: string; segmentS: number; loop: boolean }) => {
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      const stats = await publishFile({ file, url: o.url, segmentSeconds: o.segmentS, loop: o.loop, signal: ac.signal });
      process.stderr.write(`published ${stats.published} segments (${stats.failed} failed, ${stats.dropped} dropped)\n`);
    });

  program
    .command('subscribe <channel-url>')
    .description('Write a trickle channel to a file or stdout (JSON channels: one record per line)')
    .option('--start <seq>', '-2 = current segment, -1 = next, N = that seq', intArg, -2)
    .option('--out <file>', 'output file, - for stdout', '-')
    .action(async (url: string, o: { start: number; out: string }) => {
      const out: Writable = o.out === '-' ? process.stdout : createWriteStream(o.out);
      const sub = new TrickleSubscriber({ url, start: o.start });
      const stop = (): void => void sub.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const seg of sub) {
          const json = /json/i.test(seg.contentType ?? '');
          let last = -1;
          for await (const chunk of seg.body) {
            const buf = chunk as Buffer;
            if (buf.length > 0) last = buf[buf.length - 1] as number;
            if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
          }
          // JSON channels carry one record per segment, usually without a newline: frame them as lines.
          if (json && last !== -1 && last !== 0x0a) out.write('\n');
        }
      } finally {
        await sub.close();
        if (out !== process.stdout) await new Promise((r) => out.end(r));
      }
    });
}
