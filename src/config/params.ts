/**
 * Stream parameters: the single source of truth for their names, types, defaults, bounds, docs and
 * error messages. Used by POST start/params, the control channel and the README's parameter table
 * (generated from `paramsDocs()`).
 *
 * Coercion follows PyTrickle where it defines a rule (`width`/`height`/`max_framerate` go through
 * Python `int()` semantics, `detect_out_resolution` through its bool table) and is otherwise lenient in
 * the way HTTP clients expect: numbers may arrive as decimal numeric strings (never hex, binary or exponent
 * forms), booleans as "true"/"false". Unknown keys are kept but bounded per stream (count and JSON size).
 */
import { z } from 'zod';
import { ParamsValidationError } from '../errors.js';
// ---- richer outputs (issue 15): partial text, structured output, alert rules
import { OUTPUT_PARAM_DOC_TYPES, outputParamsShape } from './output-params.js';

export const DEFAULT_PROMPT =
  'You are watching and listening to a live stream. In one or two sentences, say what is happening right now: ' +
  'what you see, and what you hear if there is sound.';

const MAX_PROMPT_BYTES = 8 * 1024;

/** Plain decimal only: `Number()` would also take "0x10", "1e3", "0b1" and "Infinity". */
const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/;

/** Decimal numeric strings ("4", " 2.5 ") become numbers; everything else is left for the schema to judge. */
function numeric(schema: z.ZodNumber) {
  return z.preprocess((v) => {
    if (typeof v === 'string' && DECIMAL.test(v)) return Number(v);
    return v;
  }, schema);
}

function numberField(opts: { min: number; max: number; def: number; int?: boolean; doc: string }) {
  let n = z.number({ error: (iss) => (iss.input === undefined ? 'is required' : `must be a number (got ${JSON.stringify(iss.input)})`) });
  if (opts.int) n = n.int({ error: 'must be an integer' });
  n = n
    .min(opts.min, { error: `must be at least ${opts.min}` })
    .max(opts.max, { error: `must be at most ${opts.max}` });
  return numeric(n).default(opts.def).describe(opts.doc);
}

/** "true"/"false"/"1"/"0"/"yes"/"no" (any case), 0/1 and booleans. */
function boolField(def: boolean, doc: string) {
  return z
    .preprocess((v) => {
      if (typeof v === 'string') {
        const s = v.trim().toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(s)) return true;
        if (['false', '0', 'no', 'off'].includes(s)) return false;
      }
      if (v === 0 || v === 1) return v === 1;
      return v;
    }, z.boolean({ error: (iss) => `must be a boolean (got ${JSON.stringify(iss.input)})` }))
    .default(def)
    .describe(doc);
}

/** Python int(): ints, floats (truncated), bools (0/1) and integer strings; NaN/inf/"1.5"/null fail. */
function pythonInt(v: unknown): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number.parseInt(v.trim(), 10);
  return undefined;
}

/** PyTrickle's detect_out_resolution table. */
function pythonBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return v !== 0;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(s)) return true;
    if (['false', '0', 'no'].includes(s)) return false;
  }
  return undefined;
}

const pyWidthHeight = z
  .unknown()
  .transform((v, ctx) => {
    const n = pythonInt(v);
    if (n === undefined || n <= 0) {
      ctx.addIssue({ code: 'custom', message: 'Width and height must be valid integers or integer strings' });
      return z.NEVER;
    }
    return n;
  });

export const paramsShape = {
  prompt: z
    .string({ error: (iss) => (iss.input === undefined ? 'is required' : 'must be a string') })
    .trim()
    .min(1, { error: 'must not be empty' })
    .refine((s) => Buffer.byteLength(s, 'utf8') <= MAX_PROMPT_BYTES, { error: `must be at most ${MAX_PROMPT_BYTES} bytes` })
    .default(DEFAULT_PROMPT)
    .describe('Instruction sent with every cycle\'s frames and audio. Applies from the next cycle.'),
  generate_every_s: numberField({ min: 0.25, max: 600, def: 4, doc: 'Seconds of stream time between generation cycles.' }),
  target_fps: numberField({ min: 0.1, max: 30, def: 3, doc: 'Video frames sampled per second of stream time (chosen by presentation time).' }),
  max_frames: numberField({ min: 1, max: 64, def: 30, int: true, doc: 'Rolling frame buffer size: the newest N sampled frames are offered to each cycle.' }),
  max_input_tokens: numberField({ min: 256, max: 32768, def: 10000, int: true, doc: 'Input token budget per cycle (256 per image, 188 per audio clip, plus text); frames are dropped evenly to fit.' }),
  max_new_tokens: numberField({ min: 1, max: 8192, def: 700, int: true, doc: 'Output token budget per cycle.' }),
  enable_downscale: boolField(true, 'Scale sampled frames so the longest side is `downscale_px` (aspect kept).'),
  // 768: Gemma 3n's image processor resizes every image to 768×768 anyway, so more is wasted work.
  downscale_px: numberField({ min: 64, max: 1536, def: 768, int: true, doc: 'Longest side of sampled frames when `enable_downscale` is on (Gemma 3n\'s processor works at 768×768).' }),
  letterbox: boolField(true, 'Pad sampled frames to a square of `downscale_px` (black bars) so the aspect survives: Gemma 3n\'s processor resizes to 768×768 without keeping it.'),
  audio_window_s: numberField({ min: 0.5, max: 30, def: 4, doc: 'Seconds of the newest audio (16 kHz mono) offered to each cycle.' }),
  modality: z
    .enum(['auto', 'vision', 'audio'], { error: 'must be one of "auto", "vision", "audio"' })
    .default('auto')
    .describe('What the model gets: `vision` frames only, `audio` audio only (no video decode), `auto` both when present.'),
  jpeg_quality: numberField({ min: 1, max: 100, def: 80, int: true, doc: 'JPEG quality of frames sent to an OpenAI-compatible engine.' }),
  silence_rms: numberField({ min: 0, max: 1, def: 0.001, doc: 'Audio whose RMS is below this is treated as silence and left out of the request.' }),
  temperature: numberField({ min: 0, max: 2, def: 0.2, doc: 'Sampling temperature (0 = greedy).' }),
  top_p: numberField({ min: 0.01, max: 1, def: 0.95, doc: 'Nucleus sampling cutoff.' }),
  context_history: numberField({ min: 0, max: 16, def: 0, int: true, doc: 'Feed the last N outputs back as context (0 = off).' }),
  correction_enabled: boolField(false, 'After each cycle, run a text-only pass that rewrites the latest output using the history; published as `type: "correction"` records.'),
  // PyTrickle's own keys, with its coercion rules and messages.
  width: pyWidthHeight.optional().describe('PyTrickle output width (integer > 0; must come with `height`).'),
  height: pyWidthHeight.optional().describe('PyTrickle output height (integer > 0; must come with `width`).'),
  max_framerate: z
    .unknown()
    .transform((v, ctx) => {
      const n = pythonInt(v);
      if (n === undefined) {
        ctx.addIssue({ code: 'custom', message: 'max_framerate must be a valid integer' });
        return z.NEVER;
      }
      if (n <= 0) {
        ctx.addIssue({ code: 'custom', message: 'max_framerate must be a positive integer' });
        return z.NEVER;
      }
      if (n > 60) {
        ctx.addIssue({ code: 'custom', message: 'max_framerate cannot exceed 60 FPS' });
        return z.NEVER;
      }
      return n;
    })
    .optional()
    .describe('PyTrickle input frame-rate cap (1–60). Accepted for compatibility; sampling uses `target_fps`.'),
  detect_out_resolution: z
    .unknown()
    .transform((v, ctx) => {
      const b = pythonBool(v);
      if (b === undefined) {
        ctx.addIssue({ code: 'custom', message: 'detect_out_resolution must be a boolean value' });
        return z.NEVER;
      }
      return b;
    })
    .optional()
    .describe('PyTrickle flag (boolean or true/false/yes/no/1/0). Accepted for compatibility; output is passthrough.'),
  // ---- content-aware cycles (issue 14): off by default, so the fixed cadence stays as it was ----
  content_aware: boolField(false, 'Spend the model on change only: drop near-duplicate frames, offer each cycle only the frames since the last one, skip cycles whose frames match the last cycle\'s while the audio is silent, and run a cycle early after a scene cut or a sound burst. Off: one cycle every `generate_every_s`, as before.'),
  duplicate_threshold: numberField({ min: 0, max: 1, def: 0.02, doc: 'With `content_aware`: a frame whose signature distance (mean luma difference of a 16×16 thumbnail, 0–1) to the last kept frame is at most this is a near-duplicate (dropped); a cycle whose new frames are all this close to the last cycle\'s is unchanged.' }),
  scene_change_threshold: numberField({ min: 0, max: 1, def: 0.12, doc: 'With `content_aware`: a sampled frame at least this far (signature distance) from the one before it is a scene cut and makes a cycle due early (`trigger: "scene_change"`); 1 = never.' }),
  speech_rms: numberField({ min: 0, max: 1, def: 0.02, doc: 'With `content_aware`: audio at or above this RMS (20 ms frames) is sound; a burst of at least 200 ms ended by `speech_end_silence_s` of quiet makes a cycle due early (`trigger: "speech_end"`); 1 = never.' }),
  speech_end_silence_s: numberField({ min: 0.1, max: 10, def: 0.5, doc: 'With `content_aware`: seconds of quiet that end a sound burst.' }),
  min_trigger_spacing_s: numberField({ min: 0.1, max: 600, def: 1, doc: 'With `content_aware`: least stream time from a cycle\'s start to an early (scene-change or speech-end) cycle\'s start.' }),
  unchanged_output: z
    .enum(['record', 'none'], { error: 'must be one of "record", "none"' })
    .default('record')
    .describe('With `content_aware`: what a skipped unchanged cycle publishes: a small `type: "unchanged"` record naming the last `cycle_id`, or nothing. Either way the next generation counts it in `stats.unchanged_cycles`.'),
  // ---- richer outputs (issue 15): partial text, structured output, alert rules (src/config/output-params.ts)
  ...outputParamsShape({ numberField, boolField }),
} as const;

export const paramsSchema = z.object(paramsShape);

export type StreamParams = z.output<typeof paramsSchema>;
export type ParamsInput = z.input<typeof paramsSchema>;

export const KNOWN_PARAM_KEYS: ReadonlySet<string> = new Set(Object.keys(paramsShape));

/**
 * Unknown keys are kept for the stream's lifetime and arrive from end users (control channel, params
 * route), so their number and total JSON size are bounded per stream, across all updates.
 */
export const MAX_EXTRA_PARAM_KEYS = 64;
export const MAX_EXTRA_PARAM_BYTES = 16 * 1024;

/**
 * Merges `incoming` unknown keys over `current` and checks the result against the limits; throws a
 * ParamsValidationError (400) naming the limit, and leaves `current` untouched either way.
 */
export function mergeExtraParams(current: Record<string, unknown>, incoming: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...current, ...incoming };
  const keys = Object.keys(merged).length;
  if (keys > MAX_EXTRA_PARAM_KEYS) {
    throw new ParamsValidationError([
      { path: 'params', message: `too many unknown parameters: ${keys} (limit ${MAX_EXTRA_PARAM_KEYS} per stream)` },
    ]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(merged), 'utf8');
  if (bytes > MAX_EXTRA_PARAM_BYTES) {
    throw new ParamsValidationError([
      { path: 'params', message: `unknown parameters too large: ${bytes} bytes of JSON (limit ${MAX_EXTRA_PARAM_BYTES} per stream)` },
    ]);
  }
  return merged;
}

export interface ParsedParams {
  params: StreamParams;
  /** Keys we do not know: kept (returned in `extra`) and reported back as `ignored_params`. */
  ignored: string[];
  extra: Record<string, unknown>;
}

function splitKnown(raw: Record<string, unknown>): { known: Record<string, unknown>; extra: Record<string, unknown> } {
  const known: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (KNOWN_PARAM_KEYS.has(k)) known[k] = v;
    else extra[k] = v;
  }
  return { known, extra };
}

function assertObject(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ParamsValidationError([{ path: 'params', message: 'must be a JSON object' }]);
  }
  return raw as Record<string, unknown>;
}

function checkWidthHeightPair(raw: Record<string, unknown>): void {
  if (('width' in raw) !== ('height' in raw)) {
    throw new ParamsValidationError([
      { path: 'width/height', message: "Both 'width' and 'height' must be provided together" },
    ]);
  }
}

function validate(input: Record<string, unknown>): StreamParams {
  const result = paramsSchema.safeParse(input);
  if (!result.success) {
    throw new ParamsValidationError(
      result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  return result.data;
}

/** Validates a start request's `params` (absent/null allowed) into a full parameter set with defaults. */
export function parseStartParams(raw: unknown): ParsedParams {
  const obj = assertObject(raw);
  checkWidthHeightPair(obj);
  const { known, extra } = splitKnown(obj);
  return { params: validate(known), ignored: Object.keys(extra), extra: mergeExtraParams({}, extra) };
}

/**
 * Validates a live update against the parameters in force. Only the keys present change; the result
 * is validated as a whole, so a bad update throws and the caller keeps `current` unchanged.
 * `currentExtra` (the stream's kept unknown keys) makes the returned `extra` the merged set, checked
 * against the per-stream limits; without it only this update's own unknown keys are checked.
 */
export function parseParamsUpdate(
  current: StreamParams,
  raw: unknown,
  currentExtra: Record<string, unknown> = {},
): ParsedParams & { changed: string[] } {
  if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ParamsValidationError([{ path: '', message: 'the update must be a JSON object' }]);
  }
  const obj = raw as Record<string, unknown>;
  checkWidthHeightPair(obj);
  const { known, extra } = splitKnown(obj);
  // Re-validate the patch on its own first so errors name only the fields the caller sent.
  const patchResult = paramsSchema.partial().safeParse(known);
  if (!patchResult.success) {
    throw new ParamsValidationError(
      patchResult.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  const merged: Record<string, unknown> = { ...current };
  // partial() still fills defaults for absent keys; only the keys the caller sent may change.
  const patch = patchResult.data as Record<string, unknown>;
  for (const k of Object.keys(known)) merged[k] = patch[k];
  const params = validate(merged);
  const mergedExtra = mergeExtraParams(currentExtra, extra);
  return { params, ignored: Object.keys(extra), extra: mergedExtra, changed: Object.keys(known) };
}

export interface ParamDoc {
  name: string;
  type: string;
  default: string;
  range: string;
  description: string;
}

/** The parameter table (README), derived from the schema so it cannot drift. */
export function paramsDocs(): ParamDoc[] {
  const json = z.toJSONSchema(paramsSchema, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, { type?: string; enum?: string[]; minimum?: number; maximum?: number; default?: unknown; description?: string; maxLength?: number }>;
  };
  return Object.entries(paramsShape).map(([name, field]) => {
    const p = json.properties[name] ?? {};
    const def = (field as z.ZodType).safeParse(undefined);
    const defText = def.success && def.data !== undefined ? JSON.stringify(def.data) : '—';
    let type = p.enum ? p.enum.map((e) => JSON.stringify(e)).join(' \\| ') : (p.type ?? 'integer');
    if (name === 'width' || name === 'height' || name === 'max_framerate') type = 'integer';
    if (name === 'detect_out_resolution') type = 'boolean';
    type = OUTPUT_PARAM_DOC_TYPES[name] ?? type; // richer outputs (issue 15)
    const range =
      p.minimum !== undefined || p.maximum !== undefined
        ? `${p.minimum ?? ''}–${p.maximum ?? ''}`
        : name === 'prompt'
          ? `1–${MAX_PROMPT_BYTES} bytes`
          : name === 'max_framerate'
            ? '1–60'
            : '';
    return { name, type, default: defText.length > 60 ? '(see below)' : defText, range, description: (field as z.ZodType).description ?? '' };
  });
}
