/**
 * Partial text (`partial_text`): while the model writes, a cycle publishes `type: "partial"` records
 * with the text so far — same `cycle_id` as the cycle's final record, `partial_seq` 1, 2, 3… —
 * before its usual `generation` record, which is unchanged. `PartialEmitter` owns the rate limit:
 * the first partial goes out with the first token, later ones at most every `intervalMs`; text that
 * arrives meanwhile goes out when the interval is over (one trailing partial), unless the answer
 * ended first (`end()`: the final record supersedes it). Time comes through a Clock.
 *
 * Partials are best effort by design: the data channel queues them as droppable (data-writer.ts): a
 * newer partial or the cycle's final record supersedes one still waiting, and past the queue bound
 * they go before any final record; each dropped one is counted (`partials_dropped`).
 */
import type { Clock } from '../util/time.js';
import type { CycleRef } from './cycle.js';

export interface PartialRecord {
  type: 'partial';
  stream_id: string;
  timestamp_ms: number;
  cycle_id: string;
  cycle_seq: number;
  /** 1, 2, 3… within the cycle. */
  partial_seq: number;
  /** The whole answer so far (not a delta). */
  text: string;
  truncated?: boolean;
}

/** What runCycle feeds while the answer streams in. */
export interface PartialSink {
  /** The answer so far, after each delta. */
  text(soFar: string): void;
  /** The answer ended (or failed): nothing more goes out. */
  end(): void;
}

export interface PartialEmitterOptions {
  streamId: string;
  cycle: CycleRef;
  intervalMs: number;
  clock: Clock;
  publish(record: PartialRecord): void;
  /** Wall-clock for `timestamp_ms` (default Date.now). */
  wallNow?: () => number;
}

export class PartialEmitter implements PartialSink {
  private seq = 0;
  private lastSentAt: number | undefined;
  private lastSentText = '';
  private latest = '';
  private timer: AbortController | undefined;
  private ended = false;

  constructor(private readonly o: PartialEmitterOptions) {}

  text(soFar: string): void {
    if (this.ended || soFar === '') return;
    this.latest = soFar;
    const now = this.o.clock.now();
    if (this.lastSentAt === undefined || now - this.lastSentAt >= this.o.intervalMs) {
      this.send(now);
      return;
    }
    if (this.timer) return; // a trailing partial is already due
    const wait = this.lastSentAt + this.o.intervalMs - now;
    const ctl = new AbortController();
    this.timer = ctl;
    this.o.clock.delay(wait, ctl.signal).then(
      () => {
        if (this.timer !== ctl) return;
        this.timer = undefined;
        if (!this.ended && this.latest !== this.lastSentText) this.send(this.o.clock.now());
      },
      () => undefined, // aborted by end()
    );
  }

  end(): void {
    this.ended = true;
    this.timer?.abort();
    this.timer = undefined;
  }

  /** Partials published so far. */
  get sent(): number {
    return this.seq;
  }

  private send(now: number): void {
    this.lastSentAt = now;
    this.lastSentText = this.latest;
    this.o.publish({
      type: 'partial',
      stream_id: this.o.streamId,
      timestamp_ms: Math.floor((this.o.wallNow ?? Date.now)()),
      cycle_id: this.o.cycle.id,
      cycle_seq: this.o.cycle.seq,
      partial_seq: ++this.seq,
      text: this.latest,
    });
  }
}
