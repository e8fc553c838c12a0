/**
 * Reads the control channel (spec §3.3): one JSON object per segment, `{"keep":"alive"}` ignored.
 * The first subscription starts at -2 so the latest message (the gateway's cached update) is applied
 * at stream start. Unlike PyTrickle, each body is read whole (bounded), so large or split messages are
 * not silently truncated. Validation is the caller's (the same schema as POST /stream/params).
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { errorMessage, type ErrorCode } from '../errors.js';

export interface ControlSegment {
  seq: number;
  body: Readable;
}

/** What the reader needs from a trickle subscriber (TrickleSubscriber satisfies it). */
export interface SegmentSource {
  next(): Promise<ControlSegment | null>;
  close(): Promise<void>;
}

export type ControlMessage =
  | { kind: 'update'; seq: number; payload: Record<string, unknown> }
  | { kind: 'invalid'; seq: number; code: ErrorCode; message: string };

export interface ControlReaderOptions {
  /** Builds a subscriber; `start` is -2 for the first one and -1 after a reconnect. */
  connect: (start: number) => SegmentSource;
  onMessage: (msg: ControlMessage) => void;
  maxMessageBytes?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  logger?: Logger;
}

export const KEEPALIVE_KEY = 'keep';

export function isKeepalive(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Record<string, unknown>)[KEEPALIVE_KEY] === 'alive' && Object.keys(v).length === 1;
}

/** Parses one control segment's body; null for empty bodies and keepalives. */
export function parseControlBody(seq: number, body: Buffer): ControlMessage | null {
  const text = body.toString('utf8').trim();
  if (text === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'invalid', seq, code: 'invalid_control_message', message: `control message is not JSON: ${errorMessage(err)}` };
  }
  if (isKeepalive(value)) return null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', seq, code: 'invalid_control_message', message: 'control message must be a JSON object' };
  }
  return { kind: 'update', seq, payload: value as Record<string, unknown> };
}

async function readBounded(body: Readable, max: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}

export class ControlReader {
  private readonly opts: ControlReaderOptions;
  private source: SegmentSource | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  messages = 0;

  constructor(opts: ControlReaderOptions) {
    this.opts = opts;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops reading and closes the control subscription (idempotent, never rejects). */
  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const src = this.source;
    this.source = undefined;
    await src?.close().catch(() => undefined);
    await this.loop;
  }

  private async run(): Promise<void> {
    const max = this.opts.maxMessageBytes ?? 1024 * 1024;
    let start = -2;
    let backoff = this.opts.reconnectMinMs ?? 500;
    while (!this.stopped) {
      this.source = this.opts.connect(start);
      try {
        for (;;) {
          const seg = await this.source.next();
          if (seg === null || this.stopped) break;
          backoff = this.opts.reconnectMinMs ?? 500;
          const body = await readBounded(seg.body, max);
          this.messages++;
          if (body === undefined) {
            this.opts.onMessage({ kind: 'invalid', seq: seg.seq, code: 'control_message_too_large', message: `control message over ${max} bytes` });
            continue;
          }
          const msg = parseControlBody(seg.seq, body);
          if (msg) this.opts.onMessage(msg);
        }
      } catch (err) {
        if (!this.stopped) this.opts.logger?.debug({ err: errorMessage(err) }, 'control subscription failed');
      }
      await this.source?.close().catch(() => undefined);
      this.source = undefined;
      if (this.stopped) break;
      // The channel ended or vanished; it can come back (gateway reconnect), so keep looking for it.
      start = -1;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoff);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
      backoff = Math.min(this.opts.reconnectMaxMs ?? 5000, backoff * 2);
    }
  }
}
