/**
 * RGB24 → baseline JPEG in libvips via `sharp` (runs in the libuv threadpool, not on the event loop).
 * sharp arrives as a dependency of @huggingface/transformers; it is loaded lazily so a process that never
 * asks for JPEG never loads it.
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

export async function encodeJpeg(rgb: Buffer, width: number, height: number, quality: number): Promise<Buffer> {
  const sharp = await loadSharp();
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: Math.max(1, Math.min(100, Math.round(quality))), progressive: false, chromaSubsampling: '4:2:0' })
    .toBuffer();
}
