/**
 * src/server owns the control API (PyTrickle-compatible), the runner state machine and the stream
 * slot. `startRunnerServer` wires a model backend and the pipeline's session factory into it, starts
 * listening at once (health reads LOADING) and loads the backend in the background; a failed load
 * is recorded (health ERROR, starts say "failed to load") until the backend itself reports ready.
 */
import type { AddressInfo } from 'node:net';
import { childLogger, type Logger } from '../log.js';
import { buildServer, type ControlServer, type ServerOptions } from './app.js';
import { errorMessage } from '../errors.js';

export interface RunnerServerOptions extends Omit<ServerOptions, 'logger'> {
  port?: number;
  host?: string;
  logger?: Logger;
}

export interface RunnerServerHandle extends ControlServer {
  url: string;
  port: number;
  /** Stops the stream (if any), the HTTP server and the backend. */
  close(): Promise<void>;
}

export async function startRunnerServer(opts: RunnerServerOptions): Promise<RunnerServerHandle> {
  const logger = opts.logger ?? childLogger('server');
  const server = await buildServer({ ...opts, logger });
  await server.app.listen({ port: opts.port ?? 8000, host: opts.host ?? '0.0.0.0' });
  const addr = server.app.server.address() as AddressInfo;
  const host = opts.host === undefined || opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
  logger.info({ url, backend: opts.backend.kind, model_id: opts.backend.modelId }, 'control API listening');

  opts.backend.load().then(
    () => {
      server.runner.state.markStartupComplete();
      logger.info({ model_id: opts.backend.modelId }, 'model backend ready');
    },
    (err: unknown) => {
      server.runner.noteLoadFailure(errorMessage(err));
      logger.error({ err: errorMessage(err) }, 'model backend failed to load');
    },
  );

  let closing: Promise<void> | undefined;
  return {
    ...server,
    url,
    port: addr.port,
    close() {
      closing ??= (async () => {
        await server.runner.shutdown().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'stream shutdown failed'));
        await server.app.close();
        await opts.backend.close().catch(() => undefined);
      })();
      return closing;
    },
  };
}

