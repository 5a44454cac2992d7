import { isDrError, type DrErrorCode } from '../kernel/errors.js'

/** An `assert.rejects` predicate: the call rejected with a `DrError` of `code`. */
export const failsWith =
  (code: DrErrorCode) =>
  (error: unknown): boolean =>
    isDrError(error, code)
