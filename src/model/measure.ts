/**
 * The one place a generation is measured and its public stream is shaped, for every backend. A
 * backend only says what happened (`RawEvent`: request handed to the engine, text arrived, engine
 * finished); `measureGeneration` turns that into the `GenerateEvent` stream of backend.ts.
 *
 * Promises, whatever the backend:
 * - timings come from one clock (`now`, injectable): `firstTokenMs` is `sent` → first non-empty
 *   delta, `modelMs` is `sent` → `end`; `encodeMs` is what the backend reported (its own
 *   preparation on `sent`, plus any the engine did after receiving the request, on `end`);
 * - `done.text` is the yielded deltas joined (empty deltas are dropped, never yielded);
 * - exactly one `done`, always last: a raw stream that stops without `end` fails with
 *   `engine_error`, and anything it would say after `end` is never read;
 * - the caller's signal firing rejects with ModelAbortError at once, even while the backend is still
 *   waiting on its engine, and also when the answer was already at hand;
 * - the raw iterator is always closed (`return()`), so the backend's own cleanup (closing an HTTP
 *   stream, handing back a worker slot) runs on completion, failure, abort and an early break.
 * Errors the backend raises pass through unchanged: mapping engine failures is each backend's job.
 */
import type { GenerateEvent, Usage } from './backend.js';
import { ModelAbortError, ModelError } from './errors.js';

/** What a backend reports while it generates; `measureGeneration` makes the public stream from it. */
export type RawEvent =
  /**
   * The request was handed to the engine; `encodeMs` is the backend's own preparation before it
   * (JPEG/WAV/base64, media fitting). Timings count from here. Only the first one counts, and only
   * before any text.
   */
  | { type: 'sent'; encodeMs?: number }
  | { type: 'delta'; text: string }
  /**
   * The engine finished. `encodeMs` is preparation the engine did after it got the request (the
   * in-process worker runs the processor there), added to the backend's own.
   */
  | { type: 'end'; usage: Usage; finishReason?: string; encodeMs?: number };

export interface MeasureOptions {
  /** The caller's signal (GenerateRequest.signal). */
  signal?: AbortSignal | undefined;
  /** Monotonic milliseconds. Default performance.now. */
  now?: () => number;
}

/**
 * The public stream for one generation. A raw stream that yields text without a `sent` first is
 * measured from the moment the caller first asked for an event.
 */
export async function* measureGeneration(raw: AsyncIterable<RawEvent>, opts: MeasureOptions = {}): AsyncGenerator<GenerateEvent> {
  const now = opts.now ?? (() => performance.now());
  const signal = opts.signal;
  if (signal?.aborted) throw new ModelAbortError(signal.reason);

  // A single abort promise raced against every read, so a backend stuck on its engine cannot
  // delay the rejection; its own signal listener then stops the work behind it.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new ModelAbortError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);

  const it = raw[Symbol.asyncIterator]();
  /** A read that had not settled when we stopped waiting for it (only after an abort). */
  let pending: Promise<IteratorResult<RawEvent>> | undefined;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (pending) {
      // An async generator queues return() behind the unsettled read; awaiting it would make the
      // caller wait for the engine. The backend finishes closing on its own.
      pending.catch(() => undefined);
      void Promise.resolve(it.return?.()).catch(() => undefined);
      return;
    }
    await it.return?.();
  };

  let sentAt = now();
  let sentSeen = false;
  let encodeMs = 0;
  let firstTokenMs: number | undefined;
  let text = '';
  try {
    for (;;) {
      if (signal?.aborted) throw new ModelAbortError(signal.reason);
      const read = it.next();
      pending = read;
      let r: IteratorResult<RawEvent>;
      try {
        r = await (signal ? Promise.race([read, aborted]) : read);
        pending = undefined;
      } catch (err) {
        // Whatever the backend threw once the caller gave up, the caller asked for an abort.
        if (signal?.aborted) throw err instanceof ModelAbortError ? err : new ModelAbortError(signal.reason);
        pending = undefined;
        throw err;
      }
      if (signal?.aborted) throw new ModelAbortError(signal.reason);
      if (r.done) {
        closed = true;
        throw new ModelError('engine_error', 'engine stream ended before the reply finished');
      }
      const ev = r.value;
      if (ev.type === 'sent') {
        if (sentSeen) continue;
        sentSeen = true;
        sentAt = now();
        encodeMs += ev.encodeMs ?? 0;
      } else if (ev.type === 'delta') {
        if (ev.text === '') continue;
        // Text means the engine had the request: a late `sent` must not restart the clock.
        sentSeen = true;
        firstTokenMs ??= now() - sentAt;
        text += ev.text;
        yield { type: 'delta', text: ev.text };
      } else {
        const modelMs = now() - sentAt;
        // Closed before `done` is handed out: the backend is free by the time the caller sees it.
        await close();
        if (signal?.aborted) throw new ModelAbortError(signal.reason);
        yield {
          type: 'done',
          text,
          usage: ev.usage,
          timings: { encodeMs: encodeMs + (ev.encodeMs ?? 0), ...(firstTokenMs !== undefined ? { firstTokenMs } : {}), modelMs },
          ...(ev.finishReason ? { finishReason: ev.finishReason } : {}),
        };
        return;
      }
    }
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    await close();
  }
}
