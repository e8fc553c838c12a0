/**
 * Sessions for many streams in one process: each session gets its own handle on the one shared model
 * backend (src/model/fair-scheduler.ts), so the pipeline itself is unchanged, and the process-wide
 * bounds are split between the streams so that no stream can take another's share:
 * - model requests: the scheduler's MAX_REQUESTS_IN_FLIGHT, handed out fairly;
 * - queued records: `dataQueueTotalBytes` (default 64 MiB) divided by the capacity, at most the
 *   single-stream bound (8 MiB) each — memory of queued records stays bounded however many streams run.
 * A stream's handle is closed when its session is done (its waiting requests leave the line).
 */
import type { FairScheduler } from '../model/fair-scheduler.js';
import { PipelineSession } from './session.js';
import type { SessionDeps, SessionFactory } from './types.js';

export const DEFAULT_DATA_QUEUE_TOTAL_BYTES = 64 * 1024 * 1024;
const SINGLE_STREAM_DATA_QUEUE_BYTES = 8 * 1024 * 1024;

export interface SharedSessionOptions {
  scheduler: FairScheduler;
  /** Streams served at once: the process-wide bounds are split this many ways. */
  capacity: number;
  dataQueueTotalBytes?: number;
}

/** Each stream's share of a process-wide byte bound. */
export function perStreamShare(totalBytes: number, capacity: number, cap = SINGLE_STREAM_DATA_QUEUE_BYTES): number {
  return Math.max(64 * 1024, Math.min(cap, Math.floor(totalBytes / Math.max(1, capacity))));
}

export function createSharedSessionFactory(deps: Omit<SessionDeps, 'backend'>, o: SharedSessionOptions): SessionFactory {
  const dataQueueMaxBytes = deps.dataQueueMaxBytes ?? perStreamShare(o.dataQueueTotalBytes ?? DEFAULT_DATA_QUEUE_TOTAL_BYTES, o.capacity);
  return (config) => {
    const backend = o.scheduler.open(config.streamId);
    const session = new PipelineSession(config, { ...deps, dataQueueMaxBytes, backend });
    void session.done.then(() => backend.close());
    return session;
  };
}
