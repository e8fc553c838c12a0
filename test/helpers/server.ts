/**
 * Shared helpers for tests that drive the control API over real HTTP on 127.0.0.1.
 */
import type { BackendCapabilities, BackendStatus, GenerateEvent, GenerateRequest, ModelBackend } from '../../src/model/backend.js';
import { startRunnerServer, type RunnerServerHandle, type RunnerServerOptions } from '../../src/server/index.js';
import { rootLogger } from '../../src/log.js';
import type { SessionFactory } from '../../src/pipeline/types.js';

/**
 * Test double for fault injection on the backend's *lifecycle* only: its state is set by the test
 * (loading → ready → error → ready) to pin how /health and start react. It never generates; tests
 * that need generation use the real backends (fake engine or tiny model).
 */
export class LifecycleBackendDouble implements ModelBackend {
  readonly kind = 'openai' as const;
  readonly modelId = 'lifecycle-double';
  readonly capabilities: BackendCapabilities = { images: true, maxImages: 64, audio: 'input_audio' };
  private current: BackendStatus;
  private resolveLoad: (() => void) | undefined;
  private rejectLoad: ((err: Error) => void) | undefined;
  private readonly loaded: Promise<void>;

  constructor(initial: BackendStatus['state'] = 'ready') {
    this.current = { state: initial };
    this.loaded = new Promise((resolve, reject) => {
      this.resolveLoad = resolve;
      this.rejectLoad = reject;
    });
    this.loaded.catch(() => undefined);
    if (initial === 'ready') this.resolveLoad?.();
  }

  set(state: BackendStatus['state'], message?: string): void {
    this.current = message === undefined ? { state } : { state, message };
    if (state === 'ready') this.resolveLoad?.();
  }

  /** Makes load() reject, as a backend whose model cannot load does (its status stays as set). */
  failLoad(message: string): void {
    this.rejectLoad?.(new Error(message));
  }

  load(): Promise<void> {
    return this.loaded;
  }
  status(): BackendStatus {
    return this.current;
  }
  // eslint-disable-next-line require-yield
  async *generate(_req: GenerateRequest): AsyncIterable<GenerateEvent> {
    throw new Error('LifecycleBackendDouble does not generate');
  }
  countTextTokens(text: string): number {
    return Math.ceil(text.length / 4);
  }
  async close(): Promise<void> {}
}

export async function startTestServer(
  opts: Omit<RunnerServerOptions, 'port' | 'host' | 'logger'> & { sessionFactory: SessionFactory },
): Promise<RunnerServerHandle> {
  return startRunnerServer({ ...opts, port: 0, host: '127.0.0.1', logger: rootLogger() });
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // non-JSON bodies are asserted through `text`
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}
