/**
 * The one logger factory. Library code logs through a pino child logger with structured fields
 * (`component`, `stream_id`, …), never console.log. LOG_LEVEL sets the level (tests run 'silent').
 * Commands that print their own output on stdout (demo, subscribe) send logs to stderr instead.
 *
 * Format: one JSON object per line when the log's file descriptor is not a terminal (pipes, files,
 * containers, log shippers), human-readable lines (pino-pretty, in-process) when it is a terminal.
 * LOG_FORMAT=json|pretty overrides the choice; any other value is refused with a clear error.
 *
 * Where settings come from: the CLI parses LOG_LEVEL/LOG_FORMAT with the rest of its configuration
 * (src/config/runtime.ts, using the parsers below) and calls configureRootLogger with the result. A
 * process that logs without configuring first (library use, tests) falls back to reading the same two
 * variables here, through the same parsers.
 */
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { PinoPretty as PinoPrettyFn } from 'pino-pretty';
import { AppError } from './errors.js';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

let root: Logger | undefined;

export interface LoggerSetup {
  level?: string;
  /** 1 = stdout (default), 2 = stderr. */
  fd?: 1 | 2;
  /** Overrides LOG_FORMAT and the terminal check. */
  format?: LogFormat;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A LOG_FORMAT value (any case, trimmed); anything but json/pretty is refused. */
export function parseLogFormat(raw: string): LogFormat {
  const wanted = raw.trim().toLowerCase();
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  throw new AppError('invalid_config', `LOG_FORMAT must be "json" or "pretty", got "${raw}"`);
}

/** A LOG_LEVEL value: one of pino's levels (trimmed, lower-cased). */
export function parseLogLevel(raw: string): string {
  const level = raw.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level;
  throw new AppError('invalid_config', `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(raw)})`);
}

/** LOG_FORMAT if set, else pretty exactly when `fd` is a terminal. */
export function resolveLogFormat(fd: number, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const wanted = env.LOG_FORMAT;
  if (wanted !== undefined && wanted.trim() !== '') return parseLogFormat(wanted);
  return isatty(fd) ? 'pretty' : 'json';
}

/**
 * pino-pretty (and its ~30 modules) is loaded only when a terminal reads the logs: a server in a
 * container, and every child process the tests start, logs JSON and never needs it.
 */
function prettyStream(): typeof PinoPrettyFn {
  return (createRequire(import.meta.url)('pino-pretty') as { PinoPretty: typeof PinoPrettyFn }).PinoPretty;
}

export function configureRootLogger(setup: LoggerSetup): Logger {
  const fd = setup.fd ?? 1;
  const format = setup.format ?? resolveLogFormat(fd);
  // In-process pretty-printing rather than a worker-thread transport: a terminal reader produces few
  // lines, and a synchronous write means the last lines before process.exit() are not lost.
  const destination: DestinationStream =
    format === 'pretty'
      ? prettyStream()({ destination: fd, sync: true, colorize: isatty(fd), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' })
      : pino.destination({ fd, sync: false });
  root = pino(
    { name: 'gemma3n-trickle', level: setup.level ?? (process.env.LOG_LEVEL?.trim() ? parseLogLevel(process.env.LOG_LEVEL) : 'info'), base: { pid: process.pid } },
    destination,
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
