/**
 * Trickle over HTTPS with a self-signed certificate, as orchestrators commonly serve it: the clients
 * connect when TLS verification is off (the default, like PyTrickle) and refuse with a clear error when
 * it is on. The certificate is made at test time with openssl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { selfSignedCert } from '../helpers/trickle.js';


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
