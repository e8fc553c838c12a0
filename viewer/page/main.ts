/**
 * The viewer page's entry (bundled by scripts/build-viewer.mjs into dist/viewer-page/viewer.js).
 * Wires the player, the records list, the chart, the prompt in force and the optional prompt box to
 * the viewer server: `GET /config` (stream name, whether a runner is known), `GET /events` (SSE:
 * event `data` = one data-channel line, `events` = one events-channel body, `viewer` = the server's
 * own counters), `POST /params` (forwarded by the server to the runner's /stream/params).
 */
import { LivePlayer } from './player.js';
import { RecordList, type DataRecordIn } from './records.js';
import { LatencyChart } from './chart.js';

interface ViewerConfig {
  stream?: string;
  promptBox: boolean;
}

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e as T;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const records = new RecordList(el<HTMLOListElement>('records'), el('record-count'));
  const chart = new LatencyChart(el<HTMLCanvasElement>('chart'));
  const promptEl = el('prompt');
  const statusEl = el('status');
  const conn = el('conn');
  const footer = el('footer');
  let serverStats = '';
  const player = new LivePlayer(el<HTMLVideoElement>('video'), el('video-note'), (s) => {
    footer.textContent = `video: ${s.segments} segments, ${s.skipped} skipped, ${s.dropped} dropped, ${s.errors} errors${s.mime ? ` · ${s.mime}` : ''}${serverStats}`;
  });
  player.start();

  const setPrompt = (p: unknown) => {
    if (typeof p !== 'string') return;
    promptEl.textContent = p;
    promptEl.classList.remove('muted');
  };

  const cfg = (await fetch('/config').then((r) => r.json() as Promise<ViewerConfig>).catch(() => undefined)) ?? { promptBox: false };
  if (cfg.stream) el('stream-name').textContent = cfg.stream;
  if (cfg.promptBox) {
    const form = el<HTMLFormElement>('prompt-form');
    const input = el<HTMLInputElement>('prompt-input');
    const result = el('prompt-result');
    form.hidden = false;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const prompt = input.value.trim();
      if (!prompt) return;
      result.textContent = 'sending…';
      void fetch('/params', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt }) })
        .then(async (r) => {
          const body = (await r.json().catch(() => ({}))) as { error?: { message?: string }; message?: string };
          result.textContent = r.ok ? 'sent' : `refused: ${body.error?.message ?? body.message ?? `HTTP ${r.status}`}`;
          if (r.ok) input.value = '';
        })
        .catch((err: unknown) => (result.textContent = `failed: ${String(err)}`));
    });
  }

  const es = new EventSource('/events');
  es.addEventListener('open', () => {
    conn.dataset.state = 'open';
    conn.textContent = 'live';
  });
  es.addEventListener('error', () => {
    conn.dataset.state = 'error';
    conn.textContent = 'reconnecting…';
  });
  es.addEventListener('data', (ev: MessageEvent<string>) => {
    const rec = parse(ev.data);
    if (!rec) return;
    records.add(rec as DataRecordIn);
    setPrompt(rec.prompt);
    if (rec.type === 'generation') {
      const stats = (rec.stats ?? {}) as Record<string, unknown>;
      const t = (stats.timings_ms ?? {}) as Record<string, unknown>;
      const usage = (rec.usage ?? {}) as Record<string, unknown>;
      // Records carry a queue wait only where the runner measures one: the legend shows it then.
      if (num(t.queue) !== undefined) el('legend-queue').hidden = false;
      chart.add({
        seq: num(rec.cycle_seq) ?? 0,
        queue: num(t.queue),
        firstToken: num(t.first_token),
        total: num(t.total),
        tokens: num(usage.completion_tokens),
      });
    }
  });
  es.addEventListener('events', (ev: MessageEvent<string>) => {
    const body = parse(ev.data);
    const e = (body?.event ?? body) as Record<string, unknown> | undefined;
    if (!e || typeof e.type !== 'string') return;
    if (e.type === 'params_updated') setPrompt(((e.params ?? {}) as Record<string, unknown>).prompt);
    const at = num(e.timestamp);
    const when = at !== undefined ? new Date(at).toLocaleTimeString() : '';
    if (e.type === 'status') {
      const s = e.state ?? e.status ?? e.pipeline_state;
      statusEl.textContent = `status${typeof s === 'string' ? `: ${s}` : ''} ${when}`;
    } else statusEl.textContent = `${e.type.replace(/_/g, ' ')} ${when}`;
  });
  es.addEventListener('viewer', (ev: MessageEvent<string>) => {
    const s = parse(ev.data);
    if (s && typeof s.dropped === 'number' && s.dropped > 0) serverStats = ` · ${s.dropped} records dropped by the viewer server`;
  });
}

void main();
