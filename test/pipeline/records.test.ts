import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_LINE_BYTES, serializeRecord, truncateUtf8, type GenerationRecord } from '../../src/pipeline/records.js';

function gen(text: string, prompt = 'describe'): GenerationRecord {
  return {
    type: 'generation',
    stream_id: 's1',
    timestamp_ms: 1700000000000,
    cycle_id: '0b6f8f9e-3f0c-4c39-9a3e-6b1d2f7a9c11',
    cycle_seq: 3,
    prompt,
    text,
    window: { start_ms: 0, end_ms: 4000 },
    stats: {
      frame_count: 8,
      audio_duration_ms: 4000,
      input_tokens: 2300,
      max_new_tokens: 700,
      frames_dropped_by_gating: 0,
      frames_dropped_by_engine_limit: 0,
      skipped_cycles: 0,
      records_dropped: 0,
      timings_ms: { encode: 1, model: 2, total: 3 },
    },
    usage: { prompt_tokens: 2300, completion_tokens: 12 },
  };
}

test('a record is one JSON object on one \\n-terminated line, never an array of strings', () => {
  const line = serializeRecord(gen('a cat\nsits'));
  assert.ok(line.endsWith('\n'));
  assert.equal(line.indexOf('\n'), line.length - 1);
  const obj = JSON.parse(line) as Record<string, unknown>;
  assert.equal(Array.isArray(obj), false);
  assert.equal(obj.type, 'generation');
  assert.equal(obj.text, 'a cat\nsits');
  assert.equal(obj.truncated, undefined);
  for (const k of ['type', 'timestamp_ms', 'cycle_id', 'prompt', 'text', 'stats', 'stream_id', 'window', 'usage']) assert.ok(k in obj, k);
});

test('no line exceeds 64 KiB: oversized text is truncated and flagged', () => {
  const big = 'é'.repeat(80_000) + '😀'.repeat(5000);
  const line = serializeRecord(gen(big));
  const bytes = Buffer.byteLength(line, 'utf8');
  assert.ok(bytes <= MAX_LINE_BYTES, `line is ${bytes} bytes`);
  assert.ok(bytes > MAX_LINE_BYTES - 64, 'truncation keeps as much text as fits');
  const obj = JSON.parse(line) as GenerationRecord;
  assert.equal(obj.truncated, true);
  assert.ok(big.startsWith(obj.text));
  assert.equal(obj.stats.frame_count, 8);
});

test('the 64 KiB rule holds for text that JSON-escapes to several bytes per character', () => {
  const nasty = '\u0001"\\'.repeat(40_000);
  const line = serializeRecord(gen(nasty));
  assert.ok(Buffer.byteLength(line, 'utf8') <= MAX_LINE_BYTES);
  const obj = JSON.parse(line) as GenerationRecord;
  assert.equal(obj.truncated, true);
  assert.ok(nasty.startsWith(obj.text));
});

test('error messages are truncated too', () => {
  const line = serializeRecord({ type: 'error', stream_id: 's', timestamp_ms: 1, cycle_id: 'c1', cycle_seq: 1, error: { code: 'engine_error', message: 'm'.repeat(100_000) } });
  assert.ok(Buffer.byteLength(line) <= MAX_LINE_BYTES);
  const obj = JSON.parse(line) as { truncated: boolean; error: { code: string } };
  assert.equal(obj.truncated, true);
  assert.equal(obj.error.code, 'engine_error');
});

test('truncateUtf8 never splits a code point', () => {
  assert.equal(truncateUtf8('a😀b', 2), 'a');
  assert.equal(truncateUtf8('a😀b', 5), 'a😀');
  assert.equal(truncateUtf8('abc', 10), 'abc');
  assert.equal(truncateUtf8('abc', 0), '');
});

test('a structured record whose parsed json alone would break 64 KiB keeps its (cut) text and loses the json, flagged', () => {
  const big = { items: Array.from({ length: 4000 }, (_, i) => `item number ${i}`) };
  const r: GenerationRecord = { ...gen(JSON.stringify(big)), json: big };
  const line = serializeRecord(r);
  assert.ok(Buffer.byteLength(line) <= MAX_LINE_BYTES);
  const back = JSON.parse(line) as Record<string, unknown>;
  assert.equal(back.truncated, true);
  assert.equal(back.json, undefined);
  assert.ok(String(back.text).length > 0);
  const small = serializeRecord({ ...gen('{"a":1}'), json: { a: 1 } });
  assert.deepEqual((JSON.parse(small) as { json: unknown }).json, { a: 1 }, 'a record that fits keeps its json');
});

test('partial and alert records serialise to one line within the bound too', () => {
  const p = serializeRecord({ type: 'partial', stream_id: 's', timestamp_ms: 1, cycle_id: 'c', cycle_seq: 1, partial_seq: 2, text: 'x'.repeat(100_000) });
  assert.ok(Buffer.byteLength(p) <= MAX_LINE_BYTES);
  assert.equal((JSON.parse(p) as { truncated: boolean }).truncated, true);
});
