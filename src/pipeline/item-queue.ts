/**
 * The bookkeeping of the data/events writer's queue, with no I/O and no timers: the items waiting, the
 * batch in flight, their bytes, the bound (items and bytes, the batch in flight included) and the
 * drop policy. Every call that can drop says how many it dropped, split into must-arrive items and
 * droppable ones, so the writer (data-writer.ts) counts each drop once.
 *
 * Policy: past the bound the oldest waiting items go first (the newest is always kept; the batch in
 * flight cannot be pulled back). A droppable item (a partial-text preview) is superseded by any later
 * item while it waits — also after its batch failed and later items wait behind it — and goes before
 * any must-arrive item when the bound is reached, so it never pushes out or delays one.
 */

export interface QueueItem {
  data: string;
  bytes: number;
  droppable?: boolean;
}

export interface Drops {
  /** Must-arrive items dropped. */
  dropped: number;
  /** Droppable items dropped (superseded or past the bound). */
  droppable: number;
}

const NONE: Drops = { dropped: 0, droppable: 0 };

function sum(a: Drops, b: Drops): Drops {
  return { dropped: a.dropped + b.dropped, droppable: a.droppable + b.droppable };
}

export class ItemQueue {
  private waiting: QueueItem[] = [];
  private flight: QueueItem[] = [];
  private totalBytes = 0;

  constructor(
    private readonly bound: { maxItems: number; maxBytes: number; maxItemsPerSegment: number; maxSegmentBytes: number },
  ) {}

  /** Items waiting plus the batch in flight. */
  get size(): number {
    return this.waiting.length + this.flight.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  /** Queues an item: it supersedes a waiting droppable one; then the bound is applied. */
  push(item: QueueItem): Drops {
    const superseded = this.dropWaiting((it) => it.droppable === true);
    this.waiting.push(item);
    this.totalBytes += item.bytes;
    return sum(superseded, this.enforceBound());
  }

  /** Takes the next batch from the head (up to the segment's item and byte caps) as the batch in flight. */
  takeBatch(): QueueItem[] {
    const batch: QueueItem[] = [];
    let size = 0;
    while (this.waiting.length > 0 && batch.length < this.bound.maxItemsPerSegment) {
      const next = this.waiting[0]!;
      if (batch.length > 0 && size + next.bytes > this.bound.maxSegmentBytes) break;
      batch.push(this.waiting.shift()!);
      size += next.bytes;
    }
    this.flight = batch;
    return batch;
  }

  /** The batch in flight was published: forgotten. Returns how many items it carried. */
  published(): number {
    const n = this.flight.length;
    for (const it of this.flight) this.totalBytes -= it.bytes;
    this.flight = [];
    return n;
  }

  /**
   * The batch in flight failed: back to the head, in order. A droppable item in it with later items
   * behind is superseded, and the bound is re-applied (an outage may have let the queue grow).
   */
  failed(): Drops {
    this.waiting.unshift(...this.flight);
    this.flight = [];
    const last = this.waiting.length - 1;
    const superseded = this.dropWaiting((it, i) => it.droppable === true && i !== last);
    return sum(superseded, this.enforceBound());
  }

  /** Empties the queue (at close): what was still in it, split as drops. */
  clear(): Drops {
    const left = [...this.waiting, ...this.flight];
    this.waiting = [];
    this.flight = [];
    this.totalBytes = 0;
    const droppable = left.filter((it) => it.droppable).length;
    return { dropped: left.length - droppable, droppable };
  }

  private overBound(): boolean {
    return this.size > this.bound.maxItems || this.totalBytes > this.bound.maxBytes;
  }

  private enforceBound(): Drops {
    if (!this.overBound()) return NONE;
    // Best-effort items go first (at most one waits: each later item supersedes it).
    const drops = { ...this.dropWaiting((it) => it.droppable === true) };
    while (this.waiting.length > 1 && this.overBound()) {
      const it = this.waiting.shift()!;
      this.totalBytes -= it.bytes;
      if (it.droppable) drops.droppable++;
      else drops.dropped++;
    }
    return drops;
  }

  private dropWaiting(pred: (it: QueueItem, i: number) => boolean): Drops {
    let n = 0;
    this.waiting = this.waiting.filter((it, i) => {
      if (!pred(it, i)) return true;
      this.totalBytes -= it.bytes;
      n++;
      return false;
    });
    return n === 0 ? NONE : { dropped: 0, droppable: n };
  }
}
