/**
 * Small media fixtures for the model-layer tests and benches: a real baseline JPEG (made once per
 * process by ffmpeg) and a 16 kHz tone. Never used by the runner itself.
 */
import { spawnSync } from 'node:child_process';

let jpeg: Buffer | undefined;

/** A real 64×48 baseline JPEG made by ffmpeg (testsrc pattern), cached per process. */
export function testJpeg(): Buffer {
  if (!jpeg) {
    const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=1', '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'mjpeg', '-'], {
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr.toString()}`);
    jpeg = r.stdout;
  }
  return jpeg;
}

/** 16 kHz mono tone of the given length. */
export function tone(ms: number, hz = 440): Float32Array {
  const n = Math.round((16000 * ms) / 1000);
  return Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * hz * i) / 16000));
}
