/**
 * The stream params of the richer outputs (partial text, structured output, alert rules): their
 * zod fields, the named output-schema presets and the rule shapes. params.ts spreads these fields
 * into the one params schema (passing its own number/boolean coercion helpers, so every param
 * coerces alike), which keeps them validated, typed, live-updatable and documented with the rest.
 *
 * Untrusted input: a schema is compiled here (util/json-schema.ts: bounded, no remote refs, linear
 * regexes) and a rule's regex too (util/safe-regex.ts: RE2 semantics, linear time), so a bad one is
 * a 400 naming the field, and what runs later cannot hang the event loop.
 */
import { z } from 'zod';
import { compileJsonSchema } from '../util/json-schema.js';
import { compileSafeRegex } from '../util/safe-regex.js';

/** Named schemas for `output_schema`; each is strict-compatible (every property required, no extras). */
export const OUTPUT_PRESETS = {
  caption: {
    type: 'object',
    properties: { caption: { type: 'string', description: 'One or two sentences on what is happening right now.' } },
    required: ['caption'],
    additionalProperties: false,
  },
  scene: {
    type: 'object',
    properties: {
      summary: { type: 'string', description: 'One sentence on what is happening.' },
      people: { type: 'integer', minimum: 0, description: 'How many people are visible.' },
      objects: { type: 'array', items: { type: 'string' }, maxItems: 20, description: 'Notable objects in view.' },
      speech: { type: 'string', description: 'What is said, or an empty string when nobody speaks.' },
    },
    required: ['summary', 'people', 'objects', 'speech'],
    additionalProperties: false,
  },
} as const satisfies Record<string, Record<string, unknown>>;

export type OutputPresetName = keyof typeof OUTPUT_PRESETS;
export const OUTPUT_PRESET_NAMES = Object.keys(OUTPUT_PRESETS) as OutputPresetName[];

/** What `output_schema` holds once validated: a preset name, a JSON Schema object, or null (off). */
export type OutputSchemaParam = string | Record<string, unknown> | null;

export const MAX_ALERT_RULES = 16;
export const MAX_RULE_TEXT = 256;
const RULE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const JSON_PATH = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,15}$/;
export const ALERT_OPS = ['exists', 'eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'contains'] as const;
export type AlertOp = (typeof ALERT_OPS)[number];

export interface AlertRuleParam {
  name: string;
  cooldown_s: number;
  ignore_case: boolean;
  contains?: string | undefined;
  regex?: string | undefined;
  json_path?: string | undefined;
  op?: AlertOp | undefined;
  value?: string | number | boolean | null | undefined;
}

/** Helpers from params.ts, so these fields coerce exactly like the others (their zod types pass through). */
export interface FieldHelpers<NF extends z.ZodType, BF extends z.ZodType> {
  numberField(opts: { min: number; max: number; def: number; int?: boolean; doc: string }): NF;
  boolField(def: boolean, doc: string): BF;
}

function outputSchemaField() {
  const presets = OUTPUT_PRESET_NAMES.map((n) => `"${n}"`).join(', ');
  return z
    .unknown()
    .transform((v, ctx): OutputSchemaParam => {
      if (v === undefined || v === null || v === '') return null;
      let schema: unknown = v;
      if (typeof v === 'string') {
        const s = v.trim();
        if (Object.hasOwn(OUTPUT_PRESETS, s)) return s;
        if (!s.startsWith('{')) {
          ctx.addIssue({ code: 'custom', message: `must be a JSON Schema object or one of the presets ${presets} (got ${JSON.stringify(s.slice(0, 64))})` });
          return z.NEVER;
        }
        try {
          schema = JSON.parse(s);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'is a string starting with "{" but not valid JSON' });
          return z.NEVER;
        }
      }
      const r = compileJsonSchema(schema);
      if (!r.ok) {
        ctx.addIssue({ code: 'custom', message: r.message });
        return z.NEVER;
      }
      return r.compiled.schema;
    })
    .default(null)
    .describe(
      `Make the model answer JSON: a JSON Schema object, or a preset (${presets}); \`null\` turns it off. Sent to engines as \`response_format\` (guided decoding); each \`generation\` record then carries the parsed \`json\`, and an answer that is not valid JSON or breaks the schema becomes an \`error\` record with the raw text.`,
    );
}

function alertRule<NF extends z.ZodType, BF extends z.ZodType>(h: FieldHelpers<NF, BF>) {
  return z
    .object({
      name: z.string({ error: 'must be a string' }).regex(RULE_NAME, { error: 'must be 1–64 characters of A–Z, a–z, 0–9, _ . : -' }),
      cooldown_s: h.numberField({ min: 0, max: 86_400, def: 60, doc: 'Seconds after a firing during which the rule stays quiet.' }),
      ignore_case: h.boolField(true, 'Case-insensitive `contains`/`regex`/string comparisons.'),
      contains: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_RULE_TEXT, { error: `must be at most ${MAX_RULE_TEXT} characters` }).optional(),
      regex: z.string({ error: 'must be a string' }).optional(),
      json_path: z.string({ error: 'must be a string' }).regex(JSON_PATH, { error: 'must be a dot path of up to 16 keys or indexes, e.g. "people" or "objects.0"' }).optional(),
      op: z.enum(ALERT_OPS, { error: `must be one of ${ALERT_OPS.join(', ')}` }).optional(),
      value: z.union([z.string().max(MAX_RULE_TEXT), z.number(), z.boolean(), z.null()], { error: 'must be a string, number, boolean or null' }).optional(),
    })
    .strict()
    .superRefine((parsed, ctx) => {
      const r = parsed as AlertRuleParam; // the helpers' generic types hide the field types here
      const kinds = [r.contains, r.regex, r.json_path].filter((x) => x !== undefined).length;
      if (kinds !== 1) {
        ctx.addIssue({ code: 'custom', message: 'needs exactly one of `contains`, `regex` or `json_path`' });
        return;
      }
      if (r.regex !== undefined) {
        const c = compileSafeRegex(r.regex, { ignoreCase: r.ignore_case });
        if (!c.ok) ctx.addIssue({ code: 'custom', path: ['regex'], message: c.message });
      }
      if (r.json_path === undefined) {
        if (r.op !== undefined || r.value !== undefined) ctx.addIssue({ code: 'custom', message: '`op` and `value` go with `json_path`' });
        return;
      }
      const op = r.op ?? 'exists';
      if (op !== 'exists' && r.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: `is required with op "${op}"` });
      if (['gt', 'gte', 'lt', 'lte'].includes(op) && typeof r.value !== 'number') ctx.addIssue({ code: 'custom', path: ['value'], message: `must be a number with op "${op}"` });
    });
}

export function outputParamsShape<NF extends z.ZodType, BF extends z.ZodType>(h: FieldHelpers<NF, BF>) {
  return {
    partial_text: h.boolField(false, 'Publish `type: "partial"` records with the text so far while the model writes (same `cycle_id`, increasing `partial_seq`), before the usual `generation` record.'),
    partial_interval_ms: h.numberField({ min: 50, max: 10_000, def: 250, int: true, doc: 'Least time between two `partial` records of one cycle (the first goes out with the first token).' }),
    output_schema: outputSchemaField(),
    output_schema_best_effort: h.boolField(
      false,
      'Accept `output_schema` on a backend that cannot constrain decoding (in-process): the schema is added to the prompt and the answer parsed as best it can. Without it such a backend refuses `output_schema` with a 400.',
    ),
    alert_rules: z
      .array(alertRule(h), { error: 'must be an array of rules' })
      .max(MAX_ALERT_RULES, { error: `must have at most ${MAX_ALERT_RULES} rules` })
      .superRefine((rules, ctx) => {
        const seen = new Set<string>();
        for (const [i, r] of rules.entries()) {
          if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${r.name}" is used by an earlier rule` });
          seen.add(r.name);
        }
      })
      .default([])
      .describe(
        'Rules on each cycle\'s output: `{name, contains | regex | json_path (+ op, value), cooldown_s (60), ignore_case (true)}`. A match publishes an `alert` event and a `type: "alert"` record, at most once per `cooldown_s` per rule.',
      ),
  };
}

/** README table types for fields the JSON-Schema rendering cannot name. */
export const OUTPUT_PARAM_DOC_TYPES: Readonly<Record<string, string>> = {
  output_schema: 'object \\| string \\| null',
  alert_rules: 'array of rules',
};
