/**
 * Typed errors for the model layer. Every failure a backend can surface maps to one stable code so the
 * generation loop (and /health) can say what went wrong without parsing engine-specific text.
 */
import { AppError, type ErrorCode } from '../errors.js';

/** The model layer's codes; what each means, its HTTP status and what to do: src/error-codes.ts. */
export type ModelErrorCode = Extract<
  ErrorCode,
  | 'engine_unreachable'
  | 'engine_unauthorized'
  | 'model_not_found'
  | 'engine_bad_request'
  | 'context_length_exceeded'
  | 'engine_timeout'
  | 'engine_error'
  | 'engine_busy'
  | 'invalid_request'
  | 'aborted'
  | 'model_load_failed'
  | 'backend_closed'
>;

export class ModelError extends AppError {
  declare readonly code: ModelErrorCode;
  /** HTTP status the engine answered with, when there was one. */
  readonly engineStatus: number | undefined;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown; engineStatus?: number }) {
    super(code, message, { cause: options?.cause });
    this.engineStatus = options?.engineStatus;
  }
}

/**
 * The error every backend rejects with when the caller's signal fires. Its `name` is 'AbortError' so
 * callers can treat it like a DOM abort, and its code is 'aborted' so it also reads as a ModelError.
 */
export class ModelAbortError extends ModelError {
  constructor(reason?: unknown) {
    super('aborted', 'generation aborted', { cause: reason });
    this.name = 'AbortError';
  }
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err instanceof ModelError && err.code === 'aborted'));
}
