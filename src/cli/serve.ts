/**
 * `gemma3n-trickle serve`: the runner. Flags win over environment variables, which win over defaults.
 * SIGTERM/SIGINT stop the stream cleanly and exit 0 (bounded at 10 s).
 *
 * Secure defaults (README "Security"): flags and env are validated with clear messages before anything
 * listens; in BYOC mode (ORCH_URL set) a random API token is generated when none is given and
 * registered with the capability, and trickle channel hosts default to the orchestrator's host
 * (TRICKLE_ALLOWED_HOSTS overrides; `*` = any); outside BYOC, listening beyond loopback without a
 * token is warned about loudly.
 */
import type { Command } from 'commander';
import { childLogger } from '../log.js';
import { backendConfigFromEnv, createBackend, describeBackend } from '../model/index.js';
import { createSessionFactory } from '../pipeline/session.js';
import { startRunnerServer, type RunnerServerHandle } from '../server/index.js';
import type { ModelBackend } from '../model/backend.js';
import { randomBytes } from 'node:crypto';
import { isLoopbackHost, keepRegistered, registrationFromEnv } from '../server/register.js';
import { parseAllowedHosts } from '../server/url-policy.js';
import { AppError } from '../errors.js';

export class ServeConfigError extends AppError {
  constructor(message: string) {
    super('invalid_serve_config', message);
  }
}

/** `--port`/PORT: a whole number 0–65535 (0 = any free port). */
export function parsePort(raw: string | undefined, what = '--port / PORT'): number {
  const v = (raw ?? '').trim();
  if (!/^\d+$/.test(v) || Number(v) > 65535) {
    throw new ServeConfigError(`${what} must be a whole number from 0 to 65535 (got ${JSON.stringify(raw ?? '')})`);
  }
  return Number(v);
}

function parseMs(raw: string | undefined, what: string, def: number): number {
  if (raw === undefined || raw.trim() === '') return def;
  if (!/^\s*\d+\s*$/.test(raw)) throw new ServeConfigError(`${what} must be a whole number of milliseconds (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

export interface ServeOptions {
  port?: string;
  host?: string;
  apiToken?: string;
  backend?: string;
  modelId?: string;
  modelDir?: string;
  dtype?: string;
  device?: string;
  baseUrl?: string;
  tiny?: boolean;
}

/** Backend flags shared by `serve` and `demo`. */
export function addBackendOptions(cmd: Command): Command {
  return cmd
    .option('--backend <kind>', 'openai | transformers (env BACKEND; default: openai when an engine URL is set, else transformers)')
    .option('--model-id <id>', 'model id (env MODEL_ID; default google/gemma-3n-E4B-it for engines, onnx-community/gemma-3n-E2B-it-ONNX in-process)')
    .option('--model-dir <dir>', 'local Gemma 3n ONNX export directory for the in-process backend (env MODEL_DIR)')
    .option('--dtype <dtype>', 'in-process dtype: q4, q4f16, fp16, q8, fp32 (env MODEL_DTYPE)')
    .option('--device <device>', 'in-process device: cpu or cuda (env MODEL_DEVICE)')
    .option('--base-url <url>', 'OpenAI-compatible engine base URL, e.g. http://vllm:8000/v1 (env OPENAI_BASE_URL or VLLM_BASE_URL)');
}

export function backendFromOptions(o: ServeOptions, overrides: Record<string, string | undefined> = {}): ModelBackend {
  const cfg = backendConfigFromEnv(process.env, {
    backend: o.backend,
    modelId: o.modelId,
    modelDir: o.modelDir,
    dtype: o.dtype,
    device: o.device,
    baseURL: o.baseUrl,
    ...overrides,
  });
  return createBackend(cfg);
}

export function installSignalHandlers(stop: () => Promise<void>): void {
  const log = childLogger('signals');
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const hard = setTimeout(() => {
      log.error('shutdown took longer than 10 s; exiting anyway');
      process.exit(0);
    }, 10_000);
    hard.unref();
    stop().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('Run the runner: the PyTrickle-compatible control API on --port (default 8000)')
    .option('--port <port>', 'listen port (env PORT)', process.env.PORT ?? '8000')
    .option('--host <host>', 'listen address (env HOST)', process.env.HOST ?? '0.0.0.0')
    .option('--api-token <token>', 'require Authorization: Bearer <token> on every route but /health (env API_TOKEN)', process.env.API_TOKEN);
  addBackendOptions(cmd).action(async (o: ServeOptions) => {
    const logger = childLogger('server');
    const port = parsePort(o.port);
    const host = (o.host ?? '').trim();
    if (!host) throw new ServeConfigError('--host / HOST must not be empty (e.g. 0.0.0.0 or 127.0.0.1)');
    const startWaitMs = parseMs(process.env.START_WAIT_MS, 'START_WAIT_MS', 5_000);
    const bodyTimeoutMs = parseMs(process.env.BODY_TIMEOUT_MS, 'BODY_TIMEOUT_MS', 10_000);
    const byoc = Boolean(process.env.ORCH_URL);
    let apiToken = o.apiToken || undefined;
    if (byoc && !apiToken) {
      // The orchestrator learns the token from the registration, so nobody has to configure it.
      apiToken = randomBytes(32).toString('base64url');
      logger.info('BYOC mode and no API_TOKEN: generated a random API token; it is registered with the capability');
    }
    // Validates the registration before listening, so a bad price or URL fails the start, not later.
    const registration = registrationFromEnv(process.env, port, apiToken);
    let allowedHosts = parseAllowedHosts(process.env.TRICKLE_ALLOWED_HOSTS);
    if (!allowedHosts && byoc) allowedHosts = [new URL(process.env.ORCH_URL as string).hostname.toLowerCase().replace(/^\[|\]$/g, '')];
    if (!apiToken && !isLoopbackHost(host)) {
      logger.warn(
        { host },
        'SECURITY: the control API listens beyond loopback with no API token: anyone who can reach this port can start streams. Set API_TOKEN (or --api-token), or --host 127.0.0.1',
      );
    }
    const backend = backendFromOptions(o);
    const handle: RunnerServerHandle = await startRunnerServer({
      port,
      host,
      apiToken,
      backend,
      sessionFactory: createSessionFactory({ backend, logger: childLogger('pipeline') }),
      pipeline: process.env.PIPELINE,
      capabilityName: process.env.CAPABILITY_NAME,
      appVersion: process.env.APP_VERSION,
      describeBackend: () => describeBackend(backend),
      startWaitMs,
      bodyTimeoutMs,
      trickleUrlPolicy: { allowedHosts },
      logger,
    });
    logger.info({ trickle_allowed_hosts: allowedHosts ?? 'any (link-local/metadata refused)' }, 'trickle channel host policy');
    const stopRegistering = new AbortController();
    installSignalHandlers(async () => {
      stopRegistering.abort();
      await handle.close();
    });
    if (registration) {
      for (const w of registration.warnings) logger.warn(w);
      // Again with the port actually bound (--port 0 picks one); the values were validated above.
      const bound = registrationFromEnv(process.env, handle.port, apiToken) ?? registration;
      void keepRegistered(bound.registration, childLogger('register'), {
        isIdle: () => handle.runner.current() === undefined,
        refreshMs: parseMs(process.env.CAPABILITY_REFRESH_MS, 'CAPABILITY_REFRESH_MS', 60_000),
        signal: stopRegistering.signal,
      });
    }
  });
}
