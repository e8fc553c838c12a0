/**
 * What a cycle's output becomes beyond its text, per the params in force: partial-text records
 * while the answer streams (partials.ts), the structured-output request and answer check
 * (structured.ts), and alert rules on the finished output (alerts.ts). The generation loop owns one
 * `CycleOutputs` and consults it at four points of a cycle — planning (`planParams`), the request
 * (`shape`), streaming (`partialsFor`) and the result (`finish`) — so the loop itself stays about
 * cadence and flight. `setParams` follows live updates: rules and schema apply from the next cycle,
 * and a rule that keeps its name keeps its cooldown.
 *
 * Promises: with none of these params set, records are exactly what runCycle made; a generation
 * record is never delayed by partials; an answer that fails the schema becomes an `error` record
 * carrying the raw text (the cycle counts as failed); alerts only fire on a cycle that succeeded.
 */
import type { StreamParams } from '../config/params.js';
import { metrics } from '../metrics.js';
import type { BackendCapabilities } from '../model/backend.js';
import type { Clock } from '../util/time.js';
import { AlertEngine, alertEventFields, alertRecord, type AlertRecord } from './alerts.js';
import { errorRecord, type CycleRecord, type CycleRef, type CycleResult } from './cycle.js';
import { PartialEmitter, type PartialRecord, type PartialSink } from './partials.js';
import type { CyclePlan } from './plan.js';
import { bestEffortPrompt, checkAnswer, responseFormatFor, structuredSpec, type StructuredSpec } from './structured.js';

export interface OutputsPorts {
  streamId: string;
  capabilities: BackendCapabilities;
  clock: Clock;
  /** Partial records, as they are due (the loop's publish). */
  publishPartial(record: PartialRecord): void;
  /** An alert that fired (the session's events channel). */
  alert?(fields: Record<string, unknown>): void;
}

export interface OutputCounters {
  partials_sent: number;
  structured_invalid: number;
  alerts_fired: number;
  alerts_suppressed: number;
}

export class CycleOutputs {
  private p: StreamParams;
  private spec: StructuredSpec | undefined;
  private readonly alerts = new AlertEngine();
  private partialsSent = 0;
  private structuredInvalid = 0;

  constructor(params: StreamParams, private readonly ports: OutputsPorts) {
    this.p = params;
    this.setParams(params, true);
  }

  setParams(next: StreamParams, initial = false): void {
    const prev = this.p;
    this.p = next;
    if (initial || next.output_schema !== prev.output_schema) this.spec = structuredSpec(next, this.ports.capabilities);
    if (initial || next.alert_rules !== prev.alert_rules) this.alerts.setRules(next.alert_rules);
  }

  /** The params a cycle is planned with: a best-effort schema rides in the prompt (and is gated with it). */
  planParams(p: StreamParams): StreamParams {
    return this.spec && !this.spec.constrained ? { ...p, prompt: bestEffortPrompt(p.prompt, this.spec) } : p;
  }

  /** The request side: a constraining backend gets the schema as `responseFormat`. */
  shape(plan: CyclePlan): void {
    if (this.spec?.constrained) plan.request.responseFormat = responseFormatFor(this.spec);
  }

  /** The correction pass rewrites prose; it would break a structured answer. */
  get correctionAllowed(): boolean {
    return this.spec === undefined;
  }

  partialsFor(cycle: CycleRef): PartialSink | undefined {
    if (!this.p.partial_text) return undefined;
    return new PartialEmitter({
      streamId: this.ports.streamId,
      cycle,
      intervalMs: this.p.partial_interval_ms,
      clock: this.ports.clock,
      publish: (r) => {
        this.partialsSent++;
        this.ports.publishPartial(r);
      },
    });
  }

  /**
   * The cycle's result after the structured check (a `json` on the generation record, or an `error`
   * record in its place), and the alert records to publish after the cycle's own.
   */
  finish(cycle: CycleRef, result: CycleResult): { result: CycleResult; alerts: AlertRecord[] } {
    const none: AlertRecord[] = [];
    const i = result.records.findIndex((r) => r.type === 'generation');
    const gen = result.records[i];
    if (!gen || gen.type !== 'generation' || result.outcome !== 'ok') return { result, alerts: none };
    let json: unknown;
    let hasJson = false;
    if (this.spec) {
      const check = checkAnswer(gen.text, this.spec, gen.finish_reason);
      if (!check.ok) {
        this.structuredInvalid++;
        const err = errorRecord(this.ports.streamId, cycle, check.code, check.message, {
          prompt: gen.prompt,
          window: gen.window,
          stats: {
            skipped_cycles: gen.stats.skipped_cycles,
            records_dropped: gen.stats.records_dropped,
            input_tokens: gen.stats.input_tokens,
            frames_dropped_by_gating: gen.stats.frames_dropped_by_gating,
            frames_dropped_by_engine_limit: gen.stats.frames_dropped_by_engine_limit,
          },
        });
        err.text = gen.text;
        const records: CycleRecord[] = [...result.records];
        records[i] = err;
        return { result: { ...result, records, outcome: 'error', error: { code: check.code, message: check.message } }, alerts: none };
      }
      json = check.json;
      hasJson = true;
      gen.json = json;
    }
    if (!this.alerts.active) return { result, alerts: none };
    const fired = this.alerts.evaluate({ text: gen.text, json, hasJson }, this.ports.clock.now());
    const alerts = fired.map((a) => alertRecord(this.ports.streamId, cycle, a, gen.text));
    for (const a of alerts) {
      metrics.alerts.inc({ stream_id: this.ports.streamId, rule: a.rule });
      this.ports.alert?.(alertEventFields(a));
    }
    return { result, alerts };
  }

  counters(): OutputCounters {
    return { partials_sent: this.partialsSent, structured_invalid: this.structuredInvalid, ...this.alerts.counters() };
  }
}
