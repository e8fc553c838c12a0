/**
 * PartialEmitter on injectable time: the first partial goes out with the first token, later ones at
 * most every interval, text that arrives meanwhile goes out once the interval is over (one trailing
 * partial), and nothing goes out after end(). And the loop with partial_text on: partials of a cycle
 * come before its final record, which is unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams } from '../../src/config/params.js';
import { rootLogger } from '../../src/log.js';
import { GenerationLoop } from '../../src/pipeline/loop.js';
import { PartialEmitter, type PartialRecord } from '../../src/pipeline/partials.js';
import type { DataRecord } from '../../src/pipeline/records.js';
import type { GenerateEvent, GenerateRequest } from '../../src/model/backend.js';
import { ManualClock } from '../helpers/clock.js';
import { ScriptedBackend } from '../helpers/model.js';
import { waitFor } from '../helpers/wait.js';

function emitter(clock: ManualClock, intervalMs = 250) {
  const out: PartialRecord[] = [];
  const e = new PartialEmitter({ streamId: 's', cycle: { id: 'c1', seq: 3 }, intervalMs, clock, publish: (r) => out.push(r), wallNow: () => 1000 + clock.t });
  return { e, out };
}

test('the first partial goes out at once, later ones at most every interval, with the text so far', async () => {
  const clock = new ManualClock();
  const { e, out } = emitter(clock);
  e.text('A');
  assert.deepEqual(out.map((p) => [p.partial_seq, p.text]), [[1, 'A']]);
  await clock.advance(100);
  e.text('A b');
  await clock.advance(100);
  e.text('A b c');
  assert.equal(out.length, 1, 'nothing within the interval');
  await clock.advance(50); // 250 ms after the first
  assert.deepEqual(out.map((p) => [p.partial_seq, p.text, p.timestamp_ms]), [[1, 'A', 1000], [2, 'A b c', 1250]], 'one trailing partial with the latest text');
  await clock.advance(300);
  e.text('A b c d'); // the interval is over: at once
  assert.deepEqual(out.map((p) => p.partial_seq), [1, 2, 3]);
  assert.ok(out.every((p) => p.cycle_id === 'c1' && p.cycle_seq === 3 && p.type === 'partial' && p.stream_id === 's'));
});

test('end() cancels a trailing partial: nothing goes out once the answer is complete', async () => {
  const clock = new ManualClock();
  const { e, out } = emitter(clock);
  e.text('one');
  await clock.advance(10);
  e.text('one two');
  assert.equal(clock.pending(), 1);
  e.end();
  await clock.advance(1000);
  e.text('one two three');
  assert.deepEqual(out.map((p) => p.text), ['one']);
  assert.equal(clock.pending(), 0, 'no timer left behind');
});

test('a trailing partial is not sent when no new text arrived since the last one', async () => {
  const clock = new ManualClock();
  const { e, out } = emitter(clock);
  e.text('x');
  await clock.advance(10);
  e.text('x'); // same text (e.g. an empty delta)
  await clock.advance(500);
  assert.equal(out.length, 1);
});

/** A scripted backend that streams its answer word by word, each word when the test releases it. */
class SteppedBackend extends ScriptedBackend {
  private steps: Array<() => void> = [];
  step(): void {
    this.steps.shift()?.();
  }
  override async *generate(req: GenerateRequest): AsyncIterable<GenerateEvent> {
    this.calls.push(req);
    const words = ['The ', 'cat ', 'sleeps.'];
    for (const w of words) {
      await new Promise<void>((r) => this.steps.push(r));
      yield { type: 'delta', text: w };
    }
    yield { type: 'done', text: words.join(''), usage: {}, timings: { encodeMs: 0, modelMs: 1 } };
  }
}

test('the loop with partial_text: partials of a cycle, in order, then its unchanged generation record', async () => {
  const clock = new ManualClock();
  const backend = new SteppedBackend();
  const records: DataRecord[] = [];
  const loop = new GenerationLoop('s', parseStartParams({ generate_every_s: 1, partial_text: true, partial_interval_ms: 200 }).params, {
    backend,
    publish: (r) => records.push(...r),
    reportError: () => undefined,
    log: rootLogger(),
    clock,
  });
  const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
  for (let t = 0; t <= 1000; t += 100) loop.pushFrame({ ptsMs: t, width: 8, height: 8, jpeg: JPEG });
  await waitFor('a request', () => backend.calls.length === 1);
  backend.step(); // "The "
  await waitFor('the first partial', () => records.length === 1);
  backend.step(); // "cat " within the interval: held
  await new Promise((r) => setImmediate(r));
  assert.equal(records.length, 1);
  await clock.advance(200);
  assert.equal(records.length, 2);
  backend.step(); // "sleeps." and done
  await waitFor('the generation record', () => records.some((r) => r.type === 'generation'));
  assert.deepEqual(records.map((r) => r.type), ['partial', 'partial', 'generation']);
  assert.deepEqual(records.filter((r) => r.type === 'partial').map((r) => (r as PartialRecord).text), ['The ', 'The cat ']);
  const gen = records[2]!;
  assert.ok(gen.type === 'generation');
  assert.equal(gen.text, 'The cat sleeps.');
  assert.equal(gen.cycle_id, records[0]!.cycle_id);
  assert.equal(loop.counters().partials_sent, 2);
  loop.close();
  await loop.settle(0, 100);
});
