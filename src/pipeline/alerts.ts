/**
 * Alert rules (`alert_rules`) on each cycle's output: a substring (`contains`) or regular
 * expression (`regex`, RE2 syntax, matched in linear time by util/safe-regex.ts) on the answer's
 * `text`, or a condition on one field of the parsed `json` (`json_path` + `op` + `value`, with
 * structured output). A rule that matches fires at most once per `cooldown_s`: `AlertEngine`
 * remembers when each rule (by name) last fired, on the time it is given, so replacing the rules
 * live keeps the cooldown of a rule that keeps its name. Matches inside a cooldown are counted,
 * not published.
 *
 * Pure: no I/O; time is an argument. The loop turns what fires into `type: "alert"` records and the
 * session into `alert` events.
 */
import type { AlertRuleParam } from '../config/output-params.js';
import { compileSafeRegex, type SafeRegex } from '../util/safe-regex.js';
import type { CycleRef } from './cycle.js';
import { truncateUtf8 } from './records.js';

/** Longest `match` and `text` an alert carries (the full text is in the cycle's generation record). */
export const ALERT_MATCH_MAX_BYTES = 256;
export const ALERT_TEXT_MAX_BYTES = 1024;

export interface AlertRecord {
  type: 'alert';
  stream_id: string;
  timestamp_ms: number;
  /** The cycle whose output matched. */
  cycle_id: string;
  cycle_seq: number;
  rule: string;
  kind: 'contains' | 'regex' | 'json';
  /** The matching text (substring / regex match), or the JSON of the field's value. */
  match: string;
  /** The cycle's answer, cut to ALERT_TEXT_MAX_BYTES. */
  text: string;
  json_path?: string;
  truncated?: boolean;
}

export interface FiredAlert {
  rule: AlertRuleParam;
  kind: AlertRecord['kind'];
  match: string;
}

interface CompiledRule {
  param: AlertRuleParam;
  kind: AlertRecord['kind'];
  regex?: SafeRegex;
}

/** `a.b.0` → the value there, or undefined. */
export function valueAt(json: unknown, path: string): unknown {
  let cur: unknown = json;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(key)) return undefined;
      cur = cur[Number(key)];
    } else {
      cur = Object.hasOwn(cur, key) ? (cur as Record<string, unknown>)[key] : undefined;
    }
  }
  return cur;
}

function same(a: unknown, b: unknown, ignoreCase: boolean): boolean {
  if (typeof a === 'string' && typeof b === 'string') return ignoreCase ? a.toLowerCase() === b.toLowerCase() : a === b;
  return a === b;
}

/** Whether `v` (the field's value) satisfies the rule's op/value. */
export function fieldMatches(v: unknown, r: Pick<AlertRuleParam, 'op' | 'value' | 'ignore_case'>): boolean {
  const op = r.op ?? 'exists';
  const want = r.value;
  switch (op) {
    case 'exists':
      return v !== undefined && v !== null;
    case 'eq':
      return same(v, want, r.ignore_case);
    case 'ne':
      return v !== undefined && !same(v, want, r.ignore_case);
    case 'gt':
      return typeof v === 'number' && typeof want === 'number' && v > want;
    case 'gte':
      return typeof v === 'number' && typeof want === 'number' && v >= want;
    case 'lt':
      return typeof v === 'number' && typeof want === 'number' && v < want;
    case 'lte':
      return typeof v === 'number' && typeof want === 'number' && v <= want;
    case 'contains':
      if (typeof v === 'string' && typeof want === 'string') return r.ignore_case ? v.toLowerCase().includes(want.toLowerCase()) : v.includes(want);
      return Array.isArray(v) && v.some((x) => same(x, want, r.ignore_case));
  }
}

function compile(param: AlertRuleParam): CompiledRule {
  if (param.regex !== undefined) {
    const c = compileSafeRegex(param.regex, { ignoreCase: param.ignore_case });
    // The params schema compiled it already; failing here would be a bug.
    if (!c.ok) throw new Error(`alert rule "${param.name}": regex ${c.message}`);
    return { param, kind: 'regex', regex: c.regex };
  }
  return { param, kind: param.contains !== undefined ? 'contains' : 'json' };
}

function cut(s: string, max: number): string {
  return truncateUtf8(s, max);
}

export class AlertEngine {
  private rules: CompiledRule[] = [];
  private readonly lastFired = new Map<string, number>();
  private readonly c = { alerts_fired: 0, alerts_suppressed: 0 };

  constructor(rules: readonly AlertRuleParam[] = []) {
    this.setRules(rules);
  }

  /** New rules in force; a rule that keeps its name keeps its cooldown. */
  setRules(rules: readonly AlertRuleParam[]): void {
    this.rules = rules.map(compile);
    const names = new Set(rules.map((r) => r.name));
    for (const n of [...this.lastFired.keys()]) if (!names.has(n)) this.lastFired.delete(n);
  }

  get active(): boolean {
    return this.rules.length > 0;
  }

  counters(): { alerts_fired: number; alerts_suppressed: number } {
    return { ...this.c };
  }

  /** The rules that match this output and are out of their cooldown at `nowMs` (they are marked fired). */
  evaluate(out: { text: string; json?: unknown; hasJson: boolean }, nowMs: number): FiredAlert[] {
    const fired: FiredAlert[] = [];
    for (const r of this.rules) {
      const match = this.match(r, out);
      if (match === undefined) continue;
      const last = this.lastFired.get(r.param.name);
      if (last !== undefined && nowMs - last < r.param.cooldown_s * 1000) {
        this.c.alerts_suppressed++;
        continue;
      }
      this.lastFired.set(r.param.name, nowMs);
      this.c.alerts_fired++;
      fired.push({ rule: r.param, kind: r.kind, match: cut(match, ALERT_MATCH_MAX_BYTES) });
    }
    return fired;
  }

  private match(r: CompiledRule, out: { text: string; json?: unknown; hasJson: boolean }): string | undefined {
    const p = r.param;
    if (r.regex) return r.regex.find(out.text)?.match;
    if (p.contains !== undefined) {
      const i = p.ignore_case ? out.text.toLowerCase().indexOf(p.contains.toLowerCase()) : out.text.indexOf(p.contains);
      return i < 0 ? undefined : out.text.slice(i, i + p.contains.length);
    }
    if (!out.hasJson || p.json_path === undefined) return undefined;
    const v = valueAt(out.json, p.json_path);
    return fieldMatches(v, p) ? (JSON.stringify(v) ?? 'null') : undefined;
  }
}

export function alertRecord(streamId: string, cycle: CycleRef, a: FiredAlert, text: string, now = Date.now()): AlertRecord {
  const rec: AlertRecord = {
    type: 'alert',
    stream_id: streamId,
    timestamp_ms: Math.floor(now),
    cycle_id: cycle.id,
    cycle_seq: cycle.seq,
    rule: a.rule.name,
    kind: a.kind,
    match: a.match,
    text: cut(text, ALERT_TEXT_MAX_BYTES),
  };
  if (a.rule.json_path !== undefined) rec.json_path = a.rule.json_path;
  return rec;
}

/** The `alert` event's fields (events channel): the record's, less what the envelope carries. */
export function alertEventFields(r: AlertRecord): Record<string, unknown> {
  const { type: _type, stream_id: _sid, timestamp_ms: _ts, ...fields } = r;
  return fields;
}
