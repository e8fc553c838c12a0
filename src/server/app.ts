/**
 * The HTTP control surface: a drop-in for PyTrickle's StreamServer (spec §4), served under both
 * `/api/stream/*` and `/stream/*`, plus the system endpoints and Prometheus `/metrics`.
 *
 * Deviations from PyTrickle, on purpose (README "Compatibility"):
 * - invalid params on `/stream/params` answer 400 (PyTrickle: 500), and the previous params stay;
 * - every error body is JSON `{"status":"error","message":…}` (unknown routes and 413 included);
 * - start answers `ignored_params` listing keys the schema does not know (kept, passed along).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { registry } from '../metrics.js';
import type { ModelBackend } from '../model/backend.js';
import type { SessionFactory } from '../pipeline/types.js';
import { VERSION } from '../version.js';
import { gpuInfo, gpuStats } from './hardware.js';
import { parseJsonObject, parseStartRequest } from './requests.js';
import { Runner } from './runner.js';

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
  /** How long a start waits for a loading backend before answering 503. */
  startWaitMs?: number;
  /** Extra facts for /version and /hardware/info (backend kind, capabilities). */
  describeBackend?: () => Record<string, unknown>;
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
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit,
    // Request logs for everything but the endpoints that orchestrators and Prometheus poll.
    logController: new LogController({
      disableRequestLogging: (req) => req.url === '/health' || req.url === '/metrics',
    }),
    // Long model loads must not be cut by Node's request timeout while a start waits.
    requestTimeout: 0,
  });
  const runner = new Runner(opts.backend, opts.sessionFactory, opts.logger, opts.startWaitMs);
  const pipeline = opts.pipeline ?? 'byoc';
  const modelId = () => opts.capabilityName || opts.backend.modelId;

  // Bodies are read as text and parsed by the routes: stop must accept anything (even "stream ended"
  // labelled application/json), and start/params need PyTrickle's own content-type messages.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, body));

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
    if (err instanceof AppError) return reply.code(err.httpStatus).send(errorBody(err.message, { code: err.code }));
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'unhandled error');
    return reply.code(status).send(errorBody(err.message));
  });

  const currentState = () => runner.state.snapshot();

  async function handleStart(req: FastifyRequest, reply: FastifyReply) {
    try {
      const body = parseJsonObject(req.headers['content-type'], req.body);
      const start = parseStartRequest(body);
      const result = await runner.start(start);
      return reply.code(200).send({
        status: 'success',
        message: 'Stream started successfully',
        request_id: start.gateway_request_id,
        current_state: currentState(),
        ignored_params: result.ignored,
      });
    } catch (err) {
      if (err instanceof AppError && err.httpStatus === 503) {
        return reply.code(503).send(errorBody(err.message, { current_state: currentState() }));
      }
      const status = err instanceof AppError && err.httpStatus < 500 ? err.httpStatus : 400;
      return reply.code(status).send(errorBody(`Error starting stream: ${errorMessage(err)}`, { current_state: currentState() }));
    }
  }

  async function handleParams(req: FastifyRequest, reply: FastifyReply) {
    try {
      const body = parseJsonObject(req.headers['content-type'], req.body);
      const { ignored } = runner.update(body);
      return reply.send({ status: 'success', message: 'Parameters updated successfully', ignored_params: ignored });
    } catch (err) {
      if (err instanceof AppError && err.code === 'no_active_stream') return reply.code(400).send(errorBody(err.message));
      // Bad input (bad JSON, content type, validation) is the caller's 400; a failing apply is our 500.
      const status = err instanceof AppError && err.httpStatus < 500 ? 400 : 500;
      return reply.code(status).send(errorBody(`Parameter update failed: ${errorMessage(err)}`));
    }
  }

  async function handleStop(_req: FastifyRequest, reply: FastifyReply) {
    try {
      await runner.stop();
      return reply.send({ status: 'success', message: 'Stream stopped successfully' });
    } catch (err) {
      if (err instanceof AppError && err.code === 'no_active_stream') return reply.code(400).send(errorBody(err.message));
      return reply.code(500).send(errorBody(`Error stopping stream: ${errorMessage(err)}`));
    }
  }

  function handleStatus() {
    const cur = runner.current();
    const out: Record<string, unknown> = { ...currentState(), client_active: cur !== undefined };
    if (cur) {
      const snap = cur.session.status();
      out.client_running = snap.running;
      out.fps = snap.fps;
      out.current_params = {
        subscribe_url: cur.config.subscribeUrl ?? '',
        publish_url: cur.config.publishUrl ?? '',
        gateway_request_id: cur.config.streamId,
      };
      out.params = snap.params;
      out.stream = { started_at_ms: snap.started_at_ms, counters: snap.counters };
    }
    return out;
  }

  for (const prefix of PREFIXES) {
    app.post(`${prefix}/start`, handleStart);
    app.post(`${prefix}/params`, handleParams);
    app.post(`${prefix}/stop`, handleStop);
    app.get(`${prefix}/status`, async () => handleStatus());
  }
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
