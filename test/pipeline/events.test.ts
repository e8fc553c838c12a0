import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { EventsWriter } from '../../src/pipeline/events.js';
import { collectChannel } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/wait.js';

test('events: one {"event","queue_event_type"} body per segment, heartbeat at start and every interval', async (t) => {
  const server = new TrickleServer();
  await server.listen();
  t.after(() => server.close());
  server.createChannel('ev', 'application/json');
  const url = server.channelUrl('ev');
  const col = collectChannel(url, { mode: 'json' });
  let ticks = 0;
  const w = new EventsWriter({
    sink: new TricklePublisher({ url, mimeType: 'application/json' }),
    streamId: 'req-1',
    heartbeatMs: 150,
    heartbeat: () => ({
      urls: { subscribe: 'a', publish: '', control: '', events: url, data: '' },
      dimensions: { width: 512, height: 288 },
      fps: { ingress_video_fps: 3, ingress_audio_fps: 50, egress_video_fps: 3, egress_audio_fps: 50 },
    }),
    onTick: () => ticks++,
  });
  w.start();
  w.emit('receive_first_ingest_segment');
  await waitFor('4 heartbeats', () => col.records.filter((r) => (r.event as { type: string }).type === 'heartbeat').length >= 4);
  await w.close(1000);
  await col.stop();
  assert.equal(col.segments.length, col.records.length, 'one event per segment');
  const first = col.records[0] as { event: Record<string, unknown>; queue_event_type: string };
  assert.equal(first.queue_event_type, 'stream_heartbeat');
  assert.equal(first.event.type, 'heartbeat');
  assert.ok(Number.isInteger(first.event.timestamp));
  assert.deepEqual(first.event.dimensions, { width: 512, height: 288 });
  assert.deepEqual(Object.keys(first.event.urls as object).sort(), ['control', 'data', 'events', 'publish', 'subscribe']);
  assert.deepEqual(Object.keys(first.event.fps as object).sort(), ['egress_audio_fps', 'egress_video_fps', 'ingress_audio_fps', 'ingress_video_fps']);
  const second = col.records[1] as { event: Record<string, unknown>; queue_event_type: string };
  assert.equal(second.event.type, 'receive_first_ingest_segment');
  assert.equal(second.queue_event_type, 'ai_stream_events');
  const hb = col.records.filter((r) => (r.event as { type: string }).type === 'heartbeat').map((r) => (r.event as { timestamp: number }).timestamp);
  for (let i = 1; i < hb.length; i++) {
    const gap = hb[i]! - hb[i - 1]!;
    assert.ok(gap >= 100 && gap < 2000, `heartbeat gap ${gap} ms`);
  }
  assert.ok(ticks >= 4);
});

test('params_updated echoes bounded values: known keys capped, small unknown scalars kept, big unknown values named only', async () => {
  const { paramsUpdatedFields, ECHO_MAX_STRING_BYTES, ECHO_MAX_KEYS } = await import('../../src/pipeline/events.js');
  const { KNOWN_PARAM_KEYS } = await import('../../src/config/params.js');
  const huge = 'x'.repeat(3 * 1024 * 1024);
  const params = { prompt: 'p'.repeat(5000), generate_every_s: 3 };
  const raw = { prompt: params.prompt, generate_every_s: 3, intensity: 0.9, blob: huge, nested: { a: 1 } };
  const f = paramsUpdatedFields(params, raw, KNOWN_PARAM_KEYS);
  assert.deepEqual(f.changed, ['prompt', 'generate_every_s', 'intensity', 'blob', 'nested']);
  assert.equal(f.params.generate_every_s, 3);
  assert.equal(f.params.intensity, 0.9, 'a small unknown value passes (the gateway may show it)');
  assert.equal(Buffer.byteLength(String(f.params.prompt)), ECHO_MAX_STRING_BYTES);
  assert.deepEqual(f.truncated, ['prompt']);
  assert.deepEqual(f.omitted, ['blob', 'nested']);
  assert.ok(JSON.stringify(f).length < 4096);
  const many = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
  const g = paramsUpdatedFields({}, many, KNOWN_PARAM_KEYS);
  assert.equal(g.changed.length, ECHO_MAX_KEYS);
  assert.equal(g.keys_omitted, 10_000 - ECHO_MAX_KEYS);
  assert.ok(JSON.stringify(g).length < 4096);
});
