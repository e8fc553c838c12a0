/**
 * `gemma3n-trickle serve` as a real process: it listens, loads the configured engine backend,
 * accepts a stream, and on SIGTERM stops it and exits 0 within 10 s.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startFakeEngine } from '../helpers/model.js';
import { request } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('serve command', () => {
  it('starts, serves a stream and exits 0 on SIGTERM within 10 s', async () => {
    const engine = await startFakeEngine();
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cli-dev.ts', 'serve', '--port', '0', '--host', '127.0.0.1'], {
      env: { ...process.env, LOG_LEVEL: 'info', BACKEND: 'openai', OPENAI_BASE_URL: engine.baseURL, PORT: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let url: string | undefined;
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === 'control API listening') url = rec.url;
        } catch {
          // not a log line
        }
      });
      const base = await waitFor('the listening log line', () => url, 30_000);
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
});
