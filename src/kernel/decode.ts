import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError } from './errors.js'

/**
 * One broken rule found while decoding input: where (`path`, e.g. `sites.east.storage`), what was expected
 * and what was given.
 *
 * @public
 */
export interface InputViolation {
  readonly path: string
  readonly expected: string
  readonly actual: string
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return 'a function'
  try {
    const json = JSON.stringify(value)
    return json.length > 60 ? `${json.slice(0, 57)}...` : json
  } catch {
    return typeof value
  }
}

function violationOf(error: t.ValidationError): InputViolation {
  // Members of intersections and unions appear in io-ts paths as "0", "1"…; they are not fields the user wrote.
  const keys = error.context
    .filter((entry, i) => {
      const parent = error.context[i - 1]?.type as { _tag?: string } | undefined
      return entry.key !== '' && parent?._tag !== 'IntersectionType' && parent?._tag !== 'UnionType'
    })
    .map((entry) => entry.key)
  const last = error.context[error.context.length - 1]
  const expected = error.message ?? (last === undefined ? 'valid value' : last.type.name)
  return { path: keys.length === 0 ? '(root)' : keys.join('.'), expected, actual: describeValue(error.value) }
}

/**
 * Decodes untrusted input with an io-ts codec. On failure it throws `E_INVALID_INPUT` whose message names
 * every broken field and rule (`what: field "size" must be Size, got "12 parsecs"`) and whose `details.violations`
 * lists them with their io-ts paths. Nothing is changed by a rejected call because decoding comes first.
 *
 * @param codec - the io-ts codec describing valid input
 * @param input - the untrusted value
 * @param what - what is being decoded, for the message (e.g. `volumes.create options`)
 * @public
 */
export function decode<A, O>(codec: t.Type<A, O, unknown>, input: unknown, what = codec.name): A {
  const result = codec.decode(input)
  if (!isLeft(result)) return result.right
  const seen = new Set<string>()
  const violations: InputViolation[] = []
  for (const error of result.left) {
    const violation = violationOf(error)
    const key = `${violation.path}|${violation.expected}`
    if (!seen.has(key)) {
      seen.add(key)
      violations.push(violation)
    }
  }
  const summary = violations
    .slice(0, 5)
    .map((v) => `field "${v.path}" must be ${v.expected}, got ${v.actual}`)
    .join('; ')
  const more = violations.length > 5 ? ` (and ${violations.length - 5} more)` : ''
  throw new DrError('E_INVALID_INPUT', `invalid ${what}: ${summary}${more}`, { what, violations })
}
