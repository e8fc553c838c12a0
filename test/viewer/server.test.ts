/**
 * The viewer server against an embedded trickle server (real HTTP throughout): the SSE framing (one
 * message per data-channel line, one per events-channel body, ids, Last-Event-ID resumption), the
 * bound on a client that stops reading (drops counted, not queued without end), the same-origin
 * segment proxy, the prompt forwarding with its bearer token, and a clear error when the page was
 * never built. The page assets here are stand-ins written to a temp dir.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { startViewer, CLIENT_QUEUE_BYTES, type ViewerOptions, type ViewerServer } from '../../src/viewer/server.js';
import { startTrickleServer } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';

interface Ctx {
  after: (fn: () => Promise<void>) => void;
}

async function fakeAssets(t: Ctx): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'viewer-assets-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const f of ['index.html', 'viewer.js', 'viewer.css']) await writeFile(join(dir, f), `/* ${f} */`);
  return dir;
}

async function setup(t: Ctx, extra: Partial<ViewerOptions> = {}) {
  const trickle = await startTrickleServer();
  for (const [name, mime] of [['s-out', 'video/MP2T'], ['s-data', 'application/jsonl'], ['s-events', 'application/json']] as const) {
    trickle.createChannel(name, mime);
  }
  const viewer = await startViewer({
    channels: { output: trickle.channelUrl('s-out'), data: trickle.channelUrl('s-data'), events: trickle.channelUrl('s-events') },
    assetsDir: await fakeAssets(t),
    ...extra,
  });
  const pubs = {
    data: new TricklePublisher({ url: trickle.channelUrl('s-data'), mimeType: 'application/jsonl' }),
    events: new TricklePublisher({ url: trickle.channelUrl('s-events'), mimeType: 'application/json' }),
    out: new TricklePublisher({ url: trickle.channelUrl('s-out'), mimeType: 'video/MP2T' }),
  };
  t.after(async () => {
    await viewer.close();
    await Promise.all(Object.values(pubs).map((p) => p.close()));
    await trickle.close();
  });
  return { trickle, viewer, pubs };
}

interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** An EventSource stand-in: parses the stream into messages; `pause()` stops reading the socket. */
function sse(viewer: ViewerServer, t: Ctx, lastEventId?: string) {
  const messages: SseMessage[] = [];
  let req: http.ClientRequest | undefined;
  let res: http.IncomingMessage | undefined;
  let buf = '';
  req = http.get(`${viewer.url}events`, { headers: lastEventId ? { 'last-event-id': lastEventId } : {} }, (r) => {
    res = r;
    r.setEncoding('utf8');
    r.on('data', (chunk: string) => {
      buf += chunk;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const m: SseMessage = { data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          const i = line.indexOf(': ');
          const [k, v] = i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 2)];
          if (k === 'id') m.id = v;
          else if (k === 'event') m.event = v;
          else if (k === 'data') {
            m.data = hasData ? `${m.data}\n${v}` : v;
            hasData = true;
          }
        }
        if (hasData) messages.push(m);
      }
    });
  });
  req.on('error', () => undefined);
  t.after(async () => {
    req?.destroy();
    req = undefined;
  });
  return { messages, pause: () => res?.pause(), ready: () => res !== undefined };
}

describe('viewer server', () => {
  it('frames each data line and each events body as one SSE message, with ids a reconnect resumes from', async (t) => {
    const { viewer, pubs } = await setup(t);
    const a = sse(viewer, t);
    await waitFor('the SSE response', () => a.ready());
    await pubs.data.publish('{"type":"generation","cycle_seq":1}\n{"type":"error","cycle_seq":2}\n');
    await pubs.events.publish('{"event":{"type":"heartbeat","timestamp":1},"queue_event_type":"stream_heartbeat"}');
    await waitFor('three messages', () => a.messages.length >= 3);
    const data = a.messages.filter((m) => m.event === 'data').map((m) => m.data);
    assert.deepEqual(data, ['{"type":"generation","cycle_seq":1}', '{"type":"error","cycle_seq":2}']);
    const events = a.messages.filter((m) => m.event === 'events');
    assert.equal(events.length, 1);
    assert.equal((JSON.parse(events[0]!.data) as { event: { type: string } }).event.type, 'heartbeat');
    const ids = a.messages.map((m) => Number(m.id));
    assert.deepEqual([...ids].sort((x, y) => x - y), ids, 'ids increase');

    // A reconnect that says what it saw last gets only what came after (from the backlog).
    const first = a.messages.find((m) => m.data.includes('cycle_seq":1'))!;
    const b = sse(viewer, t, first.id);
    await waitFor('the backlog after the first message', () => b.messages.length >= 2);
    assert.ok(!b.messages.some((m) => m.data.includes('cycle_seq":1')));
    assert.ok(b.messages.some((m) => m.data.includes('cycle_seq":2')));
  });

  it('drops (and counts) messages for a client that stops reading instead of queueing them without end', { timeout: 60_000 }, async (t) => {
    const { viewer, pubs } = await setup(t);
    const slow = sse(viewer, t);
    await waitFor('the SSE response', () => slow.ready());
    slow.pause();
    const line = `{"type":"generation","text":"${'x'.repeat(60_000)}"}\n`;
    // Far more than the socket buffers plus the client's queue can hold.
    const total = Math.ceil((CLIENT_QUEUE_BYTES * 12) / line.length);
    for (let i = 0; i < total; i++) await pubs.data.publish(line);
    await waitFor('drops counted', () => viewer.stats().sseDropped > 0, 20_000).catch((err: Error) =>
      assert.fail(`${err.message}: ${JSON.stringify(viewer.stats())}`),
    );
    assert.ok(viewer.stats().sseDropped < viewer.stats().messages);
  });

  it('proxies output segments from trickle with their seq', async (t) => {
    const { viewer, pubs } = await setup(t);
    const bytes = Buffer.alloc(188 * 50, 0x47);
    // -1 waits for the next segment, as trickle does.
    const pending = fetch(`${viewer.url}video/-1`);
    await new Promise((r) => setTimeout(r, 200));
    await pubs.out.publish(bytes);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'video/mp2t');
    assert.equal(res.headers.get('x-trickle-seq'), '0');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
    const again = await fetch(`${viewer.url}video/0`);
    assert.equal(again.headers.get('x-trickle-seq'), '0');
    assert.equal((await again.arrayBuffer()).byteLength, bytes.length);
  });

  it('forwards a prompt to the runner with the bearer token; the page only learns that a prompt box exists', async (t) => {
    const got: Array<{ url?: string; auth?: string; body: string }> = [];
    const runner = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ url: req.url, auth: req.headers.authorization, body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"success"}');
      });
    });
    await new Promise<void>((r) => runner.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => runner.close(() => r())));
    const { viewer } = await setup(t, { runnerUrl: `http://127.0.0.1:${(runner.address() as AddressInfo).port}/`, runnerToken: 'sekrit', streamName: 's' });
    const cfg = (await (await fetch(`${viewer.url}config`)).json()) as Record<string, unknown>;
    assert.deepEqual(cfg, { stream: 's', promptBox: true });
    const r = await fetch(`${viewer.url}params`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"What colour?"}' });
    assert.equal(r.status, 200);
    assert.deepEqual(got, [{ url: '/stream/params', auth: 'Bearer sekrit', body: '{"prompt":"What colour?"}' }]);
    // Another site's page cannot drive it: a form post (not JSON) or a foreign Origin is refused.
    const form = await fetch(`${viewer.url}params`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"prompt":"x"}' });
    assert.equal(form.status, 415);
    const foreign = await fetch(`${viewer.url}params`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: '{"prompt":"x"}',
    });
    assert.equal(foreign.status, 403);
    assert.equal(got.length, 1);
  });

  it('on loopback, answers only requests addressed to a loopback name (DNS rebinding)', async (t) => {
    const { viewer } = await setup(t);
    const port = new URL(viewer.url).port;
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/config', headers: { host } }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        }).on('error', reject);
      });
    assert.equal(await status(`127.0.0.1:${port}`), 200);
    assert.equal(await status(`localhost:${port}`), 200);
    assert.equal(await status(`evil.example:${port}`), 421);
  });

  it('refuses to start, saying how to build it, when the page was never built', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'viewer-empty-'));
    try {
      await assert.rejects(startViewer({ channels: {}, assetsDir: dir }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'viewer_not_built');
        assert.match(err.message, /npm run build/);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
