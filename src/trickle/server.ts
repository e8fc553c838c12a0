/**
 * Embedded trickle server (spec §1; reference: go-livepeer trickle/trickle_server.go), so the project
 * can run and test end to end on one machine with nothing outside it.
 *
 * Why plain node:http with a tiny router rather than fastify: this is a protocol server that needs raw
 * control over *when* response headers go out (a GET for a future segment is a long poll that sends
 * nothing until the first byte exists), over interim `100 Continue` responses on an idle POST
 * (`res.writeContinue()` every keepaliveMs), and over streaming request bodies without any body parser.
 * Node's default server timeouts would cut long preconnects, so requestTimeout is 0.
 *
 * Deviations from Go (all where Go panics or is racy): negative seqs other than -1 (POST/DELETE) and
 * -1/-2 (GET) are answered 400 `Invalid idx`; bytes arriving for an already-closed segment are dropped
 * (closed segments are immutable); a POST that ends after its channel was deleted carries
 * `Lp-Trickle-Closed` even when it had bytes.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { childLogger, type Logger } from '../log.js';
import { systemClock, type Clock } from '../util/time.js';
import { Segment } from './segment.js';

export interface TrickleServerOptions {
  port?: number;
  host?: string;
  /** Routes live under this path; default '/'. The orchestrator uses '/ai/trickle/'. */
  basePath?: string;
  /** Create channels on first `POST {ch}/{seq}` or `POST {ch}`; default false (as on an orchestrator). */
  autocreate?: boolean;
  /** Publish `{"added":[…]}` / `{"removed":[…]}` segments on the internal `_changes` channel. */
  changefeed?: boolean;
  /** Channels with no write for this long are removed (in-process `_…` channels are kept); default 5 min. */
  idleTimeoutMs?: number;
  /** How often idle channels are looked for; default 1 min. */
  sweepIntervalMs?: number;
  /** The clock idleness is measured on (src/util/time.ts); default the system clock. Tests move it by hand. */
  clock?: Pick<Clock, 'now'>;
  /** Largest segment a POST may write; past it the POST gets 413 and the segment is closed; default 64 MiB. */
  maxSegmentBytes?: number;
  /** Most channels at once; a POST that would autocreate one more gets 429; default 1024. */
  maxChannels?: number;
  /** Interim `100 Continue` interval on a POST that has sent no body byte yet; default 10 s. */
  keepaliveMs?: number;
  /** Serve HTTPS with this key and certificate (PEM), as orchestrators do (often self-signed). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  logger?: Logger;
}

const SLOTS = 5;
const CHANGES = '_changes';

class Channel {
  nextWrite = 0;
  writeTime: number;
  closed = false;
  /** Created over the network by autocreate (not by the embedding process). */
  remote = false;
  readonly slots: Array<Segment | undefined> = new Array<Segment | undefined>(SLOTS);

  constructor(
    readonly name: string,
    readonly mimeType: string,
    private readonly now: () => number,
  ) {
    this.writeTime = now();
  }

  segmentAt(seq: number): Segment | undefined {
    const s = this.slots[seq % SLOTS];
    return s && s.seq === seq ? s : undefined;
  }

  getForWrite(seq: number): Segment {
    const existing = this.segmentAt(seq);
    if (existing) return existing;
    this.slots[seq % SLOTS]?.close(); // an older seq: its readers finish with what they have
    const seg = new Segment(seq);
    this.slots[seq % SLOTS] = seg;
    return seg;
  }

  getForRead(seq: number): Segment | undefined {
    const existing = this.segmentAt(seq);
    if (existing) return existing;
    // Precreate: a reader just ahead of the writer waits; `seq 1 while nextWrite 0` is a startup grace.
    if (!this.closed && (seq === this.nextWrite || (this.nextWrite === 0 && seq === 1))) return this.getForWrite(seq);
    return undefined;
  }

  touch(seq: number): void {
    this.nextWrite = seq + 1;
    this.writeTime = this.now();
  }

  close(): void {
    this.closed = true;
    for (const s of this.slots) s?.close();
  }
}

/** Go's strconv.Atoi accepts an optional sign and leading zeros. */
function parseSeq(s: string): number | undefined {
  if (!/^[+-]?\d{1,15}$/.test(s)) return undefined;
  return Number(s);
}

function normaliseBase(p: string | undefined): string {
  let b = p ?? '/';
  if (!b.startsWith('/')) b = `/${b}`;
  if (!b.endsWith('/')) b = `${b}/`;
  return b;
}

/** Go's http.Error: text/plain, nosniff, message + newline. */
function httpError(res: http.ServerResponse, status: number, msg: string, extra: http.OutgoingHttpHeaders = {}): void {
  if (res.headersSent || res.writableEnded) return;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(`${msg}\n`);
}

export class TrickleServer {
  private readonly opts: Required<Omit<TrickleServerOptions, 'logger' | 'host' | 'port' | 'tls' | 'clock'>> & { host: string; port: number };
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly basePath: string;
  private readonly channels = new Map<string, Channel>();
  private readonly open = new Set<{ method: string; channel: string }>();
  private readonly http: http.Server | https.Server;
  private readonly scheme: 'http' | 'https';
  private sweepTimer: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private closing = false;

  constructor(opts: TrickleServerOptions = {}) {
    const clock = opts.clock ?? systemClock;
    this.now = () => clock.now();
    this.basePath = normaliseBase(opts.basePath);
    this.opts = {
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      basePath: this.basePath,
      autocreate: opts.autocreate ?? false,
      changefeed: opts.changefeed ?? false,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5 * 60_000,
      sweepIntervalMs: opts.sweepIntervalMs ?? 60_000,
      keepaliveMs: opts.keepaliveMs ?? 10_000,
      maxSegmentBytes: opts.maxSegmentBytes ?? 64 * 1024 * 1024,
      maxChannels: opts.maxChannels ?? 1024,
    };
    this.log = opts.logger ?? childLogger('trickle-server');
    const serverOpts: http.ServerOptions = {
      // Long-lived preconnected POSTs and long-poll GETs must not be cut by Node's defaults.
      requestTimeout: 0,
      headersTimeout: 60_000,
      keepAliveTimeout: 65_000,
      noDelay: true,
    };
    this.scheme = opts.tls ? 'https' : 'http';
    this.http = opts.tls
      ? https.createServer({ ...serverOpts, key: opts.tls.key, cert: opts.tls.cert })
      : http.createServer(serverOpts);
    this.http.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res));
    this.http.on('clientError', (_err: Error, socket: import('node:stream').Duplex) => {
      // end() alone leaves a half-open socket (and its fd) to a client that never closes; destroy it
      // once the answer is flushed, or after 1 s if the client does not read it.
      if (!socket.writable) return void socket.destroy();
      const hard = setTimeout(() => socket.destroy(), 1000);
      hard.unref();
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n', () => {
        clearTimeout(hard);
        socket.destroy();
      });
    });
    if (this.opts.changefeed) this.channels.set(CHANGES, new Channel(CHANGES, 'application/json', this.now));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.http.once('error', onError);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off('error', onError);
        resolve();
      });
    });
    this.boundPort = (this.http.address() as AddressInfo).port;
    this.sweepTimer = setInterval(() => this.sweep(), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
    this.log.info({ url: this.url, autocreate: this.opts.autocreate }, 'trickle server listening');
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    const shown = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
    return `${this.scheme}://${shown}:${this.boundPort}${this.basePath}`;
  }

  channelUrl(name: string): string {
    return `${this.url}${encodeURIComponent(name)}`;
  }

  /** In-process creation, like go-livepeer's TrickleLocalPublisher.CreateChannel. Existing channel: no-op. */
  createChannel(name: string, mimeType: string): void {
    this.getOrCreate(name, mimeType, false);
  }

  deleteChannel(name: string): boolean {
    const ch = this.channels.get(name);
    if (!ch || name === CHANGES) return false;
    this.removeChannel(ch);
    return true;
  }

  hasChannel(name: string): boolean {
    return this.channels.has(name);
  }

  /** Requests being served now (long polls, streaming POSTs …), by method and channel: diagnostics and leak checks. */
  openRequests(): Array<{ method: string; channel: string }> {
    return [...this.open].map((o) => ({ ...o }));
  }

  /** Current `nextWrite` of a channel (diagnostics and tests), undefined when absent. */
  nextWriteOf(name: string): number | undefined {
    return this.channels.get(name)?.nextWrite;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    // Closing every channel answers every waiting GET and preconnected POST (Lp-Trickle-Closed).
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
    if (!this.http.listening) return;
    const done = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    // Bodies still streaming into closed segments would otherwise hold the close open.
    const force = setTimeout(() => this.http.closeAllConnections(), 250);
    await done;
    clearTimeout(force);
  }

  /**
   * Stops at once without answering anyone: every connection is cut, as clients see it when the
   * process dies (no Lp-Trickle-Closed). For a crash-like stop (fault drills); close() is the clean one.
   */
  async terminate(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.channels.clear();
    if (!this.http.listening) return;
    const done = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await done;
  }

  // ---- internals -------------------------------------------------------------------------------

  private getOrCreate(name: string, mimeType: string, remote: boolean): Channel {
    const existing = this.channels.get(name);
    if (existing) return existing;
    const ch = new Channel(name, mimeType, this.now);
    ch.remote = remote;
    this.channels.set(name, ch);
    this.log.debug({ channel: name, mimeType }, 'channel created');
    if (name !== CHANGES) this.publishChange({ added: [name] });
    return ch;
  }

  private removeChannel(ch: Channel): void {
    ch.close();
    this.channels.delete(ch.name);
    this.log.debug({ channel: ch.name }, 'channel removed');
    if (!this.closing) this.publishChange({ removed: [ch.name] });
  }

  private publishChange(change: { added?: string[]; removed?: string[] }): void {
    const feed = this.channels.get(CHANGES);
    if (!this.opts.changefeed || !feed) return;
    const seq = feed.nextWrite;
    const seg = feed.getForWrite(seq);
    feed.touch(seq);
    seg.append(Buffer.from(JSON.stringify(change)));
    seg.close();
  }

  private sweep(): void {
    const cutoff = this.now() - this.opts.idleTimeoutMs;
    for (const ch of [...this.channels.values()]) {
      // `_…` channels are exempt (spec case 16) only when the embedding process made them: a client
      // autocreating `_…` names must not get channels that live forever.
      if (ch.name === CHANGES || (ch.name.startsWith('_') && !ch.remote) || ch.writeTime > cutoff) continue;
      this.log.info({ channel: ch.name }, 'idle channel swept');
      this.removeChannel(ch);
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', () => undefined); // aborted uploads are handled through 'close'
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (!path.startsWith(this.basePath)) return httpError(res, 404, '404 page not found');
    let parts: string[];
    try {
      parts = path.slice(this.basePath.length).split('/').map(decodeURIComponent);
    } catch {
      return httpError(res, 400, 'Invalid stream');
    }
    const [name, seq] = parts;
    if (!name || parts.length > 2 || (parts.length === 2 && !seq)) return httpError(res, 404, '404 page not found');
    const method = req.method ?? 'GET';
    const open = { method, channel: name };
    this.open.add(open);
    res.once('close', () => this.open.delete(open));
    if (seq === undefined) {
      if (method === 'POST') return this.handleCreate(req, res, name);
      if (method === 'DELETE') return this.handleDelete(res, name);
    } else {
      if (method === 'GET' && seq === 'next') return this.handleNext(res, name);
      if (method === 'GET') return this.handleGet(req, res, name, seq);
      if (method === 'POST') return this.handlePost(req, res, name, seq);
      if (method === 'DELETE') return this.handleDeleteSeq(res, name, seq);
    }
    return httpError(res, 405, 'Method Not Allowed', { Connection: 'close' });
  }

  private handleCreate(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
    req.resume();
    const exists = this.channels.has(name);
    if (!exists && !this.opts.autocreate) return httpError(res, 404, 'Stream not found');
    if (!exists) this.getOrCreate(name, headerValue(req.headers['expect-content']) ?? 'application/octet-stream', true);
    res.writeHead(200);
    res.end();
  }

  private handleDelete(res: http.ServerResponse, name: string): void {
    const ch = this.channels.get(name);
    if (!ch) return httpError(res, 400, 'Invalid stream');
    this.removeChannel(ch);
    res.writeHead(200);
    res.end();
  }

  private handleNext(res: http.ServerResponse, name: string): void {
    const ch = this.channels.get(name);
    if (!ch) return httpError(res, 404, 'Stream not found');
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': 'text/plain; charset=utf-8',
      'Lp-Trickle-Latest': String(ch.nextWrite),
    };
    if (ch.closed) headers['Lp-Trickle-Closed'] = 'terminated';
    res.writeHead(200, headers);
    res.end(String(ch.nextWrite));
  }

  private handleDeleteSeq(res: http.ServerResponse, name: string, seqStr: string): void {
    const ch = this.channels.get(name);
    if (!ch) return httpError(res, 404, 'Stream not found');
    const seq = parseSeq(seqStr);
    if (seq === undefined || seq < 0) return httpError(res, 400, 'Invalid idx');
    const seg = ch.segmentAt(seq);
    if (!seg) return httpError(res, 400, 'Nonexistent segment');
    seg.close();
    res.writeHead(200);
    res.end();
  }

  private handlePost(req: http.IncomingMessage, res: http.ServerResponse, name: string, seqStr: string): void {
    let ch = this.channels.get(name);
    if (!ch && this.opts.autocreate && name !== CHANGES) {
      if (this.channels.size >= this.opts.maxChannels) {
        return httpError(res, 429, `Too many channels (limit ${this.opts.maxChannels})`, { Connection: 'close' });
      }
      ch = this.getOrCreate(name, headerValue(req.headers['content-type']) ?? 'application/octet-stream', true);
    }
    // Connection: close wakes Go preconnects and spares us draining a body nobody wants.
    if (!ch) return httpError(res, 404, 'Stream not found', { Connection: 'close' });
    const parsed = parseSeq(seqStr);
    if (parsed === undefined || parsed < -1) return httpError(res, 400, 'Invalid idx', { Connection: 'close' });
    const channel = ch;
    const seq = parsed === -1 ? channel.nextWrite : parsed;
    const seg = channel.getForWrite(seq);
    if (headerValue(req.headers['lp-trickle-reset'])) {
      // A restarted publisher: release readers stuck on the dead publisher's older segments.
      for (const s of channel.slots) if (s && s.seq < seq) s.close();
    }

    let received = 0;
    let done = false;
    const keepalive = setInterval(() => {
      if (received === 0 && !done && !res.writableEnded) res.writeContinue();
    }, this.opts.keepaliveMs);
    keepalive.unref();

    const finish = (): void => {
      done = true;
      clearInterval(keepalive);
      unsubscribe();
    };
    const respondOk = (): void => {
      finish();
      const headers: http.OutgoingHttpHeaders = { 'Lp-Trickle-Seq': String(seq) };
      if (received === 0) {
        channel.touch(seq); // zero-byte segments still advance nextWrite (GL #3824)
        headers.Connection = 'close';
      }
      if (channel.closed) headers['Lp-Trickle-Closed'] = 'terminated';
      if (!res.headersSent) {
        res.writeHead(200, headers);
        res.end();
      }
    };
    // Closed by someone else before the first byte (channel/seq DELETE, reset, slot reuse): the wait
    // ends as if the body had ended, which is how preconnected publishers learn the channel is gone.
    const unsubscribe = seg.onChange(() => {
      if (!done && seg.closed && received === 0) respondOk();
    });
    if (seg.closed && received === 0) return respondOk();

    req.on('data', (chunk: Buffer) => {
      if (done) return;
      if (received === 0) channel.touch(seq); // nextWrite moves on the first body byte, not on headers (GL #3548)
      received += chunk.length;
      if (received > this.opts.maxSegmentBytes) {
        // Readers get what arrived up to the limit as a closed segment; the rest is refused, not buffered.
        finish();
        seg.close();
        this.log.warn({ channel: name, seq, limit: this.opts.maxSegmentBytes }, 'segment over the size limit: refused');
        httpError(res, 413, `Segment too large (limit ${this.opts.maxSegmentBytes} bytes)`, { Connection: 'close' });
        req.pause();
        res.on('finish', () => req.destroy());
        return;
      }
      seg.append(chunk);
    });
    req.on('end', () => {
      if (done) return;
      seg.close();
      respondOk();
    });
    req.on('close', () => {
      if (done || req.complete) return;
      // Aborted upload: the segment stays open (as in Go) until slot reuse, seq DELETE or channel removal.
      finish();
      this.log.debug({ channel: name, seq, received }, 'POST body aborted');
      httpError(res, 500, 'Server error');
    });
  }

  private handleGet(req: http.IncomingMessage, res: http.ServerResponse, name: string, seqStr: string): void {
    const ch = this.channels.get(name);
    if (!ch) return httpError(res, 404, 'Stream not found');
    const parsed = parseSeq(seqStr);
    if (parsed === undefined || parsed < -2) return httpError(res, 400, 'Invalid idx');
    const latestAtRequest = ch.nextWrite;
    const seq = parsed === -1 ? ch.nextWrite : parsed === -2 ? Math.max(ch.nextWrite - 1, 0) : parsed;
    const seg = ch.getForRead(seq);
    if (!seg) {
      const headers: http.OutgoingHttpHeaders = {
        'Content-Type': 'text/plain; charset=utf-8',
        'Lp-Trickle-Latest': String(ch.nextWrite),
        'Lp-Trickle-Seq': String(seq),
      };
      if (ch.closed) headers['Lp-Trickle-Closed'] = 'terminated';
      res.writeHead(ch.closed ? 200 : 470, headers);
      res.end('Entry not found');
      return;
    }

    let pos = 0;
    let draining = false;
    let finished = false;
    const finish = (): void => {
      finished = true;
      unsubscribe();
    };
    // No headers until the first byte exists or the segment closes: the response *is* the segment start.
    const pump = (): void => {
      if (finished || draining) return;
      if (!res.headersSent) {
        if (seg.chunkCount === 0 && !seg.closed) return;
        if (seg.chunkCount === 0) {
          const headers: http.OutgoingHttpHeaders = {
            'Content-Type': ch.mimeType,
            'Lp-Trickle-Seq': String(seg.seq),
            'Lp-Trickle-Latest': String(ch.nextWrite),
          };
          if (ch.closed) headers['Lp-Trickle-Closed'] = 'terminated';
          res.writeHead(200, headers);
          res.end();
          finish();
          return;
        }
        const headers: http.OutgoingHttpHeaders = { 'Content-Type': ch.mimeType, 'Lp-Trickle-Seq': String(seg.seq) };
        if (latestAtRequest !== seg.seq) headers['Lp-Trickle-Latest'] = String(latestAtRequest);
        res.writeHead(200, headers);
      }
      while (pos < seg.chunkCount) {
        const chunk = seg.chunkAt(pos++) as Buffer;
        if (!res.write(chunk)) {
          draining = true;
          res.once('drain', () => {
            draining = false;
            pump();
          });
          return;
        }
      }
      if (seg.closed) {
        res.end();
        finish();
      }
    };
    const unsubscribe = seg.onChange(pump);
    res.on('close', finish); // client gone or response done
    pump();
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}
