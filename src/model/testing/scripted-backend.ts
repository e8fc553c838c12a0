/**
 * ScriptedBackend: a ModelBackend test double for the pure generation-loop tests (no engine, no
 * sockets). Product code under src/model/testing/ so tests and benches share it; never used by the
 * runner itself.
 */
import type { BackendCapabilities, BackendStatus, GenerateEvent, GenerateRequest, ModelBackend } from '../backend.js';
import { ModelAbortError } from '../errors.js';
import { measureGeneration, type RawEvent } from '../measure.js';

/**
 * Test double of a ModelBackend for the pure generation-loop tests (no engine, no sockets): each
 * generate() call is recorded and answered by `reply` — at once, after a promise the test controls,
 * or never (until aborted). Its stream goes through measure.ts like the real backends', so timings are
 * measured (near 0 here) and abort rejects with ModelAbortError the same way.
 */
export class ScriptedBackend implements ModelBackend {
  readonly kind = 'openai' as const;
  readonly modelId = 'scripted';
  readonly capabilities: BackendCapabilities = { images: true, imageEncoding: 'jpeg', maxImages: 8, audio: 'input_audio' };
  readonly calls: GenerateRequest[] = [];
  private gates: Array<() => void> = [];

  /** 'instant' answers at once; 'gated' waits for release(); 'hang' waits for the abort. */
  constructor(public mode: 'instant' | 'gated' | 'hang' = 'instant', private readonly text = (n: number) => `answer ${n}`) {}

  async load(): Promise<void> {}
  status(): BackendStatus {
    return { state: 'ready' };
  }
  countTextTokens(text: string): number {
    return Math.ceil(text.length / 3);
  }
  async close(): Promise<void> {}

  /** Lets the oldest gated call finish. */
  release(): void {
    this.gates.shift()?.();
  }

  /** Measured like the real backends (measure.ts), so the loop tests see the same stream shape. */
  generate(req: GenerateRequest): AsyncIterable<GenerateEvent> {
    return measureGeneration(this.script(req), { signal: req.signal });
  }

  private async *script(req: GenerateRequest): AsyncGenerator<RawEvent> {
    this.calls.push(req);
    const n = this.calls.length;
    if (this.mode !== 'instant') {
      // Registered in the same step as the call is recorded (tests release() as soon as they see the
      // call), and settles on abort too, so an abandoned call does not stay suspended for ever.
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(new ModelAbortError(req.signal?.reason));
        if (req.signal?.aborted) return onAbort();
        req.signal?.addEventListener('abort', onAbort, { once: true });
        if (this.mode === 'gated') this.gates.push(resolve);
      });
    }
    yield { type: 'sent', encodeMs: 0 };
    const text = this.text(n);
    yield { type: 'delta', text };
    yield { type: 'end', usage: { promptTokens: 100, completionTokens: 3 }, finishReason: 'stop' };
  }
}
