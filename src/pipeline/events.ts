/**
 * The events channel (spec §3.4): one `{"event": {...}, "queue_event_type": "..."}` body per segment,
 * integer-ms timestamps, a heartbeat at start and every `heartbeatMs` (the gateway ends a stream
 * after 30 s without events). Publishing goes through the same bounded in-order queue as the data
 * channel, one event per segment.
 */
import type { Logger } from '../log.js';
import type { StreamFps } from './types.js';
import { SegmentQueue, type SegmentQueueStats, type SegmentSink } from './data-writer.js';

export type QueueEventType = 'stream_heartbeat' | 'ai_stream_events' | 'ai_stream_status';

export interface EventBody {
  event: { type: string; timestamp: number; [k: string]: unknown };
  queue_event_type: QueueEventType;
}

export interface HeartbeatInfo {
  urls: { subscribe: string; publish: string; control: string; events: string; data: string };
  dimensions: { width: number; height: number };
  fps: StreamFps;
}

export function eventBody(type: string, queue: QueueEventType, fields: Record<string, unknown> = {}, now = Date.now()): EventBody {
  return { event: { type, timestamp: Math.floor(now), ...fields }, queue_event_type: queue };
}

export function heartbeatEvent(info: HeartbeatInfo, now = Date.now()): EventBody {
  return eventBody('heartbeat', 'stream_heartbeat', { ...info }, now);
}

export interface EventsWriterOptions {
  sink: SegmentSink;
  streamId: string;
  heartbeatMs: number;
  heartbeat: () => HeartbeatInfo;
  /** Called on each heartbeat tick after the heartbeat itself (the session sends its status event). */
  onTick?: () => void;
  logger?: Logger;
  maxItems?: number;
}

export class EventsWriter {
  private readonly queue: SegmentQueue;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: EventsWriterOptions;

  constructor(opts: EventsWriterOptions) {
    this.opts = opts;
    this.queue = new SegmentQueue({
      sink: opts.sink,
      maxItems: opts.maxItems ?? 256,
      maxBytes: 4 * 1024 * 1024,
      batchMs: 0,
      maxItemsPerSegment: 1,
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  }

  /** Sends the first heartbeat and starts the cadence. */
  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.opts.heartbeatMs);
    this.timer.unref?.();
  }

  emit(type: string, fields: Record<string, unknown> = {}, queue: QueueEventType = 'ai_stream_events'): void {
    this.send(eventBody(type, queue, { stream_id: this.opts.streamId, ...fields }));
  }

  send(body: EventBody): void {
    this.queue.enqueue(JSON.stringify(body));
  }

  stats(): SegmentQueueStats {
    return this.queue.stats();
  }

  /** Stops the heartbeat, publishes what is queued (bounded by `timeoutMs`), closes the channel. */
  async close(timeoutMs = 3000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue.close(timeoutMs);
  }

  private tick(): void {
    const hb = heartbeatEvent(this.opts.heartbeat());
    hb.event.stream_id = this.opts.streamId;
    this.send(hb);
    this.opts.onTick?.();
  }
}
