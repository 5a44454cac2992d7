import * as t from 'io-ts'

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * A resource name: 1–128 characters of letters, digits, `.`, `_` and `-`, starting with a letter or digit.
 * Used for sites, volumes, snapshots, shares, hosts, policies and workflow ids.
 *
 * @public
 */
export const Name = new t.Type<string, string, unknown>(
  'Name (1-128 of [A-Za-z0-9._-], starting with a letter or digit)',
  (u): u is string => typeof u === 'string' && NAME_PATTERN.test(u),
  (u, c) => (typeof u === 'string' && NAME_PATTERN.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/**
 * A non-negative safe integer.
 *
 * @public
 */
export const NonNegativeInt = new t.Type<number, number, unknown>(
  'NonNegativeInt',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= 0,
  (u, c) => (typeof u === 'number' && Number.isSafeInteger(u) && u >= 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/**
 * A positive safe integer.
 *
 * @public
 */
export const PositiveInt = new t.Type<number, number, unknown>(
  'PositiveInt',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u > 0,
  (u, c) => (typeof u === 'number' && Number.isSafeInteger(u) && u > 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
}
const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/

/**
 * Parses a byte size such as `64GiB`, `512 MiB` or a plain number of bytes. Returns undefined when the text is
 * not a size or the result is not a whole number of bytes.
 *
 * @public
 */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined
  const match = SIZE_PATTERN.exec(input.trim())
  if (match === null) return undefined
  const [, amount, unit] = match
  const bytes = Number(amount) * (SIZE_UNITS[unit ?? 'B'] ?? 1)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

/**
 * A byte size given as a number of bytes or a string with a unit (`64GiB`, `1.5 MiB`, `4096B`); decodes to bytes.
 *
 * @public
 */
export const Size = new t.Type<number, string | number, unknown>(
  'Size (bytes, or a string like "64GiB")',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= 0,
  (u, c) => {
    if (typeof u !== 'string' && typeof u !== 'number') return t.failure(u, c)
    const bytes = parseSize(u)
    return bytes === undefined ? t.failure(u, c) : t.success(bytes)
  },
  (bytes) => bytes,
)

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/

/**
 * Parses a duration such as `30s`, `5m`, `250ms`, `2h`, `1d` or a plain number of milliseconds.
 *
 * @public
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input) : undefined
  const match = DURATION_PATTERN.exec(input.trim())
  if (match === null) return undefined
  const [, amount, unit] = match
  return Math.round(Number(amount) * (DURATION_UNITS[unit ?? 'ms'] ?? 1))
}

/**
 * A duration given in milliseconds or as a string with a unit (`30s`, `5m`, `250ms`); decodes to milliseconds.
 *
 * @public
 */
export const Duration = new t.Type<number, string | number, unknown>(
  'Duration (milliseconds, or a string like "30s")',
  (u): u is number => typeof u === 'number' && Number.isFinite(u) && u >= 0,
  (u, c) => {
    if (typeof u !== 'string' && typeof u !== 'number') return t.failure(u, c)
    const ms = parseDuration(u)
    return ms === undefined ? t.failure(u, c) : t.success(ms)
  },
  (ms) => ms,
)

/**
 * A value that must be an object implementing an adapter interface: checked only for being a non-null object
 * with the named methods, since functions cannot be described by a serialisable codec.
 *
 * @public
 */
export function implementing<A>(name: string, methods: readonly string[]): t.Type<A, A, unknown> {
  const is = (u: unknown): u is A =>
    typeof u === 'object' &&
    u !== null &&
    methods.every((method) => typeof (u as Record<string, unknown>)[method] === 'function')
  return new t.Type<A, A, unknown>(name, is, (u, c) => (is(u) ? t.success(u) : t.failure(u, c)), t.identity)
}

/**
 * A JSON value, as stored in configuration records, journals and event payloads.
 *
 * @public
 */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json }

/**
 * Codec for {@link Json}: accepts only values that survive a JSON round trip unchanged.
 *
 * @public
 */
export const JsonValue: t.Type<Json, Json, unknown> = new t.Type<Json, Json, unknown>(
  'Json',
  (u): u is Json => isJson(u),
  (u, c) => (isJson(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

function isJson(u: unknown): u is Json {
  if (u === null || typeof u === 'boolean' || typeof u === 'string') return true
  if (typeof u === 'number') return Number.isFinite(u)
  if (Array.isArray(u)) return u.every(isJson)
  if (typeof u === 'object') {
    const proto = Object.getPrototypeOf(u) as unknown
    return (proto === Object.prototype || proto === null) && Object.values(u as object).every(isJson)
  }
  return false
}
