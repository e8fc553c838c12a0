/**
 * The error-code registry: every code an error class or record builder can carry is registered (the
 * compiler enforces it; the @ts-expect-error lines below fail `npm run typecheck` if it stops), each
 * entry says where it is seen, whether it is retryable and what to do, `errorCode` never turns a raw
 * errno into a public code, and docs/error-codes.md is generated from the registry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AppError, BadRequestError, ERROR_CODES, errorCode, isErrorCode } from '../src/errors.js';
import { ERROR_CODES_DOC_PATH, renderErrorCodesDoc } from '../src/error-codes-doc.js';
import { ModelError } from '../src/model/errors.js';
import { httpStatusOf, isClientError } from '../src/server/http-status.js';
import { StreamNotFoundError } from '../src/server/runner.js';
import { TrickleError } from '../src/trickle/errors.js';
import { MediaError } from '../src/media/errors.js';
import { errorRecord } from '../src/pipeline/cycle.js';

describe('error-code registry', () => {
  it('refuses unregistered codes at compile time', () => {
    // @ts-expect-error 'not_a_code' is not in ERROR_CODES
    const a = new AppError('not_a_code', 'x');
    // @ts-expect-error a MediaError takes only media codes
    const m = new MediaError('engine_timeout', 'x');
    // @ts-expect-error an error record's code must be registered
    const r = errorRecord('s', { id: 'c', seq: 1 }, 'model_timeout', 'x');
    assert.ok(a && m && r);
    assert.equal(isErrorCode('not_a_code'), false);
    assert.equal(isErrorCode('engine_timeout'), true);
  });

  it('documents every code: where it is seen, what it means and what to do', () => {
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^[a-z][a-z0-9_]*$/, `${code} is lower snake case`);
      assert.ok(e.where.length > 0, `${code} says where it is seen`);
      assert.ok(e.meaning.length > 10 && e.action.length > 3, `${code} has a meaning and an action`);
    }
  });

  it('maps an error to the HTTP status the registry lists for its code, at the edge', () => {
    assert.equal(httpStatusOf(new ModelError('engine_timeout', 't')), 504);
    assert.equal(httpStatusOf(new ModelError('context_length_exceeded', 't')), 400);
    assert.equal(httpStatusOf(new StreamNotFoundError('x')), 404);
    assert.equal(httpStatusOf(new TrickleError('trickle_http_error', 'x')), 500, 'no listed status: our fault');
    assert.equal(httpStatusOf(new Error('plain')), 500);
    assert.equal(isClientError(new BadRequestError('bad', 'invalid_json')), true);
    assert.equal(new BadRequestError('bad').code, 'bad_request');
  });

  it('maps anything thrown to a registered code and never publishes a raw errno', () => {
    assert.equal(errorCode(new ModelError('engine_busy', 'b')), 'engine_busy');
    assert.equal(errorCode(Object.assign(new Error('ended'), { code: 'engine_error' })), 'engine_error', 'a registered code carried by a plain Error');
    assert.equal(errorCode(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' })), 'system_error');
    assert.equal(errorCode(Object.assign(new Error('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' })), 'internal', 'a Node programming error is not a system error');
    assert.equal(errorCode(Object.assign(new Error('fastify'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })), 'internal');
    assert.equal(errorCode('a string'), 'internal');
    for (const err of [new Error('x'), Object.assign(new Error('y'), { code: 'ECONNRESET', syscall: 'read' })]) assert.ok(isErrorCode(errorCode(err)));
  });
});

describe('docs/error-codes.md', () => {
  it('matches the registry (run `npm run docs` after changing src/error-codes.ts)', () => {
    const doc = readFileSync(new URL(`../${ERROR_CODES_DOC_PATH}`, import.meta.url), 'utf8');
    assert.equal(doc, renderErrorCodesDoc());
  });
});
