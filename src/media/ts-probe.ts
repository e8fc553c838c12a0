/**
 * Reads the program tables (PAT → PMT) at the head of an MPEG-TS segment to learn which elementary
 * streams it carries, without decoding anything. The sampler compares this layout segment to segment:
 * a change (codec switch, audio appearing/disappearing) means the running ffmpeg must be replaced,
 * because the ffmpeg CLI fixes its stream mapping at start.
 */

export type VideoCodec = 'h264' | 'hevc' | 'mpeg2' | 'other';
export type AudioCodec = 'aac' | 'opus' | 'mp3' | 'ac3' | 'other';

export interface TsLayout {
  video: VideoCodec | null;
  audio: AudioCodec | null;
  /** Compact form for comparisons, e.g. "h264+aac". */
  signature: string;
}

const PACKET = 188;

function videoOf(streamType: number): VideoCodec | null {
  switch (streamType) {
    case 0x1b:
      return 'h264';
    case 0x24:
      return 'hevc';
    case 0x01:
    case 0x02:
      return 'mpeg2';
    case 0x10:
    case 0x42:
    case 0xea:
      return 'other';
    default:
      return null;
  }
}

function audioOf(streamType: number, descriptors: Buffer): AudioCodec | null {
  switch (streamType) {
    case 0x0f:
    case 0x11:
      return 'aac';
    case 0x03:
    case 0x04:
      return 'mp3';
    case 0x81:
      return 'ac3';
    case 0x06: {
      // Private data: Opus is announced by a registration descriptor "Opus"; AC-3 by descriptor 0x6a.
      let i = 0;
      while (i + 2 <= descriptors.length) {
        const tag = descriptors[i]!;
        const len = descriptors[i + 1]!;
        const body = descriptors.subarray(i + 2, i + 2 + len);
        if (tag === 0x05 && body.toString('latin1', 0, 4) === 'Opus') return 'opus';
        if (tag === 0x6a || tag === 0x7a) return 'ac3';
        i += 2 + len;
      }
      return null;
    }
    default:
      return null;
  }
}

/** Payload of the first packet on `pid` that starts a section (payload_unit_start), pointer field applied. */
function sectionOn(buf: Buffer, pid: number): Buffer | null {
  let start = buf.indexOf(0x47);
  while (start >= 0 && start + PACKET <= buf.length) {
    // Require a second sync byte one packet later when there is room, to avoid false syncs in garbage.
    if (start + PACKET < buf.length && buf[start + PACKET] !== 0x47) {
      start = buf.indexOf(0x47, start + 1);
      continue;
    }
    for (let off = start; off + PACKET <= buf.length; off += PACKET) {
      if (buf[off] !== 0x47) break;
      const b1 = buf[off + 1]!;
      const p = ((b1 & 0x1f) << 8) | buf[off + 2]!;
      const pusi = (b1 & 0x40) !== 0;
      if (p !== pid || !pusi) continue;
      const afc = (buf[off + 3]! >> 4) & 0x3;
      let i = off + 4;
      if (afc === 2) continue;
      if (afc === 3) i += 1 + buf[i]!;
      if (i >= off + PACKET) continue;
      i += 1 + buf[i]!; // pointer_field
      if (i >= off + PACKET) continue;
      return buf.subarray(i, off + PACKET);
    }
    return null;
  }
  return null;
}

/**
 * Layout of the first program, or null when `head` has no complete PAT + PMT (garbage, truncated, or a
 * segment that does not start with tables). Needs the first few packets only (tables come first).
 */
export function probeTsLayout(head: Buffer): TsLayout | null {
  const pat = sectionOn(head, 0);
  if (!pat || pat.length < 8 || pat[0] !== 0x00) return null;
  const patLen = ((pat[1]! & 0x0f) << 8) | pat[2]!;
  const patEnd = Math.min(pat.length, 3 + patLen - 4);
  let pmtPid = -1;
  for (let i = 8; i + 4 <= patEnd; i += 4) {
    const program = (pat[i]! << 8) | pat[i + 1]!;
    if (program === 0) continue; // network PID
    pmtPid = ((pat[i + 2]! & 0x1f) << 8) | pat[i + 3]!;
    break;
  }
  if (pmtPid < 0) return null;
  const pmt = sectionOn(head, pmtPid);
  if (!pmt || pmt.length < 12 || pmt[0] !== 0x02) return null;
  const secLen = ((pmt[1]! & 0x0f) << 8) | pmt[2]!;
  const end = Math.min(pmt.length, 3 + secLen - 4);
  const progInfoLen = ((pmt[10]! & 0x0f) << 8) | pmt[11]!;
  let video: VideoCodec | null = null;
  let audio: AudioCodec | null = null;
  for (let i = 12 + progInfoLen; i + 5 <= end; ) {
    const st = pmt[i]!;
    const esInfoLen = ((pmt[i + 3]! & 0x0f) << 8) | pmt[i + 4]!;
    const desc = pmt.subarray(i + 5, Math.min(end, i + 5 + esInfoLen));
    video ??= videoOf(st);
    audio ??= audioOf(st, desc);
    i += 5 + esInfoLen;
  }
  return { video, audio, signature: `${video ?? 'none'}+${audio ?? 'none'}` };
}
