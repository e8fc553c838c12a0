/**
 * BYOC capability registration against a local HTTP server standing in for the orchestrator's
 * /capability/register endpoint (a test double that records requests and injects failures).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerCapability, registrationFromEnv } from '../../src/server/register.js';
import { rootLogger } from '../../src/log.js';

async function fakeOrchestrator(statuses: number[]) {
  const seen: { headers: IncomingHttpHeaders; body: Record<string, unknown>; path: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.statusCode = statuses[Math.min(seen.length - 1, statuses.length - 1)] ?? 200;
      res.end('');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('BYOC capability registration', () => {
  it('is off unless ORCH_URL and ORCH_SECRET are both set', () => {
    assert.equal(registrationFromEnv({ ORCH_URL: 'http://o' }, 8000), undefined);
    const reg = registrationFromEnv({ ORCH_URL: 'https://o:8935/', ORCH_SECRET: 's', CAPABILITY_CAPACITY: '2' }, 8000);
    assert.equal(reg?.orchUrl, 'https://o:8935');
    assert.equal(reg?.url, 'http://localhost:8000');
    assert.equal(reg?.capacity, 2);
    assert.equal(reg?.name, 'gemma3n-trickle');
  });

  it('retries while the orchestrator fails, then registers with the secret and the capability body', async () => {
    const orch = await fakeOrchestrator([503, 503, 200]);
    try {
      const reg = registrationFromEnv({ ORCH_URL: orch.url, ORCH_SECRET: 'orch-secret', CAPABILITY_NAME: 'gemma3n', CAPABILITY_URL: 'http://runner:8000' }, 8000);
      assert.ok(reg);
      await registerCapability(reg, rootLogger(), { delayMs: 10 });
      assert.equal(orch.seen.length, 3);
      const last = orch.seen[2];
      assert.equal(last?.path, '/capability/register');
      assert.equal(last?.headers.authorization, 'orch-secret');
      assert.deepEqual(last?.body, {
        url: 'http://runner:8000',
        name: 'gemma3n',
        description: 'Gemma 3n live stream description (gemma3n-trickle)',
        capacity: 1,
        price_per_unit: 0,
        price_scaling: 1,
      });
    } finally {
      await orch.close();
    }
  });

  it('gives up at once on 400 (wrong secret) with a clear error', async () => {
    const orch = await fakeOrchestrator([400]);
    try {
      const reg = registrationFromEnv({ ORCH_URL: orch.url, ORCH_SECRET: 'bad' }, 8000);
      assert.ok(reg);
      await assert.rejects(registerCapability(reg, rootLogger(), { delayMs: 10 }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'capability_registration_failed');
        assert.match(err.message, /HTTP 400/);
        return true;
      });
      assert.equal(orch.seen.length, 1);
    } finally {
      await orch.close();
    }
  });

  it('reports a refused connection after the bounded attempts', async () => {
    const reg = registrationFromEnv({ ORCH_URL: 'http://127.0.0.1:1', ORCH_SECRET: 's' }, 8000);
    assert.ok(reg);
    await assert.rejects(registerCapability(reg, rootLogger(), { attempts: 2, delayMs: 10 }), /ECONNREFUSED/);
  });
});
