/**
 * Incremental parser for a stream of binary PPM (P6, maxval 255) images as written by ffmpeg's `ppm`
 * encoder into image2pipe. PPM carries its own width/height, so a resolution change mid-stream needs
 * no coordination with the decoder.
 */

export interface RgbImage {
  width: number;
  height: number;
  /** Packed RGB24. */
  rgb: Buffer;
}

const MAX_HEADER = 64;
const HEADER_RE = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/;

export class PpmStreamParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need: { width: number; height: number; headerLen: number; size: number } | null = null;

  /** Feeds bytes; returns complete images. Throws on a malformed header (the caller restarts the decoder). */
  push(chunk: Buffer): RgbImage[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: RgbImage[] = [];
    for (;;) {
      if (!this.need) {
        if (this.buffered < 16) break;
        const head = this.peek(Math.min(MAX_HEADER, this.buffered)).toString('latin1');
        const m = HEADER_RE.exec(head);
        if (!m) {
          if (this.buffered >= MAX_HEADER || !head.startsWith('P6')) throw new Error(`bad PPM header ${JSON.stringify(head.slice(0, 16))}`);
          break;
        }
        const width = Number(m[1]);
        const height = Number(m[2]);
        if (Number(m[3]) !== 255 || width <= 0 || height <= 0) throw new Error(`unsupported PPM ${m[0]}`);
        this.need = { width, height, headerLen: m[0].length, size: m[0].length + width * height * 3 };
      }
      if (this.buffered < this.need.size) break;
      const all = this.take(this.need.size);
      out.push({ width: this.need.width, height: this.need.height, rgb: all.subarray(this.need.headerLen) });
      this.need = null;
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const taken = all.length === n ? all : Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }
}
