/**
 * The params in force for one stream, and their one update path. HTTP updates arrive already parsed
 * by the control API (the same `parseParamsUpdate` with the same bounds); control-channel messages
 * are parsed here. Either way the store commits the new params and the unknown keys (bounded by the
 * schema) and answers with a discriminated result: the caller applies a change, or reports a refusal.
 * Counts updates and control messages; holds no timers and does no I/O.
 */
import { KNOWN_PARAM_KEYS, parseParamsUpdate, type StreamParams } from '../config/params.js';
import type { ErrorCode } from '../error-codes.js';
import { errorCode, errorMessage } from '../errors.js';
import type { ControlMessage } from './control.js';
import { paramsUpdatedFields, type ParamsEcho } from './events.js';

export type ParamsChange =
  | { kind: 'changed'; prev: StreamParams; next: StreamParams; changed: string[]; event: ParamsEcho & { source?: string } }
  | { kind: 'refused'; code: ErrorCode; message: string; seq: number | undefined };

export class ParamsStore {
  private p: StreamParams;
  private extra: Record<string, unknown>;
  private lastUpdate: number | undefined;
  private readonly c = { params_updates: 0, control_messages: 0, control_errors: 0 };

  /** `check` refuses params the stream cannot run (it throws, e.g. a 400 naming the param); HTTP updates are checked by the runner. */
  constructor(params: StreamParams, extra: Record<string, unknown>, private readonly check?: (next: StreamParams) => void) {
    this.p = params;
    this.extra = { ...extra };
  }

  get current(): StreamParams {
    return this.p;
  }

  /** Unknown keys received so far (start + updates), passed along untouched. */
  extras(): Record<string, unknown> {
    return { ...this.extra };
  }

  get lastUpdateAtMs(): number | undefined {
    return this.lastUpdate;
  }

  counters(): Record<string, number> {
    return { ...this.c };
  }

  /** An update the control API parsed (and bounded) already. */
  fromHttp(next: StreamParams, changed: string[], raw: Record<string, unknown>, nowMs: number): ParamsChange & { kind: 'changed' } {
    for (const [k, v] of Object.entries(raw)) if (!KNOWN_PARAM_KEYS.has(k)) this.extra[k] = v;
    return this.commit(next, changed, paramsUpdatedFields(next, raw, KNOWN_PARAM_KEYS), nowMs);
  }

  /** A control-channel message: validated here through the same schema as HTTP updates. */
  fromControl(m: ControlMessage, nowMs: number): ParamsChange {
    this.c.control_messages++;
    if (m.kind === 'invalid') {
      this.c.control_errors++;
      return { kind: 'refused', code: m.code, message: m.message, seq: m.seq };
    }
    try {
      const parsed = parseParamsUpdate(this.p, m.payload, this.extra);
      this.check?.(parsed.params);
      this.extra = parsed.extra;
      return this.commit(parsed.params, parsed.changed, { ...paramsUpdatedFields(parsed.params, m.payload, KNOWN_PARAM_KEYS), source: 'control' }, nowMs);
    } catch (err) {
      this.c.control_errors++;
      return { kind: 'refused', code: errorCode(err), message: errorMessage(err), seq: m.seq };
    }
  }

  private commit(next: StreamParams, changed: string[], event: ParamsEcho & { source?: string }, nowMs: number): ParamsChange & { kind: 'changed' } {
    const prev = this.p;
    this.p = next;
    this.c.params_updates++;
    this.lastUpdate = nowMs;
    return { kind: 'changed', prev, next, changed, event };
  }
}
