/**
 * What the media layer hands to the rest of the system. The sampler emits these; the generation
 * loop buffers them. Kept free of any decoder specifics.
 */
import type { AudioInput, ImageInput } from '../model/backend.js';

/** A sampled video frame (pts in ms of stream time). */
export type SampledFrame = ImageInput;

/** A run of decoded audio, 16 kHz mono float32, starting at `startPtsMs`. */
export type AudioChunk = AudioInput;

export interface SamplerSettings {
  targetFps: number;
  enableDownscale: boolean;
  downscalePx: number;
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
