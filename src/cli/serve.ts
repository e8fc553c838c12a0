/**
 * `gemma3n-trickle serve`: the runner. Flags win over environment variables, which win over defaults.
 * SIGTERM/SIGINT stop the stream cleanly and exit 0 (bounded at 10 s).
 */
import type { Command } from 'commander';
import { childLogger } from '../log.js';
import { backendConfigFromEnv, createBackend, describeBackend } from '../model/index.js';
import { createSessionFactory } from '../pipeline/session.js';
import { startRunnerServer, type RunnerServerHandle } from '../server/index.js';
import type { ModelBackend } from '../model/backend.js';
import { registerCapability, registrationFromEnv } from '../server/register.js';
import { errorMessage } from '../errors.js';

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
    const backend = backendFromOptions(o);
    const logger = childLogger('server');
    const handle: RunnerServerHandle = await startRunnerServer({
      port: Number(o.port),
      host: o.host,
      apiToken: o.apiToken || undefined,
      backend,
      sessionFactory: createSessionFactory({ backend, logger: childLogger('pipeline') }),
      pipeline: process.env.PIPELINE,
      capabilityName: process.env.CAPABILITY_NAME,
      appVersion: process.env.APP_VERSION,
      describeBackend: () => describeBackend(backend),
      logger,
    });
    installSignalHandlers(() => handle.close());
    const registration = registrationFromEnv(process.env, handle.port);
    if (registration) {
      registerCapability(registration, logger).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'capability registration failed'));
    }
  });
}
