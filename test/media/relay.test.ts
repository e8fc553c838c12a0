import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MediaRelay } from '../../src/media/relay.js';
import { DEFAULT_SAMPLER_SETTINGS, MediaSampler } from '../../src/media/sampler.js';
import { TricklePublisher, type TrickleSegmentOut } from '../../src/trickle/publisher.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { capture, makeTestSegments, readSegments, sha256 } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';

let server: TrickleServer;
let n = 0;

before(async () => {
  server = new TrickleServer({ port: 0, host: '127.0.0.1' });
  await server.listen();
});
after(async () => {
  await server.close();
});

/**
 * Runs input segments through a relay over real trickle: a publisher feeds `in`, the relay forwards
 * to `out`, a reader collects `out`.
 */
async function relayThrough(input: Buffer[], opts: { sampler?: MediaSampler; publish?: boolean; outChannel?: boolean } = {}) {
  const id = ++n;
  const inName = `in${id}`;
  const outName = `out${id}`;
  server.createChannel(inName, 'video/MP2T');
  if (opts.outChannel !== false) server.createChannel(outName, 'video/MP2T');
  const feeder = new TricklePublisher({ url: server.channelUrl(inName), mimeType: 'video/MP2T' });
  const subscriber = new TrickleSubscriber({ url: server.channelUrl(inName), start: 0 });
  const publisher = opts.publish === false ? undefined : new TricklePublisher({ url: server.channelUrl(outName), mimeType: 'video/MP2T', maxRetries: 0 });
  const relay = new MediaRelay({ subscriber, publisher, sampler: opts.sampler });
  const relayErrors: unknown[] = [];
  relay.on('error', (e) => relayErrors.push(e));
  const drops: Array<{ seq: number; reason: string }> = [];
  relay.on('output-dropped', (d) => drops.push(d));
  const running = relay.run();
  const reader = opts.outChannel !== false && publisher ? new TrickleSubscriber({ url: server.channelUrl(outName), start: 0 }) : undefined;
  const reading = reader ? readSegments(reader, input.length) : Promise.resolve([]);
  await feedInput(feeder, input, relay);
  const outputs = await reading;
  await relay.close();
  await running;
  await feeder.close();
  await publisher?.close();
  await reader?.close();
  await opts.sampler?.close();
  server.deleteChannel(inName);
  server.deleteChannel(outName);
  return { relay, outputs, drops, relayErrors };
}

/**
 * Publishes `input` on the relay's input channel, waiting for the relay so the 5-segment window never
 * laps, and returns once the relay has read every segment.
 */
async function feedInput(feeder: TricklePublisher, input: Buffer[], relay: MediaRelay): Promise<void> {
  for (const [i, seg] of input.entries()) {
    await waitFor('relay to keep up', () => relay.stats().segmentsIn >= i - 2, 10_000);
    const out = await feeder.next();
    for (let o = 0; o < seg.length; o += 16 * 1024) await out.write(seg.subarray(o, o + 16 * 1024));
    await out.end();
  }
  await waitFor('relay to read all input', () => relay.stats().segmentsIn >= input.length, 10_000);
}

async function serverHealthy(): Promise<void> {
  server.createChannel('probe', 'text/plain');
  const pub = new TricklePublisher({ url: server.channelUrl('probe'), mimeType: 'text/plain' });
  const sub = new TrickleSubscriber({ url: server.channelUrl('probe'), start: 0 });
  await pub.publish('ok');
  const [seg] = await readSegments(sub, 1);
  assert.equal(seg?.bytes.toString(), 'ok');
  await pub.close();
  await sub.close();
  server.deleteChannel('probe');
}

describe('MediaRelay over real trickle', () => {
  it('publishes every input segment byte-identical (sha256), seq by seq, while sampling it', async () => {
    const segs = await makeTestSegments({ durationS: 6, fps: 30, width: 640, height: 360, gopS: 1, audio: 'opus' });
    const sampler = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, targetFps: 3 } });
    const c = capture(sampler);
    const { relay, outputs, drops } = await relayThrough(segs, { sampler });
    assert.equal(outputs.length, segs.length);
    outputs.forEach((o, i) => {
      assert.equal(o.seq, i);
      assert.equal(sha256(o.bytes), sha256(segs[i]!), `segment ${i}`);
    });
    assert.deepEqual(drops, []);
    const st = relay.stats();
    assert.equal(st.segmentsIn, segs.length);
    assert.equal(st.segmentsOut, segs.length);
    assert.equal(st.bytesOut, st.bytesIn);
    assert.ok(Math.abs(c.frames.length - 18) <= 1, `${c.frames.length} frames`);
    assert.ok(c.audio.length > 0);
  });

  it('keeps passthrough byte-exact through empty, garbage, truncated, corrupt, audio-less and resized segments', async () => {
    const a = await makeTestSegments({ durationS: 3, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const noAudio = await makeTestSegments({ durationS: 2, fps: 30, width: 640, height: 360, gopS: 1, audio: null, tsOffsetS: 3 });
    // a larger picture from here on (a resize mid-stream), its segments several read chunks each
    const big = await makeTestSegments({ durationS: 2, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'opus', tsOffsetS: 5 });
    const garbage = Buffer.alloc(100_000, 0x47);
    const corrupt = Buffer.from(a[2]!);
    for (let i = 3000; i < corrupt.length; i += 501) corrupt[i] = corrupt[i]! ^ 0xff;
    const input = [a[0]!, Buffer.alloc(0), garbage, a[1]!.subarray(0, 50_001), corrupt, ...noAudio, ...big];
    const sampler = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, targetFps: 2 } });
    const c = capture(sampler);
    const { outputs } = await relayThrough(input, { sampler });
    assert.equal(outputs.length, input.length);
    outputs.forEach((o, i) => assert.equal(sha256(o.bytes), sha256(input[i]!), `segment ${i}`));
    assert.ok(c.errors.length > 0, 'sampler reported the bad input');
    assert.ok(c.frames.some((f) => f.ptsMs > 5400), 'sampler resynced and sampled the last part');
    await serverHealthy();
  });

  it('publishes nothing without a publisher, and still samples', async () => {
    const segs = await makeTestSegments({ durationS: 3, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const sampler = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, targetFps: 2 } });
    const c = capture(sampler);
    const { relay } = await relayThrough(segs, { sampler, publish: false, outChannel: false });
    assert.equal(relay.stats().segmentsOut, 0);
    assert.equal(relay.stats().bytesOut, 0);
    assert.equal(relay.stats().segmentsIn, segs.length);
    assert.ok(c.frames.length >= 5);
  });

  it('a failing output (no such channel) drops output segments but never stalls input or sampling', async () => {
    const segs = await makeTestSegments({ durationS: 3, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const sampler = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, targetFps: 2 } });
    const c = capture(sampler);
    const { relay, drops } = await relayThrough(segs, { sampler, outChannel: false });
    assert.equal(relay.stats().segmentsIn, segs.length);
    assert.equal(relay.stats().segmentsOut, 0);
    assert.ok(drops.length > 0 && drops.every((d) => d.reason === 'output_failed' || d.reason === 'publisher_closed'));
    assert.equal(relay.stats().outputDropped, drops.length);
    assert.ok(c.frames.length >= 5);
    await serverHealthy();
  });

  it('a stalled output (writes that never complete) is dropped as output_lagging and never stalls input or sampling', async () => {
    const segs = await makeTestSegments({ durationS: 6, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac' });
    const stalled = new StalledOutputDouble();
    server.createChannel('stall-in', 'video/MP2T');
    const feeder = new TricklePublisher({ url: server.channelUrl('stall-in'), mimeType: 'video/MP2T' });
    const subscriber = new TrickleSubscriber({ url: server.channelUrl('stall-in'), start: 0 });
    const sampler = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, targetFps: 2 } });
    const c = capture(sampler);
    // stopDrainMs: the stalled output never drains; stop() would otherwise wait its default 5 s for it.
    const relay = new MediaRelay({ subscriber, publisher: stalled as unknown as TricklePublisher, sampler, maxOutputLagBytes: 128 * 1024, stopDrainMs: 100 });
    const drops: Array<{ seq: number; reason: string }> = [];
    relay.on('output-dropped', (d) => drops.push(d));
    relay.on('error', () => undefined);
    const running = relay.run();
    await feedInput(feeder, segs, relay);
    // Observed while the relay still runs (stop() abandons whatever output is left anyway).
    const openedWhileRunning = stalled.opened;
    const abortedWhileRunning = stalled.aborted;
    const dropsWhileRunning = drops.length;
    await relay.close();
    await running;
    await sampler.close();
    await feeder.close();
    server.deleteChannel('stall-in');
    assert.equal(relay.stats().segmentsIn, segs.length);
    assert.ok(c.frames.length >= 8, `sampling went on (${c.frames.length} frames)`);
    assert.ok(dropsWhileRunning > 0 && drops.some((d) => d.reason === 'output_lagging'), JSON.stringify(drops));
    assert.ok(openedWhileRunning > 1, 'after dropping the stuck segment the output moved on to fresher ones');
    assert.ok(abortedWhileRunning >= 1, 'the stuck write was abandoned');
    assert.equal(relay.stats().segmentsOut, 0);
  });
});

describe('MediaRelay owns its output publisher', () => {
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

  it('closes the output publisher when the input ends: output readers see end of stream, no socket stays open', async () => {
    const segs = await makeTestSegments({ durationS: 2, fps: 30, width: 320, height: 180, gopS: 1, audio: null });
    const baseline = sockets();
    server.createChannel('own-in', 'video/MP2T');
    server.createChannel('own-out', 'video/MP2T');
    const feeder = new TricklePublisher({ url: server.channelUrl('own-in'), mimeType: 'video/MP2T', deleteOnClose: true });
    const subscriber = new TrickleSubscriber({ url: server.channelUrl('own-in'), start: 0 });
    // deleteOnClose as go-livepeer's publisher does on Close(): readers then learn the stream ended.
    const publisher = new TricklePublisher({ url: server.channelUrl('own-out'), mimeType: 'video/MP2T', deleteOnClose: true });
    const relay = new MediaRelay({ subscriber, publisher });
    relay.on('error', () => undefined);
    const running = relay.run();
    const reader = new TrickleSubscriber({ url: server.channelUrl('own-out'), start: 0 });
    const reading = readSegments(reader, 1000);
    await feedInput(feeder, segs, relay);
    await feeder.close(); // input ends: the relay's subscriber sees end of stream and the relay ends
    await running;
    let outputs: Array<{ seq: number; bytes: Buffer }> | undefined;
    void reading.then((o) => (outputs = o));
    await waitFor('output reader to see end of stream', () => outputs !== undefined, 5000);
    assert.equal(outputs!.filter((o) => o.bytes.length > 0).length, segs.length);
    assert.equal(publisher.closed, true);
    await reader.close();
    await waitFor(`sockets back to ${baseline} (now ${sockets()})`, () => sockets() <= baseline, 5000);
    server.deleteChannel('own-in');
    server.deleteChannel('own-out');
  });

  it('closes the output publisher on stop()', async () => {
    server.createChannel('own2-in', 'video/MP2T');
    server.createChannel('own2-out', 'video/MP2T');
    const subscriber = new TrickleSubscriber({ url: server.channelUrl('own2-in'), start: 0 });
    const publisher = new TricklePublisher({ url: server.channelUrl('own2-out'), mimeType: 'video/MP2T' });
    const relay = new MediaRelay({ subscriber, publisher });
    const running = relay.run();
    await relay.close();
    await running;
    assert.equal(publisher.closed, true);
    server.deleteChannel('own2-in');
    server.deleteChannel('own2-out');
  });
});

/**
 * Test double for fault injection: an output whose connection stalls. Each segment accepts its first
 * chunk, then never completes a write (or end) until it is abandoned with abort(), when the pending
 * call rejects — what a TCP connection to a peer that stopped reading looks like to the publisher.
 */
class StalledOutputDouble {
  opened = 0;
  aborted = 0;
  readonly closed = false;

  async next(): Promise<TrickleSegmentOut> {
    const seq = this.opened++;
    let accepted = 0;
    let fail: ((e: Error) => void) | undefined;
    const stuck = () =>
      new Promise<void>((_, reject) => {
        fail = reject;
      });
    return {
      seq,
      write: async () => {
        if (accepted++ === 0) return;
        await stuck();
      },
      end: () => stuck(),
      abort: async () => {
        this.aborted++;
        fail?.(new Error('segment abandoned'));
      },
    };
  }

  async publish(): Promise<void> {}
  async close(): Promise<void> {}
}

