/**
 * What the media layer hands to the rest of the system. The sampler emits these; the generation
 * loop buffers them. Kept free of any decoder specifics, and of the model layer: these types are the
 * media layer's own, and they are structurally what a backend takes (ImageInput / AudioInput in
 * src/model/backend.ts), which the compiler checks where the pipeline passes one to the other.
 */

/** The one audio rate media produces: 16 kHz mono float32, what Gemma 3n's audio encoder takes. */
export const AUDIO_SAMPLE_RATE = 16000;

/** Where the picture sits inside a frame; the rest is black letterbox padding. */
export interface FrameContentRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A sampled video frame (pts in ms of stream time), in the encoding(s) the settings asked for. */
export interface SampledFrame {
  ptsMs: number;
  width: number;
  height: number;
  /** Baseline JPEG bytes (wantJpeg). */
  jpeg?: Buffer;
  /** Packed RGB24, width*height*3 bytes (wantRgb). */
  rgb?: Buffer;
  /** Set on letterboxed frames: the picture's rectangle inside the square. */
  content?: FrameContentRect;
  /** Content signature (signature.ts: 16×16 greyscale thumbnail of the picture), for content-aware cycles. */
  signature?: Uint8Array;
}

/** A run of decoded audio, 16 kHz mono float32, starting at `startPtsMs`. */
export interface AudioChunk {
  startPtsMs: number;
  sampleRate: typeof AUDIO_SAMPLE_RATE;
  samples: Float32Array;
}

export interface SamplerSettings {
  targetFps: number;
  enableDownscale: boolean;
  /** Longest side (letterbox off) or the square's side (letterbox on) when enableDownscale is set. */
  downscalePx: number;
  /**
   * With enableDownscale: fit inside downscalePx² (scaling up or down, aspect kept) and pad black to an
   * exact downscalePx × downscalePx square, as Gemma 3n's processor resizes every image to a square
   * without keeping aspect. Default false (longest side = downscalePx, never upscaled, no padding).
   */
  letterbox?: boolean;
  modality: 'auto' | 'vision' | 'audio';
  jpegQuality: number;
  /** Which representations the consumer needs. */
  wantJpeg: boolean;
  wantRgb: boolean;
}

export interface SamplerStats {
  segmentsIn: number;
  bytesIn: number;
  framesOut: number;
  audioMsOut: number;
  /** Whole input segments not fed to the decoder because it was too far behind. */
  segmentsDropped: number;
  decodeErrors: number;
  decoderRestarts: number;
}
