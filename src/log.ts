/**
 * The one logger factory. Library code logs through a pino child logger with structured fields
 * (`component`, `stream_id`, …), never console.log. LOG_LEVEL sets the level (tests run 'silent').
 * Commands that print their own output on stdout (demo, subscribe) send logs to stderr instead.
 *
 * Format: one JSON object per line when the log's file descriptor is not a terminal (pipes, files,
 * containers, log shippers), human-readable lines (pino-pretty, in-process) when it is a terminal.
 * LOG_FORMAT=json|pretty overrides the choice; any other value is refused with a clear error.
 */
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
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

/** LOG_FORMAT if set, else pretty exactly when `fd` is a terminal. */
export function resolveLogFormat(fd: number, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const wanted = env.LOG_FORMAT?.trim().toLowerCase();
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  if (wanted) {
    throw new AppError('invalid_log_format', `LOG_FORMAT must be "json" or "pretty", got "${env.LOG_FORMAT}"`);
  }
  return isatty(fd) ? 'pretty' : 'json';
}

export function configureRootLogger(setup: LoggerSetup): Logger {
  const fd = setup.fd ?? 1;
  const format = setup.format ?? resolveLogFormat(fd);
  // In-process pretty-printing rather than a worker-thread transport: a terminal reader produces few
  // lines, and a synchronous write means the last lines before process.exit() are not lost.
  const destination: DestinationStream =
    format === 'pretty'
      ? PinoPretty({ destination: fd, sync: true, colorize: isatty(fd), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' })
      : pino.destination({ fd, sync: false });
  root = pino(
    { name: 'gemma3n-trickle', level: setup.level ?? process.env.LOG_LEVEL ?? 'info', base: { pid: process.pid } },
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
