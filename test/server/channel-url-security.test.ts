/**
 * Issue 17 (SSRF through the control API): a start must not be able to aim the runner's trickle
 * channels at an arbitrary URL. A loopback "internal" plain HTTP server stands for what the runner
 * can reach and the caller cannot (cloud metadata, an admin port); its content must never be
 * fetched or written, under every URL trick — each one is a 400 naming the field at the control API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LifecycleBackendDouble, request, startTestServer } from '../helpers/server.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TrickleServer } from '../../src/trickle/server.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import { isMetadataAddress } from '../../src/server/url-policy.js';
import { rootLogger } from '../../src/log.js';

describe('control API: channel URL policy (issue 17)', () => {
  let internal: Server;
  let internalUrl: string;
  let internalHits = 0;
  let trickle: TrickleServer;
  let srv: RunnerServerHandle;
  let open: RunnerServerHandle;

  before(async () => {
    internal = createServer((_req, res) => {
      internalHits++;
      res.end('INTERNAL-SECRET-CREDENTIALS');
    });
    await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
    internalUrl = `http://127.0.0.1:${(internal.address() as AddressInfo).port}`;
    trickle = new TrickleServer({ port: 0, host: '127.0.0.1' });
    await trickle.listen();
    const trickleHostPort = new URL(trickle.channelUrl('x')).host;
    const backend = new LifecycleBackendDouble('ready');
    // DNS stand-in: the sandbox has no resolver; a name that resolves to the metadata address.
    const lookup = async (host: string) => (host === 'evil.example' ? ['169.254.169.254'] : host === 'v6evil.example' ? ['::ffff:169.254.169.254'] : ['127.0.0.1']);
    srv = await startTestServer({
      backend,
      sessionFactory: createSessionFactory({ backend, logger: rootLogger() }),
      trickleUrlPolicy: { allowedHosts: [trickleHostPort], lookup },
    });
    open = await startTestServer({
      backend,
      sessionFactory: createSessionFactory({ backend, logger: rootLogger() }),
      trickleUrlPolicy: { lookup },
    });
  });
  after(async () => {
    await srv.close();
    await open.close();
    await trickle.close();
    await new Promise<void>((r) => internal.close(() => r()));
  });

  const start = (base: string, urls: Record<string, string>) =>
    request(base, 'POST', '/stream/start', { gateway_request_id: 'ssrf', ...urls });

  it('refuses channel URLs with a query or fragment (which keep the /<seq> suffix off the path), naming the field', async () => {
    for (const server of [srv, open]) {
      for (const field of ['subscribe_url', 'publish_url', 'data_url', 'control_url', 'events_url']) {
        for (const trick of ['#', '?x=', '/latest?a=b', '/p#frag']) {
          const res = await start(server.url, { [field]: `${internalUrl}${trick}` });
          assert.equal(res.status, 400, `${field} ${trick}`);
          assert.match(String(res.body.message), new RegExp(`${field}: must not contain a query \\(\\?\\) or fragment \\(#\\)`));
        }
      }
      const cred = await start(server.url, { subscribe_url: 'http://user:pw@127.0.0.1:1/in' });
      assert.equal(cred.status, 400);
    }
    assert.equal(internalHits, 0);
  });

  it('refuses a host that is not on the allowlist, on every channel', async () => {
    for (const field of ['subscribe_url', 'publish_url', 'data_url', 'control_url', 'events_url']) {
      const res = await start(srv.url, { [field]: `${internalUrl}/secret` });
      assert.equal(res.status, 400, field);
      assert.match(String(res.body.message), new RegExp(`${field}: host 127\\.0\\.0\\.1:\\d+ is not an allowed trickle host`));
      assert.match(String(res.body.message), /TRICKLE_ALLOWED_HOSTS/);
    }
    assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
    assert.equal(internalHits, 0);
  });

  it('refuses link-local / metadata targets by address, by name and by what a name resolves to, even with no allowlist', async () => {
    const targets = [
      'http://169.254.169.254/latest/meta-data',
      'http://169.254.170.2/v2/credentials',
      'http://[fe80::1]/x',
      'http://[fd00:ec2::254]/latest',
      'http://[::ffff:169.254.169.254]/latest',
      'http://100.100.100.200/latest',
      'http://metadata.google.internal/computeMetadata/v1',
      'http://METADATA.google.internal./computeMetadata/v1',
      'http://evil.example/in',
      'http://v6evil.example/in',
    ];
    for (const url of targets) {
      const res = await start(open.url, { subscribe_url: url });
      assert.equal(res.status, 400, url);
      assert.match(String(res.body.message), /^Error starting stream: subscribe_url: .*link-local \/ cloud-metadata address/, url);
    }
    assert.equal(internalHits, 0);
  });

  it('still starts a stream on an allowed trickle host', async () => {
    trickle.createChannel('ok-events', 'application/json');
    const res = await start(srv.url, { events_url: trickle.channelUrl('ok-events') });
    assert.equal(res.status, 200, res.text);
    assert.equal((await request(srv.url, 'POST', '/stream/stop')).status, 200);
  });

  it('classifies addresses: link-local and metadata in, ordinary private and public out', () => {
    for (const a of ['169.254.0.1', 'fe80::abcd', 'febf::1', 'fd00:ec2::254', '::ffff:169.254.1.1', '100.100.100.200']) assert.equal(isMetadataAddress(a), true, a);
    for (const a of ['127.0.0.1', '10.0.0.1', '192.168.1.1', '::1', 'fec0::1', 'fd00:ec2::253', '8.8.8.8']) assert.equal(isMetadataAddress(a), false, a);
  });
});
