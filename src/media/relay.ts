/**
 * The per-stream media path: input subscriber → (passthrough publisher, sampler).
 *
 * Passthrough forwards each input segment as one output segment with the same bytes, chunk by chunk as
 * they arrive (no decode, no re-encode). The input loop never awaits the output: chunks go into a
 * bounded per-relay queue drained by a separate pump, so a slow or failing output costs output segments
 * (counted, 'output-dropped'), never input reading or sampling. Output boundaries are kept: a segment is
 * either forwarded whole, or aborted (the trickle publisher DELETEs a partial segment) — never merged.
 *
 * The relay drives the sampler (beginSegment/push/endSegment) but does not own it: callers close it.
 * It owns the subscriber and the output publisher it is given: the subscriber is closed in close()
 * (the only way to interrupt a pending long-poll), and the publisher is closed once the relay has
 * ended (input end, failure or stop) and its output drained, so the open preconnected POST is ended
 * and the output's readers learn the stream is over.
 */
import { EventEmitter } from 'node:events';
import { childLogger, type Logger } from '../log.js';
import type { TricklePublisher, TrickleSegmentOut } from '../trickle/publisher.js';
import type { TrickleSubscriber, TrickleSegmentIn } from '../trickle/subscriber.js';
import { MediaError, type MediaErrorCode } from './errors.js';
import type { MediaSampler } from './sampler.js';

export interface MediaRelayOptions {
  subscriber: TrickleSubscriber;
  publisher?: TricklePublisher;
  sampler?: MediaSampler;
  /** Bytes read but not yet written to the output beyond which output segments are dropped. Default 16 MiB. */
  maxOutputLagBytes?: number;
  /** At close(), how long output already read may still drain before it is abandoned. Default 5 s. */
  stopDrainMs?: number;
  logger?: Logger;
}

export interface MediaRelayStats {
  segmentsIn: number;
  segmentsOut: number;
  bytesIn: number;
  bytesOut: number;
  outputDropped: number;
  lastInputAtMs?: number;
}

/** Output segments that may await the server's answer at once (normally 1–2). */
const MAX_UNANSWERED_OUTPUT = 4;

export type OutputDropReason = 'output_lagging' | 'output_failed' | 'publisher_closed' | 'stopped';

interface OutSeg {
  inSeq: number;
  chunks: Buffer[];
  /** Input segment fully read: end() the output. */
  ended: boolean;
  /** Stop forwarding: abort() the output. */
  abortReason: OutputDropReason | null;
  wake: (() => void) | null;
  /** The trickle segment being written, once the pump has opened it. */
  out?: TrickleSegmentOut;
}

export interface MediaRelay {
  on(event: 'input-segment', listener: (e: { seq: number; bytes: number }) => void): this;
  on(event: 'first-input-segment', listener: (e: { seq: number }) => void): this;
  on(event: 'first-output-segment', listener: (e: { seq: number }) => void): this;
  on(event: 'output-segment', listener: (e: { seq: number; inSeq: number }) => void): this;
  on(event: 'output-bytes', listener: (bytes: number) => void): this;
  on(event: 'output-dropped', listener: (e: { seq: number; reason: OutputDropReason }) => void): this;
  on(event: 'error', listener: (e: MediaError) => void): this;
}

export class MediaRelay extends EventEmitter {
  private readonly sub: TrickleSubscriber;
  private readonly pub: TricklePublisher | undefined;
  private readonly sampler: MediaSampler | undefined;
  private readonly maxLag: number;
  private readonly log: Logger;
  private readonly st: MediaRelayStats = { segmentsIn: 0, segmentsOut: 0, bytesIn: 0, bytesOut: 0, outputDropped: 0 };

  private outQueue: OutSeg[] = [];
  private outBytes = 0;
  private pumping: Promise<void> | null = null;
  /** Output segments whose body has ended but whose server answer has not arrived yet. */
  private readonly ending = new Map<Promise<void>, OutSeg>();
  private stopping = false;
  private running: Promise<void> | null = null;
  private current: { seg: TrickleSegmentIn; out: OutSeg | null } | null = null;
  private firstOut = false;
  private readonly stopDrainMs: number;

  constructor(opts: MediaRelayOptions) {
    super();
    this.sub = opts.subscriber;
    this.pub = opts.publisher;
    this.sampler = opts.sampler;
    this.maxLag = opts.maxOutputLagBytes ?? 16 * 1024 * 1024;
    this.stopDrainMs = opts.stopDrainMs ?? 5000;
    this.log = opts.logger ?? childLogger('media.relay');
  }

  stats(): MediaRelayStats {
    return { ...this.st };
  }

  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops relaying and closes what the relay owns (idempotent, never rejects). */
  async close(): Promise<void> {
    this.stopping = true;
    const cur = this.current;
    if (cur?.out && !cur.out.ended) this.abortOut(cur.out, 'stopped');
    await this.sub.close().catch(() => undefined);
    await this.running?.catch(() => undefined);
    await this.drainOutput(this.stopDrainMs);
    await this.closePublisher();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopping) {
        let seg: TrickleSegmentIn | null;
        try {
          seg = await this.sub.next();
        } catch (e) {
          if (this.stopping) break;
          throw new MediaError('input_failed', `input subscription failed: ${(e as Error).message}`, { cause: e });
        }
        if (!seg || this.stopping) {
          if (seg) seg.body.destroy();
          break;
        }
        await this.relaySegment(seg);
      }
    } finally {
      await this.drainOutput(10_000);
      await this.closePublisher();
    }
  }

  /** Bounded: a publisher stuck on a dead connection must not hold up the relay's end. */
  private async closePublisher(): Promise<void> {
    if (!this.pub || this.pub.closed) return;
    let timer: NodeJS.Timeout | undefined;
    const closing = this.pub.close().catch((e: unknown) => this.log.debug({ err: (e as Error).message }, 'output publisher close failed'));
    const late = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), 5000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (late) this.log.warn('output publisher did not close within 5 s; left to finish on its own');
  }

  private async relaySegment(seg: TrickleSegmentIn): Promise<void> {
    const seq = seg.seq;
    if (this.st.segmentsIn === 0) this.emit('first-input-segment', { seq });
    this.st.segmentsIn++;
    this.st.lastInputAtMs = Date.now();
    const out = this.openOut(seq);
    this.current = { seg, out };
    this.safe(() => this.sampler?.beginSegment(seq));
    let bytes = 0;
    let complete = false;
    try {
      for await (const chunk of seg.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        this.st.bytesIn += chunk.length;
        this.st.lastInputAtMs = Date.now();
        if (out) this.queueOut(out, chunk);
        this.safe(() => this.sampler?.push(chunk));
      }
      complete = true;
    } catch (e) {
      if (!this.stopping) {
        this.report('input_segment_cut', `input segment ${seq} ended early after ${bytes} bytes: ${(e as Error).message}`, seq);
      }
    } finally {
      // A segment cut by close() is not bad input: the sampler keeps quiet about its truncated tail.
      this.safe(() => this.sampler?.endSegment(complete || !this.stopping));
      this.current = null;
    }
    if (out) {
      // A cut segment is forwarded as far as it arrived (same bytes); only a stop abandons it.
      if (complete || !this.stopping) this.endOut(out);
      else this.abortOut(out, 'stopped');
    }
    this.emit('input-segment', { seq, bytes });
  }

  // ---- output side ----

  private openOut(inSeq: number): OutSeg | null {
    if (!this.pub) return null;
    if (this.pub.closed) {
      this.dropped(inSeq, 'publisher_closed');
      return null;
    }
    if (this.outBytes > this.maxLag) {
      this.dropped(inSeq, 'output_lagging');
      return null;
    }
    const o: OutSeg = { inSeq, chunks: [], ended: false, abortReason: null, wake: null };
    this.outQueue.push(o);
    this.pumping ??= this.pump().finally(() => {
      this.pumping = null;
      if (this.outQueue.length > 0) this.pumping ??= this.pump();
    });
    return o;
  }

  private queueOut(o: OutSeg, chunk: Buffer): void {
    if (o.abortReason) return;
    if (this.outBytes + chunk.length > this.maxLag) {
      // The output is not keeping up. The segment at the head of the queue is the one stuck on the
      // wire: drop it first (aborting its write unblocks the pump), so output resumes with fresh media.
      const head = this.outQueue[0];
      if (head && head !== o && !head.abortReason) this.abortOut(head, 'output_lagging');
    }
    if (this.outBytes + chunk.length > this.maxLag) {
      this.abortOut(o, 'output_lagging');
      return;
    }
    o.chunks.push(chunk);
    this.outBytes += chunk.length;
    this.wake(o);
  }

  private endOut(o: OutSeg): void {
    o.ended = true;
    this.wake(o);
  }

  private abortOut(o: OutSeg, reason: OutputDropReason): void {
    if (o.abortReason) return;
    o.abortReason = reason;
    this.discard(o);
    this.dropped(o.inSeq, reason);
    this.wake(o);
    // A write or end stuck on a stalled connection only returns once the segment is abandoned.
    if (o.out) void o.out.abort(reason).catch(() => undefined);
  }

  private discard(o: OutSeg): void {
    for (const c of o.chunks) this.outBytes -= c.length;
    o.chunks = [];
  }

  private wake(o: OutSeg): void {
    const w = o.wake;
    o.wake = null;
    w?.();
  }

  private async pump(): Promise<void> {
    while (this.outQueue.length > 0) {
      const o = this.outQueue[0]!;
      await this.forward(o);
      this.outQueue.shift();
    }
  }

  /** Writes one output segment, following its input as it grows. */
  private async forward(o: OutSeg): Promise<void> {
    if (o.abortReason) return;
    let out: TrickleSegmentOut;
    try {
      out = await this.pub!.next();
    } catch (e) {
      this.failOut(o, e);
      return;
    }
    o.out = out;
    for (;;) {
      if (o.abortReason) {
        await out.abort(o.abortReason).catch(() => undefined);
        return;
      }
      const chunk = o.chunks.shift();
      if (chunk) {
        this.outBytes -= chunk.length;
        try {
          await out.write(chunk);
        } catch (e) {
          this.failOut(o, e);
          await out.abort('output_failed').catch(() => undefined);
          return;
        }
        this.st.bytesOut += chunk.length;
        this.emit('output-bytes', chunk.length);
        if (!this.firstOut) {
          this.firstOut = true;
          this.emit('first-output-segment', { seq: out.seq });
        }
        continue;
      }
      if (o.ended) {
        // The next segment may start writing as soon as this body has ended; the server's answer for
        // this one arrives a round trip later and is handled on the side. Waiting for it here would
        // delay every output segment's first byte by that round trip.
        const ending: Promise<void> = out.end().then(
          () => {
            this.st.segmentsOut++;
            this.emit('output-segment', { seq: out.seq, inSeq: o.inSeq });
          },
          (e: unknown) => this.failOut(o, e),
        );
        this.ending.set(ending, o);
        void ending.finally(() => this.ending.delete(ending));
        // Bounded: a server that stops answering cannot pile up unanswered segments.
        while (this.ending.size >= MAX_UNANSWERED_OUTPUT) await Promise.race(this.ending.keys());
        return;
      }
      await new Promise<void>((r) => (o.wake = r));
    }
  }

  private failOut(o: OutSeg, e: unknown): void {
    if (o.abortReason) return;
    o.abortReason = 'output_failed';
    this.discard(o);
    this.dropped(o.inSeq, 'output_failed');
    this.report('output_failed', `output segment for input ${o.inSeq} failed: ${(e as Error).message}`, o.inSeq);
  }

  private dropped(seq: number, reason: OutputDropReason): void {
    this.st.outputDropped++;
    this.log.debug({ seq, reason }, 'output segment dropped');
    this.emit('output-dropped', { seq, reason });
  }

  /** Waits for queued output to be written and answered, up to `ms`; then abandons what is left. */
  private async drainOutput(ms: number): Promise<void> {
    const pump = this.pumping ?? Promise.resolve();
    const p = pump.then(() => Promise.all([...this.ending.keys()])).then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      p.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const o of [...this.outQueue, ...this.ending.values()]) this.abortOut(o, 'stopped');
      await Promise.race([p, new Promise((r) => setTimeout(r, 1000).unref())]);
    }
  }

  private safe(fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      this.report('sampler_failed', `sampler threw: ${(e as Error).message}`, undefined);
    }
  }

  private report(code: MediaErrorCode, message: string, seq: number | undefined): void {
    const err = new MediaError(code, message, seq === undefined ? undefined : { seq });
    this.log.warn({ code, seq }, message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
