/**
 * Small statistics shared by the demo summary and the benchmarks.
 */

/** Nearest-rank percentile (p in 0–100) of unsorted samples; NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}
