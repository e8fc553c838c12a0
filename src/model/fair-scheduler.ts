/**
 * One model backend shared fairly by every stream of the process. `FairScheduler` sits in front of the
 * backend with a bounded number of requests in flight (MAX_REQUESTS_IN_FLIGHT: an engine batches
 * them, the in-process backend takes one at a time); `open(streamId)` gives each stream its own
 * `ModelBackend` handle, so the pipeline is unchanged — it never knows it shares.
 *
 * Promises:
 * - at most `maxInFlight` generate() calls reach the backend at once;
 * - when a slot frees, the waiter of the stream with the fewest requests in flight goes first, and
 *   among those the one waiting longest (`pickNext`, pure): no stream gets a second request in while
 *   another stream waits for its first;
 * - nothing here queues without bound: each stream's loop keeps at most one cycle going (its later
 *   due points are skipped and counted in `stats.skipped_cycles` by the loop), so the waiting line
 *   holds at most one request per stream; `stats()` reports its depth and the deepest it got;
 * - a request aborted while it waits leaves the line at once and rejects with an AbortError, as the
 *   backends do; a stream's handle closed (stream ended) rejects its waiting requests and frees the
 *   slots its requests still hold — a request the stream abandoned (it never settled after its abort)
 *   cannot keep a slot from the other streams for ever;
 * - the wait is measured and handed to the caller on the `done` event (`timings.queueMs`, published
 *   as `stats.timings_ms.queue`).
 * The handle never closes the shared backend: its owner (serve, tests) does, once.
 */
import { metrics } from '../metrics.js';
import type { BackendCapabilities, BackendStatus, GenerateEvent, GenerateRequest, ModelBackend } from './backend.js';
import { ModelAbortError, ModelError } from './errors.js';

/** One request waiting for a slot. */
export interface Waiter {
  streamId: string;
  /** When it started waiting (ms, any monotonic clock). */
  since: number;
  /** Arrival order, to break ties between equal `since`. */
  seq: number;
}

/**
 * Which waiter goes next: the fewest requests in flight for its stream first, then the longest
 * waiting, then arrival order. Returns its index, or -1 when nobody waits.
 */
export function pickNext(waiters: readonly Waiter[], inFlightOf: (streamId: string) => number): number {
  let best = -1;
  let bestLoad = Infinity;
  for (let i = 0; i < waiters.length; i++) {
    const w = waiters[i]!;
    const load = inFlightOf(w.streamId);
    const cur = best >= 0 ? waiters[best]! : undefined;
    if (!cur || load < bestLoad || (load === bestLoad && (w.since < cur.since || (w.since === cur.since && w.seq < cur.seq)))) {
      best = i;
      bestLoad = load;
    }
  }
  return best;
}

export interface FairSchedulerOptions {
  /** Requests in flight to the backend at once, across all streams (≥ 1). */
  maxInFlight: number;
  now?: () => number;
}

export interface SchedulerStats {
  max_in_flight: number;
  in_flight: number;
  waiting: number;
  /** The deepest the waiting line got since the process started. */
  max_waiting_seen: number;
  /** The most requests that were in flight at once. */
  max_in_flight_seen: number;
  granted: number;
}

interface Pending extends Waiter {
  grant: () => void;
  reject: (err: Error) => void;
}

/** A slot held by one request; `release()` is idempotent. */
export interface Ticket {
  queueMs: number;
  release(): void;
}

export class FairScheduler {
  readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly waiting: Pending[] = [];
  private readonly inFlightBy = new Map<string, number>();
  /** Releases of the tickets each stream holds, so a closed stream's slots can be taken back. */
  private readonly held = new Map<string, Set<() => void>>();
  private inFlight = 0;
  private seq = 0;
  private handles = 0;
  private maxWaitingSeen = 0;
  private maxInFlightSeen = 0;
  private granted = 0;

  constructor(
    readonly backend: ModelBackend,
    opts: FairSchedulerOptions,
  ) {
    if (!Number.isInteger(opts.maxInFlight) || opts.maxInFlight < 1) throw new RangeError(`maxInFlight must be an integer ≥ 1 (got ${opts.maxInFlight})`);
    this.maxInFlight = opts.maxInFlight;
    this.now = opts.now ?? (() => performance.now());
  }

  /** The backend as one stream sees it. */
  open(streamId: string): SharedBackendHandle {
    // Keyed per handle, not per id: a stream that restarts under the same id is a new stream here.
    return new SharedBackendHandle(this, streamId, `${streamId}#${++this.handles}`);
  }

  stats(): SchedulerStats {
    return {
      max_in_flight: this.maxInFlight,
      in_flight: this.inFlight,
      waiting: this.waiting.length,
      max_waiting_seen: this.maxWaitingSeen,
      max_in_flight_seen: this.maxInFlightSeen,
      granted: this.granted,
    };
  }

  /** Requests of the stream `key` in flight now. */
  inFlightOf(streamId: string): number {
    return this.inFlightBy.get(streamId) ?? 0;
  }

  /**
   * Waits for a slot (in fair order) for the stream `key` (one per handle; `label` is its stream id in
   * metrics); rejects with an AbortError when `signal` fires first.
   */
  acquire(key: string, signal?: AbortSignal, label: string = key): Promise<Ticket> {
    const streamId = key;
    const since = this.now();
    if (signal?.aborted) return Promise.reject(new ModelAbortError(signal.reason));
    return new Promise<Ticket>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(p);
        if (i >= 0) this.waiting.splice(i, 1);
        this.gauge();
        reject(new ModelAbortError(signal?.reason));
      };
      const p: Pending = {
        streamId,
        since,
        seq: ++this.seq,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take(streamId, label, this.now() - since));
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(p);
      this.maxWaitingSeen = Math.max(this.maxWaitingSeen, this.waiting.length);
      this.dispatch();
      this.gauge();
    });
  }

  /** Rejects every waiting request of a stream and frees the slots it holds (its handle was closed). */
  dropStream(streamId: string): void {
    for (const release of [...(this.held.get(streamId) ?? [])]) release();
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const p = this.waiting[i]!;
      if (p.streamId !== streamId) continue;
      this.waiting.splice(i, 1);
      p.reject(new ModelError('backend_closed', 'the stream ended while its request waited for the model'));
    }
    this.gauge();
  }

  private take(streamId: string, label: string, queueMs: number): Ticket {
    this.inFlight++;
    this.granted++;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    this.inFlightBy.set(streamId, this.inFlightOf(streamId) + 1);
    metrics.queueWait.observe({ stream_id: label }, queueMs / 1000);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const mine = this.held.get(streamId);
      mine?.delete(release);
      if (mine?.size === 0) this.held.delete(streamId);
      this.inFlight--;
      const n = this.inFlightOf(streamId) - 1;
      if (n > 0) this.inFlightBy.set(streamId, n);
      else this.inFlightBy.delete(streamId);
      this.dispatch();
      this.gauge();
    };
    const mine = this.held.get(streamId) ?? new Set<() => void>();
    mine.add(release);
    this.held.set(streamId, mine);
    return { queueMs, release };
  }

  private dispatch(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const i = pickNext(this.waiting, (id) => this.inFlightOf(id));
      const [p] = this.waiting.splice(i, 1);
      p!.grant();
    }
  }

  private gauge(): void {
    metrics.engineInFlight.set(this.inFlight);
    metrics.engineWaiting.set(this.waiting.length);
  }
}

/**
 * One stream's view of the shared backend: the same capabilities, status and token counting; its
 * generate() waits its turn first and adds the wait to the `done` timings.
 */
export class SharedBackendHandle implements ModelBackend {
  private closed = false;

  constructor(
    private readonly scheduler: FairScheduler,
    readonly streamId: string,
    private readonly key: string,
  ) {}

  get kind(): ModelBackend['kind'] {
    return this.scheduler.backend.kind;
  }
  get modelId(): string {
    return this.scheduler.backend.modelId;
  }
  get capabilities(): BackendCapabilities {
    return this.scheduler.backend.capabilities;
  }
  load(): Promise<void> {
    return this.scheduler.backend.load();
  }
  status(): BackendStatus {
    return this.scheduler.backend.status();
  }
  countTextTokens(text: string): number {
    return this.scheduler.backend.countTextTokens(text);
  }

  async *generate(req: GenerateRequest): AsyncIterable<GenerateEvent> {
    if (this.closed) throw new ModelError('backend_closed', 'the stream has ended');
    const ticket = await this.scheduler.acquire(this.key, req.signal, this.streamId);
    try {
      for await (const ev of this.scheduler.backend.generate(req)) {
        yield ev.type === 'done' ? { ...ev, timings: { ...ev.timings, queueMs: ticket.queueMs } } : ev;
      }
    } finally {
      ticket.release();
    }
  }

  /** The stream ended: its waiting requests leave the line. The shared backend stays open. */
  async close(): Promise<void> {
    this.closed = true;
    this.scheduler.dropStream(this.key);
  }
}
