/**
 * Typed errors shared by every module. Each carries a stable, machine-readable `code` (used in logs,
 * error records on the data channel and events) and, where it surfaces over HTTP, a status.
 * Modules subclass AppError rather than throwing bare Errors for conditions callers act on.
 */
export class AppError extends Error {
  readonly code: string;
  readonly httpStatus: number;

  constructor(code: string, message: string, options?: { httpStatus?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.httpStatus = options?.httpStatus ?? 500;
  }
}

/** The client sent something the server cannot accept (4xx). */
export class BadRequestError extends AppError {
  constructor(message: string, code = 'bad_request', httpStatus = 400) {
    super(code, message, { httpStatus });
  }
}

/** Parameter validation failed; `issues` lists each field and the rule it broke. */
export class ParamsValidationError extends AppError {
  readonly issues: ReadonlyArray<{ path: string; message: string }>;

  constructor(issues: ReadonlyArray<{ path: string; message: string }>) {
    super('invalid_params', issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), {
      httpStatus: 400,
    });
    this.issues = issues;
  }
}

/** Extracts a message from anything thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/** Extracts a stable code from anything thrown (AppError code, Node system error code, or 'internal'). */
export function errorCode(err: unknown): string {
  if (err instanceof AppError) return err.code;
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    return String((err as NodeJS.ErrnoException).code).toLowerCase();
  }
  return 'internal';
}
