/**
 * Bounds at the control API: a slow request body cannot hold a connection past the body deadline
 * (408, connection closed), and unknown params kept for a stream are bounded across updates (400
 * naming the limit; the kept set and params in force unchanged).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { LifecycleBackendDouble, request, startTestServer } from '../helpers/server.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import { rootLogger } from '../../src/log.js';

/** Sends headers announcing `contentLength` bytes, then only a few; resolves with what the server sent before closing. */
function slowBody(base: string, contentLength: number): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    let got = '';
    sock.on('data', (c: Buffer) => {
      got += c.toString('utf8');
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
    sock.write(
      `POST /stream/start HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n{"gateway`,
    );
  });
}

describe('control API: request limits', () => {
  let srv: RunnerServerHandle;
  before(async () => {
    const backend = new LifecycleBackendDouble('ready');
    srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }), bodyTimeoutMs: 300 });
  });
  after(async () => {
    await srv.close();
  });

  it('answers 408 and closes the connection when the body does not arrive within the deadline', { timeout: 15_000 }, async () => {
    const answer = await slowBody(srv.url, 1000);
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /Request body not received within 300 ms/);
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' }, 'nothing started');
  });

  it('bounds the unknown params kept for a stream across updates, with a 400 naming the limit', async () => {
    assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'lim', params: { prompt: 'keep me' } })).status, 200);
    try {
      const chunk = 'z'.repeat(5000);
      for (const k of ['a', 'b', 'c']) assert.equal((await request(srv.url, 'POST', '/stream/params', { [k]: chunk })).status, 200);
      const over = await request(srv.url, 'POST', '/stream/params', { d: chunk, prompt: 'changed' });
      assert.equal(over.status, 400);
      assert.match(String(over.body.message), /unknown parameters too large: \d+ bytes of JSON \(limit 16384 per stream\)/);
      assert.equal(((await request(srv.url, 'GET', '/stream/status')).body.params as Record<string, unknown>).prompt, 'keep me');
      const many: Record<string, number> = {};
      for (let i = 0; i < 70; i++) many[`k${i}`] = i;
      const tooMany = await request(srv.url, 'POST', '/stream/params', many);
      assert.equal(tooMany.status, 400);
      assert.match(String(tooMany.body.message), /too many unknown parameters: \d+ \(limit 64 per stream\)/);
    } finally {
      await request(srv.url, 'POST', '/stream/stop');
    }
  });
});
