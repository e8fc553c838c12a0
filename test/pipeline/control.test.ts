import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { ControlReader, parseControlBody, type ControlMessage } from '../../src/pipeline/control.js';
import { waitFor } from '../helpers/wait.js';

test('control bodies: keepalive and empty bodies are ignored, objects are updates, the rest is invalid', () => {
  assert.equal(parseControlBody(0, Buffer.from('{"keep":"alive"}')), null);
  assert.equal(parseControlBody(0, Buffer.from('  \n')), null);
  assert.deepEqual(parseControlBody(3, Buffer.from('{"prompt":"hi"}')), { kind: 'update', seq: 3, payload: { prompt: 'hi' } });
  assert.equal(parseControlBody(1, Buffer.from('{"keep":"alive","prompt":"x"}'))?.kind, 'update');
  assert.equal(parseControlBody(1, Buffer.from('[1,2]'))?.kind, 'invalid');
  assert.equal(parseControlBody(1, Buffer.from('{"prompt":')) ?.kind, 'invalid');
});

test('the control reader re-reads the latest message at start, then follows new ones over real trickle', async (t) => {
  const server = new TrickleServer();
  await server.listen();
  t.after(() => server.close());
  server.createChannel('ctl', 'application/json');
  const url = server.channelUrl('ctl');
  const pub = new TricklePublisher({ url, mimeType: 'application/json' });
  await pub.publish('{"prompt":"old"}');
  await pub.publish('{"prompt":"cached"}');
  const got: ControlMessage[] = [];
  const reader = new ControlReader({ connect: (start) => new TrickleSubscriber({ url, start }), onMessage: (m) => got.push(m) });
  reader.start();
  await waitFor('the cached message', () => got.length >= 1);
  assert.deepEqual(got[0], { kind: 'update', seq: 1, payload: { prompt: 'cached' } });
  await pub.publish('{"keep":"alive"}');
  await pub.publish('not json');
  const big = JSON.stringify({ prompt: 'p'.repeat(40_000) }); // over PyTrickle's 32 KiB single read
  await pub.publish(big);
  await waitFor('three more messages', () => got.length >= 3);
  assert.equal(got[1]!.kind, 'invalid');
  assert.equal(got[2]!.kind, 'update');
  assert.equal(((got[2] as { payload: Record<string, unknown> }).payload.prompt as string).length, 40_000);
  await reader.close();
  await pub.close();
});
