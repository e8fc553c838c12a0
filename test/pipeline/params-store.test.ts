/**
 * The params in force and their one update path: control-channel messages go through the same schema
 * as HTTP updates, a refusal changes nothing, and every update is counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseParamsUpdate, parseStartParams } from '../../src/config/params.js';
import { ParamsStore } from '../../src/pipeline/params-store.js';

test('a control message is validated by the params schema: a valid one commits (with its unknown keys), an invalid one changes nothing and is counted', () => {
  const start = parseStartParams({ prompt: 'a', generate_every_s: 4 });
  const store = new ParamsStore(start.params, start.extra);
  const ok = store.fromControl({ kind: 'update', seq: 0, payload: { generate_every_s: 2, note: 'x' } }, 1000);
  assert.equal(ok.kind, 'changed');
  assert.equal(store.current.generate_every_s, 2);
  assert.deepEqual(store.extras(), { note: 'x' });
  assert.equal(store.lastUpdateAtMs, 1000);
  const bad = store.fromControl({ kind: 'update', seq: 1, payload: { generate_every_s: 0.01 } }, 2000);
  assert.equal(bad.kind, 'refused');
  assert.equal(bad.kind === 'refused' && bad.code, 'invalid_params');
  assert.equal(store.current.generate_every_s, 2, 'a refused update changes nothing');
  const junk = store.fromControl({ kind: 'invalid', seq: 2, code: 'invalid_control_message', message: 'not JSON' }, 3000);
  assert.equal(junk.kind, 'refused');
  assert.deepEqual(store.counters(), { params_updates: 1, control_messages: 3, control_errors: 2 });
});

test('an HTTP update (parsed by the control API) commits through the same store and keeps its unknown keys', () => {
  const start = parseStartParams({});
  const store = new ParamsStore(start.params, start.extra);
  const raw = { prompt: 'b', custom: 1 };
  const parsed = parseParamsUpdate(store.current, raw, store.extras());
  const ch = store.fromHttp(parsed.params, parsed.changed, raw, 5);
  assert.ok(ch.changed.includes('prompt'));
  assert.equal(store.current.prompt, 'b');
  assert.deepEqual(store.extras(), { custom: 1 });
  assert.equal(ch.prev.prompt, start.params.prompt);
});

test('a control message the backend cannot run (output_schema without constrained decoding) is refused with invalid_params and changes nothing', async () => {
  const { assertBackendSupports } = await import('../../src/pipeline/structured.js');
  const start = parseStartParams({});
  const store = new ParamsStore(start.params, start.extra, (p) => assertBackendSupports(p, { images: true, maxImages: 1, audio: 'raw' }));
  const refused = store.fromControl({ kind: 'update', seq: 0, payload: { output_schema: 'scene' } }, 1000);
  assert.ok(refused.kind === 'refused' && refused.code === 'invalid_params' && /^output_schema: .*cannot constrain decoding/.test(refused.message));
  assert.equal(store.current.output_schema, null);
  const ok = store.fromControl({ kind: 'update', seq: 1, payload: { output_schema: 'scene', output_schema_best_effort: true } }, 2000);
  assert.equal(ok.kind, 'changed');
  assert.equal(store.current.output_schema, 'scene');
});
