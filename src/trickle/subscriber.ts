/**
 * Trickle subscriber (spec §2.6.1). The constructor refuses a channel URL with a query, fragment or
 * credentials (TrickleError trickle_bad_url). `next()` resolves with a segment the moment its response headers
 * arrive; the body is a live Readable (no buffering of whole segments). Right after each 200 the GET
 * for the following seq is opened in the background (preconnect), so the next segment's first byte
 * reaches us as soon as the publisher writes it.
 *
 * Reactions: 404 → clean end (no retry); `Lp-Trickle-Closed` → clean end; 470 → jump to
 * `Lp-Trickle-Latest` at once — except that a subscriber never jumps back over segments it has read:
 * a 470 whose Latest is at or below the last seq delivered means the channel is behind us (its
 * server restarted; the publisher continues at our seq), so the same seq is asked again with backoff;
 * only if that lasts resetGraceMs does the channel count as reset, and reading resumes at the oldest
 * segment the server may still hold (Latest − 4, at least 0). Another reset is honoured only after
 * reading past the last one's Latest or with a lower Latest, so a server that keeps pointing
 * backwards is backed off and counted as failures, never re-read in a loop; a 200 without
 * `Lp-Trickle-Seq` is not a segment (not a trickle server:
 * its body is discarded, error 'trickle_not_a_server'); anything else (non-2xx, connection failures) →
 * retry the same seq after retryDelayMs, doubling per consecutive failure up to 8×; more than
 * maxRetries consecutive failures (470s count, as in PyTrickle) → next() throws
 * TrickleError('trickle_retries_exhausted'), after which the counter restarts so a caller may call
 * next() again. No total timeout applies to a segment; a GET still waiting for headers is re-issued
 * every preconnectRefreshMs (Go's 20 s) so a silently dead connection cannot strand us.
 *
 * A segment body that is cut short errors with TrickleError('trickle_connection'); consume bodies with
 * `for await` / stream.pipeline (the body carries a no-op 'error' listener so an unread body never
 * crashes the process).
 */
import type http from 'node:http';
import { Readable } from 'node:stream';
import { childLogger, type Logger } from '../log.js';
import { TrickleError, asTrickleError } from './errors.js';
import { Transport, channelUrl, header, httpStatusError, intHeader, joinUrl, readCapped, sleep } from './http.js';

export interface TrickleSubscriberOptions {
  url: string;
  /** First seq: -2 = segment being written (default, as PyTrickle), -1 = next segment (as Go), N ≥ 0. */
  start?: number;
  /** Consecutive failures tolerated before next() throws; default 5. */
  maxRetries?: number;
  /** Pause between retries; default 300 ms. */
  retryDelayMs?: number;
  /** Verify TLS certificates; default false (orchestrators often use self-signed certificates). */
  tlsVerify?: boolean;
  /** A GET still waiting for its headers after this long is re-issued; default 20 s, 0 = never. */
  preconnectRefreshMs?: number;
  /**
   * How long a channel may stay behind a segment already read (470 with Latest ≤ that seq) before it
   * counts as reset and is read again from its start; default 10 s (longer than a data writer's
   * retry backoff, so a restarted server's backlog at our seq arrives first).
   */
  resetGraceMs?: number;
  logger?: Logger;
}

export interface TrickleSegmentIn {
  seq: number;
  body: Readable;
  /** The channel's mime type, as the server sent it. */
  contentType?: string;
}

/** Segments a trickle server keeps readable behind its nextWrite (go-livepeer's ring of 5). */
const RETAINED_SEGMENTS = 5;

/** Socket reads (each ≤ 64 KiB) a segment body queues before the socket is paused. */
const BODY_QUEUE_CHUNKS = 16;

type Outcome =
  | { kind: 'segment'; res: http.IncomingMessage; seq: number }
  | { kind: 'end'; why: string }
  | { kind: 'missing'; latest: number }
  | { kind: 'error'; err: TrickleError };

interface Pending {
  seq: number;
  outcome: Promise<Outcome>;
  abort(): void;
}

export class TrickleSubscriber {
  private readonly url: string;
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;
  private readonly refreshMs: number;
  private readonly log: Logger;
  private readonly transport: Transport;
  private readonly stop = new AbortController();
  private seq: number;
  private pending: Pending | null = null;
  private ended = false;
  private failures = 0;
  /** Seq of the last segment handed out (-1 before the first). */
  private delivered = -1;
  /** Latest of the last reset honoured: another needs progress past it, or a lower Latest. */
  private resetAt: number | undefined;
  /** When the channel was first seen behind our seq (470 with Latest ≤ delivered), and retries since. */
  private behindSince: number | undefined;
  private behindTries = 0;
  private readonly resetGraceMs: number;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly bodies = new Set<Readable>();

  constructor(opts: TrickleSubscriberOptions) {
    this.url = channelUrl(opts.url);
    this.seq = opts.start ?? -2;
    this.maxRetries = opts.maxRetries ?? 5;
    this.retryDelayMs = opts.retryDelayMs ?? 300;
    this.refreshMs = opts.preconnectRefreshMs ?? 20_000;
    this.resetGraceMs = opts.resetGraceMs ?? 10_000;
    this.log = opts.logger ?? childLogger('trickle-subscriber', { url: this.url });
    this.transport = new Transport(this.url, { tlsVerify: opts.tlsVerify ?? false, keepAlive: true });
  }

  /** The seq the next GET will ask for (negative until the first segment resolved it). */
  get nextSeq(): number {
    return this.seq;
  }

  next(): Promise<TrickleSegmentIn | null> {
    const run = this.chain.then(() => this.advance());
    this.chain = run.catch(() => undefined);
    return run;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TrickleSegmentIn> {
    for (;;) {
      const seg = await this.next();
      if (!seg) return;
      yield seg;
    }
  }

  /** Aborts pending GETs and any segment body still streaming; next() resolves null from now on. */
  async close(): Promise<void> {
    if (this.stop.signal.aborted) return;
    this.ended = true;
    this.stop.abort();
    this.pending?.abort();
    this.pending = null;
    for (const b of this.bodies) b.destroy(new TrickleError('trickle_closed', 'subscriber closed'));
    this.transport.destroy();
    await this.chain;
  }

  private async advance(): Promise<TrickleSegmentIn | null> {
    for (;;) {
      if (this.ended) return null;
      const pending = this.pending && this.pending.seq === this.seq ? this.pending : this.connect(this.seq);
      this.pending = null;
      const out = await pending.outcome;
      if (this.ended) {
        if (out.kind === 'segment') out.res.destroy();
        return null;
      }
      switch (out.kind) {
        case 'segment': {
          this.failures = 0;
          this.behindSince = undefined;
          this.behindTries = 0;
          const requested = this.seq;
          this.seq = out.seq >= 0 ? out.seq + 1 : requested >= 0 ? requested + 1 : requested;
          if (out.seq >= 0) this.delivered = out.seq;
          this.pending = this.connect(this.seq);
          return { seq: out.seq, body: this.wrapBody(out.res, out.seq), contentType: header(out.res, 'content-type') };
        }
        case 'end':
          this.log.debug({ why: out.why, seq: this.seq }, 'end of stream');
          this.ended = true;
          this.transport.destroy();
          return null;
        case 'missing': {
          const err = new TrickleError('trickle_http_error', `seq not available (470), latest ${out.latest}`, { status: 470 });
          if (this.delivered < 0 || out.latest < 0 || out.latest > this.delivered) {
            // Too old (we fell behind) or not there yet before our first segment: as the protocol says.
            this.behindSince = undefined;
            this.log.debug({ seq: this.seq, latest: out.latest }, '470: jumping to latest');
            this.seq = out.latest;
          } else {
            // The channel is behind a segment we already read. Its server restarted (our publisher
            // then continues at our seq: wait for it) or it was reset and refilled from 0 by someone
            // else (then, after resetGraceMs, read it from the oldest segment it may still hold).
            // Never jump straight back onto segments we have read.
            const now = Date.now();
            this.behindSince ??= now;
            const reset = now - this.behindSince >= this.resetGraceMs && (this.resetAt === undefined || this.delivered > this.resetAt || out.latest < this.resetAt);
            if (!reset) {
              if (now - this.behindSince >= this.resetGraceMs) this.countFailure(err); // after a reset already honoured: counted
              await sleep(this.retryDelayMs * 2 ** Math.min(this.behindTries++, 3), this.stop.signal);
              continue;
            }
            const to = Math.max(0, out.latest - (RETAINED_SEGMENTS - 1));
            this.log.info({ seq: this.seq, latest: out.latest, to }, 'channel was reset: reading it from its oldest retained segment');
            this.resetAt = out.latest;
            this.behindSince = undefined;
            this.behindTries = 0;
            this.seq = to;
          }
          this.countFailure(err);
          continue;
        }
        case 'error': {
          this.log.debug({ seq: this.seq, err: out.err.message }, 'subscribe attempt failed');
          const backoff = this.retryDelayMs * 2 ** Math.min(this.failures, 3);
          this.countFailure(out.err);
          // Exponential (capped at 8× retryDelayMs): a server that keeps answering at once is not hammered.
          await sleep(backoff, this.stop.signal);
          continue;
        }
      }
    }
  }

  private countFailure(err: TrickleError): void {
    this.failures += 1;
    if (this.failures <= this.maxRetries) return;
    this.failures = 0;
    throw new TrickleError(
      'trickle_retries_exhausted',
      `subscribe ${this.url}/${this.seq}: gave up after ${this.maxRetries + 1} consecutive failures: ${err.message}`,
      { cause: err, status: err.status },
    );
  }

  /** Opens `GET {url}/{seq}`; the outcome settles when response headers arrive (long poll) or it fails. */
  private connect(seq: number): Pending {
    let current: http.ClientRequest | undefined;
    let aborted = false;
    const outcome = new Promise<Outcome>((resolve) => {
      const attempt = (): void => {
        if (aborted) return resolve({ kind: 'end', why: 'closed' });
        const req = this.transport.request('GET', joinUrl(this.url, String(seq)));
        current = req;
        let refreshed = false;
        const refresh =
          this.refreshMs > 0
            ? setTimeout(() => {
                refreshed = true;
                req.destroy();
              }, this.refreshMs)
            : undefined;
        refresh?.unref();
        req.on('error', (err) => {
          clearTimeout(refresh);
          if (aborted) return resolve({ kind: 'end', why: 'closed' });
          if (refreshed) return attempt();
          resolve({ kind: 'error', err: asTrickleError(err, `GET ${this.url}/${seq}`) });
        });
        req.on('response', (res) => {
          clearTimeout(refresh);
          resolve(this.classify(res, seq));
        });
        req.end();
      };
      attempt();
    });
    return {
      seq,
      outcome,
      abort: () => {
        aborted = true;
        current?.destroy();
      },
    };
  }

  private classify(res: http.IncomingMessage, requested: number): Outcome | Promise<Outcome> {
    const status = res.statusCode ?? 0;
    if (status === 200 && header(res, 'lp-trickle-closed') === undefined) {
      const seq = intHeader(res, 'lp-trickle-seq');
      // Every trickle server (go-livepeer, ours) sends Lp-Trickle-Seq with a segment's first bytes. A
      // 200 without it is some other HTTP server answering: its body must never be forwarded (that is
      // how a crafted subscribe_url would read an internal URL out through the output channel).
      if (seq === undefined) {
        res.destroy();
        return {
          kind: 'error',
          err: new TrickleError('trickle_not_a_server', `GET ${this.url}/${requested}: 200 without Lp-Trickle-Seq: not a trickle server`, { status }),
        };
      }
      return { kind: 'segment', res, seq };
    }
    res.resume();
    if (status === 200) return { kind: 'end', why: 'Lp-Trickle-Closed' };
    if (status === 404) return { kind: 'end', why: '404' };
    if (status === 470) return { kind: 'missing', latest: intHeader(res, 'lp-trickle-latest') ?? -1 };
    return readCapped(res, 1024).then(
      (body): Outcome => ({ kind: 'error', err: httpStatusError(`GET ${this.url}/${requested}`, status, body) }),
      (): Outcome => ({ kind: 'error', err: httpStatusError(`GET ${this.url}/${requested}`, status, '') }),
    );
  }

  /**
   * Re-emits the response's chunks one by one (object mode: `for await` yields each socket read as it
   * came, instead of Buffer.concat-ing whatever piled up since the last read — a copy per chunk), with
   * backpressure onto the socket, so a cut-short body surfaces as a TrickleError. At most
   * BODY_QUEUE_CHUNKS socket reads (≤ 64 KiB each) wait here before the socket is paused.
   */
  private wrapBody(res: http.IncomingMessage, seq: number): Readable {
    const out = new Readable({
      objectMode: true,
      highWaterMark: BODY_QUEUE_CHUNKS,
      read: () => {
        res.resume();
      },
    });
    out.on('error', () => undefined);
    this.bodies.add(out);
    out.on('close', () => {
      this.bodies.delete(out);
      if (!res.complete) res.destroy();
    });
    res.on('error', () => undefined);
    res.on('data', (chunk: Buffer) => {
      if (!out.push(chunk)) res.pause();
    });
    res.on('end', () => out.push(null));
    res.on('close', () => {
      if (!res.complete && !out.destroyed) {
        out.destroy(new TrickleError('trickle_connection', `segment ${seq} of ${this.url} was cut short`));
      }
    });
    return out;
  }
}
