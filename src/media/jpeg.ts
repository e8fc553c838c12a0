/**
 * RGB24 → baseline JPEG in libvips via `sharp` (runs in the libuv threadpool, not on the event loop).
 * sharp arrives as a dependency of @huggingface/transformers; it is loaded lazily so a process that never
 * asks for JPEG never loads it.
 *
 * Process-wide bound (many streams per process): at most `JPEG_MAX_IN_FLIGHT` encodes run at once,
 * the rest wait first come, first served. Each stream's sampler already caps what it queues (8 frames),
 * so the line is bounded and no stream's burst can hold the threadpool while another's frames wait.
 */
import { MediaError } from './errors.js';

type SharpFactory = (typeof import('sharp'))['default'];
let loading: Promise<SharpFactory> | undefined;

function loadSharp(): Promise<SharpFactory> {
  loading ??= import('sharp').then(
    (m) => (m as unknown as { default: SharpFactory }).default ?? (m as unknown as SharpFactory),
    (e: unknown) => {
      loading = undefined;
      throw new MediaError('jpeg_unavailable', `cannot load sharp for JPEG encoding: ${(e as Error).message}`, { cause: e });
    },
  );
  return loading;
}

/** libuv's default threadpool size: more encodes at once would only queue inside it, unfairly. */
export const JPEG_MAX_IN_FLIGHT = 4;
let inFlight = 0;
const waiting: Array<() => void> = [];

/** Encodes in flight and waiting, process-wide. */
export function jpegEncodeStats(): { in_flight: number; waiting: number } {
  return { in_flight: inFlight, waiting: waiting.length };
}

export async function encodeJpeg(rgb: Buffer, width: number, height: number, quality: number): Promise<Buffer> {
  const sharp = await loadSharp();
  if (inFlight >= JPEG_MAX_IN_FLIGHT) await new Promise<void>((resolve) => waiting.push(resolve));
  else inFlight++;
  try {
    return await sharp(rgb, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: Math.max(1, Math.min(100, Math.round(quality))), progressive: false, chromaSubsampling: '4:2:0' })
      .toBuffer();
  } finally {
    // The slot passes straight to the next waiter (inFlight unchanged), else it frees.
    const next = waiting.shift();
    if (next) next();
    else inFlight--;
  }
}
