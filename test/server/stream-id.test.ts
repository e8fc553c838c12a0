/**
 * X-Stream-Id, as go-livepeer's BYOC orchestrator sends it on start, params and stop
 * (byoc/stream_orchestrator.go:411-414): a params or stop naming another stream answers 404 and
 * changes nothing — a stale stop must never kill the next stream — and without the header the calls
 * act on the one active stream (PyTrickle / curl).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LifecycleBackendDouble, request, startTestServer } from '../helpers/server.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import { rootLogger } from '../../src/log.js';

describe('control API: X-Stream-Id', () => {
  let srv: RunnerServerHandle;
  before(async () => {
    const backend = new LifecycleBackendDouble('ready');
    srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
  });
  after(async () => {
    await srv.close();
  });

  it('takes the stream id from X-Stream-Id on start, falling back to gateway_request_id', async () => {
    const a = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'body-id' }, { 'x-stream-id': 'hdr-id' });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.request_id, 'hdr-id');
    const st = await request(srv.url, 'GET', '/stream/status');
    assert.equal((st.body.current_params as Record<string, unknown>).gateway_request_id, 'hdr-id');
    assert.equal((await request(srv.url, 'POST', '/stream/stop', undefined, { 'x-stream-id': 'hdr-id' })).status, 200);
    const b = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'body-only' });
    assert.equal(b.body.request_id, 'body-only');
    assert.equal((await request(srv.url, 'POST', '/stream/stop')).status, 200);
  });

  it('answers 404 to a stale stop naming another stream, and the running stream keeps running', async () => {
    assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'B' }, { 'x-stream-id': 'B' })).status, 200);
    const stale = await request(srv.url, 'POST', '/stream/stop', 'context canceled', { 'x-stream-id': 'A', 'content-type': 'text/plain' });
    assert.equal(stale.status, 404);
    assert.equal(stale.body.message, 'No stream with X-Stream-Id "A" is running; nothing was stopped');
    const st = await request(srv.url, 'GET', '/stream/status');
    assert.equal(st.body.client_active, true);
    assert.equal((st.body.current_params as Record<string, unknown>).gateway_request_id, 'B');
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'OK' });
    assert.equal((await request(srv.url, 'POST', '/stream/stop', undefined, { 'x-stream-id': 'B' })).status, 200);
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
  });

  it('answers 404 to params naming another stream and leaves the params in force unchanged', async () => {
    assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'C', params: { prompt: 'first' } }, { 'x-stream-id': 'C' })).status, 200);
    try {
      const wrong = await request(srv.url, 'POST', '/stream/params', { prompt: 'hijack' }, { 'x-stream-id': 'D' });
      assert.equal(wrong.status, 404);
      assert.equal(wrong.body.message, 'No stream with X-Stream-Id "D" is running; nothing was updated');
      assert.equal(((await request(srv.url, 'GET', '/stream/status')).body.params as Record<string, unknown>).prompt, 'first');
      const right = await request(srv.url, 'POST', '/stream/params', { prompt: 'second' }, { 'x-stream-id': 'C' });
      assert.equal(right.status, 200);
      const none = await request(srv.url, 'POST', '/stream/params', { prompt: 'third' });
      assert.equal(none.status, 200, 'without the header the one active stream is updated');
      assert.equal(((await request(srv.url, 'GET', '/stream/status')).body.params as Record<string, unknown>).prompt, 'third');
    } finally {
      await request(srv.url, 'POST', '/stream/stop');
    }
  });

  it('refuses an over-long or non-printable stream id with 400', async () => {
    const long = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'x'.repeat(129) });
    assert.equal(long.status, 400);
    assert.match(String(long.body.message), /gateway_request_id: must be at most 128 characters/);
    const spaced = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'a b' });
    assert.equal(spaced.status, 400);
    assert.match(String(spaced.body.message), /gateway_request_id: must be printable ASCII without spaces/);
    const hdr = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'ok' }, { 'x-stream-id': 'y'.repeat(200) });
    assert.equal(hdr.status, 400);
    assert.match(String(hdr.body.message), /X-Stream-Id must be 1–128 printable ASCII characters/);
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
  });

  it('warns in the start answer when there is no data_url (records will be dropped)', async () => {
    const res = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'nodata' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.warnings, ['no data_url: generated records will be dropped']);
    await request(srv.url, 'POST', '/stream/stop');
  });
});
