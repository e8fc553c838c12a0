/**
 * JPEG encoding's process-wide bound (many streams per process): at most JPEG_MAX_IN_FLIGHT encodes
 * run at once, the rest wait in arrival order, and every one still produces a real baseline JPEG.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeJpeg, jpegEncodeStats, JPEG_MAX_IN_FLIGHT } from '../../src/media/jpeg.js';

const frame = (w: number, h: number, v: number) => Buffer.alloc(w * h * 3, v);

describe('encodeJpeg: process-wide bound', () => {
  it('runs at most JPEG_MAX_IN_FLIGHT encodes at once, starts the waiting ones in arrival order, and frees every slot', async () => {
    await encodeJpeg(frame(8, 8, 0), 8, 8, 80); // sharp loaded: the rest is the bound alone
    const order: number[] = [];
    const jobs = Array.from({ length: 3 * JPEG_MAX_IN_FLIGHT }, (_, i) => encodeJpeg(frame(256, 144, i), 256, 144, 80).then((j) => (order.push(i), j)));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(jpegEncodeStats(), { in_flight: JPEG_MAX_IN_FLIGHT, waiting: 2 * JPEG_MAX_IN_FLIGHT });
    const out = await Promise.all(jobs);
    for (const j of out) assert.equal(j.subarray(0, 2).toString('hex'), 'ffd8');
    assert.deepEqual(jpegEncodeStats(), { in_flight: 0, waiting: 0 });
    // Waiters start in arrival order: the last one to start is among the last to finish.
    assert.ok(order.indexOf(jobs.length - 1) >= JPEG_MAX_IN_FLIGHT, `order ${order.join(',')}`);
  });

  it('frees the slot when an encode fails', async () => {
    await assert.rejects(encodeJpeg(Buffer.alloc(5), 8, 8, 80));
    assert.deepEqual(jpegEncodeStats(), { in_flight: 0, waiting: 0 });
  });
});
