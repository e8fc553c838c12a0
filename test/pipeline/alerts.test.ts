/**
 * Alert rules on injectable time: substring / regex on the text, field conditions on the parsed
 * json, once per cooldown per rule (matches inside it counted, not fired), cooldowns kept across a
 * live rule update for rules that keep their name, and regexes that would make a backtracking engine
 * hang run in linear time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams } from '../../src/config/params.js';
import { AlertEngine, alertEventFields, alertRecord, fieldMatches, valueAt } from '../../src/pipeline/alerts.js';
import { compileSafeRegex } from '../../src/util/safe-regex.js';

const rules = (r: unknown[]) => parseStartParams({ alert_rules: r }).params.alert_rules;
const out = (text: string, json?: unknown) => ({ text, json, hasJson: json !== undefined });

test('a rule fires once per cooldown on the time it is given; matches inside the cooldown are counted', () => {
  const e = new AlertEngine(rules([{ name: 'fire', contains: 'fire', cooldown_s: 10 }]));
  assert.equal(e.evaluate(out('A FIRE starts'), 0).length, 1);
  assert.equal(e.evaluate(out('the fire grows'), 5_000).length, 0);
  assert.equal(e.evaluate(out('no match here'), 9_000).length, 0);
  assert.equal(e.evaluate(out('fire again'), 9_999).length, 0);
  const again = e.evaluate(out('fire again'), 10_000);
  assert.equal(again.length, 1, 'once the cooldown is over');
  assert.equal(again[0]!.match, 'fire');
  assert.deepEqual(e.counters(), { alerts_fired: 2, alerts_suppressed: 2 });
});

test('contains is case-insensitive by default and returns the text as written; ignore_case: false is exact', () => {
  const e = new AlertEngine(rules([{ name: 'a', contains: 'smoke', cooldown_s: 0 }, { name: 'b', contains: 'smoke', ignore_case: false, cooldown_s: 0 }]));
  const fired = e.evaluate(out('Thick SMOKE rises'), 0);
  assert.deepEqual(fired.map((f) => [f.rule.name, f.match, f.kind]), [['a', 'SMOKE', 'contains']]);
});

test('regex rules match with RE2 syntax and report the matching text', () => {
  const e = new AlertEngine(rules([{ name: 'count', regex: '\\b(\\d+) (people|persons)\\b', cooldown_s: 0 }]));
  const f = e.evaluate(out('I can see 12 People waiting'), 0);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.match, '12 People');
  assert.equal(f[0]!.kind, 'regex');
});

test('a pattern that makes a backtracking engine run for ages matches in linear time', () => {
  const r = compileSafeRegex('^(a+)+$');
  assert.ok(r.ok);
  // JavaScript's RegExp needs ~2^n steps here (n = 30 already takes seconds); RE2 answers at once.
  const text = 'a'.repeat(100_000) + '!';
  assert.equal(r.regex.find(text), undefined);
  assert.equal(r.regex.test('aaaa'), true);
});

test('constructs without a linear-time match, and over-long patterns, are refused', () => {
  for (const p of ['(a)\\1', '(?=a)b', '(?<!x)y', 'x'.repeat(300), '']) {
    const r = compileSafeRegex(p);
    assert.equal(r.ok, false, p.slice(0, 20));
  }
});

test('json field conditions: exists, eq/ne, numeric comparisons, contains on strings and arrays', () => {
  const json = { people: 3, label: 'Crowd', tags: ['Dog', 'cat'], nested: { list: [{ v: 7 }] }, none: null };
  assert.equal(valueAt(json, 'nested.list.0.v'), 7);
  assert.equal(valueAt(json, 'nested.list.x'), undefined);
  assert.equal(valueAt(json, 'tags.5'), undefined);
  const ok = (op: string, path: string, value?: unknown) => fieldMatches(valueAt(json, path), { op: op as never, value: value as never, ignore_case: true });
  assert.ok(ok('exists', 'people'));
  assert.ok(!ok('exists', 'none'));
  assert.ok(!ok('exists', 'missing'));
  assert.ok(ok('eq', 'label', 'crowd'));
  assert.ok(ok('ne', 'label', 'empty'));
  assert.ok(!ok('ne', 'missing', 'x'), 'ne needs the field');
  assert.ok(ok('gte', 'people', 3) && ok('gt', 'people', 2) && ok('lt', 'people', 4) && ok('lte', 'people', 3));
  assert.ok(!ok('gt', 'label', 1), 'numeric ops need a number');
  assert.ok(ok('contains', 'label', 'row'));
  assert.ok(ok('contains', 'tags', 'dog'));
  assert.ok(!ok('contains', 'tags', 'bird'));
});

test('json rules only see parsed output, and report the field\'s value', () => {
  const e = new AlertEngine(rules([{ name: 'crowd', json_path: 'people', op: 'gte', value: 5, cooldown_s: 0 }]));
  assert.equal(e.evaluate(out('{"people": 9}'), 0).length, 0, 'no json: no field rule');
  const f = e.evaluate(out('{"people": 9}', { people: 9 }), 0);
  assert.equal(f[0]!.match, '9');
  assert.equal(e.evaluate(out('', { people: 4 }), 1).length, 0);
});

test('replacing the rules keeps the cooldown of a rule that keeps its name, and forgets removed ones', () => {
  const e = new AlertEngine(rules([{ name: 'fire', contains: 'fire', cooldown_s: 60 }]));
  assert.equal(e.evaluate(out('fire'), 0).length, 1);
  e.setRules(rules([{ name: 'fire', regex: 'fire|flames', cooldown_s: 60 }, { name: 'dog', contains: 'dog', cooldown_s: 60 }]));
  assert.deepEqual(e.evaluate(out('fire and a dog'), 1000).map((f) => f.rule.name), ['dog'], 'fire is still cooling down');
  e.setRules(rules([{ name: 'dog', contains: 'dog', cooldown_s: 60 }]));
  e.setRules(rules([{ name: 'fire', contains: 'fire', cooldown_s: 60 }]));
  assert.equal(e.evaluate(out('fire'), 2000).length, 1, 'a rule that was removed starts afresh');
});

test('alert records and events carry the rule, the cycle and the matching text, bounded', () => {
  const [fired] = new AlertEngine(rules([{ name: 'fire', contains: 'fire', cooldown_s: 0 }])).evaluate(out('fire'), 0);
  const long = 'fire ' + 'x'.repeat(5000);
  const r = alertRecord('s1', { id: 'c-1', seq: 4 }, fired!, long, 1234.5);
  assert.deepEqual({ ...r, text: r.text.length }, { type: 'alert', stream_id: 's1', timestamp_ms: 1234, cycle_id: 'c-1', cycle_seq: 4, rule: 'fire', kind: 'contains', match: 'fire', text: 1024 });
  assert.deepEqual(Object.keys(alertEventFields(r)).sort(), ['cycle_id', 'cycle_seq', 'kind', 'match', 'rule', 'text']);
});

test('in the loop, cooldowns run on the loop\'s injected clock: alert records once per cooldown, events through the alert port', async () => {
  const { GenerationLoop } = await import('../../src/pipeline/loop.js');
  const { rootLogger } = await import('../../src/log.js');
  const { ScriptedBackend } = await import('../helpers/model.js');
  const { ManualClock } = await import('../helpers/clock.js');
  const { waitFor } = await import('../helpers/wait.js');
  const clock = new ManualClock();
  const backend = new ScriptedBackend('instant', (n) => `cycle ${n}: smoke in the hall`);
  const records: Array<Record<string, unknown>> = [];
  const events: Array<Record<string, unknown>> = [];
  const loop = new GenerationLoop('s', parseStartParams({ generate_every_s: 1, alert_rules: [{ name: 'smoke', contains: 'smoke', cooldown_s: 30 }] }).params, {
    backend,
    publish: (r) => records.push(...(r as unknown as Array<Record<string, unknown>>)),
    reportError: () => undefined,
    alert: (f) => events.push(f),
    log: rootLogger(),
    clock,
  });
  const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
  let pts = 0;
  /** Feeds frames (250 ms of stream time apart) until `n` more cycles have run and published. */
  const cycles = async (_label: number, n: number) => {
    for (let i = 0; i < n; i++) {
      const before = backend.calls.length;
      for (let k = 0; k < 40 && backend.calls.length === before; k++) {
        loop.pushFrame({ ptsMs: (pts += 250), width: 8, height: 8, jpeg: JPEG });
        await new Promise((r) => setImmediate(r));
      }
      await waitFor('a cycle', () => backend.calls.length > before && records.filter((r) => r.type === 'generation').length === backend.calls.length);
    }
  };
  await cycles(0, 3);
  assert.equal(records.filter((r) => r.type === 'alert').length, 1, 'three matching cycles within the cooldown: one alert');
  await clock.advance(29_999);
  await cycles(3, 1);
  assert.equal(records.filter((r) => r.type === 'alert').length, 1);
  await clock.advance(1);
  await cycles(4, 1);
  const alerts = records.filter((r) => r.type === 'alert');
  assert.equal(alerts.length, 2, 'once the cooldown is over on the loop\'s clock');
  assert.deepEqual(events.map((e) => e.cycle_id), alerts.map((a) => a.cycle_id));
  assert.equal(loop.counters().alerts_suppressed, 3);
  loop.close();
  await loop.settle(0, 100);
});
