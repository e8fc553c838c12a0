/**
 * `gemma3n-trickle serve` as a real process: it listens, loads the configured engine backend,
 * accepts a stream, and on SIGTERM stops it and exits 0 within 10 s.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeEngine } from '../helpers/model.js';
import { request } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { sourceCliArgs } from '../helpers/cli.js';

describe('serve command', () => {
  /** Runs `serve` on an ephemeral loopback port; `url()` is the control API once its listening line was logged. */
  function startServe(env: Record<string, string>): { child: ChildProcessWithoutNullStreams; exited: Promise<number | null>; url: () => string | undefined } {
    const child = spawn(process.execPath, sourceCliArgs('serve', '--port', '0', '--host', '127.0.0.1'), {
      env: { ...process.env, LOG_LEVEL: 'info', BACKEND: 'openai', PORT: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let url: string | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; url?: string };
        if (rec.msg === 'control API listening') url = rec.url;
      } catch {
        // not a log line
      }
    });
    return { child, exited, url: () => url };
  }

  it('starts, serves a stream and exits 0 on SIGTERM within 10 s', async () => {
    const engine = await startFakeEngine();
    const { child, exited, url } = startServe({ OPENAI_BASE_URL: engine.baseURL });
    try {
      const base = await waitFor('the listening log line', () => url(), 30_000);
      await waitFor('IDLE', async () => (await request(base, 'GET', '/health')).body.status === 'IDLE', 20_000);
      const version = await request(base, 'GET', '/version');
      assert.equal((version.body as { backend?: string }).backend, 'openai');
      assert.equal((await request(base, 'POST', '/stream/start', { gateway_request_id: 'sig' })).status, 200);
      assert.deepEqual((await request(base, 'GET', '/health')).body, { status: 'OK' });
      const sentAt = Date.now();
      child.kill('SIGTERM');
      const code = await exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - sentAt < 10_000, 'exited within 10 s');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await engine.close();
    }
  });

  it('serves --capacity streams sharing one scheduled backend, 503 beyond, and SIGTERM stops them all', async () => {
    const engine = await startFakeEngine();
    const { child, exited, url } = startServe({ OPENAI_BASE_URL: engine.baseURL, CAPABILITY_CAPACITY: '2', MAX_REQUESTS_IN_FLIGHT: '1' });
    try {
      const base = await waitFor('the listening log line', () => url(), 30_000);
      await waitFor('IDLE', async () => (await request(base, 'GET', '/health')).body.status === 'IDLE', 20_000);
      for (const id of ['m1', 'm2']) assert.equal((await request(base, 'POST', '/stream/start', { gateway_request_id: id }, { 'x-stream-id': id })).status, 200);
      const third = await request(base, 'POST', '/stream/start', { gateway_request_id: 'm3' }, { 'x-stream-id': 'm3' });
      assert.equal(third.status, 503);
      const status = await request(base, 'GET', '/stream/status');
      assert.equal(status.body.capacity, 2);
      assert.equal((status.body.model_scheduler as Record<string, unknown>).max_in_flight, 1);
      assert.deepEqual(((await request(base, 'GET', '/streams')).body.streams as Array<Record<string, unknown>>).map((x) => x.stream_id), ['m1', 'm2']);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await engine.close();
    }
  });

  /** Runs `serve` expecting it to refuse its configuration: resolves with its exit code and stderr. */
  async function refused(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, sourceCliArgs('serve', ...args), {
      env: { ...process.env, LOG_LEVEL: 'silent', BACKEND: 'openai', OPENAI_BASE_URL: 'http://127.0.0.1:1/v1', PORT: '', ORCH_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    return { code, stderr };
  }

  it('refuses a non-numeric or out-of-range --port with a clear message (not "Received type number (NaN)")', async () => {
    const r = await refused(['--port', 'abc'], {});
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--port \/ PORT must be a whole number from 0 to 65535 \(got "abc"\)/);
    assert.doesNotMatch(r.stderr, /NaN/);
    const env = await refused([], { PORT: '70000' });
    assert.match(env.stderr, /--port \/ PORT must be a whole number from 0 to 65535 \(got "70000"\)/);
  });

  it('reports every bad setting at once, before listening, not only the first', async () => {
    const r = await refused(['--port', 'abc', '--backend', 'llamacpp'], { START_WAIT_MS: '5s', LOG_LEVEL: 'verbose' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid configuration \(4 problems\)/);
    assert.match(r.stderr, /--port \/ PORT must be a whole number from 0 to 65535 \(got "abc"\)/);
    assert.match(r.stderr, /START_WAIT_MS must be a whole number of milliseconds \(got "5s"\)/);
    assert.match(r.stderr, /--backend \/ BACKEND must be "openai" or "transformers" \(got "llamacpp"\)/);
    assert.match(r.stderr, /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)/);
  });

  it('refuses a fractional capability price at start, saying go-livepeer would reject it', async () => {
    const r = await refused(['--port', '0', '--host', '127.0.0.1'], { ORCH_URL: 'http://127.0.0.1:1', ORCH_SECRET: 's', CAPABILITY_PRICE_PER_UNIT: '0.5' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /CAPABILITY_PRICE_PER_UNIT must be a whole number ≥ 0 \(got "0.5"\): go-livepeer parses price_per_unit as an integer/);
  });

  it('in BYOC mode generates a token, registers it, requires it on the control API and allowlists only the orchestrator host', async () => {
    // Stand-in orchestrator: records registrations (go-livepeer keeps `token` and sends it back as Bearer).
    const registered: Record<string, unknown>[] = [];
    const orch = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.headers.authorization !== 'orch-secret') {
          res.statusCode = 400;
          return res.end('invalid authorization');
        }
        registered.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
        res.end('');
      });
    });
    await new Promise<void>((r) => orch.listen(0, '127.0.0.1', r));
    const orchUrl = `http://127.0.0.1:${(orch.address() as AddressInfo).port}`;
    const engine = await startFakeEngine();
    const { child, exited, url } = startServe({
      OPENAI_BASE_URL: engine.baseURL, API_TOKEN: '', TRICKLE_ALLOWED_HOSTS: '', ORCH_URL: orchUrl, ORCH_SECRET: 'orch-secret', CAPABILITY_URL: 'http://127.0.0.1:1',
    });
    try {
      const base = await waitFor('the listening log line', () => url(), 30_000);
      const reg = await waitFor('a registration', () => registered[0], 20_000);
      const token = String(reg.token ?? '');
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, 'a random 256-bit token');
      assert.equal((await request(base, 'GET', '/stream/status')).status, 401);
      const auth = { authorization: `Bearer ${token}` };
      assert.equal((await request(base, 'GET', '/stream/status', undefined, auth)).status, 200);
      await waitFor('IDLE', async () => (await request(base, 'GET', '/health')).body.status === 'IDLE', 20_000);
      const elsewhere = await request(base, 'POST', '/stream/start', { gateway_request_id: 'x', subscribe_url: 'http://localhost:9/in' }, auth);
      assert.equal(elsewhere.status, 400);
      assert.match(String(elsewhere.body.message), /subscribe_url: host localhost:9 is not an allowed trickle host \(allowed: 127\.0\.0\.1/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await engine.close();
      await new Promise<void>((r) => orch.close(() => r()));
    }
  });
});

