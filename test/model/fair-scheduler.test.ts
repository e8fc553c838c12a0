/**
 * The shared backend's fair scheduler: bounded requests in flight, fewest-in-flight then
 * longest-waiting first, aborts and closed handles leave the line, the wait reaches the caller as
 * `timings.queueMs`. Driven with the ScriptedBackend double (gated answers) and an injected clock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FairScheduler, pickNext, type Waiter } from '../../src/model/fair-scheduler.js';
import type { GenerateEvent, GenerateRequest } from '../../src/model/backend.js';
import { ScriptedBackend } from '../helpers/model.js';

const req = (prompt: string, signal?: AbortSignal): GenerateRequest => ({ prompt, images: [], maxNewTokens: 8, ...(signal ? { signal } : {}) });

async function drain(events: AsyncIterable<GenerateEvent>): Promise<Extract<GenerateEvent, { type: 'done' }>> {
  for await (const ev of events) if (ev.type === 'done') return ev;
  throw new Error('no done event');
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('pickNext (pure)', () => {
  it('prefers the stream with fewer requests in flight, then the longest waiting, then arrival order', () => {
    const w: Waiter[] = [
      { streamId: 'a', since: 5, seq: 1 },
      { streamId: 'b', since: 9, seq: 2 },
      { streamId: 'c', since: 5, seq: 3 },
    ];
    assert.equal(pickNext(w, () => 0), 0, 'all idle: oldest, arrival order breaks the tie');
    assert.equal(pickNext(w, (id) => (id === 'a' ? 1 : 0)), 2, 'a already has one in flight: c (as old, idle) goes');
    assert.equal(pickNext(w, (id) => (id === 'b' ? 0 : 1)), 1, 'only b has nothing in flight: b goes although it is the youngest');
    assert.equal(pickNext([], () => 0), -1);
  });
});

describe('FairScheduler', () => {
  it('keeps at most maxInFlight requests at the backend and serves waiting streams in the order they waited', async () => {
    const backend = new ScriptedBackend('gated', (n) => `answer ${n}`);
    let now = 0;
    const sched = new FairScheduler(backend, { maxInFlight: 1, now: () => now });
    const order: string[] = [];
    const run = (id: string) => {
      const h = sched.open(id);
      return drain(h.generate(req(id))).then((d) => {
        order.push(id);
        return d;
      });
    };
    const a = run('a');
    await tick();
    now = 10;
    const c = run('c');
    now = 20;
    const b = run('b');
    await tick();
    assert.equal(backend.calls.length, 1, 'one request at the backend');
    assert.deepEqual(sched.stats().waiting, 2);
    now = 50;
    backend.release();
    await a;
    await tick();
    assert.equal(backend.calls.length, 2);
    assert.equal(backend.calls[1]!.prompt, 'c', 'c waited longer than b');
    backend.release();
    const dc = await c;
    assert.equal(dc.timings.queueMs, 40, 'c waited from 10 to 50');
    await tick();
    backend.release();
    await b;
    assert.deepEqual(order, ['a', 'c', 'b']);
    const st = sched.stats();
    assert.equal(st.max_in_flight_seen, 1);
    assert.equal(st.max_waiting_seen, 2);
    assert.equal(st.in_flight, 0);
  });

  it('never lets a stream have two requests in flight while another stream waits for its first', async () => {
    const backend = new ScriptedBackend('gated');
    let now = 0;
    const sched = new FairScheduler(backend, { maxInFlight: 2, now: () => now });
    const x = sched.open('x');
    const a = sched.open('a');
    const b = sched.open('b');
    const x1 = drain(x.generate(req('x1')));
    const a1 = drain(a.generate(req('a1')));
    await tick();
    // Both slots taken; a's second request (e.g. a correction pass) waits before b's first one.
    now = 1;
    const a2 = drain(a.generate(req('a2')));
    now = 2;
    const b1 = drain(b.generate(req('b1')));
    await tick();
    assert.equal(sched.stats().waiting, 2);
    backend.release(); // x1 finishes
    await x1;
    await tick();
    assert.deepEqual(
      backend.calls.map((c) => c.prompt),
      ['x1', 'a1', 'b1'],
      'the free slot went to b (nothing in flight) although a2 waited longer',
    );
    backend.release();
    backend.release();
    await Promise.all([a1, b1]);
    await tick();
    backend.release();
    await a2;
  });

  it('takes an aborted request out of the line with an AbortError, and a closed handle\'s waiters are rejected', async () => {
    const backend = new ScriptedBackend('gated');
    const sched = new FairScheduler(backend, { maxInFlight: 1 });
    const first = drain(sched.open('a').generate(req('a')));
    await tick();
    const ac = new AbortController();
    const aborted = drain(sched.open('b').generate(req('b', ac.signal)));
    const hc = sched.open('c');
    const closed = drain(hc.generate(req('c')));
    await tick();
    assert.equal(sched.stats().waiting, 2);
    ac.abort();
    await assert.rejects(aborted, (e: Error) => e.name === 'AbortError');
    await hc.close();
    await assert.rejects(closed, /the stream ended while its request waited/);
    assert.equal(sched.stats().waiting, 0);
    backend.release();
    await first;
    assert.deepEqual(
      backend.calls.map((c) => c.prompt),
      ['a'],
      'neither b nor c reached the backend',
    );
    await assert.rejects(drain(hc.generate(req('again'))), /the stream has ended/);
  });

  it('frees the slot when the backend fails, so the next stream goes', async () => {
    const backend = new ScriptedBackend('instant');
    const failing = backend.generate.bind(backend);
    let fail = true;
    backend.generate = (r: GenerateRequest) => {
      if (fail) {
        fail = false;
        return (async function* (): AsyncIterable<GenerateEvent> {
          throw new Error('engine down');
        })();
      }
      return failing(r);
    };
    const sched = new FairScheduler(backend, { maxInFlight: 1 });
    await assert.rejects(drain(sched.open('a').generate(req('a'))), /engine down/);
    const d = await drain(sched.open('b').generate(req('b')));
    assert.equal(d.type, 'done');
    assert.equal(sched.stats().in_flight, 0);
  });

  it('takes back the slot of a request its stream abandoned (it ignores its abort) once the stream\'s handle closes', async () => {
    const backend = new ScriptedBackend('instant');
    const answer = backend.generate.bind(backend);
    backend.generate = (r: GenerateRequest) =>
      r.prompt === 'stuck'
        ? (async function* (): AsyncIterable<GenerateEvent> {
            await new Promise<never>(() => undefined); // never settles, abort or not
          })()
        : answer(r);
    const sched = new FairScheduler(backend, { maxInFlight: 1 });
    const a = sched.open('a');
    void drain(a.generate(req('stuck'))).catch(() => undefined);
    await tick();
    let bDone = false;
    const b = drain(sched.open('b').generate(req('b'))).then(() => (bDone = true));
    await tick();
    assert.equal(bDone, false, 'b waits behind the stuck request');
    await a.close();
    await b;
    assert.equal(sched.stats().in_flight, 0);
  });

  it('treats a restart under the same id as a new stream: closing the old handle leaves the new one alone', async () => {
    const backend = new ScriptedBackend('gated');
    const sched = new FairScheduler(backend, { maxInFlight: 1 });
    const first = drain(sched.open('x').generate(req('other')));
    await tick();
    const oldHandle = sched.open('r');
    const newHandle = sched.open('r');
    const waiting = drain(newHandle.generate(req('new r')));
    await tick();
    await oldHandle.close();
    assert.equal(sched.stats().waiting, 1, 'the new stream\'s request still waits');
    backend.release();
    await first;
    await tick();
    backend.release();
    await waiting;
  });

  it('refuses a bound below 1', () => {
    assert.throws(() => new FairScheduler(new ScriptedBackend(), { maxInFlight: 0 }), /maxInFlight must be an integer ≥ 1/);
  });
});
