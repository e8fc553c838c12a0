/**
 * A single-consumer async queue of events that can be failed from outside (an abort, a dead worker),
 * waking a pending reader at once. Its size is bounded by the producer: a generation pushes at most
 * maxNewTokens deltas plus one `done`.
 */
export class EventChannel<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private failure: unknown;
  private ended = false;

  push(item: T): void {
    if (this.ended || this.failure !== undefined) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** Fails the channel: the pending and every later read reject with `err`, even if items are queued. */
  fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.items.length = 0;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }
}
