/**
 * The events channel (spec §3.4): one `{"event": {...}, "queue_event_type": "..."}` body per segment,
 * integer-ms timestamps, a heartbeat at start and every `heartbeatMs` (the gateway ends a stream
 * after 30 s without events). Publishing goes through the same bounded in-order queue as the data
 * channel, one event per segment.
 *
 * `paramsUpdatedFields` bounds what a `params_updated` event echoes: an update body may be megabytes
 * (unknown keys are kept and passed along), and an event body is one segment the gateway reads whole.
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

/** Longest string value echoed in a params_updated event; longer ones are cut and flagged. */
export const ECHO_MAX_STRING_BYTES = 1024;
/** Most unknown key names echoed (each cut to 100 characters). */
export const ECHO_MAX_EXTRA_KEYS = 50;

/**
 * The bounded echo of a params update: the keys the caller sent that are known params, with their
 * validated values (strings over ECHO_MAX_STRING_BYTES cut, listed in `truncated`), and the names
 * only of unknown keys (their values are never echoed).
 */
export function paramsUpdatedFields(
  params: object,
  sentKeys: readonly string[],
  known: ReadonlySet<string>,
): { changed: string[]; params: Record<string, unknown>; extra_keys?: string[]; extra_keys_omitted?: number; truncated?: string[] } {
  const values = params as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const changed: string[] = [];
  const extra: string[] = [];
  const truncated: string[] = [];
  for (const k of sentKeys) {
    if (!known.has(k)) {
      extra.push(k.length > 100 ? k.slice(0, 100) : k);
      continue;
    }
    changed.push(k);
    const v = values[k];
    if (typeof v === 'string' && Buffer.byteLength(v, 'utf8') > ECHO_MAX_STRING_BYTES) {
      out[k] = Buffer.from(v, 'utf8').subarray(0, ECHO_MAX_STRING_BYTES).toString('utf8').replace(/\uFFFD$/, '');
      truncated.push(k);
    } else out[k] = v;
  }
  const fields: ReturnType<typeof paramsUpdatedFields> = { changed, params: out };
  if (extra.length > 0) fields.extra_keys = extra.slice(0, ECHO_MAX_EXTRA_KEYS);
  if (extra.length > ECHO_MAX_EXTRA_KEYS) fields.extra_keys_omitted = extra.length - ECHO_MAX_EXTRA_KEYS;
  if (truncated.length > 0) fields.truncated = truncated;
  return fields;
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
