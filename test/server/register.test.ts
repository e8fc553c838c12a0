/**
 * BYOC capability registration against a STAND-IN ORCHESTRATOR: a loopback HTTP server behaving like
 * go-livepeer's documented behaviour (production-path-audit.md §3.2): `/capability/register` needs
 * `Authorization` = the orchestrator secret (else 400 "invalid authorization"), parses the body into
 * int64 prices (a fraction is a 400 parse error), keeps capabilities in memory only (a restart forgets
 * them) and calls the runner with `Authorization: Bearer <token>` when one was registered (401 →
 * capability removed).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keepRegistered, registerCapability, registrationBody, registrationFromEnv, type CapabilityRegistration } from '../../src/server/register.js';
import { rootLogger } from '../../src/log.js';
import { LifecycleBackendDouble, startTestServer } from '../helpers/server.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { waitFor } from '../helpers/wait.js';

interface Capability {
  url: string;
  name: string;
  capacity: number;
  price_per_unit: number;
  price_scaling: number;
  token?: string;
}

/** Stand-in for go-livepeer's orchestrator: registration endpoint, in-memory capabilities, runner calls. */
class StandInOrchestrator {
  readonly capabilities = new Map<string, Capability>();
  readonly answers: { status: number; body: string }[] = [];
  registrations = 0;
  private server: Server | undefined;
  constructor(
    readonly secret: string,
    public port = 0,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answer = (status: number, body: string) => {
          this.answers.push({ status, body });
          res.statusCode = status;
          res.end(body);
        };
        if (req.url !== '/capability/register') return answer(404, 'not found');
        if (req.headers.authorization !== this.secret) return answer(400, 'invalid authorization');
        let cap: Capability;
        try {
          cap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Capability;
        } catch (err) {
          return answer(400, (err as Error).message);
        }
        for (const k of ['price_per_unit', 'price_scaling', 'capacity'] as const) {
          if (!Number.isInteger(cap[k])) return answer(400, `json: cannot unmarshal number ${cap[k]} into Go struct field ExternalCapability.${k} of type int64`);
        }
        this.registrations++;
        this.capabilities.set(cap.name, cap); // RegisterCapability replaces the entry
        return answer(200, '');
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** A restart: the process goes away and comes back with no capabilities (they live in memory only). */
  async restart(): Promise<void> {
    await this.close();
    this.capabilities.clear();
    await this.listen();
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    s?.closeAllConnections();
  }

  /** The orchestrator's start call to the runner (stream_orchestrator.go:39,412-421); 401 removes the capability. */
  async callStart(name: string, streamId: string): Promise<number> {
    const cap = this.capabilities.get(name);
    assert.ok(cap, `capability ${name} registered`);
    const body = JSON.stringify({ gateway_request_id: streamId, params: null });
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-stream-id': streamId };
    if (cap.token) headers.authorization = `Bearer ${cap.token}`;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${cap.url}/stream/start`, { method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
    if (status === 401) this.capabilities.delete(name);
    return status;
  }
}

function reg(env: NodeJS.ProcessEnv, token?: string): CapabilityRegistration {
  const r = registrationFromEnv(env, 8000, token);
  assert.ok(r);
  return r.registration;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('BYOC capability registration: configuration', () => {
  it('is off without ORCH_URL, and refuses ORCH_URL without ORCH_SECRET', () => {
    assert.equal(registrationFromEnv({}, 8000), undefined);
    assert.throws(() => registrationFromEnv({ ORCH_URL: 'http://127.0.0.1:8935' }, 8000), /ORCH_URL is set but ORCH_SECRET is not/);
  });

  it('refuses fractional or negative prices before sending, saying go-livepeer rejects them', () => {
    const base = { ORCH_URL: 'http://127.0.0.1:8935', ORCH_SECRET: 's' };
    assert.throws(() => registrationFromEnv({ ...base, CAPABILITY_PRICE_PER_UNIT: '0.5' }, 8000), /CAPABILITY_PRICE_PER_UNIT must be a whole number ≥ 0 \(got "0.5"\): go-livepeer parses price_per_unit as an integer \(int64\) and answers 400 to a fraction/);
    assert.throws(() => registrationFromEnv({ ...base, CAPABILITY_PRICE_PER_UNIT: '-1' }, 8000), /CAPABILITY_PRICE_PER_UNIT must be a whole number/);
    assert.throws(() => registrationFromEnv({ ...base, CAPABILITY_PRICE_SCALING: '1.5' }, 8000), /CAPABILITY_PRICE_SCALING must be a whole number ≥ 1/);
    assert.throws(() => registrationFromEnv({ ...base, CAPABILITY_CAPACITY: 'two' }, 8000), /CAPABILITY_CAPACITY must be a whole number ≥ 1/);
    assert.equal(reg({ ...base, CAPABILITY_PRICE_PER_UNIT: '1200' }).pricePerUnit, 1200);
  });

  it('refuses a defaulted CAPABILITY_URL (localhost) when the orchestrator is another host, with the fix; warns on an explicit loopback one', () => {
    assert.throws(
      () => registrationFromEnv({ ORCH_URL: 'https://orch.example:8935', ORCH_SECRET: 's' }, 8000),
      /CAPABILITY_URL is not set, so the orchestrator at orch\.example:8935 would be told to call http:\/\/localhost:8000 — its own localhost.*Set CAPABILITY_URL/,
    );
    const explicit = registrationFromEnv({ ORCH_URL: 'https://orch.example:8935', ORCH_SECRET: 's', CAPABILITY_URL: 'http://127.0.0.1:8000' }, 8000);
    assert.match(explicit?.warnings[0] ?? '', /CAPABILITY_URL http:\/\/127\.0\.0\.1:8000 is a loopback address but the orchestrator is at orch\.example:8935/);
    assert.equal(reg({ ORCH_URL: 'http://localhost:8935/', ORCH_SECRET: 's' }).url, 'http://localhost:8000');
  });

  it('registers CAPABILITY_CAPACITY as given (the runner serves that many streams and enforces it)', () => {
    const r = registrationFromEnv({ ORCH_URL: 'http://127.0.0.1:8935', ORCH_SECRET: 's', CAPABILITY_CAPACITY: '4' }, 8000);
    assert.equal(r?.registration.capacity, 4);
    assert.deepEqual(r?.warnings, []);
    assert.equal(JSON.parse(registrationBody(r!.registration)).capacity, 4);
    assert.throws(() => registrationFromEnv({ ORCH_URL: 'http://127.0.0.1:8935', ORCH_SECRET: 's', CAPABILITY_CAPACITY: '0' }, 8000), /CAPABILITY_CAPACITY must be a whole number ≥ 1 \(got "0"\)/);
  });
});

describe('BYOC capability registration: against a stand-in orchestrator', () => {
  it('registers with the secret and the token, and the orchestrator\'s bearer call then passes the runner\'s auth', async () => {
    const orch = new StandInOrchestrator('orch-secret');
    await orch.listen();
    const backend = new LifecycleBackendDouble('ready');
    const runner = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }), apiToken: 'runner-token' });
    try {
      const r = reg({ ORCH_URL: orch.url, ORCH_SECRET: 'orch-secret', CAPABILITY_NAME: 'gemma3n', CAPABILITY_URL: runner.url }, 'runner-token');
      await registerCapability(r, rootLogger(), { delayMs: 10 });
      assert.deepEqual(orch.capabilities.get('gemma3n'), {
        url: runner.url,
        name: 'gemma3n',
        description: 'Gemma 3n live stream description (gemma3n-trickle)',
        capacity: 1,
        price_per_unit: 0,
        price_scaling: 1,
        token: 'runner-token',
      });
      assert.equal(await orch.callStart('gemma3n', 'byoc-1'), 200, 'the orchestrator reaches the runner with the registered token');
      assert.ok(orch.capabilities.has('gemma3n'), 'not removed by a 401');
    } finally {
      await runner.close();
      await orch.close();
    }
  });

  it('logs the orchestrator\'s 400 body (not just "wrong secret") and stops the one-shot retries', async () => {
    const orch = new StandInOrchestrator('right');
    await orch.listen();
    try {
      await assert.rejects(registerCapability(reg({ ORCH_URL: orch.url, ORCH_SECRET: 'wrong' }), rootLogger(), { delayMs: 10 }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'capability_registration_failed');
        assert.match(err.message, /HTTP 400: invalid authorization/);
        return true;
      });
      assert.equal(orch.answers.length, 1);
      // What go-livepeer says to a fractional price, had it been sent (it is refused before sending).
      const fractional = { ...reg({ ORCH_URL: orch.url, ORCH_SECRET: 'right' }), pricePerUnit: 0.5 };
      await assert.rejects(registerCapability(fractional, rootLogger(), { delayMs: 10 }), /HTTP 400: json: cannot unmarshal number 0\.5 into Go struct field ExternalCapability\.price_per_unit of type int64/);
    } finally {
      await orch.close();
    }
  });

  it('keeps retrying until an orchestrator that starts late is up, and re-registers after it restarts and forgets', async () => {
    const port = await freePort();
    const orch = new StandInOrchestrator('s', port);
    const ctl = new AbortController();
    let failures = 0;
    const r = reg({ ORCH_URL: `http://127.0.0.1:${port}`, ORCH_SECRET: 's' });
    const keeper = keepRegistered(r, rootLogger(), {
      isIdle: () => true,
      initialDelayMs: 5,
      maxDelayMs: 20,
      refreshMs: 30,
      signal: ctl.signal,
      onAttempt: (a) => {
        if (!a.ok) failures++;
      },
    });
    try {
      await waitFor('a few refused attempts', () => failures >= 5);
      await orch.listen(); // starts late: well past the old 10 × 2 s budget in attempts
      await waitFor('registered', () => orch.capabilities.has('gemma3n-trickle'));
      await orch.restart();
      assert.equal(orch.capabilities.size, 0);
      await waitFor('registered again after the restart', () => orch.capabilities.has('gemma3n-trickle'));
    } finally {
      ctl.abort();
      await keeper;
      await orch.close();
    }
  });

  it('does not re-register while a stream is active (RegisterCapability would reset Load), and does once idle', async () => {
    const orch = new StandInOrchestrator('s');
    await orch.listen();
    const ctl = new AbortController();
    let idle = true;
    let attempts = 0;
    let waits = 0;
    const keeper = keepRegistered(reg({ ORCH_URL: orch.url, ORCH_SECRET: 's' }), rootLogger(), {
      isIdle: () => idle,
      initialDelayMs: 5,
      refreshMs: 5,
      signal: ctl.signal,
      // The wait counter is the clock: each wait is one refresh period.
      sleep: async () => {
        waits++;
        await new Promise((r) => setImmediate(r));
      },
      onAttempt: () => {
        attempts++;
      },
    });
    try {
      await waitFor('registered', () => orch.registrations >= 1);
      idle = false;
      const attemptsAtBusy = attempts;
      const registrationsAtBusy = orch.registrations;
      await orch.restart(); // the orchestrator forgets while the stream is live
      const waitsAtBusy = waits;
      await waitFor('ten refresh periods while busy', () => waits >= waitsAtBusy + 10);
      assert.ok(attempts <= attemptsAtBusy + 1, 'at most the attempt already in flight when the stream started');
      assert.ok(orch.registrations <= registrationsAtBusy + 1);
      const frozen = attempts;
      await waitFor('ten more refresh periods', () => waits >= waitsAtBusy + 20);
      assert.equal(attempts, frozen, 'no attempt while busy');
      idle = true;
      await waitFor('re-registered once idle', () => orch.capabilities.has('gemma3n-trickle'));
    } finally {
      ctl.abort();
      await keeper;
      await orch.close();
    }
  });
});
