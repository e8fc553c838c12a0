/**
 * A stream's data channel: records serialised as NDJSON lines into the bounded, retrying segment
 * queue (data-writer.ts) on a trickle publisher. Owns what it measures — records queued, published
 * and dropped, publish failures, queue depth — and reports an outage once (its first failure), not
 * once per retry. Records dropped past the bound are stamped on the next record it queues
 * (`stats.records_dropped`). Partial-text records are queued as droppable (best effort: superseded
 * while waiting, first to go under pressure) and their drops counted apart (`partials_dropped`).
 *
 * Lifetime: publishing from construction; `close(flushMs)` flushes what waits (bounded), then closes
 * the publisher; idempotent, never rejects.
 */
import type { ErrorCode } from '../error-codes.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { metrics } from '../metrics.js';
import { TricklePublisher } from '../trickle/publisher.js';
import { SegmentQueue } from './data-writer.js';
import { serializeRecord, stampStat, type DataRecord } from './records.js';

export interface DataChannelOptions {
  streamId: string;
  url: string;
  maxRecords?: number | undefined;
  maxBytes?: number | undefined;
  batchMs?: number | undefined;
  keepaliveMs?: number | undefined;
  log: Logger;
  onError(code: ErrorCode, message: string, fields: Record<string, unknown>): void;
  /** After each segment that went out (the first one is the stream's first output when there is no video out). */
  onPublished(): void;
}

export class DataChannel {
  private readonly queue: SegmentQueue;
  private readonly L: { stream_id: string };
  private outage = false;
  private closing: Promise<void> | undefined;
  private readonly c = { records_queued: 0, records_published: 0, records_dropped: 0, data_publish_failures: 0, partials_queued: 0, partials_dropped: 0 };

  constructor(o: DataChannelOptions) {
    this.L = { stream_id: o.streamId };
    const log = o.log.child({ channel: 'data' });
    this.queue = new SegmentQueue({
      sink: new TricklePublisher({ url: o.url, mimeType: 'application/jsonl', logger: log }),
      maxItems: o.maxRecords ?? 1000,
      maxBytes: o.maxBytes ?? 8 * 1024 * 1024,
      // 0: an idle channel sends a record at once (waiting for company only adds latency at one record
      // per cycle); what queues while a segment is in flight, or in the same tick, shares the next one.
      batchMs: o.batchMs ?? 0,
      keepaliveMs: o.keepaliveMs ?? 60_000,
      logger: log,
      onPublished: (n) => {
        this.outage = false;
        this.c.records_published += n;
        metrics.recordsPublished.inc(this.L, n);
        this.gauge();
        o.onPublished();
      },
      onDropped: (n) => {
        this.c.records_dropped += n;
        metrics.recordsDropped.inc(this.L, n);
      },
      onDroppableDropped: (n) => {
        this.c.partials_dropped += n;
        metrics.partialsDropped.inc(this.L, n);
      },
      onPublishError: (err) => {
        this.c.data_publish_failures++;
        // Only the first failure of an outage is worth an event; the retries are expected.
        if (!this.outage) o.onError('data_publish_failed', errorMessage(err), { channel: 'data' });
        this.outage = true;
      },
    });
  }

  publish(records: readonly DataRecord[]): void {
    for (const r of records) {
      this.c.records_queued++;
      if (r.type === 'partial') {
        this.c.partials_queued++;
        this.queue.enqueue(serializeRecord(r), { droppable: true });
        continue;
      }
      // Drops past the bound since the last record, stamped as this one is queued.
      stampStat(r, 'records_dropped', this.queue.takeDropped());
      this.queue.enqueue(serializeRecord(r));
    }
    this.gauge();
  }

  counters(): Record<string, number> {
    const s = this.queue.stats();
    return { ...this.c, records_waiting: s.queued, data_keepalives: s.keepalives };
  }

  close(flushMs: number): Promise<void> {
    this.closing ??= this.queue.close(flushMs);
    return this.closing;
  }

  private gauge(): void {
    metrics.queueDepth.set({ ...this.L, queue: 'data' }, this.queue.stats().queued);
  }
}
