/**
 * One server-side trickle segment: an append-only list of chunks plus a closed flag, shared by the
 * publisher writing it and every reader streaming it. Readers keep their own position (chunk index),
 * so a reader that joins mid-publish first receives everything buffered, then live chunks.
 * The whole segment stays in memory until its ring slot is reused (the protocol's retention model).
 */
export class Segment {
  readonly seq: number;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private closedFlag = false;
  private readonly waiters = new Set<() => void>();

  constructor(seq: number) {
    this.seq = seq;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get size(): number {
    return this.bytes;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  chunkAt(i: number): Buffer | undefined {
    return this.chunks[i];
  }

  /** Appends a chunk; returns false (and drops it) once the segment is closed: closed segments are immutable. */
  append(chunk: Buffer): boolean {
    if (this.closedFlag || chunk.length === 0) return false;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.wake();
    return true;
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.wake();
  }

  /** Registers a wake-up for "new data or closed"; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  private wake(): void {
    for (const fn of [...this.waiters]) fn();
  }
}
