/**
 * JSON Schemas from untrusted input (the `output_schema` stream param), compiled with ajv under
 * bounds: at most MAX_SCHEMA_BYTES of JSON nested at most MAX_SCHEMA_DEPTH deep (ajv compiles
 * recursively), no remote `$ref` (nothing is ever fetched; an unresolvable reference is refused),
 * unknown keywords refused (ajv strict schema), `format` not checked, and every `pattern` /
 * `patternProperties` run by the linear-time engine of safe-regex.ts instead of backtracking RegExp.
 * Compiled validators are cached by the schema's JSON text (bounded), so validating the same params
 * again, as every live update does, costs a lookup.
 *
 * Promises: `compileJsonSchema` never throws (a discriminated result); `validate` reports the first
 * violation as one readable line.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { compileSafeRegex } from './safe-regex.js';

export const MAX_SCHEMA_BYTES = 16 * 1024;
export const MAX_SCHEMA_DEPTH = 32;
const CACHE_MAX = 32;

export interface CompiledSchema {
  /** The schema as given (plain JSON). */
  readonly schema: Record<string, unknown>;
  /** undefined when `value` conforms; otherwise the first violation, e.g. `/people: must be integer`. */
  check(value: unknown): string | undefined;
}

export type CompileResult = { ok: true; compiled: CompiledSchema } | { ok: false; message: string };

const cache = new Map<string, CompileResult>();

function depthOf(v: unknown, limit: number, d = 0): number {
  if (d > limit || v === null || typeof v !== 'object') return d;
  let max = d;
  for (const x of Object.values(v as Record<string, unknown>)) {
    max = Math.max(max, depthOf(x, limit, d + 1));
    if (max > limit) break;
  }
  return max;
}

/** ajv's regular-expression hook: patterns run in linear time, unsupported ones fail the compile. */
const linearRegExp = Object.assign(
  (pattern: string): { test(s: string): boolean } => {
    const r = compileSafeRegex(pattern);
    if (!r.ok) throw new Error(`pattern "${pattern.slice(0, 64)}" ${r.message}`);
    return r.regex;
  },
  { code: 'safeRegex' },
);

export function formatSchemaError(e: ErrorObject): string {
  return `${e.instancePath || '(root)'}: ${e.message ?? 'is invalid'}`;
}

export function compileJsonSchema(schema: unknown): CompileResult {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return { ok: false, message: 'must be a JSON Schema object' };
  const text = JSON.stringify(schema);
  const hit = cache.get(text);
  if (hit) return hit;
  const result = compileUncached(schema as Record<string, unknown>, text);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(text, result);
  return result;
}

function compileUncached(schema: Record<string, unknown>, text: string): CompileResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SCHEMA_BYTES) return { ok: false, message: `must be at most ${MAX_SCHEMA_BYTES} bytes of JSON (got ${bytes})` };
  if (depthOf(schema, MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH) return { ok: false, message: `must be nested at most ${MAX_SCHEMA_DEPTH} levels deep` };
  const ajv = sharedAjv();
  try {
    const validate = ajv.compile(schema);
    const frozen = JSON.parse(text) as Record<string, unknown>;
    return {
      ok: true,
      compiled: {
        schema: frozen,
        check(value) {
          if (validate(value)) return undefined;
          const first = validate.errors?.[0];
          return first ? formatSchemaError(first) : 'does not match the schema';
        },
      },
    };
  } catch (err) {
    return { ok: false, message: `is not a usable JSON Schema: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    // Compiled validators keep working; forgetting the schema keeps `$id`s of different streams apart.
    ajv.removeSchema(schema);
  }
}

let ajvInstance: Ajv | undefined;

/** One instance: its meta-schema is compiled once (≈40 ms here), each user schema then in a few ms. */
function sharedAjv(): Ajv {
  ajvInstance ??= new Ajv({
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    validateFormats: false,
    allErrors: false,
    logger: false,
    code: { regExp: linearRegExp },
  });
  return ajvInstance;
}
