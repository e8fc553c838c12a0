/**
 * The time helpers every module uses: a delay that an AbortSignal cuts short, and a bounded wait on a
 * promise. Both clear their timers (nothing holds the process open) and never reject on their own.
 * Components whose timing is tested take a `Clock` so tests drive time instead of sleeping.
 */

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `p`'s value, or undefined once `ms` passed first (the timer is cleared either way). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wall time and waiting, injectable: real by default, scripted in tests. */
export interface Clock {
  now(): number;
  delay(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), delay };
