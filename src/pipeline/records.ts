/**
 * Data-channel records: their shapes and their serialisation to one NDJSON line each.
 * The gateway reads the data channel with a line scanner that breaks on lines over 64 KiB (spec §6.7),
 * so serialisation enforces a byte limit by truncating the free-text fields and flagging `truncated`.
 * `error.code` is a registered ErrorCode (src/error-codes.ts).
 */
import type { ErrorCode } from '../error-codes.js';
import type { AlertRecord } from './alerts.js';
import type { PartialRecord } from './partials.js';

export interface RecordWindow {
  start_ms: number;
  end_ms: number;
}

export interface RecordUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

export interface GenerationStats {
  frame_count: number;
  audio_duration_ms: number;
  input_tokens: number;
  max_new_tokens: number;
  /** Frames left out to fit max_input_tokens (token-budget gating). */
  frames_dropped_by_gating: number;
  /** Frames left out because the engine accepts at most maxImages images per request. */
  frames_dropped_by_engine_limit: number;
  /** Which limit cut the frames, when one did ('max_input_tokens' wins when both did). */
  frames_limited_by?: 'engine_max_images' | 'max_input_tokens';
  audio_dropped_by_gating?: boolean;
  audio_silent?: boolean;
  /** Cycles that came due while this stream's previous cycle was still running, since the last record. */
  skipped_cycles: number;
  /** Records dropped past the data queue's bound, since the last record that reported drops. */
  records_dropped: number;
  /** `queue`: how long the request waited for the shared backend (many streams per process). */
  timings_ms: { encode: number; model: number; total: number; first_token?: number; queue?: number };
  /** Content-aware cycles: near-duplicate frames dropped before gating, since the last generation record. */
  frames_dropped_as_duplicate?: number;
  /** Content-aware cycles: cycles skipped as unchanged since the last generation record. */
  unchanged_cycles?: number;
}

export interface GenerationRecord {
  type: 'generation';
  stream_id: string;
  timestamp_ms: number;
  /** A UUID per cycle; correction and error records of the cycle carry the same one. */
  cycle_id: string;
  /** 1, 2, 3… per stream, for ordering and gaps at a glance. */
  cycle_seq: number;
  prompt: string;
  text: string;
  window: RecordWindow;
  stats: GenerationStats;
  usage: RecordUsage;
  finish_reason?: string;
  /** Why the cycle ran (content-aware cycles; `interval` with the fixed cadence). */
  trigger?: CycleTrigger;
  /** With `output_schema`: the parsed answer (it matched the schema). */
  json?: unknown;
  truncated?: boolean;
}

export interface CorrectionRecord {
  type: 'correction';
  stream_id: string;
  timestamp_ms: number;
  /** The generation record this rewrites. */
  cycle_id: string;
  cycle_seq: number;
  history_len: number;
  corrected_text: string;
  window: RecordWindow;
  stats: {
    input_tokens: number;
    max_new_tokens: number;
    records_dropped: number;
    timings_ms: { generate: number; correct: number; total: number };
  };
  usage: RecordUsage;
  truncated?: boolean;
}

export interface ErrorRecord {
  type: 'error';
  stream_id: string;
  timestamp_ms: number;
  cycle_id: string;
  cycle_seq: number;
  prompt?: string;
  window?: RecordWindow;
  error: { code: ErrorCode; message: string };
  /** The model's raw answer, when the error is about it (`output_not_json`, `output_schema_mismatch`). */
  text?: string;
  stats?: {
    skipped_cycles: number;
    records_dropped: number;
    input_tokens?: number;
    frames_dropped_by_gating?: number;
    frames_dropped_by_engine_limit?: number;
  };
  /** Why the cycle ran (see GenerationRecord.trigger). */
  trigger?: CycleTrigger;
  truncated?: boolean;
}

// ---- content-aware cycles (issue 14) ----

/** Why a cycle ran: the clock, or a change the content-aware mode saw. */
export type CycleTrigger = 'interval' | 'scene_change' | 'speech_end';

/**
 * A cycle that came due and was not run: its frames matched the last cycle's and the audio was
 * silent. Refers to the last generation (`cycle_id`, `cycle_seq` are that cycle's); `window` is the
 * media time judged unchanged; `unchanged_cycles` counts the consecutive skips so far.
 */
export interface UnchangedRecord {
  type: 'unchanged';
  stream_id: string;
  timestamp_ms: number;
  cycle_id: string;
  cycle_seq: number;
  window: RecordWindow;
  stats: { unchanged_cycles: number; records_dropped: number };
  truncated?: boolean;
}

export type DataRecord = GenerationRecord | CorrectionRecord | ErrorRecord | UnchangedRecord | PartialRecord | AlertRecord;

/**
 * Stamps a publish-time counter on a record that reports it (its `stats` has the field): the loop
 * stamps `skipped_cycles` on the first record of a cycle, the data channel `records_dropped` on each
 * record it queues. Records are built with 0 there; nothing calls back into their builders.
 */
export function stampStat(record: DataRecord, field: 'skipped_cycles' | 'records_dropped', value: number): void {
  const stats = ('stats' in record ? record.stats : undefined) as Record<string, unknown> | undefined;
  if (stats && field in stats) stats[field] = value;
}

/** Bytes per line including its `\n`; the gateway's bufio.Scanner default buffer is 64 KiB. */
export const MAX_LINE_BYTES = 64 * 1024 - 1;

/** Longest prefix of `s` whose UTF-8 encoding is at most `maxBytes`, never splitting a code point. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= maxBytes) return s;
  let end = maxBytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

type TextField = 'text' | 'corrected_text' | 'error' | 'prompt';

function getField(r: DataRecord, f: TextField): string | undefined {
  if (f === 'error') return r.type === 'error' ? r.error.message : undefined;
  const v = (r as unknown as Record<string, unknown>)[f];
  return typeof v === 'string' ? v : undefined;
}

function setField(r: DataRecord, f: TextField, v: string): DataRecord {
  if (f === 'error') return r.type === 'error' ? { ...r, error: { ...r.error, message: v } } : r;
  return { ...r, [f]: v } as DataRecord;
}

/**
 * One `\n`-terminated JSON line of at most `maxBytes` bytes. Oversized records lose the tail of their
 * free text (model output first, then the prompt echo) and carry `truncated: true`.
 */
export function serializeRecord(record: DataRecord, maxBytes = MAX_LINE_BYTES): string {
  let line = JSON.stringify(record) + '\n';
  let bytes = Buffer.byteLength(line, 'utf8');
  if (bytes <= maxBytes) return line;
  let r: DataRecord = { ...record, truncated: true };
  for (const f of ['text', 'corrected_text', 'error', 'prompt'] as const) {
    const v = getField(r, f);
    if (v === undefined || v.length === 0) continue;
    line = JSON.stringify(r) + '\n';
    bytes = Buffer.byteLength(line, 'utf8');
    if (bytes <= maxBytes) break;
    const over = bytes - maxBytes;
    // JSON escaping can make a character cost up to 6 bytes on the wire (\uXXXX), so measure the
    // encoded field rather than the raw string and shrink until the line fits.
    let keep = Math.max(0, Buffer.byteLength(v, 'utf8') - over);
    for (;;) {
      const candidate = setField(r, f, truncateUtf8(v, keep));
      const l = JSON.stringify(candidate) + '\n';
      const b = Buffer.byteLength(l, 'utf8');
      if (b <= maxBytes || keep === 0) {
        r = candidate;
        line = l;
        bytes = b;
        break;
      }
      keep = Math.max(0, keep - Math.max(b - maxBytes, Math.ceil(keep / 16)));
    }
    if (bytes <= maxBytes) return line;
  }
  // Still over: a parsed `json` as large as its text (structured output) goes; its text stays, cut.
  if ('json' in record && record.json !== undefined) {
    const { json: _json, ...rest } = record;
    return serializeRecord({ ...rest, truncated: true } as DataRecord, maxBytes);
  }
  return line;
}

export function toUsage(u: { promptTokens?: number; completionTokens?: number } | undefined): RecordUsage {
  const out: RecordUsage = {};
  if (u?.promptTokens !== undefined) out.prompt_tokens = u.promptTokens;
  if (u?.completionTokens !== undefined) out.completion_tokens = u.completionTokens;
  return out;
}
