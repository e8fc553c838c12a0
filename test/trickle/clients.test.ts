/**
 * Trickle subscriber and publisher over real HTTP on loopback: spec §7 client cases 19–23, streaming
 * behaviour, and the failure paths (server gone mid-segment, connection refused, channel deleted while
 * waiting, channel re-created). FaultyServer is the scripted double used only where a fault or an
 * exact request log is needed.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import type { Readable } from 'node:stream';
import { TrickleError } from '../../src/trickle/errors.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { FaultyServer, rawRequest, sleep, startTrickleServer, until } from '../helpers/trickle.js';

async function readAll(body: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
}

function hang(_req: http.IncomingMessage, _res: http.ServerResponse): void {
  // never answers: a long poll that stays pending until the test closes the server
}

test('case 19: a subscriber that gets 404 ends without retrying (exactly one GET)', async (t) => {
  const fake = new FaultyServer((_req, res) => {
    res.writeHead(404);
    res.end('Stream not found\n');
  });
  const url = await fake.listen();
  t.after(() => fake.close());
  const sub = new TrickleSubscriber({ url: `${url}/ch`, retryDelayMs: 10 });
  assert.equal(await sub.next(), null);
  assert.equal(await sub.next(), null);
  await sleep(100);
  assert.equal(fake.requests.length, 1);
  await sub.close();
});

test('case 20: a 470 with Lp-Trickle-Latest: 12 makes the very next GET ask for /12 with no retry pause', async (t) => {
  const fake = new FaultyServer((req, res, n) => {
    if (n === 1) {
      res.writeHead(470, { 'Lp-Trickle-Latest': '12', 'Lp-Trickle-Seq': '3' });
      res.end('Entry not found');
    } else if (req.url === '/ch/12') {
      res.writeHead(200, { 'Lp-Trickle-Seq': '12', 'Content-Type': 'text/plain' });
      res.end('twelve');
    } else hang(req, res);
  });
  const url = await fake.listen();
  t.after(() => fake.close());
  const sub = new TrickleSubscriber({ url: `${url}/ch`, start: 3, retryDelayMs: 5000 });
  const started = Date.now();
  const seg = await sub.next();
  assert.ok(Date.now() - started < 2000, 'did not wait the 5 s retry pause');
  assert.equal(seg?.seq, 12);
  assert.equal(await readAll(seg.body), 'twelve');
  assert.deepEqual(fake.requests.slice(0, 2).map((r) => r.url), ['/ch/3', '/ch/12']);
  await sub.close();
});

test('case 21: a 200 with Lp-Trickle-Closed is end of stream and no further GET is sent', async (t) => {
  const fake = new FaultyServer((_req, res) => {
    res.writeHead(200, { 'Lp-Trickle-Closed': 'terminated', 'Lp-Trickle-Seq': '0' });
    res.end();
  });
  const url = await fake.listen();
  t.after(() => fake.close());
  const sub = new TrickleSubscriber({ url: `${url}/ch`, start: -1 });
  assert.equal(await sub.next(), null);
  await sleep(100);
  assert.equal(fake.requests.length, 1);
  await sub.close();
});

test('case 22: after next() the publisher holds two POSTs (N active, N+1 preconnected) and sends no N+1 byte before N ends', async (t) => {
  const events: string[] = [];
  const fake = new FaultyServer((req, res) => {
    // The publisher's start-up `GET /next`, answered as a server without /next does (400): start at 0.
    if (req.method === 'GET') return void res.writeHead(400).end('Invalid idx\n');
    const seq = req.url?.split('/').pop();
    events.push(`open ${seq}`);
    req.on('data', (c: Buffer) => events.push(`data ${seq} ${c.toString()}`));
    req.on('end', () => {
      events.push(`end ${seq}`);
      res.writeHead(200, { 'Lp-Trickle-Seq': String(seq) });
      res.end();
    });
  });
  const url = await fake.listen();
  t.after(() => fake.close());
  const pub = new TricklePublisher({ url: `${url}/ch`, mimeType: 'text/plain' });
  const s0 = await pub.next();
  await until(() => events.filter((e) => e.startsWith('open')).length === 2);
  assert.deepEqual(events, ['open 0', 'open 1']);
  assert.equal(fake.requests.find((r) => r.method === 'POST')?.headers['content-type'], 'text/plain');
  assert.equal(fake.requests.find((r) => r.method === 'POST')?.headers['transfer-encoding'], 'chunked');
  await s0.write('a');
  const s1 = await pub.next();
  assert.equal(s1.seq, 1);
  const early = s1.write('b'); // must be held back until s0's body has ended
  await sleep(100);
  assert.ok(!events.includes('data 1 b'), 'no byte of N+1 before N ended');
  assert.equal(events.filter((e) => e.startsWith('open')).length, 3, 'N+2 preconnected');
  await s0.end();
  await early;
  await s1.end();
  assert.ok(events.indexOf('end 0') < events.indexOf('data 1 b'));
  await pub.close();
});

test('case 23: close() ends the preconnected POST as a zero-byte segment (nextWrite advances) and DELETEs when configured', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('keep', 'text/plain');
  srv.createChannel('gone', 'text/plain');

  const keep = new TricklePublisher({ url: srv.channelUrl('keep'), mimeType: 'text/plain' });
  await keep.publish('one');
  assert.equal(srv.nextWriteOf('keep'), 1);
  await keep.close();
  assert.equal(keep.closed, true);
  assert.equal(srv.nextWriteOf('keep'), 2, 'the zero-byte preconnect moved nextWrite');
  const empty = await rawRequest('GET', `${srv.channelUrl('keep')}/1`);
  assert.equal(empty.status, 200);
  assert.equal(empty.body, '');

  const waiter = new TrickleSubscriber({ url: srv.channelUrl('gone'), start: -1 });
  const gone = new TricklePublisher({ url: srv.channelUrl('gone'), mimeType: 'text/plain', deleteOnClose: true });
  const firstP = waiter.next();
  await sleep(50); // the GET for -1 must reach the server before the first byte
  await gone.publish('x');
  const first = await firstP;
  assert.equal(await readAll(first!.body), 'x');
  await gone.close();
  assert.equal(srv.hasChannel('gone'), false);
  assert.equal(await waiter.next(), null, 'the waiting subscriber sees end of stream');
  await waiter.close();
  await assert.rejects(gone.publish('late'), (e: TrickleError) => e.code === 'trickle_closed');
});

test('segments stream end to end: the subscriber gets a segment and its first bytes while the publisher is still writing it', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'video/MP2T');
  const sub = new TrickleSubscriber({ url: srv.channelUrl('ch'), start: -1 });
  const pub = new TricklePublisher({ url: srv.channelUrl('ch'), mimeType: 'video/mp2t' });
  const segP = sub.next();
  const out = await pub.next();
  await out.write(Buffer.alloc(1000, 1));
  const seg = await segP;
  assert.ok(seg);
  assert.equal(seg.seq, 0);
  assert.equal(seg.contentType, 'video/MP2T');
  const firstChunk = await new Promise<Buffer>((resolve) => seg.body.once('data', resolve));
  assert.equal(firstChunk.length, 1000);
  seg.body.pause();
  await out.write(Buffer.alloc(500, 2));
  const endP = out.end();
  const rest: Buffer[] = [];
  for await (const c of seg.body) rest.push(c as Buffer);
  await endP;
  assert.equal(Buffer.concat(rest).length, 500);
  // the next one was preconnected: publishing seq 1 reaches the subscriber
  await pub.publish('second');
  const seg1 = await sub.next();
  assert.equal(seg1?.seq, 1);
  assert.equal(await readAll(seg1!.body), 'second');
  await pub.close();
  await sub.close();
});

test('subscriber default start -2 re-reads the current segment; iteration yields segments in order', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ctl', 'application/json');
  const pub = new TricklePublisher({ url: srv.channelUrl('ctl'), mimeType: 'application/json' });
  await pub.publish('{"a":1}');
  await pub.publish('{"a":2}');
  const sub = new TrickleSubscriber({ url: srv.channelUrl('ctl') });
  const seen: string[] = [];
  const reading = (async () => {
    for await (const seg of sub) {
      seen.push(await readAll(seg.body));
      if (seen.length === 2) break;
    }
  })();
  await until(() => seen.length === 1);
  await pub.publish('{"a":3}');
  await reading;
  assert.deepEqual(seen, ['{"a":2}', '{"a":3}']);
  await pub.close();
  await sub.close();
});

test('the subscriber tolerates repeated interim 1xx responses before the segment', async (t) => {
  const fake = new FaultyServer((req, res, n) => {
    if (n > 1) return hang(req, res);
    res.writeContinue();
    res.writeProcessing();
    res.writeContinue();
    setTimeout(() => {
      res.writeHead(200, { 'Lp-Trickle-Seq': '4' });
      res.end('ok');
    }, 50);
  });
  const url = await fake.listen();
  t.after(() => fake.close());
  const sub = new TrickleSubscriber({ url: `${url}/ch`, start: 4 });
  const seg = await sub.next();
  assert.equal(seg?.seq, 4);
  assert.equal(await readAll(seg!.body), 'ok');
  await sub.close();
});

test('the publisher rides through interim 100 Continue keepalives on a long-idle preconnect (keepaliveMs 50)', async (t) => {
  const srv = await startTrickleServer({ keepaliveMs: 50 });
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const pub = new TricklePublisher({ url: srv.channelUrl('ch'), mimeType: 'text/plain' });
  const seg = await pub.next();
  await sleep(300);
  await seg.write('after a wait');
  await seg.end();
  assert.equal((await rawRequest('GET', `${srv.channelUrl('ch')}/0`)).body, 'after a wait');
  await pub.close();
});

test('server gone mid-segment: the body errors with trickle_connection and next() gives up with trickle_retries_exhausted', async () => {
  const fake = new FaultyServer((req, res, n) => {
    if (n > 1) return hang(req, res);
    res.writeHead(200, { 'Lp-Trickle-Seq': '0' });
    res.write('half of a segment');
  });
  const url = await fake.listen();
  const sub = new TrickleSubscriber({ url: `${url}/ch`, start: 0, retryDelayMs: 10, maxRetries: 2 });
  const seg = await sub.next();
  assert.ok(seg);
  const reading = readAll(seg.body);
  await until(() => fake.requests.length === 2); // preconnect for seq 1 is in flight
  await fake.close();
  await assert.rejects(reading, (e: TrickleError) => e instanceof TrickleError && e.code === 'trickle_connection');
  await assert.rejects(sub.next(), (e: TrickleError) => e.code === 'trickle_retries_exhausted');
  await sub.close();
});

test('server gone mid-segment: the publisher write/end rejects, then resumes with fresh connections once a server is back', async () => {
  const first = await startTrickleServer();
  const port = first.port;
  first.createChannel('ch', 'text/plain');
  const pub = new TricklePublisher({ url: first.channelUrl('ch'), mimeType: 'text/plain', retryDelayMs: 10, maxRetries: 1 });
  await pub.publish('s0');
  await pub.publish('s1');
  const seg = await pub.next();
  assert.equal(seg.seq, 2);
  await seg.write('part');
  await first.close();
  await assert.rejects(
    (async () => {
      await seg.write('more');
      await seg.end();
    })(),
    (e: TrickleError) => e instanceof TrickleError,
  );
  await assert.rejects(pub.publish('while down'), (e: TrickleError) => e.code === 'trickle_retries_exhausted');
  assert.equal(pub.closed, false);

  const second = await startTrickleServer({ port });
  second.createChannel('ch', 'text/plain');
  await pub.publish('back');
  // The server restarted (the channel is new, nextWrite 0): the publisher continues at seq 2, the
  // segment the crash cut, where readers that rode through the outage wait — not at 0, not past 2.
  const sub = new TrickleSubscriber({ url: second.channelUrl('ch'), start: 2 });
  const s = await sub.next();
  assert.equal(s?.seq, 2);
  assert.equal(await readAll(s!.body), 'back');
  await pub.close();
  await sub.close();
  await second.close();
});

test('connection refused at start: the subscriber and publisher fail with trickle_retries_exhausted after bounded retries', async () => {
  const srv = await startTrickleServer();
  const url = srv.channelUrl('ch');
  await srv.close(); // nothing listens on this port now
  const sub = new TrickleSubscriber({ url, retryDelayMs: 10, maxRetries: 3 });
  await assert.rejects(sub.next(), (e: TrickleError) => {
    assert.equal(e.code, 'trickle_retries_exhausted');
    assert.match(e.message, /4 consecutive failures/);
    assert.equal((e.cause as TrickleError).code, 'trickle_connection');
    return true;
  });
  await sub.close();
  const pub = new TricklePublisher({ url, mimeType: 'text/plain', retryDelayMs: 10, maxRetries: 2 });
  await assert.rejects(pub.publish('x'), (e: TrickleError) => e.code === 'trickle_retries_exhausted');
  await pub.close();
});

test('channel deleted while waiting: a waiting subscriber ends cleanly (null)', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const sub = new TrickleSubscriber({ url: srv.channelUrl('ch'), start: -1 });
  const waiting = sub.next();
  await sleep(50);
  assert.equal(srv.deleteChannel('ch'), true);
  assert.equal(await waiting, null);
  await sub.close();
});

test('channel deleted then re-created: publish() rejects trickle_not_found, stays open, and later lands at the new seq 0', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('data', 'application/jsonl');
  const pub = new TricklePublisher({ url: srv.channelUrl('data'), mimeType: 'application/jsonl', retryDelayMs: 10 });
  for (let i = 0; i < 3; i++) await pub.publish(`{"i":${i}}\n`);
  srv.deleteChannel('data');
  await assert.rejects(pub.publish('{"i":3}\n'), (e: TrickleError) => e.code === 'trickle_not_found');
  await assert.rejects(pub.publish('{"i":4}\n'), (e: TrickleError) => e.code === 'trickle_not_found');
  assert.equal(pub.closed, false);
  srv.createChannel('data', 'application/jsonl');
  const sub = new TrickleSubscriber({ url: srv.channelUrl('data'), start: -1 });
  const got = sub.next();
  await pub.publish('{"i":5}\n');
  const seg = await got;
  assert.equal(seg?.seq, 0);
  assert.equal(await readAll(seg!.body), '{"i":5}\n');
  await pub.close();
  await sub.close();
});

test('abort() of a segment with bytes DELETEs it so readers finish; the publisher moves on to the next seq', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const pub = new TricklePublisher({ url: srv.channelUrl('ch'), mimeType: 'text/plain' });
  const sub = new TrickleSubscriber({ url: srv.channelUrl('ch'), start: 0 });
  const seg = await pub.next();
  await seg.write('partial');
  const inSeg = await sub.next();
  const reading = readAll(inSeg!.body);
  await seg.abort('input stalled');
  assert.equal(await reading, 'partial');
  await pub.publish('whole');
  const next = await sub.next();
  assert.equal(next?.seq, 1);
  assert.equal(await readAll(next!.body), 'whole');
  await pub.close();
  await sub.close();
});

test('a plain HTTP server answering 200 without trickle headers is never read as a segment, under any URL trick, and is not hammered', async () => {
  const SECRET = 'internal-metadata-secret-token';
  // Stand-in for an internal service (cloud metadata and the like): answers 200 to every path.
  const internal = new FaultyServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(SECRET);
  });
  const base = await internal.listen();
  // The URL tricks that keep `/<seq>` off the real path are refused before any request.
  for (const url of [`${base}/latest/meta-data#`, `${base}/latest/meta-data?x=`]) {
    assert.throws(() => new TrickleSubscriber({ url }), (e: TrickleError) => e.code === 'trickle_bad_url', url);
  }
  assert.equal(internal.requests.length, 0);
  for (const url of [`${base}/latest/meta-data`, `${base}/latest`]) {
    const before: number = internal.requests.length;
    const sub = new TrickleSubscriber({ url, start: 0, retryDelayMs: 5, maxRetries: 3 });
    const yielded: string[] = [];
    await assert.rejects(
      (async () => {
        for (;;) {
          const seg = await sub.next();
          if (!seg) return;
          yielded.push(await readAll(seg.body));
        }
      })(),
      (e: TrickleError) => e.code === 'trickle_retries_exhausted' && (e.cause as TrickleError).code === 'trickle_not_a_server',
    );
    await sub.close();
    assert.deepEqual(yielded, [], `no body from ${url} may be yielded`);
    // maxRetries + 1 attempts, each after a growing pause: no tight GET loop.
    assert.equal(internal.requests.length - before, 4, url);
  }
  await internal.close();
});

test('a new publisher on a used channel continues at its nextWrite, so a subscriber waiting at the leading edge gets its first segment', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('data', 'application/jsonl');
  const first = new TricklePublisher({ url: srv.channelUrl('data'), mimeType: 'application/jsonl' });
  for (const line of ['a\n', 'b\n', 'c\n']) await first.publish(line);
  await first.close();
  const sub = new TrickleSubscriber({ url: srv.channelUrl('data'), start: -1 });
  t.after(() => sub.close());
  const waiting = sub.next();
  const second = new TricklePublisher({ url: srv.channelUrl('data'), mimeType: 'application/jsonl' });
  t.after(() => second.close());
  await second.publish('from the second stream\n');
  const seg = await waiting;
  assert.ok(seg);
  assert.equal(await readAll(seg.body), 'from the second stream\n');
});

test('after its server restarts, a publisher continues at the seq that was due (not past seqs burnt during the outage) and a subscriber that rode through the outage gets the backlog exactly once', async (t) => {
  const first = await startTrickleServer();
  const port = first.port;
  first.createChannel('data', 'application/jsonl');
  const pub = new TricklePublisher({ url: first.channelUrl('data'), mimeType: 'application/jsonl', retryDelayMs: 5, maxRetries: 1 });
  t.after(() => pub.close());
  const sub = new TrickleSubscriber({ url: first.channelUrl('data'), start: 0, retryDelayMs: 10, maxRetries: 1000 });
  t.after(() => sub.close());
  const got: string[] = [];
  const reading = (async () => {
    for await (const seg of sub) {
      got.push(`${seg.seq}:${await readAll(seg.body)}`);
      if (got.length === 3) return;
    }
  })();
  await pub.publish('0\n');
  await pub.publish('1\n');
  await until(() => got.length === 2);
  await first.terminate(); // as a killed process: connections cut, nothing answered
  for (let i = 0; i < 4; i++) {
    // The preconnected POST learns of the shutdown first; later attempts are refused.
    await assert.rejects(pub.publish(`lost ${i}\n`), (e: TrickleError) =>
      i === 0 ? e instanceof TrickleError : e.code === 'trickle_retries_exhausted');
  }
  // A fresh server process on the same port, the channel re-created empty (nextWrite 0). The reader
  // asks for seq 2, is told the channel is behind it, and waits there instead of jumping back.
  const back = await startTrickleServer({ port });
  t.after(() => back.close());
  back.createChannel('data', 'application/jsonl');
  await sleep(100);
  await pub.publish('2\n');
  const r = await rawRequest('GET', `${back.channelUrl('data')}/2`);
  assert.equal(r.status, 200, `seq 2 holds the first record after the outage (server nextWrite ${back.nextWriteOf('data')})`);
  assert.equal(r.body, '2\n');
  await reading;
  assert.deepEqual(got, ['0:0\n', '1:1\n', '2:2\n']);
});

test('a channel reset and refilled from 0 by another publisher is read again from its start once resetGraceMs has passed', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('data', 'application/jsonl');
  const pub = new TricklePublisher({ url: srv.channelUrl('data'), mimeType: 'application/jsonl' });
  for (const line of ['a\n', 'b\n', 'c\n']) await pub.publish(line);
  await pub.close();
  const sub = new TrickleSubscriber({ url: srv.channelUrl('data'), start: 0, retryDelayMs: 10, resetGraceMs: 200 });
  t.after(() => sub.close());
  for (let i = 0; i < 3; i++) await readAll((await sub.next())!.body);
  srv.deleteChannel('data');
  srv.createChannel('data', 'application/jsonl');
  // The subscriber (at seq 3) has not yet asked again; the new channel gets a segment at 0.
  const other = new TricklePublisher({ url: srv.channelUrl('data'), mimeType: 'application/jsonl' });
  t.after(() => other.close());
  await other.publish('new 0\n');
  const seg = await sub.next();
  assert.equal(seg?.seq, 0);
  assert.equal(await readAll(seg!.body), 'new 0\n');
});

test('a subscriber never loops over segments it has read: a server that keeps answering 470 with an old Latest is backed off and given up on, not re-read', async () => {
  let gets0 = 0;
  const fake = new FaultyServer((req, res) => {
    const seq = Number(req.url?.split('/').pop());
    if (seq === 0) {
      gets0 += 1;
      res.writeHead(200, { 'Lp-Trickle-Seq': '0', 'Content-Type': 'application/json' });
      res.end('{"n":0}');
      return;
    }
    res.writeHead(470, { 'Lp-Trickle-Latest': '0', 'Lp-Trickle-Seq': String(seq) });
    res.end('Entry not found');
  });
  const base = await fake.listen();
  const sub = new TrickleSubscriber({ url: `${base}/data`, start: 0, retryDelayMs: 1, maxRetries: 4, preconnectRefreshMs: 0, resetGraceMs: 20 });
  try {
    const delivered: number[] = [];
    await assert.rejects(
      (async () => {
        for (;;) {
          const seg = await sub.next();
          if (!seg) return;
          await readAll(seg.body);
          delivered.push(seg.seq);
        }
      })(),
      (e: TrickleError) => e.code === 'trickle_retries_exhausted',
    );
    // Seg 0 once, then one re-read as a possible reset; never a loop (the old behaviour re-read seq 0 as fast as the server answered).
    assert.deepEqual(delivered, [0, 0]);
    assert.equal(gets0, 2);
  } finally {
    await sub.close();
    await fake.close();
  }
});

test('the clients refuse a channel URL with a query, a fragment, credentials or a non-HTTP scheme (trickle_bad_url), before any request', () => {
  for (const url of ['http://127.0.0.1:1/ch?x=', 'http://127.0.0.1:1/ch?', 'http://127.0.0.1:1/ch#', 'http://127.0.0.1:1/ch#frag', 'http://user:pw@127.0.0.1:1/ch', 'file:///etc/passwd', 'not a url']) {
    for (const make of [() => new TrickleSubscriber({ url }), () => new TricklePublisher({ url, mimeType: 'text/plain' })]) {
      assert.throws(make, (e: TrickleError) => e instanceof TrickleError && e.code === 'trickle_bad_url', url);
    }
  }
  // Plain channel URLs (trailing slashes trimmed) are fine.
  const sub = new TrickleSubscriber({ url: 'https://orch.example:8935/ai/trickle/abc-data/' });
  void sub.close();
});
