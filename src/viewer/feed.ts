/**
 * One trickle channel read as lines, for the viewer's SSE endpoint: every line of every segment
 * (a segment's last line needs no newline: events-channel bodies are one JSON each without one) is
 * handed to `onLine`, in order. Lines longer than MAX_LINE_BYTES (the gateway's 64 KiB line limit)
 * are dropped and counted, never buffered whole; at most that much of a partial line is held.
 *
 * The feed outlives the channel: when the subscription ends (404: not created yet or already gone;
 * closed; retries exhausted) it subscribes again after `retryMs`, from the seq after the last one it
 * read (or the current segment, -2, when it has read none), until close().
 */
import { childLogger, type Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';

export const MAX_LINE_BYTES = 64 * 1024;

export interface ChannelFeedOptions {
  url: string;
  onLine: (line: string) => void;
  retryMs?: number;
  logger?: Logger;
}

export interface ChannelFeedStats {
  segments: number;
  lines: number;
  /** Lines dropped for being longer than MAX_LINE_BYTES. */
  oversized: number;
  /** Segments the trickle server no longer had (470) when this feed asked for them. */
  skipped: number;
}

export class ChannelFeed {
  readonly stats: ChannelFeedStats = { segments: 0, lines: 0, oversized: 0, skipped: 0 };
  private readonly opts: ChannelFeedOptions;
  private readonly log: Logger;
  private sub: TrickleSubscriber | undefined;
  private closed = false;
  private lastSeq: number | undefined;
  private wake: (() => void) | undefined;
  private readonly running: Promise<void>;

  constructor(opts: ChannelFeedOptions) {
    this.opts = opts;
    this.log = opts.logger ?? childLogger('viewer-feed', { url: opts.url });
    this.running = this.loop();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.sub?.close();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const start = this.lastSeq === undefined ? -2 : this.lastSeq + 1;
      const sub = new TrickleSubscriber({ url: this.opts.url, start, retryDelayMs: 200, maxRetries: 5, logger: this.log });
      this.sub = sub;
      try {
        for (;;) {
          const seg = await sub.next();
          if (!seg) break;
          if (this.lastSeq !== undefined && seg.seq > this.lastSeq + 1) this.stats.skipped += seg.seq - this.lastSeq - 1;
          this.lastSeq = seg.seq;
          this.stats.segments += 1;
          await this.readSegment(seg.body);
        }
      } catch (err) {
        if (!this.closed) this.log.debug({ err: errorMessage(err) }, 'viewer feed: subscription failed; retrying');
      } finally {
        await sub.close();
      }
      if (this.closed) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.opts.retryMs ?? 1000);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async readSegment(body: AsyncIterable<unknown>): Promise<void> {
    let parts: Buffer[] = [];
    let held = 0;
    let skipping = false;
    const emit = (buf: Buffer): void => {
      let line = buf.toString('utf8');
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.trim() === '') return;
      this.stats.lines += 1;
      this.opts.onLine(line);
    };
    try {
      for await (const chunk of body) {
        let buf = chunk as Buffer;
        for (;;) {
          const nl = buf.indexOf(0x0a);
          const piece = nl < 0 ? buf : buf.subarray(0, nl);
          if (!skipping) {
            if (held + piece.length > MAX_LINE_BYTES) {
              skipping = true;
              parts = [];
              held = 0;
              this.stats.oversized += 1;
            } else {
              parts.push(piece);
              held += piece.length;
            }
          }
          if (nl < 0) break;
          if (!skipping) emit(Buffer.concat(parts));
          parts = [];
          held = 0;
          skipping = false;
          buf = buf.subarray(nl + 1);
        }
      }
    } catch (err) {
      // A body cut short: what arrived complete was delivered; the partial last line is dropped.
      if (!this.closed) this.log.debug({ err: errorMessage(err) }, 'viewer feed: segment cut short');
      return;
    }
    if (!skipping && held > 0) emit(Buffer.concat(parts));
  }
}
