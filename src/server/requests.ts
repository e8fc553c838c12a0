/**
 * Request bodies of the control API. The stream-start body is validated by zod here; its `params`
 * go through the one parameter schema (src/config/params.ts).
 * Channel URLs are plain http(s) URLs without query, fragment or credentials: the runner appends
 * `/<seq>` to them, and a `?x=` or `#` would keep that suffix off the path and let a caller aim the
 * runner at any exact URL (issue 17). The rule is trickle/http.ts `channelUrlProblem`, which the trickle
 * clients apply too. Host rules (allowlist, metadata ranges) live in url-policy.ts.
 * Stream ids (gateway_request_id, X-Stream-Id) are 1–128 printable ASCII characters, no spaces.
 */
import { z } from 'zod';
import { BadRequestError, ParamsValidationError } from '../errors.js';
import { channelUrlProblem } from '../trickle/http.js';

export const MAX_STREAM_ID_CHARS = 128;
const STREAM_ID_CHARSET = /^[\x21-\x7e]+$/;

/**
 * The X-Stream-Id header go-livepeer sends on start, params and stop. Absent/empty → undefined;
 * a malformed one is a 400 (it names the stream a call acts on, so it is never guessed at).
 */
export function streamIdHeader(value: string | string[] | undefined): string | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (v.length > MAX_STREAM_ID_CHARS || !STREAM_ID_CHARSET.test(v)) {
    throw new BadRequestError(`X-Stream-Id must be 1–${MAX_STREAM_ID_CHARS} printable ASCII characters without spaces`, 'invalid_stream_id');
  }
  return v;
}

const channelUrl = z
  .union([z.string(), z.null()], { error: 'must be a string URL' })
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v === null || v.trim() === '') return undefined; // empty = feature off
    const problem = channelUrlProblem(v);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return new URL(v.trim()).toString().replace(/\/+$/, '');
  });

export const startRequestSchema = z.object({
  gateway_request_id: z
    .string({ error: (iss) => (iss.input === undefined ? 'Field required' : 'must be a string') })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(MAX_STREAM_ID_CHARS, { error: `must be at most ${MAX_STREAM_ID_CHARS} characters` })
    .regex(STREAM_ID_CHARSET, { error: 'must be printable ASCII without spaces' }),
  subscribe_url: channelUrl,
  publish_url: channelUrl,
  data_url: channelUrl,
  control_url: channelUrl,
  events_url: channelUrl,
  params: z.unknown().optional(),
  // Sent by go-livepeer's ai-runner path; accepted and ignored.
  manifest_id: z.unknown().optional(),
  stream_id: z.unknown().optional(),
  model_id: z.unknown().optional(),
});

export type StartRequest = z.output<typeof startRequestSchema>;

/** Parses a JSON request body that must be an object; `what` prefixes nothing, callers add context. */
export function parseJsonObject(contentType: string | undefined, raw: unknown): Record<string, unknown> {
  const ct = (contentType ?? 'application/octet-stream').toLowerCase();
  if (!ct.startsWith('application/json')) {
    throw new BadRequestError(`Unknown content type: ${contentType ?? 'application/octet-stream'} (send application/json)`, 'unsupported_content_type');
  }
  const text = typeof raw === 'string' ? raw : '';
  if (text.trim() === '') throw new BadRequestError('request body is empty (expected a JSON object)', 'invalid_json');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('request body must be a JSON object', 'invalid_json');
  }
  return value as Record<string, unknown>;
}

export function parseStartRequest(body: Record<string, unknown>): StartRequest {
  const r = startRequestSchema.safeParse(body);
  if (!r.success) {
    throw new ParamsValidationError(r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
  }
  return r.data;
}
