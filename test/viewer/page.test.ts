/**
 * The viewer page's record rendering, in headless Chromium (playwright-core), fed crafted records
 * through the real viewer server and an embedded trickle server: partial text shown and then
 * replaced by its cycle's generation, a correction striking the text it rewrites, an error with its
 * code, an alert as `rule: match`, an unchanged cycle in one line, an early cycle's trigger, an
 * unknown type shown generically, the prompt in force taken from a params_updated event, and only
 * generations plotted in the chart.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { startViewer } from '../../src/viewer/server.js';
import { launchBrowser } from '../helpers/browser.js';
import { startTrickleServer } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';

const LIST = `Array.from(document.querySelectorAll('#records li')).map((li) => ({
  type: li.dataset.type, seq: li.dataset.cycleSeq, cls: li.className, text: li.querySelector('.text').textContent,
}))`;

describe('viewer page', () => {
  it('renders each record type, replaces partial text, strikes corrected text, follows the prompt', { timeout: 60_000 }, async (t) => {
    const built = spawnSync(process.execPath, ['scripts/build-viewer.mjs'], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    const trickle = await startTrickleServer();
    trickle.createChannel('p-data', 'application/jsonl');
    trickle.createChannel('p-events', 'application/json');
    const viewer = await startViewer({ channels: { data: trickle.channelUrl('p-data'), events: trickle.channelUrl('p-events') }, streamName: 'p' });
    const data = new TricklePublisher({ url: trickle.channelUrl('p-data'), mimeType: 'application/jsonl' });
    const events = new TricklePublisher({ url: trickle.channelUrl('p-events'), mimeType: 'application/json' });
    t.after(async () => {
      await viewer.close();
      await data.close();
      await events.close();
      await trickle.close();
    });
    const browser = await launchBrowser(t);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(viewer.url);
    await waitFor('the SSE connection', async () => (await page.locator('#conn').textContent()) === 'live', 10_000, 50);

    const gen = (seq: number, id: string, text: string) =>
      JSON.stringify({ type: 'generation', cycle_id: id, cycle_seq: seq, prompt: 'P1', text, stats: { timings_ms: { total: 100 * seq, first_token: 50 * seq } }, usage: { completion_tokens: seq } });
    await data.publish(`${JSON.stringify({ type: 'partial', cycle_id: 'c1', cycle_seq: 1, text: 'A cat' })}\n`);
    await waitFor('the partial', async () => (await page.evaluate<Array<{ type: string }>>(LIST)).some((r) => r.type === 'partial'), 10_000, 50);
    await data.publish(
      [
        gen(1, 'c1', 'A cat sits.'),
        JSON.stringify({ type: 'correction', cycle_id: 'c1', cycle_seq: 1, corrected_text: 'A dog sits.' }),
        JSON.stringify({ type: 'error', cycle_id: 'c2', cycle_seq: 2, error: { code: 'model_timeout', message: 'took too long' } }),
        JSON.stringify({ type: 'alert', cycle_id: 'c3', cycle_seq: 3, rule: 'smoke', kind: 'contains', match: 'smoke', text: 'smoke detected' }),
        JSON.stringify({ type: 'novel', cycle_seq: 4, value: 42 }),
        JSON.stringify({ type: 'unchanged', cycle_id: 'c3', cycle_seq: 3, window: { start_ms: 0, end_ms: 4000 }, stats: { unchanged_cycles: 2, records_dropped: 0 } }),
        JSON.stringify({ ...JSON.parse(gen(5, 'c5', 'Still a dog.')), trigger: 'scene_change' }),
      ].join('\n') + '\n',
    );

    const list = await waitFor('all records', async () => {
      const l = await page.evaluate<Array<{ type: string; seq: string; cls: string; text: string }>>(LIST);
      return l.length >= 7 ? l : undefined;
    }, 10_000, 50);
    assert.deepEqual(list.map((r) => r.type), ['generation', 'correction', 'error', 'alert', 'novel', 'unchanged', 'generation']);
    assert.equal(list[0]!.text, 'A cat sits.');
    assert.match(list[0]!.cls, /superseded/);
    assert.equal(list[1]!.text, 'A dog sits.');
    assert.equal(list[2]!.text, 'model_timeout: took too long');
    assert.equal(list[3]!.text, 'smoke: smoke', 'an alert shows its rule and what matched');
    assert.match(list[4]!.text, /"value":42/);
    assert.equal(list[5]!.text, 'nothing new since cycle 3 (2 cycles skipped)');
    assert.equal(list[6]!.text, 'Still a dog.');
    assert.match(await page.locator('#records li[data-type="generation"]').last().locator('.meta').textContent() ?? '', /scene change/, 'an early cycle says why it ran');
    assert.equal(await page.locator('#prompt').textContent(), 'P1');
    // The prompt in force follows a params_updated event (records after it would carry it too).
    await events.publish(JSON.stringify({ event: { type: 'params_updated', timestamp: Date.now(), params: { prompt: 'P2' } }, queue_event_type: 'ai_stream_events' }));
    await waitFor('the prompt from params_updated', async () => (await page.locator('#prompt').textContent()) === 'P2', 10_000, 50);
    assert.equal(await page.locator('#chart').getAttribute('data-points'), '2');
    assert.deepEqual(errors, []);
  });
});
