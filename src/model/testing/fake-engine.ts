/**
 * A FAKE OpenAI-compatible engine (a test double, not a model), shipped as product code so tests and
 * benches share it: a real HTTP server on 127.0.0.1 that implements POST /v1/chat/completions
 * (streaming SSE and plain JSON) and GET /v1/models, records every request (bodies bounded by
 * `keepBodies`), validates the multimodal parts the way vLLM parses them, replies with a scripted text
 * naming the modalities it received ("text"/"image"/"audio"/"both", see `fakeEngineReply`) and injects
 * faults on demand. Optional vLLM behaviours: `maxModelLen` (reported per model on GET /v1/models,
 * and prompt + max_tokens over it gets vLLM's 400) and `audioBatchBug` (a pre-#50958 build: a batch
 * mixing clip lengths kills the engine, vllm#50957). Never used by the runner itself.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tinyModelMode, type TinyModelMode } from '../defaults.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

export interface ChatContentSummary {
  texts: string[];
  /** Decoded bytes of each image_url data URL, in order. */
  images: Buffer[];
  /** Decoded WAV bytes of each audio part, with the part kind. */
  audio: Array<{ kind: 'input_audio' | 'audio_url'; format: string; wav: Buffer }>;
}

export type EngineFault =
  | { kind: 'status'; status: number; message: string }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Sends headers and one chunk, then waits `ms` before the rest. */
  | { kind: 'stall'; ms: number }
  /** Sends a couple of chunks then destroys the socket. */
  | { kind: 'drop_mid_stream' }
  /** Answers with a chunk that is not JSON. */
  | { kind: 'malformed_chunk' };

export interface FakeEngineOptions {
  port?: number;
  /** Served model ids; requests for others get vLLM's 404. Default ['google/gemma-3n-E4B-it']. */
  models?: string[];
  /** When set, requests without `Authorization: Bearer <apiKey>` get 401. */
  apiKey?: string;
  /** Like vLLM's --limit-mm-per-prompt image count: more images get a 400. */
  maxImages?: number;
  /** Overrides the scripted reply. */
  reply?: (summary: ChatContentSummary, body: Record<string, unknown>) => string;
  /** Delay before each streamed chunk (ms). */
  chunkDelayMs?: number;
  /**
   * Like vLLM's --max-model-len: reported as `max_model_len` on each GET /v1/models entry, and a chat
   * request whose prompt tokens + max_tokens exceed it gets vLLM's context-length 400.
   */
  maxModelLen?: number;
  /**
   * Behave like a vLLM build without PR #50958 (vllm#50957): audio requests arriving within
   * `windowMs` of each other form one scheduler batch; if the batch mixes clip lengths, every request
   * in it gets a 500 and the engine is dead from then on (every later request: 500 EngineDeadError).
   */
  audioBatchBug?: { windowMs: number };
  /**
   * Bodies kept for assertions: older requests stay in `requests` without their body. Default: all.
   * Long runs set a small number — a body carries the frames and 30 s of padded audio (~1.5 MB), so
   * keeping every one grows the test process by that much per cycle (not the runner).
   */
  keepBodies?: number;
}

export interface FakeEngine {
  readonly baseURL: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Chat requests whose connection is still open (a hung request the client never aborted stays here). */
  openChatRequests(): number;
  /** Chat-completions bodies only, oldest first. */
  chatBodies(): Array<Record<string, unknown>>;
  /** Parsed content of the last user turn of a chat request. */
  summarize(body: Record<string, unknown>): ChatContentSummary;
  /** Fault for every following chat request (null to clear). */
  setFault(fault: EngineFault | null): void;
  /** True once the simulated EngineCore has died (audioBatchBug). */
  dead(): boolean;
  /** The clip lengths (samples) of each audio batch the fake scheduler formed, in order. */
  audioBatches(): number[][];
  close(): Promise<void>;
}

/** The scripted reply of the fake engine for a request carrying these modalities. */
export function fakeEngineReply(mode: TinyModelMode): string {
  return `${mode} (fake engine reply)`;
}

function dataUrlBytes(url: string, mimePrefix: string): Buffer {
  const m = /^data:([^;]+);base64,(.*)$/s.exec(url);
  if (!m || !m[1]!.startsWith(mimePrefix)) throw new Error(`bad data URL (want ${mimePrefix})`);
  return Buffer.from(m[2]!, 'base64');
}

export function summarizeChat(body: Record<string, unknown>): ChatContentSummary {
  const messages = body.messages as Array<{ role: string; content: unknown }>;
  const last = messages[messages.length - 1]!;
  const out: ChatContentSummary = { texts: [], images: [], audio: [] };
  const parts = typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : (last.content as Array<Record<string, unknown>>);
  for (const p of parts) {
    if (p.type === 'text') out.texts.push(String(p.text));
    else if (p.type === 'image_url') out.images.push(dataUrlBytes((p.image_url as { url: string }).url, 'image/'));
    else if (p.type === 'input_audio') {
      const a = p.input_audio as { data: string; format: string };
      out.audio.push({ kind: 'input_audio', format: a.format, wav: Buffer.from(a.data, 'base64') });
    } else if (p.type === 'audio_url') {
      out.audio.push({ kind: 'audio_url', format: 'wav', wav: dataUrlBytes((p.audio_url as { url: string }).url, 'audio/wav') });
    } else throw new Error(`unknown content part ${String(p.type)}`);
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendError(res: ServerResponse, status: number, message: string, type = 'BadRequestError'): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ object: 'error', error: { message, type, code: status }, message, type, code: status }));
}

// unref'd so a stalled reply never keeps the test process alive after close()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

export async function startFakeEngine(opts: FakeEngineOptions = {}): Promise<FakeEngine> {
  const models = opts.models ?? ['google/gemma-3n-E4B-it'];
  const requests: RecordedRequest[] = [];
  let fault: EngineFault | null = null;
  let openChats = 0;
  let engineDead = false;
  const batches: number[][] = [];
  let batch: { lengths: number[]; verdict: Promise<boolean> } | undefined;

  /** Joins the current scheduler batch (or opens one); resolves true when the batch killed the engine. */
  const scheduleAudio = (samples: number): Promise<boolean> => {
    if (!batch) {
      const lengths: number[] = [];
      const verdict = new Promise<boolean>((resolve) =>
        setTimeout(() => {
          batch = undefined;
          batches.push(lengths);
          if (new Set(lengths).size > 1) engineDead = true;
          resolve(engineDead);
        }, opts.audioBatchBug!.windowMs).unref(),
      );
      batch = { lengths, verdict };
    }
    batch.lengths.push(samples);
    return batch.verdict;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    let body: Record<string, unknown> | undefined;
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
    } catch {
      return sendError(res, 400, 'body is not JSON');
    }
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    if (opts.keepBodies !== undefined && body !== undefined) {
      const withBody = requests.filter((r) => r.body !== undefined);
      for (const old of withBody.slice(0, Math.max(0, withBody.length - opts.keepBodies))) delete old.body;
    }
    if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return sendError(res, 401, 'Unauthorized', 'AuthenticationError');
    }
    if (engineDead) return sendError(res, 500, 'EngineCore encountered an issue. See stack trace (above) for the root cause.', 'EngineDeadError');
    if (req.method === 'GET' && path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const entry = (id: string) => ({ id, object: 'model', owned_by: 'fake-engine', ...(opts.maxModelLen !== undefined ? { max_model_len: opts.maxModelLen } : {}) });
      return res.end(JSON.stringify({ object: 'list', data: models.map(entry) }));
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions' || !body) return sendError(res, 404, `no route ${path}`, 'NotFoundError');
    if (!models.includes(String(body.model))) return sendError(res, 404, `The model \`${String(body.model)}\` does not exist.`, 'NotFoundError');
    let summary: ChatContentSummary;
    try {
      summary = summarizeChat(body);
    } catch (err) {
      return sendError(res, 400, (err as Error).message);
    }
    if (opts.maxImages !== undefined && summary.images.length > opts.maxImages) {
      return sendError(res, 400, `At most ${opts.maxImages} image(s) may be provided in one prompt.`);
    }
    const promptTokens = summary.texts.join(' ').split(/\s+/).length + summary.images.length * 256 + summary.audio.length * 188;
    const maxTokens = Number(body.max_tokens ?? 16);
    if (opts.maxModelLen !== undefined && promptTokens + maxTokens > opts.maxModelLen) {
      // vLLM's serving_engine wording for an over-long request
      return sendError(
        res,
        400,
        `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ${opts.maxModelLen} tokens and your request has ${promptTokens} input tokens (${maxTokens} > ${opts.maxModelLen} - ${promptTokens}).`,
      );
    }
    if (opts.audioBatchBug && summary.audio.length > 0) {
      const killed = await scheduleAudio(summary.audio[0]!.wav.readUInt32LE(40) / 2);
      if (killed) {
        return sendError(res, 500, "AttributeError: 'list' object has no attribute 'squeeze' (EngineCore died)", 'EngineDeadError');
      }
    }
    openChats++;
    res.on('close', () => openChats--);
    const f = fault;
    if (f?.kind === 'status') return sendError(res, f.status, f.message, 'InternalServerError');
    if (f?.kind === 'hang') return; // never answers; close() destroys the socket
    const text = opts.reply
      ? opts.reply(summary, body)
      : fakeEngineReply(tinyModelMode(summary.images.length > 0, summary.audio.length > 0));
    const pieces = text.match(/\S+\s*/g) ?? [text];
    const usage = { prompt_tokens: promptTokens, completion_tokens: pieces.length, total_tokens: promptTokens + pieces.length };
    const id = `chatcmpl-fake-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage,
        }),
      );
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body!.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }, null));
    for (let i = 0; i < pieces.length; i++) {
      if (f?.kind === 'malformed_chunk' && i === 1) {
        res.write('data: {not json\n\n');
      }
      if (f?.kind === 'drop_mid_stream' && i === 2) {
        await sleep(30); // let the first chunks reach the client before the connection dies
        res.socket?.destroy();
        return;
      }
      if (f?.kind === 'stall' && i === 1) await sleep(f.ms);
      if (opts.chunkDelayMs) await sleep(opts.chunkDelayMs);
      if (res.destroyed) return;
      res.write(chunk({ content: pieces[i] }, null));
    }
    res.write(chunk({}, 'stop'));
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (includeUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage })}\n\n`);
    res.end('data: [DONE]\n\n');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, String(err), 'InternalServerError');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    openChatRequests: () => openChats,
    chatBodies: () => requests.filter((r) => r.path === '/v1/chat/completions' && r.body).map((r) => r.body!),
    summarize: summarizeChat,
    setFault: (f) => {
      fault = f;
    },
    dead: () => engineDead,
    audioBatches: () => batches.map((b) => [...b]),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
