/**
 * The one place an error becomes an HTTP status. Deeper layers throw typed errors with a registered
 * `code` and never choose a status; the control API's handlers ask here, and the answer is the
 * registry's `http` for that code (src/error-codes.ts, documented in docs/error-codes.md), so a code
 * answers with the same status wherever it surfaces.
 */
import { ERROR_CODES, errorCode } from '../errors.js';
import type { ErrorCodeInfo } from '../error-codes.js';

/** The status `err` answers with: its code's registered status, else 500 (our fault). */
export function httpStatusOf(err: unknown): number {
  const info: ErrorCodeInfo = ERROR_CODES[errorCode(err)];
  return info.http ?? 500;
}

/** A caller's mistake (a 4xx), as opposed to ours. */
export function isClientError(err: unknown): boolean {
  const status = httpStatusOf(err);
  return status >= 400 && status < 500;
}
