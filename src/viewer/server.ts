/**
 * The live viewer's HTTP server (`watch`, `demo --watch`): serves the page and its bundle (built into
 * dist/viewer-page/ at prepare by scripts/build-viewer.mjs, read once at start; nothing from another
 * origin), and three live endpoints fed from a stream's trickle channels:
 *
 * - `GET /events`: server-sent events, one SSE message per line the data channel carries (event
 *   `data`) or per events-channel body (event `events`), as the Livepeer gateway frames its data SSE;
 *   each message has an `id`, and a reconnecting EventSource (Last-Event-ID) gets only what it missed
 *   from a small backlog (BACKLOG_MESSAGES / BACKLOG_BYTES), a new one gets the whole backlog.
 *   Event `viewer` reports this server's drop counters.
 * - `GET /video/<seq>`: one output-channel segment (MPEG-TS) proxied from trickle, long-polled like
 *   trickle itself (`-2` = the segment being written now, `-1` = the next); headers
 *   `X-Trickle-Seq` (the seq served) and `X-Trickle-Skipped` (segments passed over because trickle no
 *   longer had them). 404 when there is no such channel (yet).
 * - `POST /params` (only with a runner URL): the JSON body is forwarded to `<runner>/stream/params`,
 *   with `Authorization: Bearer <token>` when a token is set (the token never reaches the page);
 *   only as application/json and, when the request names an Origin, only from this server's own.
 *
 * Bounds: a slow SSE client queues at most CLIENT_QUEUE_BYTES, past which messages are dropped for it
 * and counted (it is told in a `viewer` event); at most MAX_SSE_CLIENTS and MAX_VIDEO_REQUESTS at once
 * (503 past them); a video segment streams through with backpressure (never held whole); request
 * bodies are capped at MAX_BODY_BYTES. Listens on 127.0.0.1 unless told otherwise, and then answers
 * only requests addressed to a loopback name (421 otherwise: DNS rebinding).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { AppError, errorMessage } from '../errors.js';
import { childLogger, type Logger } from '../log.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { ChannelFeed } from './feed.js';

export const BACKLOG_MESSAGES = 200;
export const BACKLOG_BYTES = 2 * 1024 * 1024;
export const CLIENT_QUEUE_BYTES = 1024 * 1024;
export const MAX_SSE_CLIENTS = 16;
export const MAX_VIDEO_REQUESTS = 8;
export const MAX_BODY_BYTES = 64 * 1024;
const HEARTBEAT_MS = 15_000;

/** The viewer could not start (its page was never built, a bad option). */
export class ViewerError extends AppError {}

export interface ViewerChannels {
  /** Output channel (MPEG-TS) the page plays. */
  output?: string;
  /** Data channel (NDJSON records). */
  data?: string;
  /** Events channel (one JSON body per segment). */
  events?: string;
}

export interface ViewerOptions {
  channels: ViewerChannels;
  /** Shown in the page header. */
  streamName?: string;
  /** Runner control API base URL; enables the prompt box. */
  runnerUrl?: string;
  /** Bearer token for the runner's control API. */
  runnerToken?: string;
  port?: number;
  host?: string;
  /** Where index.html, viewer.js and viewer.css are (default: the package's dist/viewer-page/). */
  assetsDir?: string;
  logger?: Logger;
}

export interface ViewerStats {
  sseClients: number;
  /** SSE messages dropped for clients that did not keep up, all clients together. */
  sseDropped: number;
  messages: number;
  videoSegments: number;
  videoSkipped: number;
  oversizedLines: number;
}

interface Message {
  id: number;
  frame: string;
}

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/viewer.js': 'viewer.js',
  '/viewer.css': 'viewer.css',
};
const MIME: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'viewer.js': 'text/javascript; charset=utf-8',
  'viewer.css': 'text/css; charset=utf-8',
};

/** dist/viewer-page/ of this package, from src/viewer/ (tsx) or dist/viewer/ (built) alike. */
export function defaultAssetsDir(): string {
  return fileURLToPath(new URL('../../dist/viewer-page/', import.meta.url));
}

/** One EventSource connection, with its own bounded queue for when the socket is full. */
class SseClient {
  dropped = 0;
  private queue: string[] = [];
  private queued = 0;
  private blocked = false;
  private reported = 0;

  constructor(private readonly res: ServerResponse) {
    res.on('drain', () => this.flush());
  }

  send(frame: string): number {
    if (this.blocked) {
      if (this.queued + frame.length > CLIENT_QUEUE_BYTES) {
        this.dropped += 1;
        return 1;
      }
      this.queue.push(frame);
      this.queued += frame.length;
      return 0;
    }
    if (!this.res.write(frame)) this.blocked = true;
    return 0;
  }

  private flush(): void {
    this.blocked = false;
    const q = this.queue;
    this.queue = [];
    this.queued = 0;
    for (const f of q) this.send(f);
    if (!this.blocked && this.dropped > this.reported) {
      this.reported = this.dropped;
      this.send(`event: viewer\ndata: ${JSON.stringify({ dropped: this.dropped })}\n\n`);
    }
  }
}

export class ViewerServer {
  private readonly opts: ViewerOptions;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly assets = new Map<string, Buffer>();
  private readonly clients = new Set<SseClient>();
  private readonly backlog: Message[] = [];
  private backlogBytes = 0;
  private nextId = 1;
  private readonly feeds: ChannelFeed[] = [];
  private readonly videoSubs = new Set<TrickleSubscriber>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly counters = { sseDropped: 0, messages: 0, videoSegments: 0, videoSkipped: 0 };
  private baseUrl = '';

  constructor(opts: ViewerOptions) {
    this.opts = opts;
    this.log = opts.logger ?? childLogger('viewer');
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err), url: req.url }, 'viewer request failed');
        if (!res.headersSent) sendJson(res, 500, { error: { message: errorMessage(err) } });
        else res.destroy();
      });
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  stats(): ViewerStats {
    return {
      sseClients: this.clients.size,
      sseDropped: this.counters.sseDropped,
      messages: this.counters.messages,
      videoSegments: this.counters.videoSegments,
      videoSkipped: this.counters.videoSkipped,
      oversizedLines: this.feeds.reduce((s, f) => s + f.stats.oversized, 0),
    };
  }

  /** Loads the page, starts the channel feeds and listens; resolves with the page URL. */
  async listen(): Promise<string> {
    const dir = this.opts.assetsDir ?? defaultAssetsDir();
    for (const name of new Set(Object.values(ASSETS))) {
      try {
        this.assets.set(name, await readFile(`${dir.replace(/\/?$/, '/')}${name}`));
      } catch {
        throw new ViewerError('viewer_not_built', `the viewer page is not built (${dir}${name} is missing): run \`npm run build\``);
      }
    }
    const host = this.opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    this.baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
    const { data, events } = this.opts.channels;
    if (data) this.feeds.push(new ChannelFeed({ url: data, onLine: (l) => this.broadcast('data', l), logger: this.log }));
    if (events) this.feeds.push(new ChannelFeed({ url: events, onLine: (l) => this.broadcast('events', l), logger: this.log }));
    // An SSE comment now and then keeps proxies and idle timeouts from closing a quiet stream.
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) c.send(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    return this.baseUrl;
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await Promise.all(this.feeds.map((f) => f.close()));
    await Promise.all([...this.videoSubs].map((s) => s.close()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private broadcast(event: 'data' | 'events', line: string): void {
    const id = this.nextId++;
    // A line never holds \n (it was split on them); a stray \r would end the SSE field early.
    const frame = `id: ${id}\nevent: ${event}\ndata: ${line.replace(/\r/g, '')}\n\n`;
    this.counters.messages += 1;
    this.backlog.push({ id, frame });
    this.backlogBytes += frame.length;
    while (this.backlog.length > BACKLOG_MESSAGES || this.backlogBytes > BACKLOG_BYTES) {
      this.backlogBytes -= this.backlog.shift()!.frame.length;
    }
    for (const c of this.clients) this.counters.sseDropped += c.send(frame);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://viewer').pathname;
    // Bound to loopback, the page is reached by a loopback name: another Host is a DNS-rebinding
    // page trying to read the stream through the user's browser.
    if (LOOPBACK.has(this.opts.host ?? '127.0.0.1') && !LOOPBACK.has(hostName(req.headers.host))) {
      sendJson(res, 421, { error: { message: 'the viewer answers only to 127.0.0.1 / localhost' } });
      return;
    }
    const asset = ASSETS[path];
    if (req.method === 'GET' && asset) {
      res.writeHead(200, { 'content-type': MIME[asset]!, 'cache-control': 'no-cache' });
      res.end(this.assets.get(asset));
      return;
    }
    if (req.method === 'GET' && path === '/config') {
      sendJson(res, 200, { stream: this.opts.streamName, promptBox: Boolean(this.opts.runnerUrl) });
      return;
    }
    if (req.method === 'GET' && path === '/stats') {
      sendJson(res, 200, this.stats());
      return;
    }
    if (req.method === 'GET' && path === '/events') return this.serveEvents(req, res);
    const video = /^\/video\/(-?\d+)$/.exec(path);
    if (req.method === 'GET' && video) return this.serveVideo(Number(video[1]), req, res);
    if (req.method === 'POST' && path === '/params') return this.forwardParams(req, res);
    sendJson(res, 404, { error: { message: `no route ${req.method} ${path}` } });
  }

  private serveEvents(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_SSE_CLIENTS) {
      sendJson(res, 503, { error: { message: `at most ${MAX_SSE_CLIENTS} viewers at once` } });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    const client = new SseClient(res);
    const last = Number(req.headers['last-event-id']);
    for (const m of this.backlog) if (!Number.isFinite(last) || m.id > last) this.counters.sseDropped += client.send(m.frame);
    this.clients.add(client);
    req.socket.setNoDelay(true);
    res.on('close', () => this.clients.delete(client));
  }

  private async serveVideo(seq: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = this.opts.channels.output;
    if (!url) {
      sendJson(res, 404, { error: { message: 'no output channel configured' } });
      return;
    }
    if (this.videoSubs.size >= MAX_VIDEO_REQUESTS) {
      sendJson(res, 503, { error: { message: 'too many video requests at once' } });
      return;
    }
    const sub = new TrickleSubscriber({ url, start: seq, retryDelayMs: 200, maxRetries: 3, logger: this.log });
    this.videoSubs.add(sub);
    const closeSub = (): void => void sub.close();
    res.on('close', closeSub);
    try {
      const seg = await sub.next();
      if (!seg) {
        if (!res.headersSent && !res.destroyed) sendJson(res, 404, { error: { message: 'no such segment or channel' } });
        return;
      }
      const skipped = seq >= 0 && seg.seq > seq ? seg.seq - seq : 0;
      this.counters.videoSegments += 1;
      this.counters.videoSkipped += skipped;
      res.writeHead(200, {
        'content-type': 'video/mp2t',
        'cache-control': 'no-store',
        'x-trickle-seq': String(seg.seq),
        'x-trickle-skipped': String(skipped),
      });
      await pipeline(seg.body, res);
    } catch (err) {
      if (res.destroyed) return; // the page went away (or moved on) mid-segment
      if (!res.headersSent) sendJson(res, 502, { error: { message: errorMessage(err) } });
      else res.destroy();
    } finally {
      res.off('close', closeSub);
      this.videoSubs.delete(sub);
      await sub.close();
    }
  }

  private async forwardParams(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const runner = this.opts.runnerUrl;
    if (!runner) {
      sendJson(res, 404, { error: { message: 'no runner URL given to the viewer (--runner)' } });
      return;
    }
    // Only the page itself may change the prompt: another site's page in the same browser can POST
    // here too, but not with a JSON content type (that needs a CORS preflight, never answered here),
    // and its Origin would not be this server's.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) {
      sendJson(res, 403, { error: { message: 'prompt updates come only from the viewer page itself' } });
      return;
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      sendJson(res, 415, { error: { message: 'send the parameters as application/json' } });
      return;
    }
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) {
      sendJson(res, 413, { error: { message: `body over ${MAX_BODY_BYTES} bytes` } });
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.runnerToken) headers.authorization = `Bearer ${this.opts.runnerToken}`;
    try {
      const r = await fetch(`${runner.replace(/\/+$/, '')}/stream/params`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const text = (await r.text()).slice(0, MAX_BODY_BYTES);
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    } catch (err) {
      sendJson(res, 502, { error: { message: `runner unreachable: ${errorMessage(err)}` } });
    }
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** The host name of a Host header, without its port. */
function hostName(host: string | undefined): string {
  if (!host) return '';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  return host.replace(/:\d+$/, '').toLowerCase();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The request body as text, or undefined when it is longer than `cap` bytes. */
function readBody(req: IncomingMessage, cap: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > cap) {
        resolve(undefined);
        req.resume();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts a viewer; resolves once it listens. */
export async function startViewer(opts: ViewerOptions): Promise<ViewerServer> {
  const v = new ViewerServer(opts);
  await v.listen();
  return v;
}
