/**
 * Tuning defaults of the env-configurable server settings, in one place and with no imports, so the
 * modules that apply them (src/server/*) and the schema that documents them (src/config/runtime.ts)
 * share one number. The model layer's defaults (request timeout, warm-up deadline, model ids) live in
 * src/model/defaults.ts, which imports nothing from config; runtime.ts re-exports them in `DEFAULTS`.
 */
export const SERVER_DEFAULTS = {
  port: 8000,
  host: '0.0.0.0',
  /** START_WAIT_MS: how long a start waits for a loading backend. */
  startWaitMs: 5_000,
  /** BODY_TIMEOUT_MS: a request body not received in this time gets 408. */
  bodyTimeoutMs: 10_000,
  /** CAPABILITY_REFRESH_MS: BYOC re-registration period while idle. */
  capabilityRefreshMs: 60_000,
  capabilityName: 'gemma3n-trickle',
  capabilityDescription: 'Gemma 3n live stream description (gemma3n-trickle)',
} as const;
