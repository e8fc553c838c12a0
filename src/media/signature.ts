/**
 * A cheap content signature per sampled frame and a distance between two of them — what the
 * content-aware cycles (src/pipeline/content-gate.ts) compare to drop near-duplicate frames, skip
 * unchanged cycles and spot scene cuts. The signature is a SIGNATURE_GRID² greyscale thumbnail of
 * the picture's content rectangle (letterbox bars left out, so they do not dilute a change), computed
 * from the RGB the decoder already produced: no second decode, no extra ffmpeg output.
 *
 * Promises: pure and deterministic; reads at most about SIGNATURE_GRID² × SAMPLES_PER_CELL² pixels
 * whatever the frame size (a 768×768 frame costs well under a millisecond); the distance is in
 * [0, 1] (mean absolute luma difference per cell over 255), 0 for identical pictures, symmetric.
 */

/** Thumbnail side in cells: 16 × 16 = 256 bytes per frame. */
export const SIGNATURE_GRID = 16;
/** Pixels read per cell side (evenly spread): enough to average out codec noise. */
const SAMPLES_PER_CELL = 6;

/** One byte of mean luma per cell, row-major, SIGNATURE_GRID² bytes. */
export type FrameSignature = Uint8Array;

export interface SignatureRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The signature of a packed RGB24 picture (`width` × `height`, row stride `width * 3`), over `rect`
 * (default: the whole picture). Each cell's value is the mean BT.601 luma of an evenly spread
 * SAMPLES_PER_CELL² grid of its pixels.
 */
export function frameSignature(rgb: Uint8Array, width: number, height: number, rect?: SignatureRect): FrameSignature {
  const r = clampRect(rect ?? { x: 0, y: 0, width, height }, width, height);
  const out = new Uint8Array(SIGNATURE_GRID * SIGNATURE_GRID);
  if (r.width <= 0 || r.height <= 0 || rgb.length < width * height * 3) return out;
  const stride = width * 3;
  for (let cy = 0; cy < SIGNATURE_GRID; cy++) {
    const y0 = r.y + (cy * r.height) / SIGNATURE_GRID;
    const ch = r.height / SIGNATURE_GRID;
    for (let cx = 0; cx < SIGNATURE_GRID; cx++) {
      const x0 = r.x + (cx * r.width) / SIGNATURE_GRID;
      const cw = r.width / SIGNATURE_GRID;
      let sum = 0;
      for (let sy = 0; sy < SAMPLES_PER_CELL; sy++) {
        const py = Math.min(r.y + r.height - 1, Math.floor(y0 + ((sy + 0.5) * ch) / SAMPLES_PER_CELL));
        const row = py * stride;
        for (let sx = 0; sx < SAMPLES_PER_CELL; sx++) {
          const px = Math.min(r.x + r.width - 1, Math.floor(x0 + ((sx + 0.5) * cw) / SAMPLES_PER_CELL));
          const i = row + px * 3;
          // BT.601 luma in fixed point (weights sum to 256).
          sum += (77 * rgb[i]! + 150 * rgb[i + 1]! + 29 * rgb[i + 2]!) >> 8;
        }
      }
      out[cy * SIGNATURE_GRID + cx] = Math.round(sum / (SAMPLES_PER_CELL * SAMPLES_PER_CELL));
    }
  }
  return out;
}

/** Mean absolute difference of two signatures, over 255: 0 = same picture, 1 = black vs white. */
export function signatureDistance(a: FrameSignature, b: FrameSignature): number {
  const n = Math.min(a.length, b.length);
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / (n * 255);
}

/**
 * Runs of near-duplicates (each within `threshold` of its run's first frame, so slow drift still starts
 * a new run once it adds up) reduced to their newest frame; frames without a signature always stay.
 */
export function collapseDuplicates<F extends { signature?: FrameSignature }>(frames: readonly F[], threshold: number): { frames: F[]; dropped: number } {
  const out: F[] = [];
  let anchor: FrameSignature | undefined;
  for (const f of frames) {
    if (anchor && f.signature && signatureDistance(anchor, f.signature) <= threshold) {
      out[out.length - 1] = f;
      continue;
    }
    out.push(f);
    anchor = f.signature;
  }
  return { frames: out, dropped: frames.length - out.length };
}

function clampRect(r: SignatureRect, width: number, height: number): SignatureRect {
  const x = Math.max(0, Math.min(width, Math.floor(r.x)));
  const y = Math.max(0, Math.min(height, Math.floor(r.y)));
  return { x, y, width: Math.max(0, Math.min(width - x, Math.floor(r.width))), height: Math.max(0, Math.min(height - y, Math.floor(r.height))) };
}
