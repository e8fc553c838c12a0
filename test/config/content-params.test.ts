/**
 * The content-aware parameters in the one schema: off by default (the fixed cadence stays), their
 * defaults, bounds and messages, and live updates through the same path as every other parameter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseParamsUpdate, parseStartParams } from '../../src/config/params.js';
import { ParamsValidationError } from '../../src/errors.js';

test('content-aware cycles are off by default, with documented defaults for every threshold', () => {
  const p = parseStartParams({}).params;
  assert.equal(p.content_aware, false);
  assert.equal(p.duplicate_threshold, 0.02);
  assert.equal(p.scene_change_threshold, 0.12);
  assert.equal(p.speech_rms, 0.02);
  assert.equal(p.speech_end_silence_s, 0.5);
  assert.equal(p.min_trigger_spacing_s, 1);
  assert.equal(p.unchanged_output, 'record');
});

test('bounds and enums are enforced with messages naming the field', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ duplicate_threshold: 1.5 }, /duplicate_threshold: must be at most 1/],
    [{ scene_change_threshold: -0.1 }, /scene_change_threshold: must be at least 0/],
    [{ min_trigger_spacing_s: 0.01 }, /min_trigger_spacing_s: must be at least 0.1/],
    [{ speech_end_silence_s: 11 }, /speech_end_silence_s: must be at most 10/],
    [{ unchanged_output: 'maybe' }, /unchanged_output: must be one of "record", "none"/],
    [{ content_aware: 'perhaps' }, /content_aware: must be a boolean/],
  ];
  for (const [raw, msg] of bad) {
    assert.throws(() => parseStartParams(raw), (e: unknown) => e instanceof ParamsValidationError && msg.test(e.message), JSON.stringify(raw));
  }
});

test('live update: only the keys sent change, numeric and boolean strings coerced', () => {
  const cur = parseStartParams({}).params;
  const up = parseParamsUpdate(cur, { content_aware: 'true', scene_change_threshold: '0.3', unchanged_output: 'none' });
  assert.deepEqual(up.changed.sort(), ['content_aware', 'scene_change_threshold', 'unchanged_output']);
  assert.equal(up.params.content_aware, true);
  assert.equal(up.params.scene_change_threshold, 0.3);
  assert.equal(up.params.unchanged_output, 'none');
  assert.equal(up.params.duplicate_threshold, cur.duplicate_threshold);
});
