/**
 * Typed errors shared by every module. Each carries a stable, machine-readable `code` (used in logs,
 * error records on the data channel and events). No error picks an HTTP status: the control API maps
 * the code to the registry's status at the edge (src/server/http-status.ts).
 * Modules subclass AppError rather than throwing bare Errors for conditions callers act on.
 * Every code is registered in src/error-codes.ts (`ErrorCode`): an unregistered one does not compile.
 */
import { isErrorCode, type ErrorCode } from './error-codes.js';

export { ERROR_CODES, isErrorCode, type ErrorCode } from './error-codes.js';

export class AppError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** The client sent something the server cannot accept (4xx). */
export class BadRequestError extends AppError {
  constructor(message: string, code: ErrorCode = 'bad_request') {
    super(code, message);
  }
}

/** Parameter validation failed; `issues` lists each field and the rule it broke. */
export class ParamsValidationError extends AppError {
  readonly issues: ReadonlyArray<{ path: string; message: string }>;

  constructor(issues: ReadonlyArray<{ path: string; message: string }>) {
    super('invalid_params', issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '));
    this.issues = issues;
  }
}

/** Extracts a message from anything thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/**
 * The registered code of anything thrown: an AppError's code, a registered code carried by another
 * error, `system_error` for a Node system error (one with a `syscall`; the errno stays in the
 * message and never becomes a public code), else `internal`.
 */
export function errorCode(err: unknown): ErrorCode {
  if (err instanceof AppError) return err.code;
  if (err instanceof Error) {
    const { code, syscall } = err as NodeJS.ErrnoException;
    if (isErrorCode(code)) return code;
    if (typeof syscall === 'string') return 'system_error';
  }
  return 'internal';
}
