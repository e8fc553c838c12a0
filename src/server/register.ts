/**
 * Livepeer BYOC capability registration: when ORCH_URL is set, the runner announces itself to the
 * orchestrator (`POST {ORCH_URL}/capability/register`, ORCH_SECRET as the Authorization header), as
 * PyTrickle's RegisterCapability does — and keeps doing so for as long as the process lives.
 *
 * Promises (go-livepeer behaviour: production-path-audit.md §3.2):
 * - the runner's API token is sent as `token`, so the orchestrator calls the runner with
 *   `Authorization: Bearer <token>` (without it every call gets 401 and the capability is deleted);
 * - configuration the orchestrator would reject is refused before anything is sent: prices and
 *   scaling must be whole numbers (go-livepeer parses them as int64 and answers 400 to a fraction),
 *   capacity a positive integer; a defaulted CAPABILITY_URL (localhost) with a remote ORCH_URL is
 *   refused, since the orchestrator would call its own localhost;
 * - capacity is CAPABILITY_CAPACITY, the streams this process serves at once (the runner enforces it:
 *   the orchestrator's reserve step only counts);
 * - `keepRegistered` retries without limit (capped exponential backoff) and re-registers every
 *   `refreshMs` while no stream is active, so an orchestrator that starts late, or restarts and
 *   forgets its in-memory capabilities, gets the runner back. It never re-registers during a stream:
 *   RegisterCapability replaces the entry and resets its Load to 0, which would let the orchestrator
 *   hand out a slot the runner does not have;
 * - a refusal is logged with the orchestrator's answer (status and body), never guessed at.
 * Orchestrators commonly use self-signed certificates, so TLS verification follows ORCH_TLS_VERIFY
 * (default off, like PyTrickle). The settings themselves (names, defaults, per-value validation) are
 * declared in src/config/runtime.ts; this module adds the rules that need the bound port.
 */
import { Agent } from 'node:https';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../log.js';
import { AppError, errorMessage } from '../errors.js';
import { ConfigError, registrationSettingsFrom, type RegistrationSettings } from '../config/runtime.js';
import { SERVER_DEFAULTS } from '../config/defaults.js';

export interface CapabilityRegistration {
  orchUrl: string;
  orchSecret: string;
  name: string;
  description: string;
  url: string;
  capacity: number;
  pricePerUnit: number;
  priceScaling: number;
  /** go-livepeer's `currency` (the price is in wei when absent). */
  currency?: string;
  /** The runner's API token; the orchestrator sends it back as `Authorization: Bearer <token>`. */
  token?: string;
  tlsVerify: boolean;
}

/** Names/addresses that only ever reach this machine (0.0.0.0 and :: are "all interfaces", not loopback). */
const LOOPBACK = /^(localhost|127(\.\d+){3}|\[?::1\]?)$/i;

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host.replace(/\.$/, ''));
}

export interface RegistrationFromEnv {
  registration: CapabilityRegistration;
  /** Things the operator should know (a loopback CAPABILITY_URL …), to log as warnings. */
  warnings: string[];
}

function refuse(setting: string, message: string): ConfigError {
  return new ConfigError([{ setting, message }]);
}

/**
 * The registration from validated settings (src/config/runtime.ts checks each value: whole numbers,
 * URL syntax) plus the rules that need the port: ORCH_SECRET is required, a defaulted CAPABILITY_URL
 * (localhost) with a remote ORCH_URL is refused. Throws a ConfigError with the fix.
 */
export function registrationFromSettings(s: RegistrationSettings, port: number, apiToken?: string): RegistrationFromEnv {
  if (!s.orchSecret) throw refuse('ORCH_SECRET', 'ORCH_URL is set but ORCH_SECRET is not: set ORCH_SECRET to the orchestrator\'s -orchSecret');
  const orch = new URL(s.orchUrl);
  const warnings: string[] = [];
  const capacity = s.capacity;
  let url = s.capabilityUrl?.trim();
  const orchIsRemote = !isLoopbackHost(orch.hostname);
  if (!url) {
    if (orchIsRemote) {
      throw refuse(
        'CAPABILITY_URL',
        `CAPABILITY_URL is not set, so the orchestrator at ${orch.host} would be told to call http://localhost:${port} — its own localhost, not this runner. ` +
          `Set CAPABILITY_URL to an address the orchestrator can reach, e.g. http://<this-runner's-host-or-container-name>:${port}`,
      );
    }
    url = `http://localhost:${port}`;
  } else {
    let cap: URL;
    try {
      cap = new URL(url);
    } catch {
      throw refuse('CAPABILITY_URL', `CAPABILITY_URL is not a valid URL (got ${JSON.stringify(url)})`);
    }
    if (orchIsRemote && isLoopbackHost(cap.hostname)) {
      warnings.push(
        `CAPABILITY_URL ${url} is a loopback address but the orchestrator is at ${orch.host}: it will call its own localhost unless both share a network namespace. Set CAPABILITY_URL to an address the orchestrator can reach`,
      );
    }
    url = url.replace(/\/+$/, '');
  }
  const registration: CapabilityRegistration = {
    orchUrl: s.orchUrl.replace(/\/+$/, ''),
    orchSecret: s.orchSecret,
    name: s.name,
    description: s.description,
    url,
    capacity,
    pricePerUnit: s.pricePerUnit,
    priceScaling: s.priceScaling,
    tlsVerify: s.tlsVerify,
  };
  if (s.currency) registration.currency = s.currency;
  if (apiToken) registration.token = apiToken;
  return { registration, warnings };
}

/**
 * The registration straight from an environment (tests, scripts); undefined when ORCH_URL is not set.
 * Same checks as the runner's start: throws one ConfigError naming the variable and the fix.
 */
export function registrationFromEnv(env: NodeJS.ProcessEnv, port: number, apiToken?: string): RegistrationFromEnv | undefined {
  const s = registrationSettingsFrom(env);
  return s ? registrationFromSettings(s, port, apiToken) : undefined;
}

export function registrationBody(reg: CapabilityRegistration): string {
  return JSON.stringify({
    url: reg.url,
    name: reg.name,
    description: reg.description,
    capacity: reg.capacity,
    price_per_unit: reg.pricePerUnit,
    price_scaling: reg.priceScaling,
    ...(reg.currency ? { currency: reg.currency } : {}),
    ...(reg.token ? { token: reg.token } : {}),
  });
}

function postOnce(reg: CapabilityRegistration, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const target = new URL(`${reg.orchUrl}/capability/register`);
  const isHttps = target.protocol === 'https:';
  const send = isHttps ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: 'POST',
        headers: { authorization: reg.orchSecret, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
        ...(isHttps ? { agent: new Agent({ rejectUnauthorized: reg.tlsVerify }) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // Only for the log line: keep the first 4 KiB of the orchestrator's answer.
          if (size < 4096) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, 4096) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** One attempt's outcome: ok, or the reason in words (status and body, or the network error). */
async function attempt(reg: CapabilityRegistration, timeoutMs: number): Promise<{ ok: true } | { ok: false; status?: number; reason: string }> {
  try {
    const res = await postOnce(reg, registrationBody(reg), timeoutMs);
    if (res.status === 200) return { ok: true };
    const hint = res.status === 400 ? ' (go-livepeer answers 400 to a wrong ORCH_SECRET and to a body it cannot parse)' : '';
    return { ok: false, status: res.status, reason: `HTTP ${res.status}: ${res.text.trim() || '(empty body)'}${hint}` };
  } catch (err) {
    return { ok: false, reason: errorMessage(err) };
  }
}

const abortableSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Registers, retrying up to `attempts` times `delayMs` apart. A 400 is final (it will not change by
 * itself). Resolves when registered; rejects with code 'capability_registration_failed' otherwise.
 */
export async function registerCapability(
  reg: CapabilityRegistration,
  log: Logger,
  opts: { attempts?: number; delayMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const attempts = opts.attempts ?? 10;
  let last = '';
  for (let n = 1; n <= attempts; n++) {
    if (opts.signal?.aborted) break;
    const r = await attempt(reg, opts.timeoutMs ?? 5000);
    if (r.ok) {
      log.info({ orch_url: reg.orchUrl, capability: reg.name, url: reg.url }, 'capability registered');
      return;
    }
    last = r.reason;
    log.warn({ attempt: n, err: last }, 'capability registration attempt failed');
    if (r.status === 400) break;
    if (n < attempts) await abortableSleep(opts.delayMs ?? 2000, opts.signal);
  }
  throw new AppError('capability_registration_failed', `could not register capability "${reg.name}" with ${reg.orchUrl}: ${last}`);
}

export interface KeepRegisteredOptions {
  /** True while no stream is active: only then is a periodic re-registration safe (it resets Load). */
  isIdle: () => boolean;
  /** Re-registration period once registered (default 60 s). */
  refreshMs?: number;
  /** First retry delay (default 1 s), doubled per failure up to `maxDelayMs` (default 30 s). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called after every attempt (tests observe progress through it). */
  onAttempt?: (result: { ok: boolean; reason?: string }) => void;
  /** Injectable wait (tests count waits instead of sleeping); default: an abortable timer. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Keeps the capability registered until `signal` aborts: retries with capped backoff while it fails,
 * then re-registers every `refreshMs` while idle. Never rejects; failures are logged.
 */
export async function keepRegistered(reg: CapabilityRegistration, log: Logger, opts: KeepRegisteredOptions): Promise<void> {
  const initial = opts.initialDelayMs ?? 1000;
  const max = opts.maxDelayMs ?? 30_000;
  const refresh = opts.refreshMs ?? SERVER_DEFAULTS.capabilityRefreshMs;
  let delay = initial;
  let registered = false;
  // Once registered, the entry may still exist at the orchestrator even after a failed attempt, so
  // a busy runner waits whatever the last attempt said.
  let everRegistered = false;
  let failures = 0;
  const sleep = opts.sleep ?? abortableSleep;
  while (!opts.signal?.aborted) {
    if (everRegistered && !opts.isIdle()) {
      // A stream is live: re-registering would reset the orchestrator's Load for this capability.
      await sleep(refresh, opts.signal);
      continue;
    }
    const r = await attempt(reg, opts.timeoutMs ?? 5000);
    opts.onAttempt?.(r.ok ? { ok: true } : { ok: false, reason: r.reason });
    if (opts.signal?.aborted) break;
    if (r.ok) {
      if (!registered || failures > 0) log.info({ orch_url: reg.orchUrl, capability: reg.name, url: reg.url }, 'capability registered');
      registered = true;
      everRegistered = true;
      failures = 0;
      delay = initial;
      await sleep(refresh, opts.signal);
      continue;
    }
    failures++;
    registered = false;
    const level = r.status === 400 || failures === 1 || failures % 10 === 0 ? 'error' : 'warn';
    log[level]({ orch_url: reg.orchUrl, attempt: failures, retry_in_ms: delay, err: r.reason }, 'capability registration failed; retrying');
    await sleep(delay, opts.signal);
    delay = Math.min(max, delay * 2);
  }
}
