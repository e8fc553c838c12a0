/**
 * The data/events writer's queue policy on its own (no sink, no timers): the bound drops the oldest
 * waiting items and keeps the newest, a droppable item is superseded by any later one and goes first
 * at the bound, a failed batch goes back to the head in order, and every drop is reported once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ItemQueue, type QueueItem } from '../../src/pipeline/item-queue.js';

const item = (data: string, droppable = false): QueueItem => ({ data, bytes: Buffer.byteLength(data), ...(droppable ? { droppable } : {}) });

function queue(maxItems = 3, maxBytes = 1_000_000): ItemQueue {
  return new ItemQueue({ maxItems, maxBytes, maxItemsPerSegment: 10, maxSegmentBytes: 1_000_000 });
}

describe('ItemQueue', () => {
  it('past the item bound drops the oldest waiting items, never the newest, and says how many', () => {
    const q = queue(2);
    assert.deepEqual(q.push(item('a')), { dropped: 0, droppable: 0 });
    assert.deepEqual(q.push(item('b')), { dropped: 0, droppable: 0 });
    assert.deepEqual(q.push(item('c')), { dropped: 1, droppable: 0 });
    assert.deepEqual(q.takeBatch().map((i) => i.data), ['b', 'c']);
    assert.equal(q.published(), 2);
    assert.equal(q.size, 0);
    assert.equal(q.bytes, 0);
  });

  it('the byte bound counts the batch in flight, which is never pulled back', () => {
    const q = queue(100, 10);
    q.push(item('12345'));
    q.takeBatch(); // in flight: 5 bytes
    q.push(item('abcd'));
    assert.deepEqual(q.push(item('wxyz')), { dropped: 1, droppable: 0 }, 'the oldest waiting item goes, not the one in flight');
    assert.equal(q.bytes, 9);
    assert.equal(q.published(), 1);
    assert.deepEqual(q.takeBatch().map((i) => i.data), ['wxyz']);
  });

  it('a waiting droppable item is superseded by the next item, and goes first at the bound', () => {
    const q = queue(2);
    q.push(item('p1', true));
    assert.deepEqual(q.push(item('p2', true)), { dropped: 0, droppable: 1 }, 'a newer partial supersedes the waiting one');
    assert.deepEqual(q.push(item('final')), { dropped: 0, droppable: 1 }, 'the final record supersedes its partial');
    q.push(item('next'));
    assert.deepEqual(q.takeBatch().map((i) => i.data), ['final', 'next']);
  });

  it('a failed batch goes back to the head in order; a droppable item in it with items behind is superseded', () => {
    const q = queue(10);
    q.push(item('r1'));
    q.push(item('p', true));
    assert.deepEqual(q.takeBatch().map((i) => i.data), ['r1', 'p']);
    q.push(item('r2')); // arrives while the batch is in flight
    assert.deepEqual(q.failed(), { dropped: 0, droppable: 1 });
    assert.deepEqual(q.takeBatch().map((i) => i.data), ['r1', 'r2']);
  });

  it('clear() reports what was left, split into must-arrive and droppable items', () => {
    const q = queue(10);
    q.push(item('r1'));
    q.takeBatch();
    q.push(item('p', true));
    assert.deepEqual(q.clear(), { dropped: 1, droppable: 1 });
    assert.equal(q.size, 0);
    assert.equal(q.bytes, 0);
  });
});
