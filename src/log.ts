/**
 * The one logger factory. Library code logs through a pino child logger with structured fields
 * (`component`, `stream_id`, …), never console.log. LOG_LEVEL sets the level (tests run 'silent').
 * Commands that print their own output on stdout (demo, subscribe) send logs to stderr instead.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

let root: Logger | undefined;

export interface LoggerSetup {
  level?: string;
  /** 1 = stdout (default), 2 = stderr. */
  fd?: 1 | 2;
}

export function configureRootLogger(setup: LoggerSetup): Logger {
  root = pino(
    { name: 'gemma3n-trickle', level: setup.level ?? process.env.LOG_LEVEL ?? 'info', base: { pid: process.pid } },
    pino.destination({ fd: setup.fd ?? 1, sync: false }),
  );
  return root;
}

export function rootLogger(): Logger {
  root ??= configureRootLogger({});
  return root;
}

export function childLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...fields });
}
