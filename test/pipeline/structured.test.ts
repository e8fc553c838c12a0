/**
 * Structured output, pure parts and the loop: the answer check (valid → json; not JSON / breaks the
 * schema → the documented codes), best-effort parsing, the schema name sent, the backend check by
 * declared capability, and a best-effort cycle on a backend that cannot constrain decoding (schema in
 * the prompt, no responseFormat, the parsed json on the record).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OUTPUT_PRESETS } from '../../src/config/output-params.js';
import { httpStatusOf } from '../../src/server/http-status.js';
import { parseStartParams } from '../../src/config/params.js';
import { rootLogger } from '../../src/log.js';
import type { BackendCapabilities } from '../../src/model/backend.js';
import { responseFormatBody } from '../../src/model/openai.js';
import { GenerationLoop } from '../../src/pipeline/loop.js';
import type { DataRecord } from '../../src/pipeline/records.js';
import { assertBackendSupports, backendSupportProblem, checkAnswer, responseFormatFor, structuredSpec } from '../../src/pipeline/structured.js';
import { ScriptedBackend } from '../helpers/model.js';
import { waitFor } from '../helpers/wait.js';

const ENGINE: BackendCapabilities = { images: true, maxImages: 8, audio: 'input_audio', structuredOutput: 'json_schema' };
const INPROC: BackendCapabilities = { images: true, maxImages: 1, audio: 'raw' };
const params = (p: Record<string, unknown>) => parseStartParams(p).params;

test('a constrained answer is parsed and checked: valid, not JSON, or against the schema', () => {
  const spec = structuredSpec(params({ output_schema: 'scene' }), ENGINE)!;
  assert.equal(spec.constrained, true);
  const good = { summary: 's', people: 1, objects: [], speech: '' };
  assert.deepEqual(checkAnswer(` ${JSON.stringify(good)}\n`, spec), { ok: true, json: good });
  const notJson = checkAnswer('{"summary": "s", "people":', spec, 'length');
  assert.equal(notJson.ok, false);
  assert.ok(!notJson.ok && notJson.code === 'output_not_json' && /max_new_tokens/.test(notJson.message));
  const bad = checkAnswer(JSON.stringify({ ...good, extra: 1 }), spec);
  assert.ok(!bad.ok && bad.code === 'output_schema_mismatch' && /additional properties/.test(bad.message), JSON.stringify(bad));
  assert.equal(checkAnswer('```json\n{}\n```', spec).ok, false, 'a constrained answer is taken as it is');
});

test('best effort tolerates a ```json fence or prose around one object', () => {
  const spec = structuredSpec(params({ output_schema: 'caption' }), INPROC)!;
  assert.equal(spec.constrained, false);
  assert.deepEqual(checkAnswer('```json\n{"caption": "a dog"}\n```', spec), { ok: true, json: { caption: 'a dog' } });
  assert.deepEqual(checkAnswer('Sure! {"caption": "a cat"} Hope it helps.', spec), { ok: true, json: { caption: 'a cat' } });
  assert.equal(checkAnswer('no object at all', spec).ok, false);
});

test('the schema travels as OpenAI/vLLM response_format with a valid name', () => {
  const preset = responseFormatFor(structuredSpec(params({ output_schema: 'scene' }), ENGINE)!);
  assert.deepEqual(responseFormatBody(preset), { type: 'json_schema', json_schema: { name: 'scene', schema: OUTPUT_PRESETS.scene, strict: true } });
  const titled = structuredSpec(params({ output_schema: { title: 'Vehicle_count', type: 'object' } }), ENGINE)!;
  assert.equal(titled.name, 'Vehicle_count');
  const untitled = structuredSpec(params({ output_schema: JSON.stringify({ title: 'has spaces', type: 'object' }) }), ENGINE)!;
  assert.equal(untitled.name, 'output', 'a title that is not a valid name falls back');
  assert.equal(structuredSpec(params({}), ENGINE), undefined);
});

test('the backend check goes by declared capability: refused without constrained decoding unless best effort', () => {
  assert.equal(backendSupportProblem(params({ output_schema: 'scene' }), ENGINE), undefined);
  assert.equal(backendSupportProblem(params({}), INPROC), undefined);
  assert.match(backendSupportProblem(params({ output_schema: 'scene' }), INPROC) ?? '', /cannot constrain decoding/);
  assert.equal(backendSupportProblem(params({ output_schema: 'scene', output_schema_best_effort: true }), INPROC), undefined);
  assert.throws(() => assertBackendSupports(params({ output_schema: 'scene' }), INPROC), (e: Error) => httpStatusOf(e) === 400 && /^output_schema: /.test(e.message));
});

test('bad schemas are a 400 naming the field: unknown keywords, remote refs, unsafe patterns, size', () => {
  const bad = [
    [{ type: 'object', properties: 3 }, /output_schema: is not a usable JSON Schema/],
    [{ $ref: 'https://example.com/s.json' }, /can't resolve reference/],
    [{ type: 'string', pattern: '(x)\\1' }, /not a supported regular expression/],
    [{ type: 'object', description: 'x'.repeat(20_000) }, /at most 16384 bytes/],
    ['nope', /one of the presets "caption", "scene"/],
    [[1], /must be a JSON Schema object/],
  ] as const;
  for (const [v, re] of bad) assert.throws(() => parseStartParams({ output_schema: v }), re, JSON.stringify(v).slice(0, 40));
  let deep: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < 40; i++) deep = { type: 'array', items: deep };
  assert.throws(() => parseStartParams({ output_schema: deep }), /nested at most 32 levels/);
});

test('a best-effort cycle: schema in the prompt, no responseFormat, the parsed json on the record; correction is skipped', async () => {
  const backend = new ScriptedBackend('instant', () => 'Here: ```json\n{"caption": "two dogs"}\n```');
  (backend as { capabilities: BackendCapabilities }).capabilities = INPROC;
  const records: DataRecord[] = [];
  const loop = new GenerationLoop('s', params({ generate_every_s: 1, output_schema: 'caption', output_schema_best_effort: true, correction_enabled: true, prompt: 'Describe.' }), {
    backend,
    publish: (r) => records.push(...r),
    reportError: () => undefined,
    log: rootLogger(),
  });
  const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
  for (let t = 0; t <= 1000; t += 100) loop.pushFrame({ ptsMs: t, width: 8, height: 8, jpeg: JPEG });
  await waitFor('a record', () => records.length > 0);
  const req = backend.calls[0]!;
  assert.equal(req.responseFormat, undefined);
  assert.ok(req.prompt.startsWith('Describe.\n\nAnswer with one JSON object'), req.prompt);
  assert.ok(req.prompt.includes(JSON.stringify(OUTPUT_PRESETS.caption)));
  const gen = records[0]!;
  assert.ok(gen.type === 'generation');
  assert.deepEqual(gen.json, { caption: 'two dogs' });
  assert.equal(gen.prompt, req.prompt, 'the record carries the prompt the request used');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(backend.calls.length, 1, 'no correction pass on structured output');
  assert.equal(records.length, 1);
  loop.close();
  await loop.settle(0, 100);
});

test('a constrained cycle sends the schema as responseFormat on the request', async () => {
  const backend = new ScriptedBackend('instant', () => '{"caption":"x"}');
  (backend as { capabilities: BackendCapabilities }).capabilities = ENGINE;
  const records: DataRecord[] = [];
  const loop = new GenerationLoop('s', params({ generate_every_s: 1, output_schema: 'caption' }), { backend, publish: (r) => records.push(...r), reportError: () => undefined, log: rootLogger() });
  const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
  for (let t = 0; t <= 1000; t += 100) loop.pushFrame({ ptsMs: t, width: 8, height: 8, jpeg: JPEG });
  await waitFor('a record', () => records.length > 0);
  assert.deepEqual(backend.calls[0]!.responseFormat, { type: 'json_schema', name: 'caption', schema: OUTPUT_PRESETS.caption, strict: true });
  assert.equal(backend.calls[0]!.prompt, params({}).prompt, 'the prompt is left alone');
  loop.close();
  await loop.settle(0, 100);
});
