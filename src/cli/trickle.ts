/**
 * Trickle commands: an embedded trickle server, a file publisher (ffmpeg-cut MPEG-TS at real-time
 * pace) and a subscriber that writes a channel to a file or stdout.
 *
 * Output promises: `subscribe` writes only channel bytes to stdout (logs and status go to stderr);
 * it waits up to `--wait-s` for a channel that does not exist yet and then fails with exit code 1
 * and a message saying so, and says "end of stream" on stderr when the channel ends. `publish`
 * prints one progress line per segment on stderr. `trickle-server --channel name[:mime]` creates
 * channels at start, as an orchestrator does before a stream.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { configureLogging, logConfigFrom } from '../config/runtime.js';
import { publishFile } from '../trickle/file-publisher.js';
import { TrickleServer } from '../trickle/server.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { Transport, joinUrl } from '../trickle/http.js';
import { delay } from '../util/time.js';

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function intArg(v: string): number {
  const n = Number(v);
  if (!/^[+-]?\d+$/.test(v.trim()) || !Number.isInteger(n)) throw new Error(`not an integer: ${v}`);
  return n;
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

/**
 * Waits until `GET {url}/next` says the channel exists (any answer but 404 and connection errors:
 * servers without `/next` answer 400 for a channel that does exist). Asked through the trickle
 * clients' own transport, so an orchestrator's self-signed certificate is accepted here as it is by
 * the subscriber that follows.
 */
async function channelAppears(url: string, waitMs: number, signal: AbortSignal): Promise<{ ok: true } | { ok: false; last: string }> {
  const deadline = Date.now() + waitMs;
  const transport = new Transport(url, { tlsVerify: false, keepAlive: false });
  let last = 'no answer';
  try {
    for (;;) {
      try {
        const r = await transport.simple('GET', joinUrl(url, 'next'), 5000);
        if (r.status !== 404) return { ok: true };
        last = 'the channel does not exist (404)';
      } catch (e) {
        last = `the server cannot be reached (${(e as Error).message})`;
      }
      if (signal.aborted) return { ok: false, last: 'stopped' };
      if (Date.now() >= deadline) return { ok: false, last };
      await delay(250, signal);
    }
  } finally {
    transport.destroy();
  }
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
    .option('--channel <name[:mime]>', 'create this channel at start (repeatable), e.g. --channel s1-data:application/jsonl', collect, [] as string[])
    .action(async (o: { port: number; host: string; basePath: string; autocreate: boolean; changefeed: boolean; idleTimeoutS: number; maxSegmentMib: number; maxChannels: number; tlsKey?: string; tlsCert?: string; channel: string[] }) => {
      if (Boolean(o.tlsKey) !== Boolean(o.tlsCert)) throw new Error('--tls-key and --tls-cert go together');
      const tls = o.tlsKey && o.tlsCert ? { key: readFileSync(o.tlsKey), cert: readFileSync(o.tlsCert) } : undefined;
      const server = new TrickleServer({ port: o.port, host: o.host, basePath: o.basePath, autocreate: o.autocreate, changefeed: o.changefeed, idleTimeoutMs: o.idleTimeoutS * 1000, sweepIntervalMs: Math.min(60_000, Math.max(1000, (o.idleTimeoutS * 1000) / 5)), maxSegmentBytes: o.maxSegmentMib * 1024 * 1024, maxChannels: o.maxChannels, ...(tls ? { tls } : {}) });
      for (const spec of o.channel) {
        const [name, mime] = spec.split(/:(.*)/s) as [string, string | undefined];
        if (!/^[A-Za-z0-9._~-]+$/.test(name)) throw new Error(`--channel ${JSON.stringify(spec)}: the name may use letters, digits and . _ ~ - only`);
        server.createChannel(name, mime && mime !== '' ? mime : 'application/octet-stream');
      }
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
      configureLogging(logConfigFrom(process.env), { fd: 2, defaultLevel: 'warn' });
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      process.stderr.write(`publishing ${file} to ${o.url} at real-time pace${o.loop ? ', looping' : ''} (Ctrl-C to stop)\n`);
      const stats = await publishFile({
        file,
        url: o.url,
        segmentSeconds: o.segmentS,
        loop: o.loop,
        signal: ac.signal,
        onSegment: (p) => process.stderr.write(`segment ${p.seq} ${p.ok ? 'published' : 'FAILED'} (${(p.bytes / 1024).toFixed(0)} KiB; ${p.published} published, ${p.failed} failed, ${p.dropped} dropped)\n`),
      });
      process.stderr.write(`published ${stats.published} segments (${stats.failed} failed, ${stats.dropped} dropped)\n`);
    });

  program
    .command('subscribe <channel-url>')
    .description('Write a trickle channel to a file or stdout (JSON channels: one record per line)')
    .option('--start <seq>', '-2 = current segment, -1 = next, N = that seq', intArg, -2)
    .option('--out <file>', 'output file, - for stdout', '-')
    .option('--wait-s <seconds>', 'wait this long for a channel that does not exist yet, then fail', intArg, 30)
    .action(async (url: string, o: { start: number; out: string; waitS: number }) => {
      // stdout carries the channel's bytes only.
      configureLogging(logConfigFrom(process.env), { fd: 2, defaultLevel: 'warn' });
      const ac = new AbortController();
      const sub = new TrickleSubscriber({ url, start: o.start });
      const stop = (): void => {
        ac.abort();
        void sub.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const there = await channelAppears(url, o.waitS * 1000, ac.signal);
      if (!there.ok) {
        await sub.close();
        if (ac.signal.aborted) return;
        process.stderr.write(`subscribe: ${url}: ${there.last} after waiting ${o.waitS} s\n`);
        process.exitCode = 1;
        return;
      }
      const out: Writable = o.out === '-' ? process.stdout : createWriteStream(o.out);
      let segments = 0;
      try {
        for await (const seg of sub) {
          segments += 1;
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
        if (!ac.signal.aborted) process.stderr.write(`subscribe: end of stream (${segments} segments)\n`);
      } catch (e) {
        if (!ac.signal.aborted) {
          process.stderr.write(`subscribe: ${(e as Error).message}\n`);
          process.exitCode = 1;
        }
      } finally {
        await sub.close();
        if (out !== process.stdout) await new Promise((r) => out.end(r));
      }
    });
}
