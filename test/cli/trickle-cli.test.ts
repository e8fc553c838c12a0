/**
 * The trickle and model CLI commands as real processes: `trickle-server` serves the protocol,
 * `subscribe` prints a JSONL channel one record per line (and frames one-object-per-segment JSON
 * channels as lines) and exits when the channel is deleted, `make-tiny-model` writes the test model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { waitFor } from '../helpers/wait.js';

function cli(args: string[]): { child: ChildProcessWithoutNullStreams; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cli-dev.ts', ...args], { env: { ...process.env, LOG_LEVEL: 'silent' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

describe('trickle CLI', () => {
  it('trickle-server + subscribe print JSONL records one per line and end when the channel is deleted', { timeout: 60_000 }, async () => {
    const server = cli(['trickle-server', '--port', '0', '--host', '127.0.0.1', '--autocreate']);
    let sub: ReturnType<typeof cli> | undefined;
    try {
      const base = (await waitFor('the server URL', () => /trickle server on (\S+)/.exec(server.err())?.[1], 30_000)).replace(/\/$/, '');
      const data = new TricklePublisher({ url: `${base}/data`, mimeType: 'application/jsonl' });
      await data.publish('{"type":"generation","text":"one"}\n{"type":"generation","text":"two"}\n');
      const events = new TricklePublisher({ url: `${base}/events`, mimeType: 'application/json' });
      await events.publish('{"event":{"type":"heartbeat"}}');
      await events.publish('{"event":{"type":"status"}}');

      sub = cli(['subscribe', `${base}/data`, '--start', '0']);
      await waitFor('two records on stdout', () => sub!.out().split('\n').filter(Boolean).length >= 2, 30_000);
      await data.publish('{"type":"generation","text":"three"}\n');
      await waitFor('the third record', () => sub!.out().split('\n').filter(Boolean).length >= 3, 10_000);
      assert.deepEqual(
        sub.out().trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text),
        ['one', 'two', 'three'],
      );
      assert.equal((await fetch(`${base}/data`, { method: 'DELETE' })).status, 200);
      assert.equal(await sub.exited, 0);

      const ev = cli(['subscribe', `${base}/events`, '--start', '0']);
      await waitFor('two events', () => ev.out().split('\n').filter(Boolean).length >= 2, 30_000);
      assert.deepEqual(ev.out().trim().split('\n').map((l) => (JSON.parse(l) as { event: { type: string } }).event.type), ['heartbeat', 'status']);
      await fetch(`${base}/events`, { method: 'DELETE' });
      assert.equal(await ev.exited, 0);
      await data.close();
      await events.close();
    } finally {
      sub?.child.kill('SIGKILL');
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});

describe('model CLI', () => {
  it('make-tiny-model writes the random-weight test model with the Gemma 3n ONNX export layout', { timeout: 60_000 }, async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'tiny-cli-')), 'model');
    const run = cli(['make-tiny-model', dir]);
    assert.equal(await run.exited, 0, run.err());
    assert.match(run.out(), /random-weight test model/);
    const files = await readdir(dir);
    for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      assert.ok(files.includes(f), `missing ${f}`);
    }
    const onnx = await readdir(join(dir, 'onnx'));
    for (const g of ['embed_tokens', 'vision_encoder', 'audio_encoder', 'decoder_model_merged']) assert.ok(onnx.includes(`${g}.onnx`), `missing ${g}.onnx`);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { model_type: string };
    assert.equal(config.model_type, 'gemma3n');
  });
});
