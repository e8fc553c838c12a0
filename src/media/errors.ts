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
 */
import { AppError } from '../errors.js';

export class MediaError extends AppError {
  /** Input segment the error relates to, when known. */
  readonly seq: number | undefined;

  constructor(code: string, message: string, options?: { seq?: number; cause?: unknown }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.seq = options?.seq;
  }
}
