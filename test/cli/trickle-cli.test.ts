/**
 * The trickle and model CLI commands as real processes: `trickle-server` serves the protocol,
 * `subscribe` prints a JSONL channel one record per line (and frames one-object-per-segment JSON
 * channels as lines) and exits when the channel is deleted, `make-tiny-model` writes the test model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { makeTestSegments } from '../helpers/media.js';
import { selfSignedCert } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';
import { sourceCliArgs } from '../helpers/cli.js';

function cli(args: string[], env: Record<string, string> = {}): { child: ChildProcessWithoutNullStreams; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, sourceCliArgs(...args), { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
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

  it('subscribe keeps stdout for records (debug logs go to stderr), waits for a channel that appears late, and says end of stream on stderr', { timeout: 60_000 }, async () => {
    const server = cli(['trickle-server', '--port', '0', '--host', '127.0.0.1', '--autocreate']);
    let sub: ReturnType<typeof cli> | undefined;
    try {
      const base = (await waitFor('the server URL', () => /trickle server on (\S+)/.exec(server.err())?.[1], 30_000)).replace(/\/$/, '');
      sub = cli(['subscribe', `${base}/late`, '--start', '0', '--wait-s', '20'], { LOG_LEVEL: 'debug', LOG_FORMAT: 'json' });
      await new Promise((r) => setTimeout(r, 1500)); // the channel does not exist yet
      const pub = new TricklePublisher({ url: `${base}/late`, mimeType: 'application/jsonl' });
      await pub.publish('{"type":"generation","text":"late"}\n');
      await waitFor('the record', () => sub!.out().includes('late'), 20_000);
      await fetch(`${base}/late`, { method: 'DELETE' });
      assert.equal(await sub.exited, 0, sub.err());
      assert.deepEqual(sub.out().trim().split('\n').map((l) => JSON.parse(l) as unknown), [{ type: 'generation', text: 'late' }], 'stdout holds the record and nothing else');
      assert.match(sub.err(), /"level":20/, 'debug logs went to stderr');
      assert.match(sub.err(), /end of stream \(1 segments\)/);
      await pub.close();
    } finally {
      sub?.child.kill('SIGKILL');
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('subscribe reads a channel on an HTTPS trickle server with a self-signed certificate (as orchestrators serve)', { timeout: 60_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'subscribe-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { key, cert } = await selfSignedCert();
    await writeFile(join(dir, 'key.pem'), key);
    await writeFile(join(dir, 'cert.pem'), cert);
    const server = cli(['trickle-server', '--port', '0', '--host', '127.0.0.1', '--tls-key', join(dir, 'key.pem'), '--tls-cert', join(dir, 'cert.pem'), '--channel', 'd:application/jsonl']);
    let sub: ReturnType<typeof cli> | undefined;
    try {
      const base = (await waitFor('the server URL', () => /trickle server on (\S+)/.exec(server.err())?.[1], 30_000)).replace(/\/$/, '');
      assert.match(base, /^https:/);
      const pub = new TricklePublisher({ url: `${base}/d`, mimeType: 'application/jsonl' });
      await pub.publish('{"type":"generation","text":"over tls"}\n');
      sub = cli(['subscribe', `${base}/d`, '--start', '0', '--wait-s', '5']);
      await waitFor('the record', () => sub!.out().includes('over tls'), 20_000);
      await pub.close();
    } finally {
      sub?.child.kill('SIGKILL');
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('subscribe fails with exit code 1 and says so when the channel never appears within --wait-s', { timeout: 30_000 }, async () => {
    const server = cli(['trickle-server', '--port', '0', '--host', '127.0.0.1']);
    try {
      const base = (await waitFor('the server URL', () => /trickle server on (\S+)/.exec(server.err())?.[1], 30_000)).replace(/\/$/, '');
      const sub = cli(['subscribe', `${base}/nope`, '--wait-s', '1']);
      assert.equal(await sub.exited, 1);
      assert.equal(sub.out(), '');
      assert.match(sub.err(), /nope: the channel does not exist \(404\) after waiting 1 s/);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('trickle-server --channel creates channels at start; publish prints a progress line per segment', { timeout: 60_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'publish-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'clip.ts');
    await writeFile(file, Buffer.concat(await makeTestSegments({ durationS: 2, fps: 10, width: 160, height: 120, gopS: 1, audio: null })));
    const server = cli(['trickle-server', '--port', '0', '--host', '127.0.0.1', '--channel', 'in:video/MP2T']);
    try {
      const base = (await waitFor('the server URL', () => /trickle server on (\S+)/.exec(server.err())?.[1], 30_000)).replace(/\/$/, '');
      const next = await fetch(`${base}/in/next`);
      assert.equal(next.status, 200, 'the channel exists before any POST (no --autocreate)');
      const pub = cli(['publish', file, '--url', `${base}/in`, '--segment-s', '1']);
      assert.equal(await pub.exited, 0, pub.err());
      assert.match(pub.err(), /^segment 0 published \(\d+ KiB; 1 published, 0 failed, 0 dropped\)$/m);
      assert.match(pub.err(), /^published 2 segments \(0 failed, 0 dropped\)$/m);
      assert.equal(pub.out(), '');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});

describe('model CLI', () => {
  it('make-tiny-model writes the random-weight test model with the Gemma 3n ONNX export layout', { timeout: 60_000 }, async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'tiny-cli-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const dir = join(root, 'model');
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
