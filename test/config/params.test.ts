/**
 * The parameter schema: defaults, bounds, PyTrickle coercions and messages, live-update merging, and
 * the README table generated from it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULT_PROMPT, MAX_EXTRA_PARAM_BYTES, MAX_EXTRA_PARAM_KEYS, parseParamsUpdate, parseStartParams } from '../../src/config/params.js';
import { withParamsTable } from '../../src/config/params-doc.js';
import { ParamsValidationError } from '../../src/errors.js';

function rejects(raw: unknown, pattern: RegExp): void {
  assert.throws(() => parseStartParams(raw), (err: unknown) => {
    assert.ok(err instanceof ParamsValidationError);
    assert.equal(err.code, 'invalid_params');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('stream parameters', () => {
  it('fills every documented default when params are absent or null', () => {
    for (const raw of [undefined, null, {}]) {
      const { params } = parseStartParams(raw);
      assert.equal(params.prompt, DEFAULT_PROMPT);
      assert.equal(params.generate_every_s, 4);
      assert.equal(params.target_fps, 3);
      assert.equal(params.max_frames, 30);
      assert.equal(params.max_input_tokens, 10000);
      assert.equal(params.max_new_tokens, 700);
      assert.equal(params.enable_downscale, true);
      assert.equal(params.downscale_px, 768);
      assert.equal(params.letterbox, true);
      assert.equal(params.audio_window_s, 4);
      assert.equal(params.modality, 'auto');
    }
  });

  it('coerces numeric strings and boolean strings', () => {
    const { params } = parseStartParams({ generate_every_s: ' 2.5 ', max_frames: '8', enable_downscale: 'false' });
    assert.equal(params.generate_every_s, 2.5);
    assert.equal(params.max_frames, 8);
    assert.equal(params.enable_downscale, false);
    assert.equal(parseStartParams({ letterbox: 'false' }).params.letterbox, false);
  });

  it('refuses hex, binary, exponent and Infinity numeric strings (decimal only)', () => {
    rejects({ max_frames: '0x10' }, /max_frames: must be a number \(got "0x10"\)/);
    rejects({ generate_every_s: '1e1' }, /generate_every_s: must be a number/);
    rejects({ max_new_tokens: '0b11' }, /max_new_tokens: must be a number/);
    rejects({ top_p: 'Infinity' }, /top_p: must be a number/);
    const base = parseStartParams({}).params;
    assert.throws(() => parseParamsUpdate(base, { target_fps: '2e0' }), /target_fps: must be a number/);
    assert.equal(parseStartParams({ target_fps: '+.5' }).params.target_fps, 0.5);
  });

  it('enforces each bound with a message naming field and rule', () => {
    rejects({ prompt: '' }, /prompt: must not be empty/);
    rejects({ prompt: 'x'.repeat(8 * 1024 + 1) }, /prompt: must be at most 8192 bytes/);
    rejects({ generate_every_s: 601 }, /generate_every_s: must be at most 600/);
    rejects({ target_fps: 0.05 }, /target_fps: must be at least 0.1/);
    rejects({ max_frames: 65 }, /max_frames: must be at most 64/);
    rejects({ max_frames: 2.5 }, /max_frames: must be an integer/);
    rejects({ max_input_tokens: 100 }, /max_input_tokens: must be at least 256/);
    rejects({ max_new_tokens: 0 }, /max_new_tokens: must be at least 1/);
    rejects({ downscale_px: 2000 }, /downscale_px: must be at most 1536/);
    rejects({ audio_window_s: 31 }, /audio_window_s: must be at most 30/);
    rejects({ modality: 'smell' }, /modality: must be one of/);
    rejects({ target_fps: 'fast' }, /target_fps: must be a number/);
  });

  it('applies PyTrickle coercions to width/height/max_framerate/detect_out_resolution', () => {
    const a = parseStartParams({ width: 640.9, height: '360', max_framerate: '30', detect_out_resolution: 'YES' });
    assert.equal(a.params.width, 640);
    assert.equal(a.params.height, 360);
    assert.equal(a.params.max_framerate, 30);
    assert.equal(a.params.detect_out_resolution, true);
    assert.equal(parseStartParams({ detect_out_resolution: 0 }).params.detect_out_resolution, false);
    assert.equal(parseStartParams({ max_framerate: 60 }).params.max_framerate, 60);
    rejects({ width: 512 }, /Both 'width' and 'height' must be provided together/);
    rejects({ width: '512.0', height: 10 }, /Width and height must be valid integers or integer strings/);
    rejects({ width: 0, height: 10 }, /Width and height must be valid integers or integer strings/);
    rejects({ width: null, height: 10 }, /Width and height must be valid integers or integer strings/);
    rejects({ max_framerate: 'abc' }, /max_framerate must be a valid integer/);
    rejects({ max_framerate: 0 }, /max_framerate must be a positive integer/);
    rejects({ max_framerate: 61 }, /max_framerate cannot exceed 60 FPS/);
    rejects({ detect_out_resolution: 1.5 }, /detect_out_resolution must be a boolean value/);
    rejects({ detect_out_resolution: 'maybe' }, /detect_out_resolution must be a boolean value/);
  });

  it('keeps unknown keys and lists them as ignored', () => {
    const r = parseStartParams({ intensity: 0.9, nested: { a: [1] } });
    assert.deepEqual(r.ignored, ['intensity', 'nested']);
    assert.deepEqual(r.extra, { intensity: 0.9, nested: { a: [1] } });
  });

  it('bounds unknown keys per stream by count and JSON size, across updates, naming the limit', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i <= MAX_EXTRA_PARAM_KEYS; i++) many[`k${i}`] = i;
    rejects(many, new RegExp(`too many unknown parameters: ${MAX_EXTRA_PARAM_KEYS + 1} \\(limit ${MAX_EXTRA_PARAM_KEYS} per stream\\)`));
    rejects({ blob: 'x'.repeat(MAX_EXTRA_PARAM_BYTES) }, /unknown parameters too large: \d+ bytes of JSON \(limit 16384 per stream\)/);
    // Across updates: each one small, the kept set is what is bounded (200 × 900 KB grew RSS before).
    const base = parseStartParams({}).params;
    let kept: Record<string, unknown> = {};
    const chunk = 'y'.repeat(4000);
    kept = parseParamsUpdate(base, { a: chunk }, kept).extra;
    kept = parseParamsUpdate(base, { b: chunk }, kept).extra;
    kept = parseParamsUpdate(base, { c: chunk }, kept).extra;
    assert.deepEqual(Object.keys(kept), ['a', 'b', 'c']);
    assert.throws(() => parseParamsUpdate(base, { d: chunk, e: chunk }, kept), /unknown parameters too large/);
    // Replacing a kept key does not count twice.
    assert.deepEqual(Object.keys(parseParamsUpdate(base, { a: 'small' }, kept).extra), ['a', 'b', 'c']);
  });

  it('merges a live update over the params in force and changes only the keys sent', () => {
    const base = parseStartParams({ generate_every_s: 2, prompt: 'a' }).params;
    const u = parseParamsUpdate(base, { prompt: 'b', target_fps: '5' });
    assert.equal(u.params.prompt, 'b');
    assert.equal(u.params.target_fps, 5);
    assert.equal(u.params.generate_every_s, 2);
    assert.deepEqual(u.changed, ['prompt', 'target_fps']);
  });

  it('rejects a bad update as a whole, naming only the fields sent', () => {
    const base = parseStartParams({}).params;
    assert.throws(() => parseParamsUpdate(base, { prompt: 'ok', max_frames: 0 }), /max_frames: must be at least 1/);
    assert.throws(() => parseParamsUpdate(base, [1, 2]), /must be a JSON object/);
  });
});

describe('README parameter table', () => {
  it('matches the schema (run `npm run docs` after changing params)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    assert.equal(withParamsTable(readme), readme);
  });
});
