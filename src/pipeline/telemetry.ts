/**
 * What one stream tells the outside about itself, in one owner: the events channel (it constructs the
 * EventsWriter and closes it, after a last status), the last error, each failure logged once and
 * published once as an `error` event, the one-time first-output event, and the `status` event body.
 * The session hands it the stream's state as a function (statusInputs) instead of pushing numbers,
 * so what a status says is read at the moment it is sent.
 *
 * Without an events URL every event is a no-op, and errors are still logged and kept as the last error.
 */
import type { ErrorCode } from '../error-codes.js';
import type { Logger } from '../log.js';
import { TricklePublisher } from '../trickle/publisher.js';
import { EventsWriter, type HeartbeatInfo } from './events.js';
import { statusEventFields, type StatusInputs } from './status.js';

export interface StreamTelemetryOptions {
  streamId: string;
  eventsUrl: string | undefined;
  heartbeatMs: number;
  heartbeat: () => HeartbeatInfo;
  /** The stream's state for a status event, less the last error (this class keeps that). */
  statusInputs: () => Omit<StatusInputs, 'lastError'>;
  log: Logger;
}

export type LastError = NonNullable<StatusInputs['lastError']>;

export class StreamTelemetry {
  private events: EventsWriter | undefined;
  private readonly o: StreamTelemetryOptions;
  private last: LastError | undefined;
  private firstOutputSent = false;

  constructor(o: StreamTelemetryOptions) {
    this.o = o;
  }

  /** Opens the events channel (when there is one) and starts the heartbeats; the first goes out at once. */
  start(): void {
    if (!this.o.eventsUrl || this.events) return;
    const log = this.o.log.child({ channel: 'events' });
    this.events = new EventsWriter({
      sink: new TricklePublisher({ url: this.o.eventsUrl, mimeType: 'application/json', logger: log }),
      streamId: this.o.streamId,
      heartbeatMs: this.o.heartbeatMs,
      heartbeat: this.o.heartbeat,
      onTick: () => this.status(),
      logger: log,
    });
    this.events.start();
  }

  get lastError(): LastError | undefined {
    return this.last;
  }

  /** An event of the stream's lifecycle (`receive_first_ingest_segment`, `params_updated`, `alert`, …). */
  event(type: string, fields?: Record<string, unknown>): void {
    this.events?.emit(type, fields);
  }

  /** An alert rule fired (its `alert` record is on the data channel already): logged and published. */
  alert(fields: Record<string, unknown>): void {
    this.o.log.info({ rule: fields.rule, cycle_id: fields.cycle_id }, 'alert rule fired');
    this.events?.emit('alert', fields);
  }

  /** A failure: kept as the last error, logged once, published once. */
  error(code: ErrorCode, message: string, fields: Record<string, unknown> = {}): void {
    this.last = { atMs: Date.now(), code, message };
    this.o.log.warn({ code, err: message, ...fields }, 'stream error');
    this.events?.emit('error', { error: { code, message }, message, ...fields });
  }

  /** The first processed output left (passthrough segment, or a record when there is no passthrough). */
  firstOutput(): void {
    if (this.firstOutputSent) return;
    this.firstOutputSent = true;
    this.events?.emit('send_first_processed_segment');
  }

  /** The `status` event, built from the stream's state now. */
  status(): void {
    this.events?.emit('status', statusEventFields(this.inputs()), 'ai_stream_status');
  }

  private inputs(): StatusInputs {
    return { ...this.o.statusInputs(), lastError: this.last };
  }

  counters(): Record<string, number> {
    if (!this.events) return {};
    const s = this.events.stats();
    return { events_published: s.published, events_dropped: s.dropped };
  }

  /** A last status, then the events queue flushes (bounded by `flushMs`) and closes. */
  async close(flushMs: number): Promise<void> {
    if (!this.events) return;
    this.status();
    await this.events.close(flushMs);
  }
}
