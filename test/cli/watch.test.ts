/**
 * The live viewer end to end, in a real headless browser (Debian's Chromium via playwright-core):
 * during `demo --tiny --watch` the page plays the output channel (the video's currentTime advances
 * through MSE + mux.js), shows generation records in cycle order as they arrive over SSE, plots
 * them in the latency chart, takes a new prompt from its prompt box, and a screenshot of it is written under the test's temp dir (and to
 * $VIEWER_SCREENSHOT when set: `npm run screenshot:viewer` makes the README's docs/viewer.png).
 * The page bundle is built first, as `prepare` builds it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser } from '../helpers/browser.js';
import { waitFor } from '../helpers/wait.js';
import { watchChannels } from '../../src/cli/watch.js';
import { demoCacheHome, sourceCliArgs } from '../helpers/cli.js';

interface PageState {
  currentTime: number;
  generations: number[];
  types: string[];
  points: number;
}

/** Read in the page (a string: the test's tsconfig has no DOM types): the video, the records, the chart. */
const PAGE_STATE = `(() => {
  const items = Array.from(document.querySelectorAll('#records li'));
  return {
    currentTime: document.querySelector('video').currentTime,
    generations: items.filter((li) => li.dataset.type === 'generation').map((li) => Number(li.dataset.cycleSeq)),
    types: items.map((li) => li.dataset.type || ''),
    points: Number(document.querySelector('#chart').dataset.points),
  };
})()`;

describe('watch (live viewer)', () => {
  it('plays the demo stream and shows its records and latency chart, live', { timeout: 120_000 }, async (t) => {
    const built = spawnSync(process.execPath, ['scripts/build-viewer.mjs'], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);

    const dir = await mkdtemp(join(tmpdir(), 'watch-test-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      sourceCliArgs('demo', '--tiny', '--pattern-size', '320x180', '--watch', '--every', '2', '--duration', '100'),
      { env: { ...process.env, XDG_CACHE_HOME: demoCacheHome(join(dir, 'cache')), LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.resume();

    const url = await waitFor('the viewer URL on stderr', () => /viewer: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1], 60_000, 50).catch(
      (err: Error) => assert.fail(`${err.message}\n${stderr.slice(-2000)}`),
    );

    const browser = await launchBrowser(t);
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(url);

    const state = (): Promise<PageState> => page.evaluate<PageState>(PAGE_STATE);
    const why = async () => `page: ${JSON.stringify(await state())}; page errors: ${pageErrors.join('; ')}\n${stderr.slice(-1500)}`;

    // The video plays: currentTime moves on by more than a second of media between two looks.
    const t1 = await waitFor('the video to start playing', async () => {
      const s = await state();
      return s.currentTime > 0.2 ? s.currentTime : 0;
    }, 60_000, 200).catch(async (err: Error) => assert.fail(`${err.message}\n${await why()}`));
    await waitFor('currentTime to advance', async () => (await state()).currentTime > t1 + 1, 15_000, 200).catch(
      async (err: Error) => assert.fail(`${err.message}\n${await why()}`),
    );

    // Records arrive over SSE and are listed in cycle order; each generation is a point in the chart.
    const s = await waitFor('two generation records in the page', async () => {
      const st = await state();
      return st.generations.length >= 2 && st.points >= 2 ? st : undefined;
    }, 40_000, 200).catch(async (err: Error) => assert.fail(`${err.message}\n${await why()}`));
    for (let i = 1; i < s.generations.length; i++) {
      assert.ok(s.generations[i]! > s.generations[i - 1]!, `records out of cycle order: ${s.generations.join(',')}`);
    }
    assert.ok(s.points > 0);
    const text = await page.locator('#records li[data-type="generation"] .text').first().textContent();
    assert.match(text ?? '', /random-weight test model/);
    assert.match((await page.locator('#prompt').textContent()) ?? '', /Describe what you see and hear/);

    // The prompt box posts /stream/params to the demo's runner; the new prompt comes back as in force.
    await page.fill('#prompt-input', 'Name the colours you see.');
    await page.click('#prompt-form button');
    await waitFor('the new prompt in force', async () => ((await page.locator('#prompt').textContent()) ?? '').includes('Name the colours'), 15_000, 200).catch(
      async (err: Error) => assert.fail(`${err.message}\n${await why()}; prompt box said: ${await page.locator('#prompt-result').textContent()}`),
    );
    assert.deepEqual(pageErrors, []);

    // For the README's picture, a few more cycles fill the list and the chart.
    if (process.env.VIEWER_SCREENSHOT) await waitFor('more records', async () => (await state()).points >= 6, 40_000, 200);
    const shot = join(dir, 'viewer.png');
    await page.screenshot({ path: shot });
    assert.ok((await stat(shot)).size > 10_000, 'screenshot written');
    if (process.env.VIEWER_SCREENSHOT) await copyFile(shot, process.env.VIEWER_SCREENSHOT);
  });
});

describe('watch channel naming', () => {
  it('names <stream>-out/-data/-events under the trickle base URL, or takes each URL as given', () => {
    assert.deepEqual(watchChannels({ trickle: 'https://orch:8935/ai/trickle/', stream: 'abc' }), {
      output: 'https://orch:8935/ai/trickle/abc-out',
      data: 'https://orch:8935/ai/trickle/abc-data',
      events: 'https://orch:8935/ai/trickle/abc-events',
    });
    assert.deepEqual(watchChannels({ dataUrl: 'http://h/d' }), { output: undefined, data: 'http://h/d', events: undefined });
    assert.throws(() => watchChannels({}), /--trickle <base-url> --stream <name>/);
    assert.throws(() => watchChannels({ trickle: 'http://h/' }), /go together/);
  });
});
