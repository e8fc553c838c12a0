/**
 * Plays the stream's output channel in a <video> through Media Source Extensions. Segments come one
 * by one from the viewer server's same-origin proxy (`GET /video/<seq>`, long-polled like trickle
 * itself, `-2` = the segment being written now); each MPEG-TS segment is transmuxed to fragmented MP4
 * by mux.js in the page and appended to one SourceBuffer in 'sequence' mode, so timestamp jumps
 * (a looped input, a skipped segment) never leave a gap the player would stall on.
 *
 * Bounded: at most MAX_PENDING transmuxed segments wait to be appended (older ones are dropped and
 * counted); the buffer behind the playhead is trimmed to KEEP_BEHIND_S; a playhead that falls more
 * than MAX_LAG_S behind the live edge jumps forward.
 */
import { Transmuxer, type TransmuxedSegment } from 'mux.js/lib/mp4/transmuxer.js';
import { tracks as probeTracks } from 'mux.js/lib/mp4/probe.js';

const MAX_PENDING = 6;
const KEEP_BEHIND_S = 20;
const MAX_LAG_S = 8;
const RETRY_MS = 1000;
const START_AHEAD_S = 2.5;

export interface PlayerStats {
  segments: number;
  /** Segments the server skipped (too old to fetch) plus those dropped here before appending. */
  skipped: number;
  dropped: number;
  errors: number;
  mime?: string;
  lastSeq?: number;
}

export class LivePlayer {
  readonly stats: PlayerStats = { segments: 0, skipped: 0, dropped: 0, errors: 0 };
  private readonly video: HTMLVideoElement;
  private readonly note: HTMLElement;
  private readonly onChange: (s: PlayerStats) => void;
  private readonly media = new MediaSource();
  private buffer: SourceBuffer | undefined;
  private transmuxer: Transmuxer | undefined;
  private readonly pending: Uint8Array<ArrayBuffer>[] = [];
  private initAppended = false;
  private stopped = false;

  constructor(video: HTMLVideoElement, note: HTMLElement, onChange: (s: PlayerStats) => void) {
    this.video = video;
    this.note = note;
    this.onChange = onChange;
  }

  start(): void {
    if (typeof MediaSource === 'undefined') {
      this.say('this browser has no Media Source Extensions: cannot play the stream');
      return;
    }
    this.video.src = URL.createObjectURL(this.media);
    this.media.addEventListener('sourceopen', () => void this.fetchLoop(), { once: true });
    this.video.addEventListener('playing', () => this.say(undefined));
    this.video.addEventListener('waiting', () => this.keepLive());
  }

  private say(text: string | undefined): void {
    this.note.hidden = text === undefined;
    if (text !== undefined) this.note.textContent = text;
  }

  private async fetchLoop(): Promise<void> {
    let seq = -2;
    while (!this.stopped) {
      let res: Response;
      try {
        res = await fetch(`/video/${seq}`, { cache: 'no-store' });
      } catch {
        await sleep(RETRY_MS);
        continue;
      }
      if (res.status !== 200) {
        // 404: no output channel (yet, or any more); 502: the trickle server failed. Try again later.
        await res.body?.cancel();
        if (this.stats.segments === 0) this.say(`waiting for video… (${res.status === 404 ? 'no output channel yet' : `HTTP ${res.status}`})`);
        await sleep(RETRY_MS);
        if (res.status === 404) seq = -2;
        continue;
      }
      const got = Number(res.headers.get('x-trickle-seq'));
      this.stats.skipped += Number(res.headers.get('x-trickle-skipped') ?? 0);
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch {
        this.stats.errors += 1;
        continue;
      }
      if (this.stats.lastSeq !== undefined && got !== this.stats.lastSeq + 1) this.resetTransmuxer();
      this.stats.lastSeq = got;
      seq = Number.isFinite(got) && got >= 0 ? got + 1 : -1;
      this.stats.segments += 1;
      this.transmux(bytes);
      this.onChange(this.stats);
    }
  }

  private resetTransmuxer(): void {
    this.transmuxer?.dispose();
    this.transmuxer = undefined;
  }

  private transmux(bytes: Uint8Array): void {
    if (!this.transmuxer) {
      const t = new Transmuxer({ remux: true });
      t.on('data', (seg) => this.onSegment(seg));
      this.transmuxer = t;
    }
    try {
      this.transmuxer.push(bytes);
      this.transmuxer.flush();
    } catch {
      this.stats.errors += 1;
      this.resetTransmuxer();
    }
  }

  private onSegment(seg: TransmuxedSegment): void {
    if (!this.buffer) {
      const codecs = probeTracks(seg.initSegment).map((t) => t.codec).filter((c) => c);
      const mime = `video/mp4; codecs="${codecs.join(',')}"`;
      this.stats.mime = mime;
      if (!MediaSource.isTypeSupported(mime)) {
        this.say(`this browser cannot play ${mime}`);
        this.stopped = true;
        return;
      }
      this.buffer = this.media.addSourceBuffer(mime);
      this.buffer.mode = 'sequence';
      this.buffer.addEventListener('updateend', () => this.afterAppend());
      this.buffer.addEventListener('error', () => (this.stats.errors += 1));
    }
    if (!this.initAppended) {
      this.initAppended = true;
      this.pending.push(seg.initSegment);
    }
    this.pending.push(seg.data);
    // Keep the init segment (first) if it is still waiting; drop the oldest media segments past the bound.
    while (this.pending.length > MAX_PENDING) {
      this.pending.splice(this.pending[0] === seg.initSegment ? 1 : 0, 1);
      this.stats.dropped += 1;
    }
    this.pump();
  }

  private pump(): void {
    const sb = this.buffer;
    if (!sb || sb.updating || this.media.readyState !== 'open') return;
    const next = this.pending.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
    } catch (err) {
      this.stats.errors += 1;
      // QuotaExceededError: the buffer is full; trim behind the playhead and try again later.
      if (err instanceof DOMException && err.name === 'QuotaExceededError') this.pending.unshift(next);
      this.trim(2);
    }
  }

  private afterAppend(): void {
    this.keepLive();
    // Start with a cushion (a segment arrives whole, once written): playing from the first one alone
    // would stall at the live edge before each next one.
    if (this.video.paused && (this.ahead() >= START_AHEAD_S || this.stats.segments >= 2)) {
      void this.video.play().catch(() => undefined);
    }
    if (!this.trim(KEEP_BEHIND_S)) this.pump();
  }

  /** Seconds buffered ahead of the playhead. */
  private ahead(): number {
    const b = this.video.buffered;
    return b.length > 0 ? b.end(b.length - 1) - this.video.currentTime : 0;
  }

  /** Jumps the playhead into the buffer when it sits before it, in a gap, or too far behind the live edge. */
  private keepLive(): void {
    const b = this.video.buffered;
    if (b.length === 0) return;
    const end = b.end(b.length - 1);
    const t = this.video.currentTime;
    if (end - t > MAX_LAG_S) this.video.currentTime = Math.max(b.start(b.length - 1), end - 2);
    else if (t < b.start(0)) this.video.currentTime = b.start(0);
    else {
      for (let i = 1; i < b.length; i++) if (t >= b.end(i - 1) && t < b.start(i)) this.video.currentTime = b.start(i);
    }
  }

  /** Removes what lies more than `keepS` behind the playhead; true when a removal started. */
  private trim(keepS: number): boolean {
    const sb = this.buffer;
    const b = this.video.buffered;
    if (!sb || sb.updating || b.length === 0) return false;
    const cut = this.video.currentTime - keepS;
    if (cut - b.start(0) < 5) return false;
    sb.remove(b.start(0), cut);
    return true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
