/**
 * Trickle publisher (spec §2.6.2). The constructor refuses a channel URL with a query, fragment or
 * credentials (TrickleError trickle_bad_url). Exactly one active segment plus one preconnected next: `next()`
 * hands out the already-open `POST {url}/{N}` and opens `POST {url}/{N+1}` at once, so the server has
 * the request (and sends its interim 100 keepalives) before the first byte exists. Bytes are streamed
 * as a chunked body while they are written; nothing is buffered per segment beyond the socket.
 * Bytes for N+1 are held back (the first write waits) until N's body has ended (spec case 22).
 *
 * Failure semantics, which the data/events writers and the media relay rely on:
 * - A failed segment rejects its `write()`/`end()` (or `publish()`) with a TrickleError:
 *   'trickle_not_found' (404), 'trickle_channel_closed' (`Lp-Trickle-Closed`), 'trickle_http_error',
 *   'trickle_connection'; `publish()` retries a segment that failed before any byte reached the server
 *   (up to maxRetries, retryDelayMs apart) and then rejects with 'trickle_retries_exhausted'.
 * - The first segment starts at the channel's `GET {url}/next` when the server answers it (else 0), so
 *   a publisher that takes over a used channel continues where the last one stopped.
 * - The publisher stays usable after any failure: the next `next()`/`publish()` opens fresh connections
 *   and first re-syncs its seq from `GET {url}/next`: the server's nextWrite when it answers, 0 when
 *   the channel is absent (404: a re-created channel starts at 0), its own counter when the server has
 *   no `/next` (400). After the server itself was unreachable (a restart), a nextWrite below our seq
 *   does not pull us back: the backlog continues at our seq, where subscribers that rode through the
 *   outage wait. While the server cannot be reached, `next()` rejects with 'trickle_connection'
 *   instead of posting at a guessed seq (`publish()` retries that like any connection failure).
 * - `closed` becomes true only through `close()`; a 404 does not close the publisher — a later
 *   `publish()` succeeds once the channel re-appears.
 * - Segment with bytes that failed or was `abort()`ed → `DELETE {url}/{seq}` (polite drop); an aborted
 *   segment with no bytes is ended as a zero-byte segment instead, so the server's nextWrite still moves.
 * - `close()`: optional `DELETE {url}` first (GL #3824 ordering), then the preconnected POST is ended as
 *   a zero-byte segment, then this publisher's sockets are destroyed.
 */
import type http from 'node:http';
import { childLogger, type Logger } from '../log.js';
import { TrickleError, asTrickleError } from './errors.js';
import { Transport, channelUrl, header, httpStatusError, joinUrl, sleep, within } from './http.js';

export interface TricklePublisherOptions {
  url: string;
  mimeType: string;
  /** Verify TLS certificates; default false (orchestrators often use self-signed certificates). */
  tlsVerify?: boolean;
  /** Send `DELETE {url}` on close(); default false (PyTrickle does not, go-livepeer's publisher does). */
  deleteOnClose?: boolean;
  /** publish(): attempts after the first for a segment that failed before any byte was sent; default 5. */
  maxRetries?: number;
  /** publish(): pause between those attempts; default 250 ms (go-livepeer's gateway uses 250 ms). */
  retryDelayMs?: number;
  logger?: Logger;
}

export interface TrickleSegmentOut {
  readonly seq: number;
  /** Resolves when the socket accepted the chunk (backpressure); rejects with TrickleError once the POST failed. */
  write(chunk: Buffer | string): Promise<void>;
  /** Ends the chunked body; resolves when the server answered 200; rejects with TrickleError otherwise. */
  end(): Promise<void>;
  /** Abandons the segment: DELETE {ch}/{seq} when bytes were sent (zero-byte end otherwise); never rejects. */
  abort(reason?: string): Promise<void>;
}

type PostResult = { ok: true; channelClosed: boolean } | { ok: false; err: TrickleError };

/** One `POST {url}/{seq}` with a streaming chunked body. */
class PostConn {
  readonly seq: number;
  readonly req: http.ClientRequest;
  readonly result: Promise<PostResult>;
  settled: PostResult | undefined;
  bytes = 0;
  connected = false;
  bodyEnded = false;
  interim = 0;

  constructor(transport: Transport, url: string, seq: number, mimeType: string) {
    this.seq = seq;
    const target = joinUrl(url, String(seq));
    this.req = transport.request('POST', target, { 'Content-Type': mimeType, 'Transfer-Encoding': 'chunked' });
    this.req.on('socket', (s) => {
      if (!s.connecting) this.connected = true;
      else s.once('connect', () => (this.connected = true));
    });
    this.req.on('information', () => (this.interim += 1));
    this.result = new Promise<PostResult>((resolve) => {
      const settle = (r: PostResult): void => {
        if (this.settled) return;
        this.settled = r;
        resolve(r);
      };
      this.req.on('error', (err) => settle({ ok: false, err: asTrickleError(err, `POST ${target}`) }));
      // Settled on the status line: a 404 answered early (Connection: close) must not be
      // overtaken by the EPIPE of a write racing the server's close.
      this.req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        if (status === 200) settle({ ok: true, channelClosed: header(res, 'lp-trickle-closed') !== undefined });
        else settle({ ok: false, err: httpStatusError(`POST ${target}`, status, '') });
      });
    });
    // The request is sent now (headers only) so the server holds it open: this is the preconnect.
    this.req.flushHeaders();
  }

  /** Bytes that may have reached the server (a connection that never opened sent nothing). */
  get bytesOnWire(): number {
    return this.connected ? this.bytes : 0;
  }

  failure(): TrickleError | undefined {
    const s = this.settled;
    if (!s) return undefined;
    if (!s.ok) return s.err;
    return s.channelClosed
      ? new TrickleError('trickle_channel_closed', `POST seq ${this.seq}: channel closed by the server`)
      : new TrickleError('trickle_http_error', `POST seq ${this.seq}: server answered before the body ended`);
  }

  write(chunk: Buffer): Promise<void> {
    const early = this.failure();
    if (early) return Promise.reject(early);
    if (chunk.length === 0) return Promise.resolve();
    this.bytes += chunk.length;
    if (this.req.write(chunk)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        this.req.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        this.req.off('drain', onDrain);
        reject(this.failure() ?? new TrickleError('trickle_connection', `POST seq ${this.seq}: connection closed`));
      };
      this.req.once('drain', onDrain);
      this.req.once('close', onClose);
    });
  }

  end(): void {
    if (this.bodyEnded) return;
    this.bodyEnded = true;
    if (!this.settled) this.req.end();
  }

  destroy(): void {
    this.bodyEnded = true;
    this.req.destroy();
  }
}

class SegmentOut implements TrickleSegmentOut {
  private state: 'open' | 'ending' | 'done' = 'open';
  private releaseNext!: () => void;
  /** Resolves once this segment's body has ended (or been abandoned); gates the next segment's bytes. */
  readonly bodyDone: Promise<void>;

  constructor(
    private readonly conn: PostConn,
    private readonly prevBodyDone: Promise<void>,
    private readonly owner: TricklePublisher,
  ) {
    this.bodyDone = new Promise<void>((r) => (this.releaseNext = r));
  }

  get seq(): number {
    return this.conn.seq;
  }

  get bytesOnWire(): number {
    return this.conn.bytesOnWire;
  }

  async write(chunk: Buffer | string): Promise<void> {
    if (this.state !== 'open') throw new TrickleError('trickle_aborted', `segment ${this.seq} already ended`);
    await this.prevBodyDone;
    try {
      await this.conn.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    } catch (err) {
      this.state = 'done';
      this.releaseNext();
      // A write that failed (connection refused, server gone) must give its seq back like a failed
      // end() does: otherwise every retry during an outage burns a seq and subscribers waiting at the
      // leading edge lose the backlog once the server returns.
      const terr = asTrickleError(err, `POST seq ${this.seq}`);
      this.owner.segmentFailed(this.conn, terr);
      throw terr;
    }
  }

  async end(): Promise<void> {
    if (this.state !== 'open') throw new TrickleError('trickle_aborted', `segment ${this.seq} already ended`);
    this.state = 'ending';
    await this.prevBodyDone;
    this.conn.end();
    this.releaseNext();
    const r = await this.conn.result;
    this.state = 'done';
    const err = r.ok
      ? r.channelClosed
        ? new TrickleError('trickle_channel_closed', `POST seq ${this.seq}: channel closed by the server`)
        : undefined
      : r.err;
    if (!err) return this.owner.segmentDone();
    this.owner.segmentFailed(this.conn, err);
    throw err;
  }

  async abort(reason = 'aborted'): Promise<void> {
    if (this.state === 'done') return;
    this.state = 'done';
    await this.prevBodyDone;
    this.owner.segmentAbandoned(this.conn, reason);
    this.releaseNext();
  }
}

export class TricklePublisher {
  private readonly url: string;
  private readonly mimeType: string;
  private readonly deleteOnClose: boolean;
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;
  private readonly log: Logger;
  private readonly transport: Transport;
  private seq = 0;
  private preconnect: PostConn | null = null;
  private lastBodyDone: Promise<void> = Promise.resolve();
  // A new publisher on an existing channel (a restarted stream reusing `<id>-data`) must continue at
  // the channel's nextWrite: seq 0 would land behind subscribers waiting at the leading edge.
  private needResync = true;
  // Set when the server itself was unreachable since the last re-sync (a restart, not a deleted
  // channel): a fresh channel that answers `/next` below our seq then continues at our seq, where
  // subscribers that rode through the outage are waiting.
  private serverLost = false;
  /** Lowest seq that failed since the last segment that succeeded (what a restarted server lacks). */
  private firstFailed: number | undefined;
  private closedFlag = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: TricklePublisherOptions) {
    this.url = channelUrl(opts.url);
    this.mimeType = opts.mimeType;
    this.deleteOnClose = opts.deleteOnClose ?? false;
    this.maxRetries = opts.maxRetries ?? 5;
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    this.log = opts.logger ?? childLogger('trickle-publisher', { url: this.url });
    // One connection per POST, like PyTrickle's `Connection: close`: a preconnect never lands on a stale socket.
    this.transport = new Transport(this.url, { tlsVerify: opts.tlsVerify ?? false, keepAlive: false });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The seq the next `next()` will hand out (before any re-sync). */
  get nextSeq(): number {
    return this.seq;
  }

  next(): Promise<TrickleSegmentOut> {
    const run = this.chain.then(() => this.take());
    this.chain = run.catch(() => undefined);
    return run;
  }

  async publish(data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let attempt = 0; ; attempt++) {
      let seg: SegmentOut | undefined;
      try {
        seg = (await this.next()) as SegmentOut;
        if (buf.length > 0) await seg.write(buf);
        await seg.end();
        return;
      } catch (e) {
        const err = asTrickleError(e, `publish ${this.url}`);
        // No segment (the server could not be asked for its seq) or one that sent no byte: safe to retry.
        const retryable = err.code === 'trickle_connection' && (seg?.bytesOnWire ?? 0) === 0 && !this.closedFlag;
        if (!retryable) throw err;
        if (attempt >= this.maxRetries) {
          throw new TrickleError(
            'trickle_retries_exhausted',
            `publish ${this.url}: gave up after ${attempt + 1} attempts: ${err.message}`,
            { cause: err },
          );
        }
        this.log.debug({ seq: seg?.seq, attempt, err: err.message }, 'publish failed before sending; retrying');
        await sleep(this.retryDelayMs);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    await this.chain;
    if (this.deleteOnClose) {
      try {
        const r = await this.transport.simple('DELETE', this.url, 5000);
        if (r.status !== 200) this.log.warn({ status: r.status }, 'DELETE of channel on close failed');
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'DELETE of channel on close failed');
      }
    }
    const pc = this.preconnect;
    this.preconnect = null;
    if (pc && !pc.settled) {
      // The active segment's body must end first (ordering), but never wait on it forever.
      await within(this.lastBodyDone, 5000);
      pc.end(); // zero-byte segment: the server's nextWrite moves past it
      await within(pc.result, 5000);
    }
    this.transport.destroy();
  }

  // ---- used by SegmentOut ----------------------------------------------------------------------

  /** A segment was stored by the server: nothing before it needs re-sending after a restart. */
  segmentDone(): void {
    this.firstFailed = undefined;
  }

  /** A segment failed: re-sync on the next take; a seq the server cannot hold (no bytes, 404) is reused. */
  segmentFailed(conn: PostConn, err: TrickleError): void {
    this.firstFailed = Math.min(this.firstFailed ?? conn.seq, conn.seq);
    this.log.debug({ seq: conn.seq, err: err.message, bytes: conn.bytesOnWire }, 'segment failed');
    this.needResync = true;
    if (err.code === 'trickle_connection') this.serverLost = true;
    // A 404 means the server stored nothing (channel gone: deleted, or the server restarted), so that
    // seq is free again like one that never carried bytes; burning it would put the first segment
    // after the outage past the subscribers waiting at the leading edge.
    if (conn.bytesOnWire === 0 || err.code === 'trickle_not_found') this.seq = Math.min(this.seq, conn.seq);
    else if (err.code === 'trickle_connection' || err.code === 'trickle_http_error') this.politeDelete(conn.seq);
  }

  segmentAbandoned(conn: PostConn, reason: string): void {
    this.log.debug({ seq: conn.seq, reason, bytes: conn.bytes }, 'segment abandoned');
    if (conn.settled) return;
    if (conn.bytes === 0) {
      conn.end();
      void conn.result;
      return;
    }
    conn.destroy();
    this.politeDelete(conn.seq);
  }

  // ---- internals -------------------------------------------------------------------------------

  private async take(): Promise<SegmentOut> {
    if (this.closedFlag) throw new TrickleError('trickle_closed', 'publisher closed');
    let conn = this.preconnect;
    this.preconnect = null;
    if (conn?.settled) {
      // The preconnect died: the server went away (restart) or the channel was removed.
      this.needResync = true;
      if (conn.failure()?.code === 'trickle_connection') this.serverLost = true;
    }
    if (this.needResync) {
      conn?.destroy();
      conn = null;
      const serverNext = await this.fetchNext();
      // Unreachable: no POST at a guessed seq. A server that comes back in between would take it at
      // our stale counter on a fresh channel, past subscribers waiting at its seq 0 (the seq would be
      // lost to them). The caller retries, and this take asks `/next` again.
      if (serverNext instanceof TrickleError) {
        this.serverLost = true;
        throw serverNext;
      }
      this.needResync = false;
      if (typeof serverNext === 'number') {
        if (this.serverLost && serverNext < this.seq) {
          // Nothing of what failed survived the restart: start again at the first failed seq (a
          // segment cut by the crash may have counted as sent, but the new server never saw it).
          const to = Math.max(serverNext, Math.min(this.seq, this.firstFailed ?? this.seq));
          this.log.info({ seq: this.seq, server_next: serverNext, to }, 'server restarted with the channel behind us: continuing at our seq');
          this.seq = to;
        } else {
          if (serverNext !== this.seq) this.log.info({ from: this.seq, to: serverNext }, 're-synced seq from server');
          this.seq = serverNext;
        }
      }
      // The channel does not exist (yet): whoever creates it — the orchestrator, or our POST on an
      // autocreating server — starts it at 0, so that is where the first segment belongs. A 404 to
      // this POST re-syncs on the next take.
      else if (serverNext === 'absent') this.seq = 0;
      this.serverLost = false;
    }
    if (!conn || conn.seq !== this.seq) {
      conn?.destroy();
      conn = new PostConn(this.transport, this.url, this.seq, this.mimeType);
    }
    void conn.result; // settled outcomes are read synchronously via conn.settled
    const seg = new SegmentOut(conn, this.lastBodyDone, this);
    this.lastBodyDone = seg.bodyDone;
    this.seq = conn.seq + 1;
    this.preconnect = new PostConn(this.transport, this.url, this.seq, this.mimeType);
    return seg;
  }

  /**
   * The server's nextWrite; 'absent' when the channel does not exist (404); a TrickleError
   * ('trickle_connection') when the server cannot be reached; undefined when the server has no `/next`
   * (older servers answer 400): then our own counter stands.
   */
  private async fetchNext(): Promise<number | 'absent' | TrickleError | undefined> {
    let r: { status: number; body: string };
    try {
      r = await this.transport.simple('GET', joinUrl(this.url, 'next'), 2000);
    } catch (err) {
      return asTrickleError(err, `GET ${this.url}/next`);
    }
    if (r.status === 404) return 'absent';
    if (r.status !== 200) return undefined;
    const n = Number(r.body.trim());
    if (!Number.isInteger(n) || n < 0) return undefined;
    return n;
  }

  private politeDelete(seq: number): void {
    this.transport.simple('DELETE', joinUrl(this.url, String(seq)), 2000).catch(() => undefined);
  }
}
