/**
 * Untrusted JSON Schemas (util/json-schema.ts): `pattern` runs in linear time, the same `$id` in two
 * schemas does not collide, recompiling the same schema is a cache hit, and the first violation reads
 * as one line naming where it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileJsonSchema } from '../../src/util/json-schema.js';

test('a catastrophic-backtracking pattern in a schema is matched in linear time', () => {
  const r = compileJsonSchema({ type: 'object', properties: { a: { type: 'string', pattern: '^(a+)+$' } } });
  assert.ok(r.ok);
  // A backtracking RegExp takes ~2^n steps on this input; the test would time out long before.
  assert.match(r.compiled.check({ a: 'a'.repeat(50_000) + '!' }) ?? '', /^\/a: must match pattern/);
  assert.equal(r.compiled.check({ a: 'aaa' }), undefined);
});

test('two schemas with the same $id both compile and keep their own rules; the same schema again is cached', () => {
  const a = compileJsonSchema({ $id: 'https://example.com/s.json', type: 'integer' });
  const b = compileJsonSchema({ $id: 'https://example.com/s.json', type: 'string' });
  assert.ok(a.ok && b.ok);
  assert.equal(a.compiled.check(1), undefined);
  assert.equal(b.compiled.check('s'), undefined);
  assert.match(b.compiled.check(1) ?? '', /must be string/);
  assert.equal(compileJsonSchema({ $id: 'https://example.com/s.json', type: 'integer' }), a, 'cached by its JSON text');
});
