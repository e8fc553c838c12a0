/**
 * Context across cycles (off by default): the last N outputs, fed back as earlier chat turns, and the
 * seed app's correction pass — a text-only follow-up that rewrites the newest output in the light of
 * the ones before it. Bounded by `MAX_HISTORY` entries whatever the parameters say.
 */
import type { ChatTurn } from '../model/backend.js';

export const MAX_HISTORY = 16;
/** History the correction pass reads when `context_history` is 0. */
export const DEFAULT_CORRECTION_HISTORY = 4;

export interface HistoryEntry {
  cycleId: string;
  prompt: string;
  text: string;
  windowEndMs: number;
}

export class OutputHistory {
  private entries: HistoryEntry[] = [];

  add(e: HistoryEntry): void {
    if (e.text.trim() === '') return;
    this.entries.push(e);
    if (this.entries.length > MAX_HISTORY) this.entries.splice(0, this.entries.length - MAX_HISTORY);
  }

  /** The newest `n` entries, oldest first. */
  last(n: number): HistoryEntry[] {
    if (n <= 0) return [];
    return this.entries.slice(-n);
  }

  clear(): void {
    this.entries = [];
  }
}

/**
 * Earlier outputs as chat turns: the earlier question, then what the model answered. The media of
 * those cycles is not re-sent (it would cost 256 tokens a frame again); the text is the memory.
 */
export function historyTurns(entries: HistoryEntry[]): ChatTurn[] {
  const turns: ChatTurn[] = [];
  for (const e of entries) {
    turns.push({ role: 'user', text: e.prompt });
    turns.push({ role: 'assistant', text: e.text });
  }
  return turns;
}

export function correctionPrompt(previous: HistoryEntry[], latest: HistoryEntry): string {
  const lines = previous.map((e, i) => `${i + 1}. ${e.text.trim()}`);
  return (
    'You are reviewing running descriptions of a live stream, written a few seconds apart.\n' +
    (lines.length > 0 ? `Earlier descriptions, oldest first:\n${lines.join('\n')}\n` : '') +
    `Latest description:\n${latest.text.trim()}\n\n` +
    'Rewrite the latest description so it is accurate and consistent with the earlier ones: fix contradictions ' +
    'and obvious mistakes, keep what is new. Reply with the rewritten description only.'
  );
}
