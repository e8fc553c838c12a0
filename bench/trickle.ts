/**
 * `npm run bench -- trickle [--quick]`: one publisher → 1, 10, 50 subscribers, 2 MiB segments, over
 * loopback; the server runs in a child process so clients and server do not share one event loop.
 * Reports aggregate delivered MiB/s and first-byte latency (publisher's first write of a segment →
 * a subscriber's first byte of it; p50/p99). Baseline, measured in the same run: a plain node:http
 * server (also a child process) serving the same 2 MiB from memory to the same number of concurrent
 * readers (latency = request → first byte). The publisher stays at most 3 segments ahead of the
 * slowest subscriber so nobody is overrun (otherwise slow readers would skip segments via 470).
 *
 * Reading the figures: the trickle path is two loopback hops (publisher → server → subscriber) and the
 * publisher and subscribers share this process, while the plain baseline is one hop; a warm-up round
 * runs first so neither side is measured cold (JIT, tsx). "fb load" is first-byte latency while the
 * publisher runs flat out: a subscriber reads segments in order, so it includes draining the rest of
 * the previous segment (≈ 2 MiB / throughput). "fb edge" is the protocol's own latency: subscribers
 * wait at the live edge, the publisher writes a 64 KiB segment, first write → first byte.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { TricklePublisher } from '../src/trickle/publisher.js';
import { TrickleServer } from '../src/trickle/server.js';
import { TrickleSubscriber } from '../src/trickle/subscriber.js';
import { percentile } from '../src/util/stats.js';

const MiB = 1024 * 1024;
const SEG = 2 * MiB;
const CHUNK = 64 * 1024;

interface Result {
  mibs: number;
  p50: number;
  p99: number;
}


async function startChild(mode: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/index.ts', 'trickle', mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'silent' },
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (l.startsWith('PORT ')) {
        rl.close();
        resolve(l);
      }
    });
    child.once('exit', (c) => reject(new Error(`bench child exited ${c}`)));
  });
  return { child, port: Number(line.replace(/\D+/g, '')) };
}

async function serveTrickle(): Promise<void> {
  const server = new TrickleServer({ port: 0, autocreate: true });
  await server.listen();
  process.stdout.write(`PORT ${server.port}\n`);
  await new Promise(() => undefined);
}

async function servePlain(): Promise<void> {
  const blob = Buffer.alloc(SEG, 7);
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(blob.length), 'Content-Type': 'application/octet-stream' });
    res.end(blob);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`PORT ${(server.address() as { port: number }).port}\n`);
  await new Promise(() => undefined);
}

/**
 * Creates a channel and starts `subs` subscribers that read segments 0…last, recording each segment's
 * first-byte latency against `startAt[seq]` (set by the publisher) and counting bytes. `waitAhead(k, lag)`
 * resolves once every subscriber has finished segment k - lag, so the publisher never laps the 5-slot window.
 */
async function fanOut(url: string, subs: number, last: number) {
  const create = await fetch(url, { method: 'POST', headers: { 'Expect-Content': 'application/octet-stream' } });
  if (create.status !== 200) throw new Error(`create failed ${create.status}`);
  const startAt: number[] = [];
  const latencies: number[] = [];
  const done = new Array<number>(subs).fill(-1);
  let progressed: (() => void) | undefined;
  const counted = { bytes: 0 };
  const readers = Array.from({ length: subs }, async (_, i) => {
    const sub = new TrickleSubscriber({ url, start: 0 });
    for (;;) {
      const seg = await sub.next();
      if (!seg) break;
      let first = true;
      for await (const c of seg.body) {
        if (first) latencies.push(performance.now() - (startAt[seg.seq] ?? NaN));
        first = false;
        counted.bytes += (c as Buffer).length;
      }
      done[i] = seg.seq;
      progressed?.();
      if (seg.seq >= last) break;
    }
    await sub.close();
  });
  return {
    startAt,
    latencies,
    counted,
    finished: () => Promise.all(readers),
    async waitAhead(k: number, lag: number): Promise<void> {
      while (Math.min(...done) < k - lag) await new Promise<void>((r) => (progressed = r));
    },
  };
}

async function benchTrickle(port: number, subs: number, segments: number, round: number): Promise<Result> {
  const url = `http://127.0.0.1:${port}/bench${round}`;
  const fan = await fanOut(url, subs, segments - 1);
  const pub = new TricklePublisher({ url, mimeType: 'application/octet-stream', deleteOnClose: true });
  const payload = Buffer.alloc(CHUNK, 1);
  await new Promise((r) => setTimeout(r, 100)); // subscribers' GETs for seq 0 are waiting
  const t0 = performance.now();
  for (let k = 0; k < segments; k++) {
    await fan.waitAhead(k, 3);
    const seg = await pub.next();
    fan.startAt[k] = performance.now();
    for (let off = 0; off < SEG; off += CHUNK) await seg.write(payload);
    await seg.end();
  }
  await fan.finished();
  const elapsed = (performance.now() - t0) / 1000;
  await pub.close();
  return { mibs: fan.counted.bytes / MiB / elapsed, p50: percentile(fan.latencies, 50), p99: percentile(fan.latencies, 99) };
}

/** Live-edge first-byte latency: every subscriber waits for segment k, then one 64 KiB write. */
async function edgeLatency(port: number, subs: number, samples: number, round: number): Promise<Result> {
  const url = `http://127.0.0.1:${port}/edge${round}`;
  const fan = await fanOut(url, subs, samples - 1);
  const pub = new TricklePublisher({ url, mimeType: 'application/octet-stream', deleteOnClose: true });
  const payload = Buffer.alloc(CHUNK, 1);
  for (let k = 0; k < samples; k++) {
    await fan.waitAhead(k, 1);
    // Long enough for the subscribers' preconnected GETs for seq k to be parked at the server.
    await new Promise((r) => setTimeout(r, 10));
    const seg = await pub.next();
    fan.startAt[k] = performance.now();
    await seg.write(payload);
    await seg.end();
  }
  await fan.finished();
  await pub.close();
  return { mibs: NaN, p50: percentile(fan.latencies, 50), p99: percentile(fan.latencies, 99) };
}

async function benchPlain(port: number, subs: number, segments: number): Promise<Result> {
  const agent = new http.Agent({ keepAlive: true });
  const latencies: number[] = [];
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: subs }, async () => {
      for (let k = 0; k < segments; k++) {
        await new Promise<void>((resolve, reject) => {
          const sent = performance.now();
          const req = http.get({ host: '127.0.0.1', port, path: `/seg/${k}`, agent }, (res) => {
            let first = true;
            res.on('data', (c: Buffer) => {
              if (first) {
                latencies.push(performance.now() - sent);
                first = false;
              }
              bytes += c.length;
            });
            res.on('end', resolve);
            res.on('error', reject);
          });
          req.on('error', reject);
        });
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  return { mibs: bytes / MiB / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--serve-trickle')) return serveTrickle();
  if (args.includes('--serve-plain')) return servePlain();
  const quick = args.includes('--quick');
  const segments = quick ? 8 : 24;
  const fanouts = [1, 10, 50];
  const trickle = await startChild('--serve-trickle');
  const plain = await startChild('--serve-plain');
  const rows: string[] = [];
  try {
    let round = 0;
    // Warm-up, not reported: both servers and this process get past JIT and module loading.
    await benchTrickle(trickle.port, 4, 8, round++);
    await edgeLatency(trickle.port, 4, 5, round++);
    await benchPlain(plain.port, 4, 8);
    for (const n of fanouts) {
      const t = await benchTrickle(trickle.port, n, segments, round++);
      const e = await edgeLatency(trickle.port, n, quick ? 10 : 30, round++);
      const b = await benchPlain(plain.port, n, segments);
      rows.push(
        [
          String(n).padStart(4),
          t.mibs.toFixed(0).padStart(9),
          b.mibs.toFixed(0).padStart(9),
          (t.mibs / b.mibs).toFixed(2).padStart(6),
          `${t.p50.toFixed(2)}/${t.p99.toFixed(2)}`.padStart(15),
          `${e.p50.toFixed(2)}/${e.p99.toFixed(2)}`.padStart(15),
          `${b.p50.toFixed(2)}/${b.p99.toFixed(2)}`.padStart(15),
        ].join(' | '),
      );
    }
  } finally {
    trickle.child.kill();
    plain.child.kill();
  }
  process.stdout.write(`trickle fan-out, ${segments} × 2 MiB segments per subscriber, loopback (MiB/s = aggregate delivered)\n`);
  process.stdout.write('columns: MiB/s trickle, MiB/s plain HTTP baseline, ratio trickle/plain, first-byte ms p50/p99\n');
  process.stdout.write('(tr fb load: while publishing flat out, includes draining the previous segment; tr fb edge: subscribers waiting at the live edge)\n');
  process.stdout.write(`${' subs'} | ${'trickle'.padStart(9)} | ${'plain'.padStart(9)} | ${'ratio'.padStart(6)} | ${'tr fb load'.padStart(15)} | ${'tr fb edge'.padStart(15)} | ${'pl fb p50/p99'.padStart(15)}\n`);
  for (const r of rows) process.stdout.write(`${r}\n`);
}
