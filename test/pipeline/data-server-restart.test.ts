/**
 * No record lost or repeated when the data channel's trickle server PROCESS dies: a running stream
 * keeps producing cycles while its data server (a real `trickle-server` child process) is killed
 * with SIGKILL and a new one is started on the same port 30 s later, with the channel re-created
 * empty. One protocol-following subscriber (retries while the server is unreachable) reads
 * throughout: every cycle's record arrives exactly once, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { makeTestSegments } from '../helpers/media.js';
import { collectChannel, startLoopingStream } from '../helpers/pipeline.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { sourceCliArgs } from '../helpers/cli.js';

interface ServerProcess {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<void>;
}

/** A `trickle-server` child with the data channel created at start. */
function trickleServerProcess(port: number): ServerProcess {
  const child = spawn(
    process.execPath,
    sourceCliArgs('trickle-server', '--port', String(port), '--host', '127.0.0.1', '--channel', 'data:application/jsonl'),
    { env: { ...process.env, LOG_LEVEL: 'silent' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /trickle server on (\S+)/.exec(err);
      if (m) resolve(m[1]!.replace(/\/$/, ''));
    });
    child.on('exit', (code) => reject(new Error(`trickle-server exited (${code}) before listening: ${err}`)));
  });
  url.catch(() => undefined);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, url, exited };
}

test('a data-server process killed and restarted on the same port 30 s later: every record reaches a subscriber that reads throughout, exactly once, in order', { timeout: 150_000 }, async (t) => {
  let server = trickleServerProcess(0);
  const base = await server.url;
  const port = Number(new URL(base).port);
  const dataUrl = `${base}/data`;
  const sub = collectChannel(dataUrl);
  const clip = await makeTestSegments({ durationS: 8, fps: 10, width: 320, height: 240, gopS: 1, audio: 'aac', toneHz: 440 });
  // real time (one 1 s segment a second): a record a second, 30 of them queued through the outage
  const s = await startLoopingStream({ streamId: 'restart', dataUrl, clip, paceMs: 1000 });
  t.after(async () => {
    await s.close();
    await sub.stop();
    server.child.kill('SIGKILL');
    await server.exited;
  });
  const session = s.session;
  const seqs = (): number[] => s.seqs([sub]);
  const completed = (): number => s.completed();

  // Killed when everything published so far has been read (a record the dead server held unread
  // would be lost with it: that is the protocol, not the runner).
  await waitFor('records before the kill, all read', () => s.settled([sub], 2), 60_000);
  server.child.kill('SIGKILL');
  await server.exited;
  const atKill = completed();
  await sleep(30_000);
  assert.ok(completed() >= atKill + 5, `cycles kept running while the data server was dead (${atKill} → ${completed()})`);
  server = trickleServerProcess(port);
  await server.url;

  const last = completed();
  await waitFor('every completed cycle delivered', () => seqs().length >= last, 60_000);
  const got = seqs();
  assert.equal(got[0], 1, 'from the first cycle');
  assert.equal(new Set(got).size, got.length, `no duplicates: ${got.join(',')}`);
  for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1]! + 1, `in order, no gap after cycle ${got[i - 1]}: ${got.join(',')}`);
  assert.equal(session.status().counters.records_dropped ?? 0, 0, 'nothing dropped past the queue bound');
});
