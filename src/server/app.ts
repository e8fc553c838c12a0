/**
 * The HTTP control surface: a drop-in for PyTrickle's StreamServer (spec §4), served under both
 * `/api/stream/*` and `/stream/*`, plus the system endpoints and Prometheus `/metrics`.
 *
 * Deviations from PyTrickle, on purpose (README "Compatibility"):
 * - invalid params on `/stream/params` answer 400 (PyTrickle: 500), and the previous params stay;
 * - every error body is JSON `{"status":"error","message":…}` (unknown routes and 413 included);
 * - start answers `ignored_params` listing keys the schema does not know (kept, passed along), and
 *   `warnings` (e.g. no data_url: records are dropped);
 * - X-Stream-Id (go-livepeer) selects the stream: start takes it as the stream id; params/stop naming
 *   another stream answer 404 and change nothing;
 * - with `capacity` > 1 (many streams per process) the same routes serve every stream, told apart by
 *   X-Stream-Id; /stream/status adds `capacity` and `streams` (each stream's status), and the
 *   per-stream routes (streams-routes.ts) list streams and address one by id;
 * - channel URLs must pass the trickle URL policy (url-policy.ts), else 400 naming the field;
 * - a request body not fully received within `bodyTimeoutMs` (default 10 s) gets 408 and the
 *   connection is closed (slow-body clients cannot hold a connection open forever).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { AppError, errorCode, errorMessage } from '../errors.js';
import { httpStatusOf, isClientError } from './http-status.js';
import type { Logger } from '../log.js';
import { registry } from '../metrics.js';
import type { ModelBackend } from '../model/backend.js';
import type { SessionFactory } from '../pipeline/types.js';
import { VERSION } from '../version.js';
import { SERVER_DEFAULTS } from '../config/defaults.js';
import { gpuInfo, gpuStats } from './hardware.js';
import { parseJsonObject, parseStartRequest, streamIdHeader } from './requests.js';
import { Runner } from './runner.js';
import { registerStreamRoutes, streamFields } from './streams-routes.js';
import { checkChannelUrls, type TrickleUrlPolicy } from './url-policy.js';

export interface ServerOptions {
  backend: ModelBackend;
  sessionFactory: SessionFactory;
  logger: Logger;
  /** When set, every route but /health needs `Authorization: Bearer <token>`. */
  apiToken?: string;
  /** `pipeline` in /version (PIPELINE env in PyTrickle; default "byoc"). */
  pipeline?: string;
  /** `model_id` in /version: the capability name (CAPABILITY_NAME), else the backend's model id. */
  capabilityName?: string;
  appVersion?: string;
  bodyLimitBytes?: number;
  /** How long a start waits for a loading backend before answering 503 with the reason (default 5 s). */
  startWaitMs?: number;
  /** Hosts the trickle channel URLs may name; metadata/link-local refused (default: any other host). */
  trickleUrlPolicy?: TrickleUrlPolicy;
  /** Deadline for receiving a whole request body (default 10 s; 0 = none). */
  bodyTimeoutMs?: number;
  /** Extra facts for /version and /hardware/info (backend kind, capabilities). */
  describeBackend?: () => Record<string, unknown>;
  /** Streams served at once (CAPABILITY_CAPACITY; default 1, as PyTrickle). */
  capacity?: number;
  /** Facts about the shared backend's scheduler for /stream/status and GET /streams (capacity > 1). */
  describeScheduler?: () => Record<string, unknown>;
}

export interface ControlServer {
  app: FastifyInstance;
  runner: Runner;
}

const PREFIXES = ['/stream', '/api/stream'];

function errorBody(message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { status: 'error', message, ...extra };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  const a = Buffer.from(m[1].trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function buildServer(opts: ServerOptions): Promise<ControlServer> {
  const bodyLimit = opts.bodyLimitBytes ?? 1024 * 1024;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? SERVER_DEFAULTS.bodyTimeoutMs;
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit,
    // Request logs for everything but the endpoints that orchestrators and Prometheus poll.
    logController: new LogController({
      disableRequestLogging: (req) => req.url === '/health' || req.url === '/metrics',
    }),
    // Node's own request timeout is only checked every 30 s; it backs up the precise body deadline below.
    requestTimeout: bodyTimeoutMs > 0 ? bodyTimeoutMs * 2 : 0,
  });
  const runner = new Runner(opts.backend, opts.sessionFactory, opts.logger, opts.startWaitMs, opts.capacity);
  const pipeline = opts.pipeline ?? 'byoc';
  const modelId = () => opts.capabilityName || opts.backend.modelId;

  // Bodies are read as text and parsed by the routes: stop must accept anything (even "stream ended"
  // labelled application/json), and start/params need PyTrickle's own content-type messages.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, body));

  // The body deadline: a client that sends headers and then trickles (or withholds) the body gets 408
  // and loses the connection, instead of holding it open indefinitely.
  app.addHook('onRequest', async (req, reply) => {
    if (bodyTimeoutMs <= 0 || req.raw.complete) return;
    const timer = setTimeout(() => {
      if (req.raw.complete || reply.raw.headersSent) return;
      req.log.warn({ url: req.url, timeout_ms: bodyTimeoutMs }, 'request body not received in time; closing the connection');
      reply.raw.writeHead(408, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
      reply.raw.end(JSON.stringify(errorBody(`Request body not received within ${bodyTimeoutMs} ms`)), () => req.raw.socket?.destroy());
    }, bodyTimeoutMs);
    const clear = () => clearTimeout(timer);
    req.raw.once('end', clear);
    req.raw.once('close', clear);
    reply.raw.once('finish', clear);
    reply.raw.once('close', clear);
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!opts.apiToken || req.url === '/health' || req.url.startsWith('/health?')) return;
    if (!tokenMatches(req.headers.authorization, opts.apiToken)) {
      await reply.code(401).send(errorBody('Unauthorized: missing or invalid bearer token (Authorization: Bearer <token>)'));
    }
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(errorBody(`Not found: ${req.method} ${req.url.split('?')[0]}`));
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(errorBody(`Request body too large (limit ${bodyLimit} bytes)`));
    }
    if (err instanceof AppError) return reply.code(httpStatusOf(err)).send(errorBody(err.message, { code: err.code }));
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'unhandled error');
    return reply.code(status).send(errorBody(err.message));
  });

  const currentState = () => runner.state.snapshot();

  async function handleStart(req: FastifyRequest, reply: FastifyReply) {
    try {
      const body = parseJsonObject(req.headers['content-type'], req.body);
      const start = parseStartRequest(body);
      // go-livepeer sends X-Stream-Id = gateway_request_id; the header names the stream when both come.
      const streamId = streamIdHeader(req.headers['x-stream-id']) ?? start.gateway_request_id;
      await checkChannelUrls(start, opts.trickleUrlPolicy ?? {});
      const result = await runner.start(start, streamId);
      const warnings: string[] = [];
      if (!start.data_url) warnings.push('no data_url: generated records will be dropped');
      return reply.code(200).send({
        status: 'success',
        message: 'Stream started successfully',
        request_id: streamId,
        current_state: currentState(),
        ignored_params: result.ignored,
        warnings,
      });
    } catch (err) {
      if (err instanceof AppError && httpStatusOf(err) === 503) {
        return reply.code(503).send(errorBody(err.message, { current_state: currentState() }));
      }
      if (err instanceof AppError && err.code === 'stream_already_running') {
        return reply.code(409).send(errorBody(err.message, { code: err.code, current_state: currentState() }));
      }
      const status = isClientError(err) ? httpStatusOf(err) : 400;
      return reply.code(status).send(errorBody(`Error starting stream: ${errorMessage(err)}`, { current_state: currentState() }));
    }
  }

  async function handleParams(req: FastifyRequest, reply: FastifyReply) {
    let streamId: string | undefined;
    try {
      streamId = streamIdHeader(req.headers['x-stream-id']);
    } catch (err) {
      return reply.code(400).send(errorBody(`Parameter update failed: ${errorMessage(err)}`));
    }
    return paramsOf(streamId, req, reply);
  }

  /** Params for `streamId` (undefined: the only running stream), from the header or the route. */
  async function paramsOf(streamId: string | undefined, req: FastifyRequest, reply: FastifyReply) {
    try {
      const body = parseJsonObject(req.headers['content-type'], req.body);
      const { ignored } = runner.update(body, streamId);
      return reply.send({ status: 'success', message: 'Parameters updated successfully', ignored_params: ignored });
    } catch (err) {
      if (err instanceof AppError && err.code === 'no_active_stream') return reply.code(400).send(errorBody(err.message));
      if (err instanceof AppError && (err.code === 'stream_not_found' || err.code === 'stream_id_required')) {
        return reply.code(httpStatusOf(err)).send(errorBody(err.message, { code: err.code }));
      }
      // Bad input (bad JSON, content type, validation) is the caller's 400; a failing apply is our 500.
      const status = isClientError(err) ? 400 : 500;
      return reply.code(status).send(errorBody(`Parameter update failed: ${errorMessage(err)}`));
    }
  }

  async function handleStop(req: FastifyRequest, reply: FastifyReply) {
    let streamId: string | undefined;
    try {
      streamId = streamIdHeader(req.headers['x-stream-id']);
    } catch (err) {
      return reply.code(400).send(errorBody(errorMessage(err), { code: errorCode(err) }));
    }
    return stopOf(streamId, reply);
  }

  /** Stops `streamId` (undefined: the only running stream), named by the header or the route. */
  async function stopOf(streamId: string | undefined, reply: FastifyReply) {
    try {
      await runner.stop(streamId);
      return reply.send({ status: 'success', message: 'Stream stopped successfully' });
    } catch (err) {
      if (err instanceof AppError && err.code === 'no_active_stream') return reply.code(400).send(errorBody(err.message));
      if (err instanceof AppError && isClientError(err)) return reply.code(httpStatusOf(err)).send(errorBody(err.message, { code: err.code }));
      return reply.code(500).send(errorBody(`Error stopping stream: ${errorMessage(err)}`));
    }
  }

  function handleStatus() {
    const cur = runner.current();
    const all = runner.streams();
    // PyTrickle's shape: the stream's fields at the top level when one runs (exactly as at capacity 1).
    const out: Record<string, unknown> = { ...currentState(), client_active: all.length > 0 };
    if (cur) Object.assign(out, streamFields(cur, false));
    if (runner.capacity > 1) {
      out.capacity = runner.capacity;
      out.streams = all.map((e) => streamFields(e, true));
      const sched = opts.describeScheduler?.();
      if (sched) out.model_scheduler = sched;
    }
    return out;
  }

  for (const prefix of PREFIXES) {
    app.post(`${prefix}/start`, handleStart);
    app.post(`${prefix}/params`, handleParams);
    app.post(`${prefix}/stop`, handleStop);
    app.get(`${prefix}/status`, async () => handleStatus());
  }
  registerStreamRoutes(app, runner, { params: paramsOf, stop: stopOf, ...(opts.describeScheduler ? { describeScheduler: opts.describeScheduler } : {}) });
  app.post('/live-video-to-video', handleStart);
  app.post('/api/live-video-to-video', handleStart);

  app.get('/health', async () => ({ status: runner.state.reported() }));
  app.get('/version', async () => ({
    pipeline,
    model_id: modelId(),
    version: VERSION,
    ...(opts.describeBackend?.() ?? {}),
  }));
  app.get('/app-version', async () => ({ version: opts.appVersion ?? VERSION }));
  app.get('/hardware/info', async () => ({
    pipeline,
    model_id: modelId(),
    gpu_info: await gpuInfo(),
    ...(opts.describeBackend?.() ?? {}),
  }));
  app.get('/hardware/stats', async () => ({ pipeline, model_id: modelId(), gpu_stats: await gpuStats() }));
  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });

  return { app, runner };
}
