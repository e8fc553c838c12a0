/**
 * Structured output (`output_schema`): the spec a cycle works with, and checking an answer against
 * it. A backend that can constrain decoding declares `capabilities.structuredOutput: 'json_schema'`
 * and gets the schema as `responseFormat` (vLLM's guided decoding); one that cannot is refused at
 * start/params (`backendSupportProblem`: a 400 naming the param) unless the operator set
 * `output_schema_best_effort`, in which case the schema goes into the prompt instead and the answer
 * is parsed as best it can (a ```json fence or prose around one object is tolerated). Nothing here
 * branches on the backend's kind, only on what it declares.
 *
 * Pure: no I/O, no clock. The answer check never throws: valid → the parsed value, else a stable
 * code (`output_not_json`, `output_schema_mismatch`) and a message naming what is wrong.
 */
import { OUTPUT_PRESETS, type OutputSchemaParam } from '../config/output-params.js';
import type { StreamParams } from '../config/params.js';
import { ParamsValidationError } from '../errors.js';
import type { BackendCapabilities, JsonSchemaFormat } from '../model/backend.js';
import { compileJsonSchema, type CompiledSchema } from '../util/json-schema.js';

export interface StructuredSpec {
  /** The name sent with the schema: the preset's, the schema's `title` when it fits, else "output". */
  name: string;
  compiled: CompiledSchema;
  /** true: the backend enforces the schema while decoding; false: best effort (prompt + parse). */
  constrained: boolean;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

function resolve(v: OutputSchemaParam): { name: string; schema: Record<string, unknown> } | undefined {
  if (v === null) return undefined;
  if (typeof v === 'string') {
    const preset = (OUTPUT_PRESETS as Record<string, Record<string, unknown>>)[v];
    return preset ? { name: v, schema: preset } : undefined;
  }
  const title = v.title;
  return { name: typeof title === 'string' && NAME.test(title) ? title : 'output', schema: v };
}

/** Why these params cannot run on a backend with these capabilities (undefined: they can). */
export function backendSupportProblem(p: Pick<StreamParams, 'output_schema' | 'output_schema_best_effort'>, caps: BackendCapabilities): string | undefined {
  if (p.output_schema === null || caps.structuredOutput === 'json_schema' || p.output_schema_best_effort) return undefined;
  return (
    'this runner\'s model backend cannot constrain decoding to a JSON Schema (the in-process backend cannot); ' +
    'use an OpenAI-compatible engine with guided decoding (vLLM), or set output_schema_best_effort: true to parse the answer as best it can'
  );
}

/** The start/params check: throws the 400 that names `output_schema`. */
export function assertBackendSupports(p: Pick<StreamParams, 'output_schema' | 'output_schema_best_effort'>, caps: BackendCapabilities): void {
  const problem = backendSupportProblem(p, caps);
  if (problem) throw new ParamsValidationError([{ path: 'output_schema', message: problem }]);
}

export function structuredSpec(p: Pick<StreamParams, 'output_schema'>, caps: BackendCapabilities): StructuredSpec | undefined {
  const r = resolve(p.output_schema);
  if (!r) return undefined;
  const c = compileJsonSchema(r.schema);
  // The params schema compiled it already; a failure here would be a bug, and a cycle cannot fix it.
  if (!c.ok) throw new Error(`output_schema no longer compiles: ${c.message}`);
  return { name: r.name, compiled: c.compiled, constrained: caps.structuredOutput === 'json_schema' };
}

export function responseFormatFor(spec: StructuredSpec): JsonSchemaFormat {
  return { type: 'json_schema', name: spec.name, schema: spec.compiled.schema, strict: true };
}

/** The prompt a best-effort cycle sends: the operator's prompt plus the schema to follow. */
export function bestEffortPrompt(prompt: string, spec: StructuredSpec): string {
  return `${prompt}\n\nAnswer with one JSON object and nothing else. It must match this JSON Schema:\n${JSON.stringify(spec.compiled.schema)}`;
}

export type AnswerCheck =
  | { ok: true; json: unknown }
  | { ok: false; code: 'output_not_json' | 'output_schema_mismatch'; message: string };

/** Best effort: the JSON inside a ```json fence, or from the first `{` to the last `}`. */
function extractJson(text: string): string {
  const fence = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fence?.[1] !== undefined) return fence[1].trim();
  const a = text.indexOf('{');
  const b = text.lastIndexOf('}');
  return a >= 0 && b > a ? text.slice(a, b + 1) : text.trim();
}

export function checkAnswer(text: string, spec: StructuredSpec, finishReason?: string): AnswerCheck {
  const candidate = spec.constrained ? text.trim() : extractJson(text);
  let json: unknown;
  try {
    json = JSON.parse(candidate);
  } catch (err) {
    const cut = finishReason === 'length' ? ' (the answer was cut at max_new_tokens: raise it)' : '';
    return { ok: false, code: 'output_not_json', message: `the answer is not valid JSON${cut}: ${err instanceof Error ? err.message : String(err)}` };
  }
  const violation = spec.compiled.check(json);
  if (violation !== undefined) return { ok: false, code: 'output_schema_mismatch', message: `the answer does not match output_schema: ${violation}` };
  return { ok: true, json };
}
