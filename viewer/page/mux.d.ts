/**
 * The slice of mux.js (videojs, Apache-2.0) the viewer uses, typed by hand: the MPEG-TS → fragmented
 * MP4 transmuxer and the MP4 probe that names each track's codec. mux.js ships no type declarations.
 */
declare module 'mux.js/lib/mp4/transmuxer.js' {
  export interface TransmuxedSegment {
    type: 'combined' | 'video' | 'audio';
    /** ftyp + moov for the tracks in `data`. */
    initSegment: Uint8Array<ArrayBuffer>;
    /** moof + mdat per track. */
    data: Uint8Array<ArrayBuffer>;
  }
  export interface TransmuxerOptions {
    remux?: boolean;
    keepOriginalTimestamps?: boolean;
  }
  export class Transmuxer {
    constructor(options?: TransmuxerOptions);
    on(event: 'data', listener: (segment: TransmuxedSegment) => void): void;
    on(event: 'done', listener: () => void): void;
    push(bytes: Uint8Array): void;
    flush(): void;
    reset(): void;
    dispose(): void;
  }
}

declare module 'mux.js/lib/mp4/probe.js' {
  export interface ProbedTrack {
    id: number;
    type: 'video' | 'audio' | string;
    /** RFC 6381 codec string, e.g. "avc1.64001f" or "mp4a.40.2". */
    codec: string;
  }
  export function tracks(init: Uint8Array): ProbedTrack[];
}
