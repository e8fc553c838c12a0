/**
 * Request bodies of the control API. The stream-start body is validated by zod here; its `params`
 * go through the one parameter schema (src/config/params.ts).
 */
import { z } from 'zod';
import { BadRequestError, ParamsValidationError } from '../errors.js';

const channelUrl = z
  .union([z.string(), z.null()], { error: 'must be a string URL' })
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v === null || v.trim() === '') return undefined; // empty = feature off
    let u: URL;
    try {
      u = new URL(v.trim());
    } catch {
      ctx.addIssue({ code: 'custom', message: `is not a valid URL (got ${JSON.stringify(v)})` });
      return z.NEVER;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `must be an http: or https: URL (got ${u.protocol})` });
      return z.NEVER;
    }
    return u.toString().replace(/\/+$/, '');
  });

export const startRequestSchema = z.object({
  gateway_request_id: z
    .string({ error: (iss) => (iss.input === undefined ? 'Field required' : 'must be a string') })
    .trim()
    .min(1, { error: 'must not be empty' }),
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
