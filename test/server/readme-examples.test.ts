/**
 * The README's curl examples, run as written (only host:port rewritten to this test's servers) with the
 * real curl against the running server: an embedded trickle server plays the orchestrator, a real
 * publisher feeds generated media, and the OpenAI backend talks to the fake engine. Also pins spec case
 * 37: when the orchestrator deletes the input channel, the stream ends and /health reads IDLE.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { OpenAIBackend } from '../../src/model/openai.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleServer } from '../../src/trickle/server.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import { makeTestSegments, publishSegments } from '../helpers/media.js';
import { startFakeEngine, TEST_AUDIO_PAD_SAMPLES, type FakeEngine } from '../helpers/model.js';
import { collectChannel, type ChannelCollector } from '../helpers/pipeline.js';
import { request, startTestServer } from '../helpers/server.js';
import { rootLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Every `curl …` command in the README's sh blocks, in document order: continuation lines (trailing
 * backslash) and multi-line single-quoted bodies belong to the command; trailing `# …` comments do not.
 */
function readmeCurlCommands(): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const out: string[] = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let current: string | undefined;
    for (const line of (block[1] ?? '').split('\n')) {
      if (current === undefined) {
        if (!line.trim().startsWith('curl ')) continue;
        current = '';
      }
      current += `${line}\n`;
      const openQuote = (current.match(/'/g) ?? []).length % 2 === 1;
      if (!openQuote && !line.trimEnd().endsWith('\\')) {
        out.push(current.replace(/\\\n/g, ' ').replace(/\s+#[^'\n]*$/, '').trim());
        current = undefined;
      }
    }
  }
  return out;
}

function runCurl(cmd: string): Promise<{ status: number; body: Record<string, unknown> }> {
  // -s: no progress; -w: the status code on a line of its own after the body.
  const withStatus = cmd.replace(/^curl /, `curl -s -w '\\n%{http_code}' `);
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', withStatus], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${cmd}\n${stderr}`));
      const lines = stdout.trimEnd().split('\n');
      const status = Number(lines.pop());
      resolve({ status, body: JSON.parse(lines.join('\n') || '{}') as Record<string, unknown> });
    });
  });
}

describe('README curl examples against the running server', () => {
  let engine: FakeEngine;
  let trickle: TrickleServer;
  let srv: RunnerServerHandle;
  let data: ChannelCollector;
  let input: TricklePublisher;
  let feeding: Promise<void>;
  let stopFeeding = false;

  before(async () => {
    engine = await startFakeEngine();
    trickle = new TrickleServer({ port: 0, host: '127.0.0.1', autocreate: true });
    await trickle.listen();
    trickle.createChannel('input', 'video/MP2T');
    trickle.createChannel('data', 'application/jsonl');
    const backend = new OpenAIBackend({ baseURL: engine.baseURL, modelId: 'google/gemma-3n-E4B-it', timeoutMs: 10_000, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
    srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
    await waitFor('engine warm-up', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE');
    data = collectChannel(trickle.channelUrl('data'), { start: 0 });
    // Small and paced (10× real time): the examples need records flowing, not decoding work.
    const segments = await makeTestSegments({ durationS: 8, fps: 15, width: 320, height: 180, gopS: 1, audio: 'aac', toneHz: 440 });
    input = new TricklePublisher({ url: trickle.channelUrl('input'), mimeType: 'video/MP2T' });
    // Loops the input until the test ends the stream by deleting the channel.
    feeding = (async () => {
      while (!stopFeeding) {
        for (const seg of segments) {
          if (stopFeeding) break;
          await publishSegments(input, [seg]).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
  });

  after(async () => {
    stopFeeding = true;
    await input.close().catch(() => undefined);
    await feeding;
    await data.stop();
    await srv.close();
    await trickle.close();
    await engine.close();
  });

  it('runs start, params, status, health, stop and a bad start as the README shows them', { timeout: 90_000 }, async () => {
    const base = trickle.url.replace(/\/$/, '');
    const cmds = readmeCurlCommands().map((c) =>
      c.replaceAll('http://localhost:8000', srv.url).replaceAll('http://127.0.0.1:3389', base),
    );
    const find = (re: RegExp) => {
      const c = cmds.find((x) => re.test(x));
      assert.ok(c, `README has a curl example matching ${re}`);
      return c;
    };
    const start = await runCurl(find(/\/api\/stream\/start [\s\S]*my-stream-1/));
    assert.equal(start.status, 200, JSON.stringify(start.body));
    assert.equal(start.body.status, 'success');
    assert.equal(start.body.request_id, 'my-stream-1');

    await waitFor('a first generation record', () => data.records.some((r) => r.type === 'generation'), 60_000);
    const first = data.records.find((r) => r.type === 'generation') as { prompt: string; stats: Record<string, number> };
    assert.equal(first.prompt, 'Describe what is happening in the video and transcribe any speech.');
    assert.equal(first.stats.max_new_tokens, 700);

    const params = await runCurl(find(/\/api\/stream\/params/));
    assert.equal(params.status, 200);
    assert.equal(params.body.status, 'success');
    await waitFor('a record with the updated prompt', () => data.records.some((r) => r.type === 'generation' && r.prompt === 'Focus on the actions of the main person in the scene.'), 60_000);

    // Prometheus metrics carry this stream's series while it runs.
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    const value = (name: string, labels: string) => {
      const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(metrics);
      return m ? Number(m[1]) : NaN;
    };
    const sid = 'stream_id="my-stream-1"';
    assert.ok(value('gemma3n_trickle_segments_in_total', sid) > 0, 'segments in');
    assert.ok(value('gemma3n_trickle_bytes_in_total', sid) > 0, 'bytes in');
    assert.ok(value('gemma3n_trickle_segments_out_total', sid) > 0, 'segments passed through');
    assert.ok(value('gemma3n_trickle_frames_sampled_total', sid) > 0, 'frames sampled');
    assert.ok(value('gemma3n_trickle_cycles_total', `${sid},outcome="ok"`) >= 2, 'cycles run');
    assert.ok(value('gemma3n_trickle_records_published_total', sid) >= 2, 'records published');
    assert.ok(value('gemma3n_trickle_cycle_latency_seconds_count', sid) >= 2, 'cycle latency histogram');
    assert.match(metrics, /gemma3n_trickle_queue_depth\{stream_id="my-stream-1",queue="data"\}/);
    assert.match(metrics, /^gemma3n_trickle_active_streams 1$/m);

    const status = await runCurl(find(/\/api\/stream\/status/));
    assert.equal(status.status, 200);
    assert.equal(status.body.client_active, true);
    const health = await runCurl(find(/\/health/));
    assert.deepEqual(health.body, { status: 'OK' });

    const stop = await runCurl(find(/\/api\/stream\/stop/));
    assert.deepEqual(stop.body, { status: 'success', message: 'Stream stopped successfully' });
    // A finished stream's series are dropped, so a long-lived server does not grow without bound.
    await waitFor('the stream\'s metric series to go', async () => !(await (await fetch(`${srv.url}/metrics`)).text()).includes(sid));

    const bad = await runCurl(find(/generate_every_s": 0\.1/));
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /^Error starting stream: generate_every_s: must be at least 0\.25/);
  });

  it('returns to IDLE when the orchestrator deletes the input channel mid-stream (case 37)', { timeout: 60_000 }, async () => {
    const res = await request(srv.url, 'POST', '/stream/start', {
      gateway_request_id: 'ends-on-its-own',
      subscribe_url: trickle.channelUrl('input'),
    });
    assert.equal(res.status, 200, res.text);
    await waitFor('input segments flowing', async () => {
      const s = await request(srv.url, 'GET', '/stream/status');
      return ((s.body.stream as { counters?: Record<string, number> } | undefined)?.counters?.segments_in ?? 0) > 0;
    }, 30_000);
    // Stop the feeder before deleting: with autocreate on, a later POST would re-create the channel.
    stopFeeding = true;
    await input.close();
    await feeding;
    assert.ok(trickle.deleteChannel('input'));
    await waitFor('IDLE after input ended', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE', 10_000);
    const status = await request(srv.url, 'GET', '/stream/status');
    assert.equal(status.body.client_active, false);
    assert.equal(status.body.active_streams, 0);
    assert.equal((await request(srv.url, 'POST', '/stream/stop')).status, 400);
  });
});
