/**
 * Trickle over HTTPS with a self-signed certificate, as orchestrators commonly serve it: the clients
 * connect when TLS verification is off (the default, like PyTrickle) and refuse with a clear error when
 * it is on. The certificate is made at test time with openssl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';

async function selfSignedCert(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'trickle-tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await new Promise<void>((resolve, reject) =>
    execFile(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      (err, _out, stderr) => (err ? reject(new Error(`openssl: ${stderr}`)) : resolve()),
    ),
  );
  try {
    return { key: await readFile(key), cert: await readFile(cert) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readBody(body: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

describe('trickle over HTTPS with a self-signed certificate', () => {
  let server: TrickleServer;
  before(async () => {
    server = new TrickleServer({ port: 0, host: '127.0.0.1', tls: await selfSignedCert() });
    await server.listen();
    server.createChannel('secure', 'application/json');
  });
  after(async () => {
    await server.close();
  });

  it('publishes and subscribes with verification off (the default)', async () => {
    assert.match(server.url, /^https:\/\//);
    const pub = new TricklePublisher({ url: server.channelUrl('secure'), mimeType: 'application/json' });
    const sub = new TrickleSubscriber({ url: server.channelUrl('secure'), start: 0 });
    try {
      await pub.publish('{"hello":"tls"}');
      const seg = await sub.next();
      assert.ok(seg);
      assert.equal(await readBody(seg.body), '{"hello":"tls"}');
    } finally {
      await pub.close();
      await sub.close();
    }
  });

  it('refuses the self-signed certificate when verification is on, with a clear error', async () => {
    const pub = new TricklePublisher({ url: server.channelUrl('secure'), mimeType: 'application/json', tlsVerify: true, maxRetries: 0 });
    const sub = new TrickleSubscriber({ url: server.channelUrl('secure'), start: 0, tlsVerify: true, maxRetries: 1, retryDelayMs: 10 });
    try {
      await assert.rejects(pub.publish('{"x":1}'), /self[- ]signed certificate/i);
      await assert.rejects(sub.next(), /self[- ]signed certificate/i);
    } finally {
      await pub.close();
      await sub.close();
    }
  });
});
