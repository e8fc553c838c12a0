/**
 * What `gemma3n-trickle serve` runs (loaded only when that command runs): the runner. Flags win over environment variables, which win over defaults.
 * SIGTERM/SIGINT stop every stream cleanly (each flushes its data queue) and exit 0 (bounded at 10 s).
 * Up to `--capacity` streams share one model backend through the fair scheduler
 * (src/model/fair-scheduler.ts, MAX_REQUESTS_IN_FLIGHT requests at once).
 *
 * Configuration: every flag and variable is declared, defaulted and validated by one schema
 * (src/config/runtime.ts); this file only wires the parsed result together.
 *
 * Secure defaults (README "Security"): flags and env are validated with clear messages before anything
 * listens; in BYOC mode (ORCH_URL set) a random API token is generated when none is given and
 * registered with the capability, and trickle channel hosts default to the orchestrator's host
 * (TRICKLE_ALLOWED_HOSTS overrides; `*` = any); outside BYOC, listening beyond loopback without a
 * token is warned about loudly.
 */
import { randomBytes } from 'node:crypto';
import { childLogger } from '../log.js';
import { createBackend, describeBackend } from '../model/index.js';
import type { ModelBackend } from '../model/backend.js';
import { FairScheduler } from '../model/fair-scheduler.js';
import { createSharedSessionFactory } from '../pipeline/shared-session.js';
import { startRunnerServer, type RunnerServerHandle } from '../server/index.js';
import { isLoopbackHost, keepRegistered, registrationFromSettings } from '../server/register.js';
import { backendConfigFrom, configureLogging, defaultMaxInFlight, type RuntimeConfig } from '../config/runtime.js';
import type { ServeOptions } from './serve.js';

/** The backend the flags and the environment describe (flag > env > default; one ConfigError otherwise). */
export function backendFromOptions(o: ServeOptions): ModelBackend {
  return createBackend(backendConfigFrom(process.env, o));
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

/** `cfg`: every setting, parsed and validated before anything listens (one error lists every problem). */
export async function runServe(cfg: Readonly<RuntimeConfig>): Promise<void> {
  configureLogging(cfg.log);
  const logger = childLogger('server');
  const { port, host } = cfg.server;
  const byoc = cfg.registration !== undefined;
  let apiToken = cfg.server.apiToken;
  if (byoc && !apiToken) {
    // The orchestrator learns the token from the registration, so nobody has to configure it.
    apiToken = randomBytes(32).toString('base64url');
    logger.info('BYOC mode and no API_TOKEN: generated a random API token; it is registered with the capability');
  }
  // Validates the registration before listening, so a bad price or URL fails the start, not later.
  const registration = cfg.registration ? registrationFromSettings(cfg.registration, port, apiToken) : undefined;
  let allowedHosts = cfg.server.trickleAllowedHosts;
  if (!allowedHosts && cfg.registration) allowedHosts = [new URL(cfg.registration.orchUrl).hostname.toLowerCase().replace(/^\[|\]$/g, '')];
  if (!apiToken && !isLoopbackHost(host)) {
    logger.warn(
      { host },
      'SECURITY: the control API listens beyond loopback with no API token: anyone who can reach this port can start streams. Set API_TOKEN (or --api-token), or --host 127.0.0.1',
    );
  }
  const backend = createBackend(cfg.backend);
  const capacity = cfg.server.capacity;
  const scheduler = new FairScheduler(backend, { maxInFlight: cfg.server.maxInFlight ?? defaultMaxInFlight(cfg.backend.backend, capacity) });
  const handle: RunnerServerHandle = await startRunnerServer({
    port,
    host,
    apiToken,
    backend,
    sessionFactory: createSharedSessionFactory({ logger: childLogger('pipeline') }, { scheduler, capacity }),
    capacity,
    describeScheduler: () => ({ ...scheduler.stats() }),
    pipeline: cfg.server.pipeline,
    capabilityName: cfg.server.capabilityName,
    appVersion: cfg.server.appVersion,
    describeBackend: () => describeBackend(backend),
    startWaitMs: cfg.server.startWaitMs,
    bodyTimeoutMs: cfg.server.bodyTimeoutMs,
    trickleUrlPolicy: { allowedHosts },
    logger,
  });
  logger.info({ capacity, max_requests_in_flight: scheduler.maxInFlight }, 'stream capacity');
  logger.info({ trickle_allowed_hosts: allowedHosts ?? 'any (link-local/metadata refused)' }, 'trickle channel host policy');
  const stopRegistering = new AbortController();
  installSignalHandlers(async () => {
    stopRegistering.abort();
    await handle.close();
  });
  if (registration && cfg.registration) {
    for (const w of registration.warnings) logger.warn(w);
    // Again with the port actually bound (--port 0 picks one); the values were validated above.
    const bound = registrationFromSettings(cfg.registration, handle.port, apiToken);
    void keepRegistered(bound.registration, childLogger('register'), {
      isIdle: () => handle.runner.idle(),
      refreshMs: cfg.registration.refreshMs,
      signal: stopRegistering.signal,
    });
  }
}
