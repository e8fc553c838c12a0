/**
 * The PyTrickle-compatible control API over real HTTP (spec §4, §7 cases 24–33 and 38, as adapted by
 * the foundation issue): status codes, body shapes, messages, state machine, auth, limits, concurrency.
 * Streams here carry no media URLs except where a case needs the events channel, which runs on a real
 * embedded trickle server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LifecycleBackendDouble, request, startTestServer } from '../helpers/server.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import { rootLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';

const PIPELINE_STATE_KEYS = [
  'status',
  'state',
  'error_message',
  'pipeline_ready',
  'active_streams',
  'startup_complete',
  'pipeline_state',
  'additional_info',
];

async function serverWith(backend: LifecycleBackendDouble, extra: { apiToken?: string; startWaitMs?: number } = {}) {
  return startTestServer({
    backend,
    sessionFactory: createSessionFactory({ backend, logger: rootLogger() }),
    ...extra,
  });
}

async function readSegment(sub: TrickleSubscriber): Promise<Record<string, unknown>> {
  const seg = await sub.next();
  assert.ok(seg, 'expected an events segment');
  const chunks: Buffer[] = [];
  for await (const c of seg.body) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
}

/** Reads events until one of `type` arrives (heartbeats and others interleave). */
async function nextEventOfType(sub: TrickleSubscriber, type: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 20; i++) {
    const body = await readSegment(sub);
    const event = body.event as Record<string, unknown>;
    if (event.type === type) return body;
  }
  throw new Error(`no ${type} event in 20 segments`);
}

describe('control API: health and state machine (case 24)', () => {
  it('reports LOADING until the backend is ready, then IDLE, OK during a stream, ERROR on backend failure and back after recovery', async () => {
    const backend = new LifecycleBackendDouble('loading');
    const srv = await serverWith(backend);
    try {
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'LOADING' });
      backend.set('ready');
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
      const start = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'g1' });
      assert.equal(start.status, 200);
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'OK' });
      assert.equal((await request(srv.url, 'POST', '/stream/stop')).status, 200);
      backend.set('error', 'engine unreachable: connect ECONNREFUSED');
      const h = await request(srv.url, 'GET', '/health');
      assert.equal(h.status, 200);
      assert.deepEqual(h.body, { status: 'ERROR' });
      backend.set('ready');
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
    } finally {
      await srv.close();
    }
  });
});

describe('control API: stream lifecycle', () => {
  let backend: LifecycleBackendDouble;
  let srv: RunnerServerHandle;
  before(async () => {
    backend = new LifecycleBackendDouble('ready');
    srv = await serverWith(backend);
  });
  after(async () => {
    await srv.close();
  });

  it('starts with PyTrickle width/height strings coerced to integers and answers the success shape (case 25)', async () => {
    for (const prefix of ['/stream', '/api/stream']) {
      const res = await request(srv.url, 'POST', `${prefix}/start`, {
        gateway_request_id: 'g1',
        subscribe_url: '',
        publish_url: '',
        params: { width: '640', height: '360', prompt: 'what happens?' },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'success');
      assert.equal(res.body.message, 'Stream started successfully');
      assert.equal(res.body.request_id, 'g1');
      assert.equal((res.body.current_state as Record<string, unknown>).status, 'OK');
      const status = await request(srv.url, 'GET', `${prefix}/status`);
      const params = status.body.params as Record<string, unknown>;
      assert.equal(params.width, 640);
      assert.equal(params.height, 360);
      assert.equal(params.prompt, 'what happens?');
      assert.equal((await request(srv.url, 'POST', `${prefix}/stop`)).status, 200);
    }
  });

  it('rejects a start without gateway_request_id with 400 "Error starting stream:" and stays IDLE (case 26)', async () => {
    const res = await request(srv.url, 'POST', '/stream/start', { subscribe_url: 'http://127.0.0.1:1/x' });
    assert.equal(res.status, 400);
    assert.equal(res.body.status, 'error');
    assert.match(String(res.body.message), /^Error starting stream: .*gateway_request_id/);
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
  });

  it('rejects width without height and max_framerate above 60 with PyTrickle\'s messages (case 27)', async () => {
    const a = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'g', params: { width: 512 } });
    assert.equal(a.status, 400);
    assert.match(String(a.body.message), /Both 'width' and 'height' must be provided together/);
    const b = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'g', params: { max_framerate: 61 } });
    assert.equal(b.status, 400);
    assert.match(String(b.body.message), /cannot exceed 60 FPS/);
  });

  it('names the field and the rule for invalid params, and starts nothing', async () => {
    const res = await request(srv.url, 'POST', '/stream/start', {
      gateway_request_id: 'g',
      params: { generate_every_s: 0.1, modality: 'smell' },
    });
    assert.equal(res.status, 400);
    assert.match(String(res.body.message), /generate_every_s: must be at least 0\.25/);
    assert.match(String(res.body.message), /modality: must be one of/);
    const status = await request(srv.url, 'GET', '/stream/status');
    assert.equal(status.body.client_active, false);
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
  });

  it('rejects non-http(s) channel URLs with 400', async () => {
    const res = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'g', subscribe_url: 'ftp://x/y' });
    assert.equal(res.status, 400);
    assert.match(String(res.body.message), /subscribe_url: must be an http: or https: URL/);
  });

  it('lists unknown params as ignored_params and keeps numeric strings as numbers', async () => {
    const res = await request(srv.url, 'POST', '/live-video-to-video', {
      gateway_request_id: 'g2',
      manifest_id: 'm',
      stream_id: 's',
      model_id: 'x',
      params: { intensity: 0.5, generate_every_s: '2.5' },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.ignored_params, ['intensity']);
    const status = await request(srv.url, 'GET', '/stream/status');
    assert.equal((status.body.params as Record<string, unknown>).generate_every_s, 2.5);
    await request(srv.url, 'POST', '/stream/stop');
  });

  it('answers 503 "Pipeline is still in use" to a start while a stream runs (case 28)', async () => {
    assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'a' })).status, 200);
    const second = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'b' });
    assert.equal(second.status, 503);
    assert.equal(second.body.message, 'Pipeline is still in use');
    assert.ok(second.body.current_state);
    await request(srv.url, 'POST', '/stream/stop');
  });

  it('lets exactly one of 10 concurrent starts win; the others get 503', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => request(srv.url, 'POST', '/stream/start', { gateway_request_id: `c${i}` })),
    );
    const codes = results.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 503, 503, 503, 503, 503, 503, 503, 503, 503]);
    const status = await request(srv.url, 'GET', '/stream/status');
    assert.equal(status.body.active_streams, 1);
    await request(srv.url, 'POST', '/stream/stop');
  });

  it('rejects text/plain with 400 "Unknown content type" (case 29)', async () => {
    const res = await request(srv.url, 'POST', '/stream/start', '{"gateway_request_id":"g"}', { 'content-type': 'text/plain' });
    assert.equal(res.status, 400);
    assert.match(String(res.body.message), /Unknown content type/);
  });

  it('answers params/stop without a stream with 400 and PyTrickle\'s messages (cases 30, 32)', async () => {
    const p = await request(srv.url, 'POST', '/stream/params', { intensity: 0.9 });
    assert.equal(p.status, 400);
    assert.deepEqual(p.body, { status: 'error', message: 'No active stream to update' });
    const s = await request(srv.url, 'POST', '/stream/stop');
    assert.equal(s.status, 400);
    assert.deepEqual(s.body, { status: 'error', message: 'No active stream to stop' });
  });

  it('answers an invalid update with 400 "Parameter update failed:" and keeps the previous params (case 31, adapted)', async () => {
    await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'g3', params: { prompt: 'first' } });
    const bad = await request(srv.url, 'POST', '/stream/params', { width: 100 });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /^Parameter update failed: .*Both 'width' and 'height'/);
    const bad2 = await request(srv.url, 'POST', '/stream/params', { prompt: 'second', target_fps: 99 });
    assert.equal(bad2.status, 400);
    const status = await request(srv.url, 'GET', '/stream/status');
    assert.equal((status.body.params as Record<string, unknown>).prompt, 'first');
    assert.equal((status.body.params as Record<string, unknown>).target_fps, 3);
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'OK' });
    const good = await request(srv.url, 'POST', '/stream/params', { prompt: 'second' });
    assert.equal(good.status, 200);
    assert.deepEqual(good.body, { status: 'success', message: 'Parameters updated successfully', ignored_params: [] });
    await request(srv.url, 'POST', '/stream/stop');
  });

  it('reports no stream in /stream/status with the eight pipeline-state keys (case 33)', async () => {
    const res = await request(srv.url, 'GET', '/stream/status');
    assert.equal(res.status, 200);
    assert.equal(res.body.client_active, false);
    assert.equal(res.body.active_streams, 0);
    for (const k of PIPELINE_STATE_KEYS) assert.ok(k in res.body, `missing ${k}`);
  });

  it('ignores the stop body: absent, empty, or non-JSON "stream ended" labelled application/json', async () => {
    for (const body of [undefined, '', 'stream ended']) {
      await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'g4' });
      const res = await fetch(`${srv.url}/api/stream/stop`, {
        method: 'POST',
        ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'success', message: 'Stream stopped successfully' });
    }
  });

  it('answers a body over 1 MiB with 413 and a JSON message', async () => {
    const big = JSON.stringify({ gateway_request_id: 'g', params: { prompt: 'x'.repeat(1024 * 1024 + 10) } });
    const res = await request(srv.url, 'POST', '/stream/start', big);
    assert.equal(res.status, 413);
    assert.equal(res.body.status, 'error');
    assert.match(String(res.body.message), /too large/);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await request(srv.url, 'GET', '/nope');
    assert.equal(res.status, 404);
    assert.equal(res.body.status, 'error');
  });

  it('serves /version, /app-version and /hardware/* as JSON objects (case 38)', async () => {
    const v = await request(srv.url, 'GET', '/version');
    assert.equal(v.body.pipeline, 'byoc');
    assert.equal(v.body.model_id, 'lifecycle-double');
    assert.match(String(v.body.version), /^0\.1\./);
    const av = await request(srv.url, 'GET', '/app-version');
    assert.equal(typeof av.body.version, 'string');
    const hi = await request(srv.url, 'GET', '/hardware/info');
    assert.equal(typeof hi.body.gpu_info, 'object');
    const hs = await request(srv.url, 'GET', '/hardware/stats');
    assert.equal(typeof hs.body.gpu_stats, 'object');
  });
});

describe('control API: loading and error states at start (case 28)', () => {
  it('makes a start wait while the model loads, then proceed', async () => {
    const backend = new LifecycleBackendDouble('loading');
    const srv = await serverWith(backend);
    try {
      const pending = request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'w' });
      setTimeout(() => backend.set('ready'), 300);
      const res = await pending;
      assert.equal(res.status, 200);
      await request(srv.url, 'POST', '/stream/stop');
    } finally {
      await srv.close();
    }
  });

  it('answers 503 with the backend\'s reason while it is in ERROR, and accepts starts again after recovery', async () => {
    const backend = new LifecycleBackendDouble('error');
    backend.set('error', 'cannot reach the engine at http://127.0.0.1:1/v1');
    const srv = await serverWith(backend);
    try {
      const res = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'e' });
      assert.equal(res.status, 503);
      assert.equal(
        res.body.message,
        'Model backend is unavailable: cannot reach the engine at http://127.0.0.1:1/v1. The runner keeps retrying; /health reads IDLE once it recovers.',
      );
      backend.set('ready');
      assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'e2' })).status, 200);
      await request(srv.url, 'POST', '/stream/stop');
    } finally {
      await srv.close();
    }
  });

  it('answers a start quickly with 503 "still initializing" and the reason when the engine stays unreachable (default wait, not 120 s)', { timeout: 20_000 }, async () => {
    const backend = new LifecycleBackendDouble('loading');
    backend.set('loading', 'waiting for the engine at http://127.0.0.1:1/v1');
    const srv = await serverWith(backend);
    try {
      const res = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'slow' });
      assert.equal(res.status, 503);
      assert.equal(res.body.message, 'Pipeline is still initializing (waiting for the engine at http://127.0.0.1:1/v1). Please wait for IDLE status.');
    } finally {
      await srv.close();
    }
  });

  it('says the backend failed to load (not "still initializing") when its load failed, and /health reads ERROR', async () => {
    const backend = new LifecycleBackendDouble('loading');
    const srv = await serverWith(backend, { startWaitMs: 100 });
    try {
      backend.failLoad('model directory /models/x has no onnx/ folder');
      await waitFor('ERROR', async () => (await request(srv.url, 'GET', '/health')).body.status === 'ERROR');
      const res = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'f' });
      assert.equal(res.status, 503);
      assert.equal(
        res.body.message,
        'Model backend failed to load and will not recover on its own: model directory /models/x has no onnx/ folder. Fix the configuration and restart the runner.',
      );
    } finally {
      await srv.close();
    }
  });

  it('says a permanent backend error is permanent (status.permanent from the model layer)', async () => {
    const backend = new LifecycleBackendDouble('error');
    (backend as unknown as { status(): unknown }).status = () => ({ state: 'error', message: 'engine serves no model named x', permanent: true });
    const srv = await serverWith(backend);
    try {
      const res = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 'p' });
      assert.equal(res.status, 503);
      assert.match(String(res.body.message), /^Model backend failed to load and will not recover on its own: engine serves no model named x\./);
    } finally {
      await srv.close();
    }
  });
});

describe('control API: bearer token', () => {
  it('requires the token on every route but /health', async () => {
    const backend = new LifecycleBackendDouble('ready');
    const srv = await serverWith(backend, { apiToken: 's3cret' });
    try {
      assert.equal((await request(srv.url, 'GET', '/health')).status, 200);
      for (const [method, path] of [
        ['GET', '/version'],
        ['GET', '/stream/status'],
        ['POST', '/stream/start'],
        ['POST', '/api/stream/params'],
        ['POST', '/stream/stop'],
        ['GET', '/metrics'],
        ['GET', '/hardware/info'],
      ] as const) {
        const res = await request(srv.url, method, path, method === 'POST' ? {} : undefined);
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.body.status, 'error');
      }
      const wrong = await request(srv.url, 'GET', '/version', undefined, { authorization: 'Bearer nope' });
      assert.equal(wrong.status, 401);
      const ok = await request(srv.url, 'GET', '/version', undefined, { authorization: 'Bearer s3cret' });
      assert.equal(ok.status, 200);
    } finally {
      await srv.close();
    }
  });
});

describe('control API: events channel on params and stop (cases 30, 32)', () => {
  it('publishes params_updated with the payload and stream_stopped before stopping', async () => {
    const trickle = new TrickleServer({ port: 0, host: '127.0.0.1' });
    await trickle.listen();
    trickle.createChannel('s1-events', 'application/json');
    const backend = new LifecycleBackendDouble('ready');
    const srv = await serverWith(backend);
    const sub = new TrickleSubscriber({ url: trickle.channelUrl('s1-events'), start: 0 });
    try {
      const start = await request(srv.url, 'POST', '/stream/start', {
        gateway_request_id: 's1',
        events_url: trickle.channelUrl('s1-events'),
      });
      assert.equal(start.status, 200, start.text);
      const hb = await nextEventOfType(sub, 'heartbeat');
      assert.equal(hb.queue_event_type, 'stream_heartbeat');
      const upd = await request(srv.url, 'POST', '/stream/params', { intensity: 0.9 });
      assert.equal(upd.status, 200);
      const ev = await nextEventOfType(sub, 'params_updated');
      assert.equal(ev.queue_event_type, 'ai_stream_events');
      const event = ev.event as Record<string, unknown>;
      assert.deepEqual(event.params, { intensity: 0.9 });
      assert.equal(typeof event.timestamp, 'number');
      const stop = await request(srv.url, 'POST', '/stream/stop', 'stream ended');
      assert.equal(stop.status, 200);
      const stopped = await nextEventOfType(sub, 'stream_stopped');
      assert.equal(stopped.queue_event_type, 'ai_stream_events');
      await waitFor('IDLE after stop', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE');
    } finally {
      await sub.close();
      await srv.close();
      await trickle.close();
    }
  });
});
