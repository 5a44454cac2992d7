/**
 * The stable error codes drkit rejects with. A code never changes meaning once released;
 * embedders switch on it, log it and alarm on it.
 *
 * @public
 */
export const DrErrorCodes = [
  'E_INVALID_INPUT',
  'E_NOT_FOUND',
  'E_CONFLICT',
  'E_PRECONDITION',
  'E_FENCED',
  'E_ADAPTER',
  'E_TIMEOUT',
  'E_ABORTED',
  'E_CORRUPT',
  'E_UNAVAILABLE',
  'E_CLOSED',
  'E_INTERNAL',
] as const

/**
 * One of {@link DrErrorCodes}.
 *
 * @public
 */
export type DrErrorCode = (typeof DrErrorCodes)[number]

/**
 * Structured context attached to a {@link DrError}: the io-ts path of a bad field, the adapter and operation
 * that failed, the volume and block of a checksum mismatch, and so on. Always plain, serialisable data.
 *
 * @public
 */
export type DrErrorDetails = Readonly<Record<string, unknown>>

/**
 * The only error drkit rejects with. `code` is stable and machine-readable, `message` names the field or
 * resource and the rule broken, `details` carries structured context and `cause` the underlying error.
 *
 * @public
 */
export class DrError extends Error {
  /** Stable, machine-readable code. */
  readonly code: DrErrorCode
  /** Structured context (field path, adapter, operation, resource ids). */
  readonly details: DrErrorDetails

  constructor(code: DrErrorCode, message: string, details: DrErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'DrError'
    this.code = code
    this.details = details
  }

  /** A plain-object form for logs, events and journals. */
  toJSON(): { code: DrErrorCode; message: string; details: DrErrorDetails } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

/**
 * True when `value` is a {@link DrError}, optionally with the given code.
 *
 * @public
 */
export function isDrError(value: unknown, code?: DrErrorCode): value is DrError {
  return value instanceof DrError && (code === undefined || value.code === code)
}

/**
 * Turns anything thrown into a {@link DrError}. A DrError passes through unchanged; anything else becomes
 * `E_INTERNAL` (or `fallback`) with the original kept as `cause`.
 *
 * @public
 */
export function toDrError(thrown: unknown, fallback: DrErrorCode = 'E_INTERNAL', details: DrErrorDetails = {}): DrError {
  if (thrown instanceof DrError) return thrown
  const message = thrown instanceof Error ? thrown.message : String(thrown)
  return new DrError(fallback, message, details, { cause: thrown })
}

/**
 * Wraps a failure of an adapter call as `E_ADAPTER`, naming the adapter and the operation. A DrError the
 * adapter raised on purpose (`E_NOT_FOUND`, `E_FENCED`, `E_CORRUPT`…) keeps its own code, so that callers
 * can still tell a missing volume from a broken disk.
 *
 * @public
 */
export function adapterError(adapter: string, operation: string, thrown: unknown): DrError {
  if (thrown instanceof DrError) return thrown
  const message = thrown instanceof Error ? thrown.message : String(thrown)
  return new DrError('E_ADAPTER', `${adapter}.${operation} failed: ${message}`, { adapter, operation }, { cause: thrown })
}

/**
 * Runs one adapter call and wraps its failure with {@link adapterError}, so every module reports adapter
 * failures the same way: adapter, operation and cause.
 *
 * @public
 */
export async function callAdapter<R>(adapter: string, operation: string, run: () => Promise<R>): Promise<R> {
  try {
    return await run()
  } catch (error) {
    throw adapterError(adapter, operation, error)
  }
}
