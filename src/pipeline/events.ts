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
/** Largest unknown-key value echoed (its JSON); larger or non-scalar ones are named, not echoed. */
export const ECHO_MAX_EXTRA_VALUE_BYTES = 256;
/** Most key names listed (each cut to 100 characters). */
export const ECHO_MAX_KEYS = 50;

export interface ParamsEcho {
  /** The keys the update sent (at most ECHO_MAX_KEYS). */
  changed: string[];
  /** Known keys with their validated values; small scalar unknown keys with theirs. */
  params: Record<string, unknown>;
  /** Keys whose (known) string value was cut to ECHO_MAX_STRING_BYTES. */
  truncated?: string[];
  /** Unknown keys whose value was too large or not a scalar: named, never echoed. */
  omitted?: string[];
  /** How many key names were left out past ECHO_MAX_KEYS. */
  keys_omitted?: number;
}

/**
 * The bounded echo of a params update, whatever its size: an update body may be megabytes (unknown
 * keys are kept and passed along), and an event body is one segment the gateway reads whole.
 */
export function paramsUpdatedFields(params: object, raw: Record<string, unknown>, known: ReadonlySet<string>): ParamsEcho {
  const values = params as Record<string, unknown>;
  const keys = Object.keys(raw);
  const name = (k: string) => (k.length > 100 ? k.slice(0, 100) : k);
  const out: Record<string, unknown> = {};
  const truncated: string[] = [];
  const omitted: string[] = [];
  for (const k of keys.slice(0, ECHO_MAX_KEYS)) {
    if (known.has(k)) {
      const v = values[k];
      if (typeof v === 'string' && Buffer.byteLength(v, 'utf8') > ECHO_MAX_STRING_BYTES) {
        out[k] = Buffer.from(v, 'utf8').subarray(0, ECHO_MAX_STRING_BYTES).toString('utf8').replace(/\uFFFD$/, '');
        truncated.push(k);
      } else out[k] = v;
      continue;
    }
    const v = raw[k];
    const scalar = v === null || ['number', 'boolean', 'string'].includes(typeof v);
    if (scalar && k.length <= 100 && Buffer.byteLength(JSON.stringify(v), 'utf8') <= ECHO_MAX_EXTRA_VALUE_BYTES) out[k] = v;
    else omitted.push(name(k));
  }
  const fields: ParamsEcho = { changed: keys.slice(0, ECHO_MAX_KEYS).map(name), params: out };
  if (truncated.length > 0) fields.truncated = truncated;
  if (omitted.length > 0) fields.omitted = omitted;
  if (keys.length > ECHO_MAX_KEYS) fields.keys_omitted = keys.length - ECHO_MAX_KEYS;
  return fields;
}

export function eventBody(type: string, queue: QueueEventType, fields: Record<string, unknown> = {}, now = Date.now()): EventBody {
  return { event: { type, timestamp: Math.floor(now), ...fields }, queue_event_type: queue };
}

/** The heartbeat body for a stream's channel URLs (absent ones as ''), picture size (0 until known) and rates. */
export function heartbeatInfo(
  c: { subscribeUrl?: string | undefined; publishUrl?: string | undefined; controlUrl?: string | undefined; eventsUrl?: string | undefined; dataUrl?: string | undefined },
  dims: { width?: number | undefined; height?: number | undefined },
  fps: StreamFps,
): HeartbeatInfo {
  return {
    urls: { subscribe: c.subscribeUrl ?? '', publish: c.publishUrl ?? '', control: c.controlUrl ?? '', events: c.eventsUrl ?? '', data: c.dataUrl ?? '' },
    dimensions: { width: dims.width ?? 0, height: dims.height ?? 0 },
    fps,
  };
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
