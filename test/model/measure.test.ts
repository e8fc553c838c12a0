/**
 * measureGeneration on hand-made raw streams and a fake clock: the timings, the joined text, exactly
 * one `done`, abort and the closing of the raw iterator that every backend now gets from it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GenerateEvent } from '../../src/model/backend.js';
import { ModelAbortError, ModelError } from '../../src/model/errors.js';
import { measureGeneration, type RawEvent } from '../../src/model/measure.js';

/** A fake clock the raw streams below advance between events. */
function clock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

async function collect(it: AsyncIterable<GenerateEvent>): Promise<GenerateEvent[]> {
  const out: GenerateEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

type Step = RawEvent | { wait: number };

/** A raw stream that plays `steps` (`{wait}` moves the clock) and records whether it was closed. */
function scripted(c: ReturnType<typeof clock>, steps: Step[]) {
  const seen = { closed: false, pulledAfterEnd: false };
  async function* gen(): AsyncGenerator<RawEvent> {
    let ended = false;
    try {
      for (const s of steps) {
        if ('wait' in s) {
          c.advance(s.wait);
          continue;
        }
        if (ended) seen.pulledAfterEnd = true;
        yield s;
        if (s.type === 'end') ended = true;
      }
    } finally {
      seen.closed = true;
    }
  }
  return { raw: gen(), seen };
}

/** A raw iterator whose reads never settle (an engine that stopped answering); counts return() calls. */
function stuck() {
  const calls = { next: 0, return: 0 };
  const raw: AsyncIterable<RawEvent> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        calls.next++;
        return new Promise<IteratorResult<RawEvent>>(() => undefined);
      },
      return: () => {
        calls.return++;
        return Promise.resolve({ value: undefined, done: true as const });
      },
    }),
  };
  return { raw, calls };
}

const isAbort = (err: unknown) => err instanceof ModelAbortError && err.name === 'AbortError' && err.code === 'aborted';

describe('measureGeneration', () => {
  it('measures first token from sent to the first non-empty delta and model time from sent to end, on the injected clock', async () => {
    const c = clock();
    const { raw } = scripted(c, [
      { wait: 7 },
      { type: 'sent', encodeMs: 7 },
      { wait: 30 },
      { type: 'delta', text: '' },
      { wait: 20 },
      { type: 'delta', text: 'Hel' },
      { wait: 50 },
      { type: 'delta', text: 'lo' },
      { wait: 5 },
      { type: 'end', usage: { promptTokens: 10, completionTokens: 2 }, finishReason: 'stop', encodeMs: 3 },
    ]);
    const events = await collect(measureGeneration(raw, { now: c.now }));
    assert.deepEqual(events, [
      { type: 'delta', text: 'Hel' },
      { type: 'delta', text: 'lo' },
      {
        type: 'done',
        text: 'Hello',
        usage: { promptTokens: 10, completionTokens: 2 },
        timings: { encodeMs: 10, firstTokenMs: 50, modelMs: 105 },
        finishReason: 'stop',
      },
    ]);
  });

  it('a reply with no text has no firstTokenMs and an empty done text', async () => {
    const c = clock();
    const { raw } = scripted(c, [{ type: 'sent' }, { wait: 12 }, { type: 'end', usage: {} }]);
    const events = await collect(measureGeneration(raw, { now: c.now }));
    assert.deepEqual(events, [{ type: 'done', text: '', usage: {}, timings: { encodeMs: 0, modelMs: 12 } }]);
  });

  it('a raw stream without sent is timed from the first read; a sent after text, or a second one, does not restart the clock', async () => {
    const c = clock();
    const { raw } = scripted(c, [{ wait: 4 }, { type: 'delta', text: 'a' }, { wait: 6 }, { type: 'sent', encodeMs: 99 }, { wait: 2 }, { type: 'end', usage: {} }]);
    const events = await collect(measureGeneration(raw, { now: c.now }));
    const done = events.at(-1);
    assert.ok(done?.type === 'done');
    assert.deepEqual(done.timings, { encodeMs: 0, firstTokenMs: 4, modelMs: 12 });
    const c2 = clock();
    const twice = scripted(c2, [{ type: 'sent' }, { wait: 5 }, { type: 'sent' }, { wait: 5 }, { type: 'end', usage: {} }]);
    const d2 = (await collect(measureGeneration(twice.raw, { now: c2.now }))).at(-1);
    assert.ok(d2?.type === 'done');
    assert.equal(d2.timings.modelMs, 10);
  });

  it('yields exactly one done, last: the raw stream is closed at end and nothing after end is read', async () => {
    const c = clock();
    const { raw, seen } = scripted(c, [
      { type: 'sent' },
      { type: 'delta', text: 'x' },
      { type: 'end', usage: {} },
      { type: 'delta', text: 'late' },
      { type: 'end', usage: {} },
    ]);
    const gen = measureGeneration(raw, { now: c.now });
    assert.deepEqual(await gen.next(), { value: { type: 'delta', text: 'x' }, done: false });
    const done = await gen.next();
    assert.equal(done.value?.type, 'done');
    assert.equal(seen.closed, true, 'closed before done is handed out');
    assert.deepEqual(await gen.next(), { value: undefined, done: true });
    assert.equal(seen.pulledAfterEnd, false);
  });

  it('a raw stream that stops without end fails with engine_error and yields no done', async () => {
    const c = clock();
    const { raw } = scripted(c, [{ type: 'sent' }, { type: 'delta', text: 'half' }]);
    const events: GenerateEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const ev of measureGeneration(raw, { now: c.now })) events.push(ev);
      })(),
      (err: unknown) => err instanceof ModelError && err.code === 'engine_error',
    );
    assert.deepEqual(events, [{ type: 'delta', text: 'half' }]);
  });

  it('passes the backend’s own error through unchanged and closes the raw stream', async () => {
    const boom = new ModelError('engine_timeout', 'too slow');
    let closed = false;
    async function* raw(): AsyncGenerator<RawEvent> {
      try {
        yield { type: 'sent' };
        throw boom;
      } finally {
        closed = true;
      }
    }
    await assert.rejects(collect(measureGeneration(raw())), (err: unknown) => err === boom);
    assert.equal(closed, true);
  });

  it('an abort while the engine is silent rejects at once with ModelAbortError and returns the raw iterator', async () => {
    const { raw, calls } = stuck();
    const ac = new AbortController();
    const gen = measureGeneration(raw, { signal: ac.signal });
    const read = gen.next();
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(calls.next, 1, 'waiting on the engine');
    ac.abort('stop');
    await assert.rejects(read, (err: unknown) => isAbort(err) && (err as Error).cause === 'stop');
    assert.equal(calls.return, 1);
  });

  it('an already-aborted signal rejects without reading the raw stream', async () => {
    const { raw, calls } = stuck();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(collect(measureGeneration(raw, { signal: ac.signal })), isAbort);
    assert.equal(calls.next, 0);
  });

  it('an abort after a delta rejects the next read, even when the end was at hand, and closes the raw stream', async () => {
    const c = clock();
    const { raw, seen } = scripted(c, [{ type: 'sent' }, { type: 'delta', text: 'a' }, { type: 'end', usage: {} }]);
    const ac = new AbortController();
    const gen = measureGeneration(raw, { signal: ac.signal, now: c.now });
    assert.equal((await gen.next()).value?.type, 'delta');
    ac.abort();
    await assert.rejects(gen.next(), isAbort);
    assert.equal(seen.closed, true);
  });

  it('an error the backend throws after the caller aborted reads as ModelAbortError', async () => {
    const ac = new AbortController();
    async function* raw(): AsyncGenerator<RawEvent> {
      yield { type: 'sent' };
      ac.abort();
      throw new ModelError('engine_unreachable', 'socket closed by our own abort');
    }
    await assert.rejects(collect(measureGeneration(raw(), { signal: ac.signal })), isAbort);
  });

  it('a caller that stops reading early closes the raw stream', async () => {
    const c = clock();
    const { raw, seen } = scripted(c, [{ type: 'sent' }, { type: 'delta', text: 'a' }, { type: 'delta', text: 'b' }, { type: 'end', usage: {} }]);
    for await (const ev of measureGeneration(raw, { now: c.now })) {
      assert.equal(ev.type, 'delta');
      break;
    }
    assert.equal(seen.closed, true);
  });
});
