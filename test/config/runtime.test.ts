/**
 * The runtime configuration schema: precedence (flag > env > default), blank variables as unset, one
 * error listing every problem with the flag/variable and the bad value, the BYOC group checked only in
 * BYOC mode, and the README tables generated from it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, DEFAULTS, SETTINGS, defaultMaxInFlight, flagOption, parseRuntimeConfig, readSetting } from '../../src/config/runtime.js';
import { withConfigTables } from '../../src/config/runtime-doc.js';

describe('runtime configuration', () => {
  it('takes a flag over its variable, a variable over the default, and treats a blank variable as unset', () => {
    assert.equal(parseRuntimeConfig({}).server.port, DEFAULTS.port);
    assert.equal(parseRuntimeConfig({ PORT: '9000' }).server.port, 9000);
    assert.equal(parseRuntimeConfig({ PORT: '9000' }, { port: '9100' }).server.port, 9100);
    assert.equal(parseRuntimeConfig({ PORT: '  ', START_WAIT_MS: '' }).server.port, DEFAULTS.port);
    assert.equal(parseRuntimeConfig({ START_WAIT_MS: '' }).server.startWaitMs, DEFAULTS.startWaitMs);
    const b = parseRuntimeConfig({ OPENAI_BASE_URL: 'http://env/v1', MODEL_ID: 'env-model' }, { baseUrl: 'http://flag/v1' }).backend;
    assert.equal(b.backend, 'openai');
    assert.equal(b.baseURL, 'http://flag/v1');
    assert.equal(b.modelId, 'env-model');
  });

  it('lists every problem in one error, each naming the flag and variable and quoting the value', () => {
    let err: unknown;
    try {
      parseRuntimeConfig({ PORT: 'abc', START_WAIT_MS: '5s', BACKEND: 'llamacpp', LOG_FORMAT: 'xml' }, { host: ' ' });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError, 'a ConfigError');
    assert.equal(err.code, 'invalid_config');
    assert.deepEqual(
      err.issues.map((i) => i.setting),
      ['PORT', 'HOST', 'START_WAIT_MS', 'BACKEND', 'LOG_FORMAT'],
    );
    assert.match(err.message, /invalid configuration \(5 problems\)/);
    assert.match(err.message, /--port \/ PORT must be a whole number from 0 to 65535 \(got "abc"\)/);
    assert.match(err.message, /--host \/ HOST must not be empty/);
    assert.match(err.message, /START_WAIT_MS must be a whole number of milliseconds \(got "5s"\)/);
    assert.match(err.message, /--backend \/ BACKEND must be "openai" or "transformers" \(got "llamacpp"\)/);
    assert.match(err.message, /LOG_FORMAT must be "json" or "pretty", got "xml"/);
  });

  it('refuses an unknown LOG_LEVEL with the list of levels (pino would fail later, less clearly)', () => {
    assert.throws(() => parseRuntimeConfig({ LOG_LEVEL: 'verbose' }), /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)/);
    assert.equal(parseRuntimeConfig({ LOG_LEVEL: 'DEBUG' }).log.level, 'debug');
  });

  it('checks the BYOC registration settings only when ORCH_URL is set', () => {
    assert.equal(parseRuntimeConfig({ CAPABILITY_PRICE_PER_UNIT: '0.5' }).registration, undefined);
    assert.throws(
      () => parseRuntimeConfig({ ORCH_URL: 'http://127.0.0.1:8935', ORCH_SECRET: 's', CAPABILITY_PRICE_PER_UNIT: '0.5' }),
      /CAPABILITY_PRICE_PER_UNIT must be a whole number ≥ 0 \(got "0.5"\)/,
    );
    assert.throws(() => parseRuntimeConfig({ ORCH_URL: 'not a url' }), /ORCH_URL is not a valid URL \(got "not a url"\)/);
    const reg = parseRuntimeConfig({ ORCH_URL: 'http://127.0.0.1:8935', ORCH_SECRET: 's', CAPABILITY_REFRESH_MS: '5000', ORCH_TLS_VERIFY: 'yes' }).registration;
    assert.equal(reg?.refreshMs, 5000);
    assert.equal(reg?.tlsVerify, true);
    assert.equal(reg?.capacity, 1);
  });

  it('parses the trickle host allowlist and reports CAPABILITY_NAME only when it is set', () => {
    assert.deepEqual(parseRuntimeConfig({ TRICKLE_ALLOWED_HOSTS: 'Orch:8935, b.example  *' }).server.trickleAllowedHosts, ['orch:8935', 'b.example', '*']);
    assert.equal(parseRuntimeConfig({ TRICKLE_ALLOWED_HOSTS: ' , ' }).server.trickleAllowedHosts, undefined);
    assert.equal(parseRuntimeConfig({}).server.capabilityName, undefined);
    assert.equal(parseRuntimeConfig({ CAPABILITY_NAME: 'cap' }).server.capabilityName, 'cap');
  });

  it('returns a frozen object and reads single settings with the same rules', () => {
    assert.ok(Object.isFrozen(parseRuntimeConfig({})));
    assert.equal(readSetting({ API_TOKEN: 'tok' }, 'apiToken'), 'tok');
    assert.equal(readSetting({ API_TOKEN: '' }, 'apiToken'), undefined);
    assert.throws(() => readSetting({ BODY_TIMEOUT_MS: '-1' }, 'bodyTimeoutMs'), /BODY_TIMEOUT_MS must be a whole number of milliseconds \(got "-1"\)/);
  });

  it('declares each variable and flag once, each with a description, and names the env twin in --help', () => {
    const envs = Object.values(SETTINGS).map((s) => s.env);
    assert.equal(new Set(envs).size, envs.length, 'env names are unique');
    const flags = Object.values(SETTINGS).flatMap((s) => (s.flag ? [s.flag.name] : []));
    assert.equal(new Set(flags).size, flags.length, 'flags are unique');
    for (const s of Object.values(SETTINGS)) assert.ok(s.description.length > 0 && s.type.length > 0, `${s.env} is documented`);
    assert.deepEqual(flagOption('port'), { flags: '--port <port>', description: 'control API port (0 = any free port) (env PORT; default 8000)' });
  });
});

describe('README configuration tables', () => {
  it('match the schema (run `npm run docs` after changing src/config/runtime.ts)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    assert.equal(withConfigTables(readme), readme);
  });
});

describe('runtime configuration: numbers', () => {
  it('takes plain decimal numbers only (no hex, exponent or sign), like the stream params', () => {
    for (const bad of ['0x10', '1e3', '-5', '12ms', 'Infinity']) {
      assert.throws(() => parseRuntimeConfig({ REQUEST_TIMEOUT_MS: bad }), /REQUEST_TIMEOUT_MS must be a positive integer/, bad);
    }
    assert.equal(parseRuntimeConfig({ REQUEST_TIMEOUT_MS: ' 1500 ' }).backend.timeoutMs, 1500);
    assert.throws(() => parseRuntimeConfig({ AUDIO_PAD_S: '0x10' }), /AUDIO_PAD_S must be a number of seconds from 1 to 30 \(got "0x10"\)/);
    assert.equal(parseRuntimeConfig({ AUDIO_PAD_S: '2.5' }).backend.audioPadSamples, 40000);
  });
});

describe('runtime config: many streams per process', () => {
  it('reads the capacity from --capacity or CAPABILITY_CAPACITY (BYOC or not) and MAX_REQUESTS_IN_FLIGHT, with the backend\'s default', () => {
    assert.equal(parseRuntimeConfig({}).server.capacity, 1);
    assert.equal(parseRuntimeConfig({ CAPABILITY_CAPACITY: '6' }).server.capacity, 6);
    assert.equal(parseRuntimeConfig({ CAPABILITY_CAPACITY: '6' }, { capacity: '3' }).server.capacity, 3, 'the flag wins');
    assert.equal(parseRuntimeConfig({ ORCH_URL: 'http://127.0.0.1:8935', ORCH_SECRET: 's', CAPABILITY_CAPACITY: '5' }).registration?.capacity, 5);
    assert.throws(() => parseRuntimeConfig({ CAPABILITY_CAPACITY: '300' }), /CAPABILITY_CAPACITY must be at most 256 \(got "300"\)/);
    assert.equal(parseRuntimeConfig({}).server.maxInFlight, undefined);
    assert.equal(parseRuntimeConfig({ MAX_REQUESTS_IN_FLIGHT: '2' }).server.maxInFlight, 2);
    assert.throws(() => parseRuntimeConfig({ MAX_REQUESTS_IN_FLIGHT: '0' }), /--max-in-flight \/ MAX_REQUESTS_IN_FLIGHT must be a whole number from 1 to 256 \(got "0"\)/);
    assert.equal(defaultMaxInFlight('openai', 8), 8);
    assert.equal(defaultMaxInFlight('transformers', 8), 1);
  });
});

