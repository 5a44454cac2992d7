import * as t from 'io-ts'

const isText = (u: unknown): u is string => typeof u === 'string' && u.length > 0

/**
 * A non-empty string: service names, namespace names, shares, virtual addresses and name records, which are
 * free-form in the memory network but never empty.
 */
export const NonEmptyText = new t.Type<string, string, unknown>(
  'non-empty string',
  isText,
  (u, c) => (isText(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)
