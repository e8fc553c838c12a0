/**
 * ScriptedBackend: a ModelBackend test double for the pure generation-loop tests (no engine, no
 * sockets). Product code under src/model/testing/ so tests and benches share it; never used by the
 * runner itself.
 */
import type { BackendCapabilities, BackendStatus, GenerateEvent, GenerateRequest, ModelBackend } from '../backend.js';

/**
 * Test double of a ModelBackend for the pure generation-loop tests (no engine, no sockets): each
 * generate() call is recorded and answered by `reply` — at once, after a promise the test controls,
 * or never (until aborted). Abort rejects with an AbortError like the real backends.
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

  async *generate(req: GenerateRequest): AsyncIterable<GenerateEvent> {
    this.calls.push(req);
    const n = this.calls.length;
    if (this.mode !== 'instant') {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        if (req.signal?.aborted) return onAbort();
        req.signal?.addEventListener('abort', onAbort, { once: true });
        if (this.mode === 'gated') this.gates.push(resolve);
      });
    }
    // Like the real backends, an aborted request rejects even when the answer was at hand.
    if (req.signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    const text = this.text(n);
    yield { type: 'delta', text };
    if (req.signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    yield { type: 'done', text, usage: { promptTokens: 100, completionTokens: 3 }, timings: { encodeMs: 0, firstTokenMs: 1, modelMs: 1 } };
  }
}
