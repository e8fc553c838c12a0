/**
 * The records column: one list item per data-channel record, in arrival order, newest at the bottom.
 * Known types get their own rendering (generation, partial text that is replaced by its cycle's
 * generation, correction striking the text it rewrites, error, alert as `rule: match`, an unchanged
 * cycle as one line naming the cycle it repeats); a generation that ran early says why (its
 * `trigger`); any other type is shown generically with its type and its most text-like field. Each item carries data-type,
 * data-cycle-seq and data-cycle-id. At most MAX_ITEMS stay in the list (the oldest go).
 */
const MAX_ITEMS = 200;

export type DataRecordIn = Record<string, unknown> & { type?: unknown };

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

export class RecordList {
  private readonly list: HTMLOListElement;
  private readonly counter: HTMLElement;
  private count = 0;

  constructor(list: HTMLOListElement, counter: HTMLElement) {
    this.list = list;
    this.counter = counter;
  }

  add(rec: DataRecordIn): void {
    const type = str(rec.type) ?? 'unknown';
    const cycleId = str(rec.cycle_id);
    const seq = num(rec.cycle_seq);
    const stats = obj(rec.stats);
    const timings = obj(stats.timings_ms);
    const usage = obj(rec.usage);
    const meta: string[] = [];
    if (seq !== undefined) meta.push(`cycle ${seq}`);
    const ts = num(rec.timestamp_ms);
    if (ts !== undefined) meta.push(new Date(ts).toLocaleTimeString());
    let text: string;
    switch (type) {
      case 'generation':
      case 'partial': {
        text = str(rec.text) ?? '';
        const total = num(timings.total);
        const first = num(timings.first_token);
        if (first !== undefined) meta.push(`first token ${Math.round(first)} ms`);
        if (total !== undefined) meta.push(`total ${Math.round(total)} ms`);
        const out = num(usage.completion_tokens);
        if (out !== undefined) meta.push(`${out} tokens`);
        const trigger = str(rec.trigger);
        if (trigger && trigger !== 'interval') meta.push(trigger.replace('_', ' '));
        if (rec.truncated === true) meta.push('truncated');
        break;
      }
      case 'alert': {
        text = `${str(rec.rule) ?? 'alert'}: ${str(rec.match) ?? str(rec.message) ?? ''}`;
        break;
      }
      case 'unchanged': {
        const skipped = num(stats.unchanged_cycles);
        text = `nothing new since cycle ${seq ?? '?'}${skipped !== undefined ? ` (${skipped} cycle${skipped === 1 ? '' : 's'} skipped)` : ''}`;
        break;
      }
      case 'correction': {
        text = str(rec.corrected_text) ?? '';
        this.forCycle(cycleId, 'generation', (li) => li.classList.add('superseded'));
        break;
      }
      case 'error': {
        const e = obj(rec.error);
        text = `${str(e.code) ?? 'error'}: ${str(e.message) ?? ''}`;
        break;
      }
      default:
        text = str(rec.text) ?? str(rec.message) ?? str(obj(rec.alert).message) ?? JSON.stringify(rec).slice(0, 500);
    }
    const li = document.createElement('li');
    li.className = 'rec';
    li.dataset.type = type;
    if (cycleId) li.dataset.cycleId = cycleId;
    if (seq !== undefined) li.dataset.cycleSeq = String(seq);
    const m = document.createElement('div');
    m.className = 'meta';
    const t = document.createElement('span');
    t.className = 'type';
    t.textContent = type;
    m.append(t, ...meta.map((s) => Object.assign(document.createElement('span'), { textContent: s })));
    const body = document.createElement('div');
    body.className = 'text';
    body.textContent = text;
    li.append(m, body);

    const stick = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    // Partial text of a cycle is shown in one item, updated in place and replaced by the generation.
    let replaced = false;
    if (type === 'partial' || type === 'generation') {
      this.forCycle(cycleId, 'partial', (old) => {
        if (!replaced) old.replaceWith(li);
        else old.remove();
        replaced = true;
      });
    }
    if (!replaced) {
      this.list.append(li);
      this.count += 1;
    }
    while (this.list.children.length > MAX_ITEMS) this.list.firstElementChild?.remove();
    this.list.dataset.count = String(this.count);
    this.counter.textContent = String(this.count);
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  private forCycle(cycleId: string | undefined, type: string, fn: (li: HTMLElement) => void): void {
    if (!cycleId) return;
    for (const li of Array.from(this.list.querySelectorAll<HTMLElement>(`li[data-type="${type}"]`))) {
      if (li.dataset.cycleId === cycleId) fn(li);
    }
  }
}
