/**
 * Errors of the media layer. Codes are stable (they appear in events, logs and stats):
 * - decode_error        ffmpeg reported corrupt/undecodable input; the decoder resyncs at the next keyframe
 * - decoder_exited      the ffmpeg process ended unexpectedly; a new one starts at the next segment
 * - decoder_restart     a new decoder was started (stream layout or settings changed)
 * - segment_dropped     a whole input segment was not given to the decoder (decoder too far behind)
 * - segment_truncated   the rest of an oversized segment was not given to the decoder
 * - frame_dropped       sampled frames dropped because JPEG encoding fell behind
 * - unrecognised_input  a segment with no MPEG-TS program tables, and no decoder to resync into
 * - ffmpeg_unavailable / ffmpeg_failed   cannot run ffmpeg / ffmpeg tool run failed
 * - output_lagging / output_failed       passthrough output dropped (relay)
 * - input_segment_cut                    an input segment ended early (relay)
 * - input_failed / sampler_failed        input subscription failed for good / the sampler threw (relay)
 * - jpeg_unavailable / invalid_settings  sharp cannot be loaded / sampler settings out of range
 * Each is registered in src/error-codes.ts (what it means, whether it is retryable, what to do).
 */
import { AppError, type ErrorCode } from '../errors.js';

export type MediaErrorCode = Extract<
  ErrorCode,
  | 'decode_error'
  | 'decoder_exited'
  | 'decoder_restart'
  | 'segment_dropped'
  | 'segment_truncated'
  | 'frame_dropped'
  | 'unrecognised_input'
  | 'ffmpeg_unavailable'
  | 'ffmpeg_failed'
  | 'output_lagging'
  | 'output_failed'
  | 'input_segment_cut'
  | 'input_failed'
  | 'sampler_failed'
  | 'jpeg_unavailable'
  | 'invalid_settings'
>;

export class MediaError extends AppError {
  declare readonly code: MediaErrorCode;
  /** Input segment the error relates to, when known. */
  readonly seq: number | undefined;

  constructor(code: MediaErrorCode, message: string, options?: { seq?: number; cause?: unknown }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.seq = options?.seq;
  }
}
