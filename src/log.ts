/**
 * The one logger factory. Library code logs through a pino child logger with structured fields
 * (`component`, `stream_id`, …), never console.log. LOG_LEVEL sets the level (tests run 'silent').
 */
import { pino, type Logger } from 'pino';

export type { Logger };

let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({
    name: 'gemma3n-trickle',
    level: process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
  });
  return root;
}

export function childLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...fields });
}
