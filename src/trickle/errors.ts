/**
 * Errors raised by the trickle clients. Callers branch on `code`:
 * - trickle_not_found          the channel does not exist (404); the channel may re-appear later
 * - trickle_channel_closed     the server said `Lp-Trickle-Closed` (channel deleted while in use)
 * - trickle_retries_exhausted  bounded retries used up; `cause` holds the last failure
 * - trickle_http_error         an unexpected HTTP status (`status`, `body` kept)
 * - trickle_connection         transport failure (refused, reset, TLS …)
 * - trickle_closed             the client itself was closed
 * - trickle_aborted            the segment was abandoned by the caller
 * - trickle_not_a_server       a 200 without trickle headers: a plain HTTP server, never a segment
 * - trickle_bad_url            a channel URL the clients refuse (not http/https, query, fragment, credentials)
 */
import { AppError } from '../errors.js';

export type TrickleErrorCode =
  | 'trickle_not_found'
  | 'trickle_channel_closed'
  | 'trickle_retries_exhausted'
  | 'trickle_http_error'
  | 'trickle_connection'
  | 'trickle_closed'
  | 'trickle_aborted'
  | 'trickle_not_a_server'
  | 'trickle_bad_url';

export class TrickleError extends AppError {
  declare readonly code: TrickleErrorCode;
  /** HTTP status when one was received. */
  readonly status: number | undefined;
  /** Start of the response body for unexpected statuses (diagnostics only). */
  readonly body: string | undefined;

  constructor(
    code: TrickleErrorCode,
    message: string,
    options?: { status?: number; body?: string; cause?: unknown },
  ) {
    super(code, message, { cause: options?.cause });
    this.status = options?.status;
    this.body = options?.body;
  }
}

/** Wraps any transport-level failure as a trickle_connection error (TrickleErrors pass through). */
export function asTrickleError(err: unknown, what: string): TrickleError {
  if (err instanceof TrickleError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return new TrickleError('trickle_connection', `${what}: ${code ? `${code} ` : ''}${msg}`, { cause: err });
}
