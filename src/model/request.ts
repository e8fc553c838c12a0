/**
 * Shapes a GenerateRequest to what a backend declares it can take, so no engine ever receives a
 * request it would reject (too many images, an audio part it has no parser for). The generation loop
 * should already respect `capabilities`; this is the backstop, and it reports what it dropped.
 */
import type { AudioInput, BackendCapabilities, GenerateRequest, ImageInput } from './backend.js';
import { fitAudioSamples } from './audio.js';

export interface FittedMedia {
  images: ImageInput[];
  /** One clip, padded to ≥ 1 s (or the caller's padTo) and cut at 30 s; undefined when none or unsupported. */
  audio: AudioInput | undefined;
  droppedImages: number;
  droppedAudio: boolean;
}

/** Keeps `max` items spread evenly over the list (first and last kept), preserving order. */
export function pickEvenly<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  if (max <= 0) return [];
  if (max === 1) return [items[items.length - 1]!];
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(items[Math.round((i * (items.length - 1)) / (max - 1))]!);
  return out;
}

/** `audioPadSamples`: pad every clip to at least this many samples (the engine path's fixed length). */
export function fitMedia(
  req: Pick<GenerateRequest, 'images' | 'audio'>,
  caps: BackendCapabilities,
  opts: { audioPadSamples?: number } = {},
): FittedMedia {
  const wanted = caps.images ? Math.max(0, caps.maxImages) : 0;
  const images = pickEvenly(req.images, wanted);
  let audio: AudioInput | undefined;
  let droppedAudio = false;
  if (req.audio && req.audio.samples.length > 0) {
    if (caps.audio === null) droppedAudio = true;
    else audio = { ...req.audio, samples: fitAudioSamples(req.audio.samples, opts.audioPadSamples) };
  }
  return { images, audio, droppedImages: req.images.length - images.length, droppedAudio };
}
