/**
 * The bounded, in-order, retrying writer behind the data and events channels.
 *
 * Items wait in one FIFO. A pump takes a batch from the head (all items ready within `batchMs`, up to
 * a segment size cap), publishes it as one trickle segment, and only forgets it once the publish
 * succeeded; a failed batch goes back to the head and is retried with backoff on a fresh segment.
 * So a data-channel hiccup (channel deleted and re-created, server restarting) delays records but
 * neither loses nor reorders them. The queue is bounded by item count and bytes; past the bound the
 * oldest waiting items are dropped and counted (the counter is read by the next record).
 *
 * Droppable items (`enqueue(data, { droppable: true })`, the data channel's partial-text records) are
 * best effort: superseded by any later item while they wait, first to go past the bound (the policy
 * and the bookkeeping are item-queue.ts). They are counted apart (`droppableDropped`,
 * `onDroppableDropped`), never in `takeDropped()`, so they never push out or delay a record that must
 * arrive.
 *
 * Keepalive (optional `keepaliveMs`): go-livepeer's trickle server sweeps a channel whose last write
 * is older than 5 min, and the gateway stops the stream when its data channel goes. When nothing was
 * published for `keepaliveMs`, the writer publishes a zero-byte segment: it counts as a write on the
 * server (the zero-byte POST's completion advances writeTime) and the gateway's line scanner turns it
 * into no SSE message at all, so subscribers never see it. It is not an item: not counted as
 * published, never queued behind (or ahead of) records.
 */
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { delay, within } from '../util/time.js';
import { ItemQueue, type Drops } from './item-queue.js';

/** What the writer needs from a trickle publisher (TricklePublisher satisfies it). */
export interface SegmentSink {
  publish(data: Buffer | string): Promise<void>;
  close(): Promise<void>;
}

export interface SegmentQueueOptions {
  sink: SegmentSink;
  /** Most items waiting (including a batch in flight). */
  maxItems?: number;
  /** Most bytes waiting (including a batch in flight). */
  maxBytes?: number;
  /** How long the first item of an idle queue waits for company before its segment goes out. */
  batchMs?: number;
  /** Most items in one segment (1 = one item per segment, as the events channel requires). */
  maxItemsPerSegment?: number;
  maxSegmentBytes?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  logger?: Logger;
  /** Called after each successful segment with the number of items it carried. */
  onPublished?: (items: number) => void;
  /** Called when items are dropped past the bound. */
  onDropped?: (items: number) => void;
  /** Called when droppable items are dropped (superseded while waiting, or past the bound). */
  onDroppableDropped?: (items: number) => void;
  /** Called after each failed publish (the batch is kept and retried). */
  onPublishError?: (err: unknown) => void;
  /** Publish a zero-byte segment when nothing was published for this long (0/undefined = never). */
  keepaliveMs?: number;
}

export interface SegmentQueueStats {
  queued: number;
  queuedBytes: number;
  published: number;
  segments: number;
  dropped: number;
  publishFailures: number;
  /** Zero-byte keepalive segments published. */
  keepalives: number;
  /** Droppable items dropped (superseded while waiting, or past the bound). */
  droppableDropped: number;
}

export class SegmentQueue {
  private readonly opts: Required<Omit<SegmentQueueOptions, 'logger' | 'onPublished' | 'onDropped' | 'onDroppableDropped' | 'onPublishError' | 'keepaliveMs'>> &
    SegmentQueueOptions;
  private readonly items: ItemQueue;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private backoffMs: number;
  private wake: (() => void) | undefined;
  private closing = false;
  private closed = false;
  private droppedSinceTake = 0;
  private readonly counters = { published: 0, segments: 0, dropped: 0, publishFailures: 0, keepalives: 0, droppableDropped: 0 };
  private keepaliveTimer: NodeJS.Timeout | undefined;

  constructor(opts: SegmentQueueOptions) {
    this.opts = {
      maxItems: 1000,
      maxBytes: 8 * 1024 * 1024,
      batchMs: 100,
      maxItemsPerSegment: 1000,
      maxSegmentBytes: 1024 * 1024,
      retryMinMs: 100,
      retryMaxMs: 2000,
      ...opts,
    };
    this.items = new ItemQueue(this.opts);
    this.backoffMs = this.opts.retryMinMs;
    this.armKeepalive();
  }

  /** Queues one item (a whole JSON line for data; a whole event body for events). */
  enqueue(data: string, opts: { droppable?: boolean } = {}): void {
    if (this.closed) {
      this.count(opts.droppable ? { dropped: 0, droppable: 1 } : { dropped: 1, droppable: 0 }, false);
      return;
    }
    this.count(this.items.push({ data, bytes: Buffer.byteLength(data, 'utf8'), ...(opts.droppable ? { droppable: true } : {}) }));
    this.schedule(this.closing ? 0 : this.opts.batchMs);
  }

  /** Drops counted since the previous call (for the next record's `stats.records_dropped`). */
  takeDropped(): number {
    const n = this.droppedSinceTake;
    this.droppedSinceTake = 0;
    return n;
  }

  stats(): SegmentQueueStats {
    return {
      queued: this.items.size,
      queuedBytes: this.items.bytes,
      ...this.counters,
    };
  }

  /**
   * Publishes what is queued (no batching delay), retrying until the queue is empty or `timeoutMs`
   * passed; then closes the sink. Whatever is still queued at the deadline counts as dropped.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (this.items.size > 0) {
      this.schedule(0);
      this.wake?.();
      await within(this.drained(), timeoutMs);
    }
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    this.wake?.();
    const left = this.items.clear();
    if (left.dropped + left.droppable > 0) {
      this.opts.logger?.warn({ left: left.dropped + left.droppable }, 'closing with items still queued; counted as dropped');
      this.count(left, false);
    }
    try {
      await this.opts.sink.close();
    } catch (err) {
      this.opts.logger?.debug({ err: errorMessage(err) }, 'sink close failed');
    }
  }

  private async drained(): Promise<void> {
    while (!this.closed && (this.items.size > 0 || this.pumping)) {
      await (this.pumping ?? delay(5));
    }
  }

  /** Counts drops once: must-arrive ones for the next record's `records_dropped`, droppable ones apart. */
  private count(d: Drops, bound = true): void {
    if (d.dropped > 0) {
      if (bound) this.opts.logger?.warn({ dropped: d.dropped }, 'queue bound reached; oldest items dropped');
      this.counters.dropped += d.dropped;
      this.droppedSinceTake += d.dropped;
      this.opts.onDropped?.(d.dropped);
    }
    if (d.droppable > 0) {
      this.counters.droppableDropped += d.droppable;
      this.opts.onDroppableDropped?.(d.droppable);
    }
  }

  private schedule(delayMs: number): void {
    if (this.pumping || this.closed) return;
    if (this.timer) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pumping = this.pump().finally(() => {
        this.pumping = undefined;
        if (this.items.hasWaiting && !this.closed) this.schedule(0);
      });
    }, delayMs);
  }

  private async pump(): Promise<void> {
    while (this.items.hasWaiting && !this.closed) {
      const body = this.items.takeBatch().map((i) => i.data).join('');
      try {
        await this.opts.sink.publish(body);
        const n = this.items.published();
        this.counters.published += n;
        this.counters.segments++;
        this.backoffMs = this.opts.retryMinMs;
        this.armKeepalive();
        this.opts.onPublished?.(n);
      } catch (err) {
        this.counters.publishFailures++;
        this.opts.onPublishError?.(err);
        this.opts.logger?.debug({ err: errorMessage(err), retry_ms: this.backoffMs }, 'segment publish failed; will retry');
        this.count(this.items.failed()); // back to the head, in order, bound re-applied
        if (this.closed) return;
        await this.sleep(this.backoffMs);
        this.backoffMs = Math.min(this.opts.retryMaxMs, this.backoffMs * 2);
      }
    }
  }

  /** (Re)starts the idle countdown; called at construction and after every successful write. */
  private armKeepalive(): void {
    const ms = this.opts.keepaliveMs ?? 0;
    if (!(ms > 0) || this.closed) return;
    if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = setTimeout(() => {
      this.keepaliveTimer = undefined;
      this.keepalive();
    }, ms);
    this.keepaliveTimer.unref?.();
  }

  private keepalive(): void {
    if (this.closed || this.closing) return;
    // Records waiting or in flight are about to write anyway (or are retrying an outage, where a
    // keepalive would fail the same way); the countdown restarts after their publish.
    if (this.pumping || this.timer || this.items.hasWaiting) {
      this.armKeepalive();
      return;
    }
    // Runs as the pump so that records enqueued meanwhile wait for it (one segment at a time, in order).
    this.pumping = (async () => {
      try {
        await this.opts.sink.publish('');
        this.counters.keepalives++;
      } catch (err) {
        this.opts.logger?.debug({ err: errorMessage(err) }, 'keepalive publish failed');
      }
      this.armKeepalive();
    })().finally(() => {
      this.pumping = undefined;
      if (this.items.hasWaiting && !this.closed) this.schedule(0);
    });
  }

  /** A backoff wait that close() cuts short (one wait at a time: the pump is the only sleeper). */
  private async sleep(ms: number): Promise<void> {
    const ac = new AbortController();
    this.wake = () => ac.abort();
    await delay(ms, ac.signal);
    this.wake = undefined;
  }
}
