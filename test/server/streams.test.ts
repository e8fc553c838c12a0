/**
 * The stream registry over real HTTP at capacity > 1: streams told apart by X-Stream-Id (as
 * go-livepeer's BYOC orchestrator sends it), the per-stream routes, the capacity limit (503, also
 * under concurrent starts), a duplicate id (409), and params/stop without a header when several
 * streams run (400: they must be named). The streams carry no media here; the end-to-end test with
 * media is many-streams.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LifecycleBackendDouble, request, startTestServer } from '../helpers/server.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import { rootLogger } from '../../src/log.js';

const hdr = (id: string) => ({ 'x-stream-id': id });
type Json = Record<string, unknown>;

describe('control API: many streams (capacity 4)', () => {
  let srv: RunnerServerHandle;
  before(async () => {
    const backend = new LifecycleBackendDouble('ready');
    srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }), capacity: 4 });
  });
  after(async () => {
    await srv.close();
  });

  async function stopAll(): Promise<void> {
    for (const s of ((await request(srv.url, 'GET', '/streams')).body.streams as Json[]) ?? []) {
      await request(srv.url, 'POST', `/streams/${String(s.stream_id)}/stop`);
    }
  }

  it('runs four streams, lists each, and answers a fifth start with 503 "Pipeline is still in use"', async () => {
    try {
      for (const id of ['s1', 's2', 's3', 's4']) {
        const r = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: id, params: { prompt: `p-${id}` } }, hdr(id));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.request_id, id);
      }
      const fifth = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 's5' }, hdr('s5'));
      assert.equal(fifth.status, 503);
      assert.equal(fifth.body.message, 'Pipeline is still in use');
      const list = await request(srv.url, 'GET', '/streams');
      assert.equal(list.body.capacity, 4);
      assert.equal(list.body.active_streams, 4);
      const streams = list.body.streams as Json[];
      assert.deepEqual(streams.map((s) => s.stream_id), ['s1', 's2', 's3', 's4']);
      assert.deepEqual(streams.map((s) => (s.params as Json).prompt), ['p-s1', 'p-s2', 'p-s3', 'p-s4']);
      const status = await request(srv.url, 'GET', '/stream/status');
      assert.equal(status.body.client_active, true);
      assert.equal(status.body.active_streams, 4);
      assert.equal(status.body.capacity, 4);
      assert.equal((status.body.streams as Json[]).length, 4);
      assert.equal(status.body.current_params, undefined, 'no single stream to show at the top level');
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'OK' });
      const one = await request(srv.url, 'GET', '/streams/s3/status');
      assert.equal(one.status, 200);
      assert.equal(one.body.stream_id, 's3');
      assert.equal((one.body.current_params as Json).gateway_request_id, 's3');
    } finally {
      await stopAll();
    }
  });

  it('lets exactly `capacity` of 10 concurrent starts win', async () => {
    try {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => request(srv.url, 'POST', '/stream/start', { gateway_request_id: `c${i}` }, hdr(`c${i}`))),
      );
      assert.deepEqual(
        results.map((r) => r.status).sort(),
        [200, 200, 200, 200, 503, 503, 503, 503, 503, 503],
      );
      assert.equal((await request(srv.url, 'GET', '/streams')).body.active_streams, 4);
    } finally {
      await stopAll();
    }
  });

  it('answers 409 to a start naming a running stream and changes nothing', async () => {
    try {
      assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'dup', params: { prompt: 'first' } }, hdr('dup'))).status, 200);
      const again = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'other', params: { prompt: 'second' } }, hdr('dup'));
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'stream_already_running');
      assert.match(String(again.body.message), /A stream with id "dup" is already running/);
      const byBody = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'dup' });
      assert.equal(byBody.status, 409, 'the body id counts when no header is sent');
      const list = (await request(srv.url, 'GET', '/streams')).body.streams as Json[];
      assert.equal(list.length, 1);
      assert.equal((list[0]!.params as Json).prompt, 'first');
    } finally {
      await stopAll();
    }
  });

  it('changes params and stops only the stream a header or a route names; several running and none named is a 400', async () => {
    try {
      for (const id of ['a', 'b', 'c']) await request(srv.url, 'POST', '/stream/start', { gateway_request_id: id, params: { prompt: id } }, hdr(id));
      const unnamed = await request(srv.url, 'POST', '/stream/params', { prompt: 'all?' });
      assert.equal(unnamed.status, 400);
      assert.equal(unnamed.body.code, 'stream_id_required');
      assert.match(String(unnamed.body.message), /3 streams are running; name one with X-Stream-Id/);
      const unnamedStop = await request(srv.url, 'POST', '/stream/stop');
      assert.equal(unnamedStop.status, 400);
      assert.equal(unnamedStop.body.code, 'stream_id_required');

      assert.equal((await request(srv.url, 'POST', '/stream/params', { prompt: 'b2' }, hdr('b'))).status, 200);
      assert.equal((await request(srv.url, 'POST', '/streams/c/params', { prompt: 'c2' })).status, 200);
      const prompts = async () =>
        Object.fromEntries(((await request(srv.url, 'GET', '/streams')).body.streams as Json[]).map((s) => [s.stream_id, (s.params as Json).prompt]));
      assert.deepEqual(await prompts(), { a: 'a', b: 'b2', c: 'c2' });

      const missing = await request(srv.url, 'POST', '/streams/zz/params', { prompt: 'x' });
      assert.equal(missing.status, 404);
      assert.equal((await request(srv.url, 'GET', '/streams/zz/status')).status, 404);
      assert.equal((await request(srv.url, 'POST', '/stream/stop', undefined, hdr('zz'))).status, 404);
      const bad = await request(srv.url, 'GET', '/streams/a%20b/status');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'invalid_stream_id');

      assert.equal((await request(srv.url, 'POST', '/stream/stop', 'context canceled', { ...hdr('a'), 'content-type': 'text/plain' })).status, 200);
      assert.equal((await request(srv.url, 'POST', '/streams/c/stop')).status, 200);
      assert.deepEqual(await prompts(), { b: 'b2' });
      // One stream left: PyTrickle clients without the header act on it, and status is today's shape for it.
      assert.equal((await request(srv.url, 'POST', '/stream/params', { prompt: 'b3' })).status, 200);
      const st = await request(srv.url, 'GET', '/stream/status');
      assert.equal((st.body.current_params as Json).gateway_request_id, 'b');
      assert.equal((st.body.params as Json).prompt, 'b3');
      assert.equal((await request(srv.url, 'POST', '/stream/stop')).status, 200);
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
      assert.equal((await request(srv.url, 'POST', '/streams/b/stop')).status, 400, 'nothing runs: "No active stream to stop"');
    } finally {
      await stopAll();
    }
  });

  it('lets a stopped stream\'s id start again', async () => {
    try {
      assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'r' }, hdr('r'))).status, 200);
      assert.equal((await request(srv.url, 'POST', '/streams/r/stop')).status, 200);
      assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'r' }, hdr('r'))).status, 200);
    } finally {
      await stopAll();
    }
  });
});

describe('control API: capacity 1 keeps the single-stream shape', () => {
  it('has no capacity or streams fields in /stream/status, and still lists the stream at /streams', async () => {
    const backend = new LifecycleBackendDouble('ready');
    const srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
    try {
      assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'one' })).status, 200);
      const st = await request(srv.url, 'GET', '/stream/status');
      assert.equal('capacity' in st.body, false);
      assert.equal('streams' in st.body, false);
      const dup = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'one' });
      assert.equal(dup.status, 503, 'at capacity the answer is the PyTrickle one, whatever the id');
      const list = await request(srv.url, 'GET', '/streams');
      assert.deepEqual((list.body.streams as Json[]).map((s) => s.stream_id), ['one']);
      assert.equal(list.body.capacity, 1);
    } finally {
      await srv.close();
    }
  });
});
