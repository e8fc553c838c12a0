/**
 * Runtime configuration: the single source of truth for every environment variable and command-line
 * flag the runner reads — name, flag, type, default, one-line doc and validation. `serve` calls
 * `parseRuntimeConfig(process.env, flags)` once and hands the typed result down; `demo` and `watch` read
 * only their few settings through the same schema (`backendConfigFrom`, `logConfigFrom`, `readSetting`).
 * No other module reads `process.env` for its settings (src/log.ts keeps a fallback for library use).
 * The README's configuration table is generated from `SETTINGS` (src/config/runtime-doc.ts).
 *
 * Promises:
 * - precedence is flag > environment > default; an environment variable that is empty or only
 *   whitespace counts as unset (a flag given as an empty string is judged as given);
 * - every problem is collected, then one `ConfigError` (code `invalid_config`) is thrown listing them
 *   all; each message names the flag and/or variable and quotes the bad value;
 * - settings of a group that is off are not validated: the BYOC registration group only when ORCH_URL
 *   is set (as before this schema existed);
 * - cross-field rules that need the bound port (CAPABILITY_URL's default) stay in src/server/register.ts;
 *   the ones that need only settings (the openai backend needs a URL) are checked here.
 */
import { AppError } from '../errors.js';
import { configureRootLogger, parseLogFormat, parseLogLevel, type LogFormat } from '../log.js';
import {
  DEFAULT_OPENAI_MODEL,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_TRANSFORMERS_MODEL,
  DEFAULT_WARMUP_DEADLINE_MS,
  defaultModelCacheDir,
  parseDtype,
  type BackendConfig,
  type BackendKind,
} from '../model/defaults.js';
import { AUDIO_SAMPLE_RATE } from '../model/audio.js';
import type { DtypeOption } from '../model/transformers-protocol.js';
import { SERVER_DEFAULTS } from './defaults.js';

/** One problem with one setting. */
export interface ConfigIssue {
  /** The environment variable's name (the setting's stable id). */
  setting: string;
  message: string;
}

/** Every configuration problem found, in schema order; the message lists them all. */
export class ConfigError extends AppError {
  readonly issues: ReadonlyArray<ConfigIssue>;

  constructor(issues: ReadonlyArray<ConfigIssue>) {
    const message =
      issues.length === 1
        ? (issues[0]?.message ?? '')
        : `invalid configuration (${issues.length} problems):\n${issues.map((i) => `  - ${i.message}`).join('\n')}`;
    super('invalid_config', message);
    this.issues = issues;
  }
}

/** Flag values as commander hands them over (strings; `undefined` when the flag was not given). */
export interface RuntimeFlags {
  port?: string | undefined;
  host?: string | undefined;
  apiToken?: string | undefined;
  backend?: string | undefined;
  modelId?: string | undefined;
  modelDir?: string | undefined;
  dtype?: string | undefined;
  device?: string | undefined;
  baseUrl?: string | undefined;
  // many streams per process (issue 13)
  capacity?: string | undefined;
  maxInFlight?: string | undefined;
}

export type SettingGroup = 'server' | 'backend' | 'registration' | 'logging';

/** A failed parse: the message completes "<label> must …" style sentences itself. */
class Invalid extends Error {}

interface Spec<T> {
  env: string;
  /** Long flag (`--port`) and the commander attribute it lands in. */
  flag?: { name: `--${string}`; key: keyof RuntimeFlags; arg: string };
  group: SettingGroup;
  /** For the docs: the accepted values, in words. */
  type: string;
  /** For the docs: the default, in words (`—` when unset means "off" or "not sent"). */
  defaultDoc: string;
  description: string;
  /** Parses a raw (flag or non-empty env) value; throws Invalid with the full message. */
  parse: (raw: string, label: string) => T;
}

export interface Setting<T, V> extends Spec<T> {
  /** The typed default (undefined: no default value; the consumer decides). */
  fallback: V;
  /** "--flag / ENV" or "ENV": how messages name the setting. */
  label: string;
  readonly _value?: V;
}

function setting<T>(spec: Spec<T>): Setting<T, T | undefined>;
function setting<T>(spec: Spec<T>, fallback: T): Setting<T, T>;
function setting<T>(spec: Spec<T>, fallback?: T): Setting<T, T | undefined> {
  const label = spec.flag ? `${spec.flag.name} / ${spec.env}` : spec.env;
  return { ...spec, label, fallback };
}

// ---- value types ----------------------------------------------------------------------------------

const got = (raw: string) => `(got ${JSON.stringify(raw)})`;

const text = (raw: string) => raw;

function nonEmpty(example: string) {
  return (raw: string, label: string) => {
    const v = raw.trim();
    if (!v) throw new Invalid(`${label} must not be empty (e.g. ${example})`);
    return v;
  };
}

function wholeNumber(min: number, max: number, unit = '') {
  return (raw: string, label: string) => {
    const v = raw.trim();
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? `a whole number${unit}` : `a whole number${unit} ≥ ${min}`) : `a whole number${unit} from ${min} to ${max}`;
      throw new Invalid(`${label} must be ${range} ${got(raw)}`);
    }
    return Number(v);
  };
}

/** Plain decimal only (as for stream params): `Number()` would also take "0x10", "1e3" and "Infinity". */
const DECIMAL = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/;

function positiveInt(raw: string, label: string): number {
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n <= 0) throw new Invalid(`${label} must be a positive integer ${got(raw)}`);
  return n;
}

/** A whole number ≥ min, with the reason go-livepeer needs it (registration). */
function registrationNumber(min: number, why: string) {
  return (raw: string, label: string) => {
    if (!/^\s*\d+\s*$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
      throw new Invalid(`${label} must be a whole number ≥ ${min} ${got(raw)}: ${why}`);
    }
    return Number(raw);
  };
}

function oneOf<const T extends string>(values: readonly T[]) {
  return (raw: string, label: string): T => {
    const v = raw.trim();
    if (!(values as readonly string[]).includes(v)) {
      throw new Invalid(`${label} must be ${values.map((x) => `"${x}"`).join(' or ')} ${got(raw)}`);
    }
    return v as T;
  };
}

function url(example: string) {
  return (raw: string, label: string) => {
    try {
      new URL(raw.trim());
    } catch {
      throw new Invalid(`${label} is not a valid URL ${got(raw)}; e.g. ${example}`);
    }
    return raw.trim();
  };
}

/** `1`/`true`/`yes` (any case) = on; anything else = off (PyTrickle's reading). */
const flagOn = (raw: string) => /^(1|true|yes)$/i.test(raw.trim());

/** Comma/space separated, lower-cased; an empty list is unset. */
function hostList(raw: string): string[] | undefined {
  const list = raw
    .split(/[\s,]+/)
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

function wrap<T>(parse: (raw: string) => T) {
  return (raw: string) => {
    try {
      return parse(raw);
    } catch (err) {
      throw new Invalid(err instanceof Error ? err.message : String(err));
    }
  };
}

// ---- the schema -----------------------------------------------------------------------------------

/** Every env-configurable tuning default (the server's from ./defaults.ts, the model layer's from openai.ts). */
export const DEFAULTS = {
  ...SERVER_DEFAULTS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  warmupDeadlineMs: DEFAULT_WARMUP_DEADLINE_MS,
} as const;

/** Upper bound of CAPABILITY_CAPACITY and MAX_REQUESTS_IN_FLIGHT: every stream costs an ffmpeg child and buffers. */
export const MAX_CAPACITY = 256;

const PRICE_WHY =
  'go-livepeer parses price_per_unit as an integer (int64) and answers 400 to a fraction; give the price in the smallest unit (wei, or see CAPABILITY_CURRENCY)';

export const SETTINGS = {
  // server
  port: setting(
    {
      env: 'PORT', flag: { name: '--port', key: 'port', arg: '<port>' }, group: 'server', type: 'integer 0–65535',
      defaultDoc: String(DEFAULTS.port), description: 'control API port (0 = any free port)', parse: wholeNumber(0, 65535),
    },
    DEFAULTS.port,
  ),
  host: setting(
    {
      env: 'HOST', flag: { name: '--host', key: 'host', arg: '<host>' }, group: 'server', type: 'address',
      defaultDoc: DEFAULTS.host, description: 'control API listen address', parse: nonEmpty('0.0.0.0 or 127.0.0.1'),
    },
    DEFAULTS.host,
  ),
  apiToken: setting({
    env: 'API_TOKEN', flag: { name: '--api-token', key: 'apiToken', arg: '<token>' }, group: 'server', type: 'string',
    defaultDoc: 'random in BYOC mode, else none', description: 'bearer token required on every route but `/health` (`watch`: sent to the runner)', parse: text,
  }),
  startWaitMs: setting(
    {
      env: 'START_WAIT_MS', group: 'server', type: 'milliseconds', defaultDoc: String(DEFAULTS.startWaitMs),
      description: 'how long a start waits for a loading backend before answering 503 with the backend\'s reason', parse: wholeNumber(0, Number.MAX_SAFE_INTEGER, ' of milliseconds'),
    },
    DEFAULTS.startWaitMs,
  ),
  bodyTimeoutMs: setting(
    {
      env: 'BODY_TIMEOUT_MS', group: 'server', type: 'milliseconds', defaultDoc: String(DEFAULTS.bodyTimeoutMs),
      description: 'a request body not fully received in this time gets 408 and the connection is closed', parse: wholeNumber(0, Number.MAX_SAFE_INTEGER, ' of milliseconds'),
    },
    DEFAULTS.bodyTimeoutMs,
  ),
  trickleAllowedHosts: setting({
    env: 'TRICKLE_ALLOWED_HOSTS', group: 'server', type: 'host list', defaultDoc: 'BYOC: the `ORCH_URL` host; else any',
    description: 'hosts channel URLs may name (`host` or `host:port`, comma-separated; `*` = any) — see [Security](#security)', parse: hostList,
  }),
  pipeline: setting({ env: 'PIPELINE', group: 'server', type: 'string', defaultDoc: 'byoc', description: 'pipeline name reported by `/version`', parse: text }),
  appVersion: setting({ env: 'APP_VERSION', group: 'server', type: 'string', defaultDoc: 'package version', description: 'version reported by `/version`', parse: text }),
  // backend
  backend: setting({
    env: 'BACKEND', flag: { name: '--backend', key: 'backend', arg: '<kind>' }, group: 'backend', type: '`openai` | `transformers`',
    defaultDoc: '`openai` if an engine URL is set, else `transformers`', description: 'model backend', parse: oneOf<BackendKind>(['openai', 'transformers']),
  }),
  baseUrl: setting({
    env: 'OPENAI_BASE_URL', flag: { name: '--base-url', key: 'baseUrl', arg: '<url>' }, group: 'backend', type: 'URL',
    defaultDoc: '—', description: 'OpenAI-compatible engine base URL, e.g. `http://vllm:8000/v1` (`VLLM_BASE_URL` is read when this is unset)', parse: (raw) => raw.trim(),
  }),
  vllmBaseUrl: setting({ env: 'VLLM_BASE_URL', group: 'backend', type: 'URL', defaultDoc: '—', description: 'alias of `OPENAI_BASE_URL`, read when that is unset', parse: (raw) => raw.trim() }),
  apiKey: setting({ env: 'OPENAI_API_KEY', group: 'backend', type: 'string', defaultDoc: 'EMPTY', description: 'engine API key', parse: text }),
  modelId: setting({
    env: 'MODEL_ID', flag: { name: '--model-id', key: 'modelId', arg: '<id>' }, group: 'backend', type: 'string',
    defaultDoc: `\`${DEFAULT_OPENAI_MODEL}\` (engine) / \`${DEFAULT_TRANSFORMERS_MODEL}\` (in-process)`, description: 'model id (engine) or hub id (in-process)', parse: text,
  }),
  modelDir: setting({
    env: 'MODEL_DIR', flag: { name: '--model-dir', key: 'modelDir', arg: '<dir>' }, group: 'backend', type: 'path',
    defaultDoc: '—', description: 'local Gemma 3n ONNX export directory for the in-process backend (wins over the model id)', parse: text,
  }),
  dtype: setting<DtypeOption>({
    env: 'MODEL_DTYPE', flag: { name: '--dtype', key: 'dtype', arg: '<dtype>' }, group: 'backend', type: 'dtype or `graph=dtype,…` / JSON map',
    defaultDoc: 'per-graph q8/q4 map', description: 'in-process dtype (`q4`, `q4f16`, `fp16`, `q8`, `fp32`); a partial map is merged over the default map', parse: wrap(parseDtype),
  }),
  device: setting({
    env: 'MODEL_DEVICE', flag: { name: '--device', key: 'device', arg: '<device>' }, group: 'backend', type: '`cpu` | `cuda`',
    defaultDoc: 'cpu', description: 'in-process device', parse: oneOf(['cpu', 'cuda']),
  }),
  requestTimeoutMs: setting(
    { env: 'REQUEST_TIMEOUT_MS', group: 'backend', type: 'milliseconds', defaultDoc: String(DEFAULTS.requestTimeoutMs), description: 'engine request timeout (whole request, stalls included)', parse: positiveInt },
    DEFAULTS.requestTimeoutMs,
  ),
  maxImages: setting({
    env: 'MODEL_MAX_IMAGES', group: 'backend', type: 'integer ≥ 1', defaultDoc: '`8` (engine; in-process: `1` on cpu, `8` on cuda)',
    description: 'most images per request (match vLLM\'s `--limit-mm-per-prompt`); frames cut by it are counted as `frames_dropped_by_engine_limit`', parse: positiveInt,
  }),
  audioPadS: setting({
    env: 'AUDIO_PAD_S', group: 'backend', type: 'seconds 1–30', defaultDoc: '30',
    description: 'every audio clip sent to an engine is zero-padded to this many seconds, so concurrent requests never mix clip lengths (vllm#50957); the prompt cost is 188 tokens whatever the length',
    parse: (raw, label) => {
      const n = Number(raw);
      if (!DECIMAL.test(raw) || n < 1 || n > 30) throw new Invalid(`${label} must be a number of seconds from 1 to 30 ${got(raw)}`);
      return n;
    },
  }),
  audioPart: setting({
    env: 'MODEL_AUDIO_PART', group: 'backend', type: '`input_audio` | `audio_url` | `none`', defaultDoc: 'input_audio',
    description: 'how audio travels to the engine (`audio_url`: SGLang, mistral.rs)', parse: oneOf(['input_audio', 'audio_url', 'none']),
  }),
  warmupDeadlineMs: setting({
    env: 'ENGINE_WARMUP_DEADLINE_MS', group: 'backend', type: 'milliseconds', defaultDoc: String(DEFAULTS.warmupDeadlineMs),
    description: 'how long the engine may take to answer before `/health` reads `ERROR` (probing continues)', parse: positiveInt,
  }),
  cacheDir: setting({
    env: 'MODEL_CACHE_DIR', group: 'backend', type: 'path', defaultDoc: '`$XDG_CACHE_HOME/gemma3n-trickle/models` or `~/.cache/gemma3n-trickle/models`',
    description: 'where the in-process backend caches downloaded models (outside `node_modules`, so `npm ci` keeps it; checked writable before a download)', parse: text,
  }),
  // registration (BYOC; validated only when ORCH_URL is set)
  orchUrl: setting({
    env: 'ORCH_URL', group: 'registration', type: 'URL', defaultDoc: '—', description: 'orchestrator base URL, e.g. `https://orchestrator:8935`; turns BYOC mode on',
    parse: url('https://orchestrator:8935'),
  }),
  orchSecret: setting({ env: 'ORCH_SECRET', group: 'registration', type: 'string', defaultDoc: '— (required with `ORCH_URL`)', description: 'the orchestrator\'s `-orchSecret`', parse: text }),
  capabilityUrl: setting({
    env: 'CAPABILITY_URL', group: 'registration', type: 'URL', defaultDoc: '`http://localhost:<port>` only when `ORCH_URL` is loopback',
    description: 'where the orchestrator reaches this runner, e.g. `http://gemma-runner:8000`; required when the orchestrator is another host/container (the runner refuses to start without it)', parse: (raw) => raw.trim(),
  }),
  capabilityName: setting(
    { env: 'CAPABILITY_NAME', group: 'registration', type: 'string', defaultDoc: DEFAULTS.capabilityName, description: 'the capability name apps ask for; when set, `/version` reports it instead of the model id', parse: text },
    DEFAULTS.capabilityName,
  ),
  capabilityDescription: setting(
    { env: 'CAPABILITY_DESCRIPTION', group: 'registration', type: 'string', defaultDoc: '…', description: 'free text sent with the registration', parse: text },
    DEFAULTS.capabilityDescription,
  ),
  capabilityCapacity: setting(
    {
      env: 'CAPABILITY_CAPACITY', flag: { name: '--capacity', key: 'capacity', arg: '<n>' }, group: 'server', type: 'integer 1–256', defaultDoc: '1',
      description: 'streams this process serves at once (one shared model backend); a start beyond it answers 503 `Pipeline is still in use`; registered as the BYOC capacity',
      parse: (raw, label) => {
        const n = registrationNumber(1, 'the number of streams served at once')(raw, label);
        if (n > MAX_CAPACITY) throw new Invalid(`${label} must be at most ${MAX_CAPACITY} ${got(raw)}: every stream costs a decoder child and buffers`);
        return n;
      },
    },
    1,
  ),
  capabilityPricePerUnit: setting(
    {
      env: 'CAPABILITY_PRICE_PER_UNIT', group: 'registration', type: 'integer ≥ 0', defaultDoc: '0', description: 'whole number (go-livepeer reads int64; a fraction is refused at start)',
      parse: registrationNumber(0, PRICE_WHY),
    },
    0,
  ),
  capabilityPriceScaling: setting(
    {
      env: 'CAPABILITY_PRICE_SCALING', group: 'registration', type: 'integer ≥ 1', defaultDoc: '1', description: 'whole number ≥ 1',
      parse: registrationNumber(1, 'go-livepeer parses price_scaling as an integer (int64)'),
    },
    1,
  ),
  capabilityCurrency: setting({ env: 'CAPABILITY_CURRENCY', group: 'registration', type: 'string', defaultDoc: '—', description: 'go-livepeer `currency`; without it the price is in wei', parse: text }),
  orchTlsVerify: setting(
    { env: 'ORCH_TLS_VERIFY', group: 'registration', type: 'boolean (`1`/`true`/`yes`)', defaultDoc: 'off', description: 'verify the orchestrator\'s TLS certificate', parse: flagOn },
    false,
  ),
  capabilityRefreshMs: setting(
    {
      env: 'CAPABILITY_REFRESH_MS', group: 'registration', type: 'milliseconds', defaultDoc: String(DEFAULTS.capabilityRefreshMs), description: 're-registration period while idle',
      parse: wholeNumber(0, Number.MAX_SAFE_INTEGER, ' of milliseconds'),
    },
    DEFAULTS.capabilityRefreshMs,
  ),
  // logging
  logLevel: setting({
    env: 'LOG_LEVEL', group: 'logging', type: 'pino level', defaultDoc: 'info (`demo`, `watch`: warn)', description: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`',
    parse: wrap(parseLogLevel),
  }),
  logFormat: setting<LogFormat>({
    env: 'LOG_FORMAT', group: 'logging', type: '`json` | `pretty`', defaultDoc: 'pretty on a terminal, else json',
    description: '`json` (one object per line) or `pretty` (readable lines); anything else is refused at start', parse: wrap((raw) => parseLogFormat(raw)),
  }),
  // ---- many streams per process (issue 13): the shared backend's scheduler
  maxInFlight: setting({
    env: 'MAX_REQUESTS_IN_FLIGHT', flag: { name: '--max-in-flight', key: 'maxInFlight', arg: '<n>' }, group: 'server', type: 'integer 1–256',
    defaultDoc: 'engine: `CAPABILITY_CAPACITY`; in-process: `1`',
    description: 'most model requests in flight at once, across all streams; the rest wait their turn, longest-waiting stream first (`stats.timings_ms.queue`)',
    parse: wholeNumber(1, MAX_CAPACITY),
  }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
type ValueOf<S> = S extends Setting<infer _T, infer V> ? V : never;
/** Every setting's resolved value (flag > env > default). */
export type Settings = { -readonly [K in SettingKey]: ValueOf<(typeof SETTINGS)[K]> };

// ---- resolution -----------------------------------------------------------------------------------

export type Env = Record<string, string | undefined>;

/** The raw text a setting resolves from (flag > non-blank env), or undefined. */
function rawOf(s: Spec<unknown>, env: Env, flags: RuntimeFlags): string | undefined {
  const f = s.flag ? flags[s.flag.key] : undefined;
  if (f !== undefined) return f;
  const e = env[s.env];
  return e === undefined || e.trim() === '' ? undefined : e;
}

/**
 * Resolves and validates the settings of `groups` (default: all; the registration group only when
 * ORCH_URL is set). Returns the values and every problem; `parseRuntimeConfig` throws them.
 */
export function resolveSettings(
  env: Env,
  flags: RuntimeFlags = {},
  groups: readonly SettingGroup[] = ['server', 'backend', 'registration', 'logging'],
): { settings: Settings; issues: ConfigIssue[] } {
  const out: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  const byoc = rawOf(SETTINGS.orchUrl, env, flags) !== undefined;
  for (const [key, s] of Object.entries(SETTINGS) as [SettingKey, Setting<unknown, unknown>][]) {
    out[key] = s.fallback;
    // CAPABILITY_CAPACITY is a server setting that the registration also sends.
    const inGroups = groups.includes(s.group) || (key === 'capabilityCapacity' && groups.includes('registration'));
    const active = inGroups && (s.group !== 'registration' || byoc || key === 'capabilityName');
    if (!active) continue;
    const raw = rawOf(s, env, flags);
    if (raw === undefined) continue;
    try {
      out[key] = s.parse(raw, s.label);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      issues.push({ setting: s.env, message: err.message });
    }
  }
  return { settings: out as Settings, issues };
}

// ---- sections -------------------------------------------------------------------------------------

export interface ServerConfig {
  port: number;
  host: string;
  apiToken: string | undefined;
  startWaitMs: number;
  bodyTimeoutMs: number;
  /** Undefined = any host (open); BYOC mode defaults it to the orchestrator's host. */
  trickleAllowedHosts: string[] | undefined;
  pipeline: string | undefined;
  capabilityName: string | undefined;
  appVersion: string | undefined;
  /** Streams served at once (CAPABILITY_CAPACITY / --capacity; 1 = one stream, as PyTrickle). */
  capacity: number;
  /** MAX_REQUESTS_IN_FLIGHT; undefined = the backend's default (`defaultMaxInFlight`). */
  maxInFlight: number | undefined;
}

/** Registration settings as validated here; src/server/register.ts adds the port-dependent rules. */
export interface RegistrationSettings {
  orchUrl: string;
  orchSecret: string | undefined;
  capabilityUrl: string | undefined;
  name: string;
  description: string;
  capacity: number;
  pricePerUnit: number;
  priceScaling: number;
  currency: string | undefined;
  tlsVerify: boolean;
  refreshMs: number;
}

export interface LogConfig {
  /** Undefined: the command's default (`info` for serve, `warn` for demo and watch). */
  level: string | undefined;
  /** Undefined: pretty exactly when the log's stream is a terminal. */
  format: LogFormat | undefined;
}

export interface RuntimeConfig {
  server: ServerConfig;
  backend: BackendConfig;
  /** Undefined when ORCH_URL is not set (not in BYOC mode). */
  registration: RegistrationSettings | undefined;
  log: LogConfig;
}

function backendSection(s: Settings, env: Env, issues: ConfigIssue[]): BackendConfig {
  const baseURL = s.baseUrl || s.vllmBaseUrl || undefined;
  const backend: BackendKind = s.backend ?? (baseURL ? 'openai' : 'transformers');
  if (backend === 'openai' && !baseURL) {
    issues.push({ setting: 'OPENAI_BASE_URL', message: 'the openai backend needs OPENAI_BASE_URL (or VLLM_BASE_URL, or --base-url)' });
  }
  return {
    backend,
    modelId: s.modelId || (backend === 'openai' ? DEFAULT_OPENAI_MODEL : DEFAULT_TRANSFORMERS_MODEL),
    timeoutMs: s.requestTimeoutMs,
    ...(baseURL ? { baseURL } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
    ...(s.modelDir ? { modelDir: s.modelDir } : {}),
    ...(s.dtype !== undefined ? { dtype: s.dtype } : {}),
    ...(s.device !== undefined ? { device: s.device } : {}),
    cacheDir: s.cacheDir || defaultModelCacheDir(env),
    ...(s.maxImages !== undefined ? { maxImages: s.maxImages } : {}),
    ...(s.audioPart !== undefined ? { audioPart: s.audioPart === 'none' ? null : s.audioPart } : {}),
    ...(s.audioPadS !== undefined ? { audioPadSamples: Math.round(s.audioPadS * AUDIO_SAMPLE_RATE) } : {}),
    ...(s.warmupDeadlineMs !== undefined ? { warmupDeadlineMs: s.warmupDeadlineMs } : {}),
  };
}

function registrationSection(s: Settings): RegistrationSettings | undefined {
  if (!s.orchUrl) return undefined;
  return {
    orchUrl: s.orchUrl,
    orchSecret: s.orchSecret,
    capabilityUrl: s.capabilityUrl,
    name: s.capabilityName,
    description: s.capabilityDescription,
    capacity: s.capabilityCapacity,
    pricePerUnit: s.capabilityPricePerUnit,
    priceScaling: s.capabilityPriceScaling,
    currency: s.capabilityCurrency,
    tlsVerify: s.orchTlsVerify,
    refreshMs: s.capabilityRefreshMs,
  };
}

function throwIfAny(issues: ConfigIssue[]): void {
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * The runner's whole configuration from the environment and the command's flags (flag > env >
 * default). Throws one ConfigError listing every problem. The result is frozen.
 */
export function parseRuntimeConfig(env: Env, flags: RuntimeFlags = {}): Readonly<RuntimeConfig> {
  const { settings: s, issues } = resolveSettings(env, flags);
  const backend = backendSection(s, env, issues);
  throwIfAny(issues);
  const cfg: RuntimeConfig = {
    server: {
      port: s.port,
      host: s.host,
      apiToken: s.apiToken || undefined,
      startWaitMs: s.startWaitMs,
      bodyTimeoutMs: s.bodyTimeoutMs,
      trickleAllowedHosts: s.trickleAllowedHosts,
      pipeline: s.pipeline,
      // /version falls back to the model id when unset, so only an explicit name is passed on
      capabilityName: rawOf(SETTINGS.capabilityName, env, flags) === undefined ? undefined : s.capabilityName,
      appVersion: s.appVersion,
      capacity: s.capabilityCapacity,
      maxInFlight: s.maxInFlight,
    },
    backend,
    registration: registrationSection(s),
    log: { level: s.logLevel, format: s.logFormat },
  };
  return Object.freeze(cfg);
}

/**
 * Model requests in flight across all streams when MAX_REQUESTS_IN_FLIGHT is unset: an engine batches
 * concurrent requests (one per stream), the in-process backend runs one at a time.
 */
export function defaultMaxInFlight(backend: BackendKind, capacity: number): number {
  return backend === 'transformers' ? 1 : capacity;
}

/** Only the backend settings (flag > env > default); throws a ConfigError. */
export function backendConfigFrom(env: Env, flags: RuntimeFlags = {}): BackendConfig {
  const { settings, issues } = resolveSettings(env, flags, ['backend']);
  const cfg = backendSection(settings, env, issues);
  throwIfAny(issues);
  return cfg;
}

/** Only LOG_LEVEL / LOG_FORMAT (for commands that configure their own logging); throws a ConfigError. */
export function logConfigFrom(env: Env): LogConfig {
  const { settings, issues } = resolveSettings(env, {}, ['logging']);
  throwIfAny(issues);
  return { level: settings.logLevel, format: settings.logFormat };
}

/** Configures the root logger from the parsed LOG_LEVEL / LOG_FORMAT (`defaultLevel` when unset). */
export function configureLogging(log: LogConfig, opts: { fd?: 1 | 2; defaultLevel?: string } = {}): void {
  configureRootLogger({
    ...(opts.fd ? { fd: opts.fd } : {}),
    level: log.level ?? opts.defaultLevel ?? 'info',
    ...(log.format ? { format: log.format } : {}),
  });
}

/** One setting on its own (flag > env > default), for commands that use only a few; throws a ConfigError. */
export function readSetting<K extends SettingKey>(env: Env, key: K, flags: RuntimeFlags = {}): Settings[K] {
  const s: Setting<unknown, unknown> = SETTINGS[key];
  const raw = rawOf(s, env, flags);
  if (raw === undefined) return s.fallback as Settings[K];
  try {
    return s.parse(raw, s.label) as Settings[K];
  } catch (err) {
    if (err instanceof Invalid) throw new ConfigError([{ setting: s.env, message: err.message }]);
    throw err;
  }
}

/** Only the registration settings (undefined without ORCH_URL); throws a ConfigError. */
export function registrationSettingsFrom(env: Env): RegistrationSettings | undefined {
  const { settings, issues } = resolveSettings(env, {}, ['registration']);
  throwIfAny(issues);
  return registrationSection(settings);
}

/**
 * The commander option for a setting with a flag: its help names the env twin and the default.
 * No commander default is set, so "not given" stays distinguishable (flag > env > default).
 */
export function flagOption(key: SettingKey): { flags: string; description: string } {
  const s: Spec<unknown> = SETTINGS[key];
  if (!s.flag) throw new Error(`setting ${key} has no flag`);
  const def = SETTINGS[key].defaultDoc.replace(/`/g, '');
  const tail = def === '—' ? `env ${s.env}` : `env ${s.env}; default ${def}`;
  return { flags: `${s.flag.name} ${s.flag.arg}`, description: `${s.description.replace(/`/g, '')} (${tail})` };
}
