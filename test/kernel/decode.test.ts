import { describe, expect, it } from 'vitest'
import * as t from 'io-ts'
import * as E from 'fp-ts/lib/Either.js'
import {
  DrError,
  Duration,
  Name,
  Size,
  adapterError,
  decode,
  fromEither,
  fromTaskEither,
  getOrThrow,
  isDrError,
  parseDuration,
  parseSize,
  toDrError,
  toTaskEither,
} from '../../src/kernel/index.js'

const VolumeOptions = t.type({ name: Name, size: Size, every: Duration }, 'volume options')

describe('decode', () => {
  it('returns the decoded value for valid input (sizes and durations become numbers)', () => {
    expect(decode(VolumeOptions, { name: 'db', size: '64GiB', every: '30s' })).toEqual({ name: 'db', size: 64 * 1024 ** 3, every: 30_000 })
  })

  it('rejects with E_INVALID_INPUT naming the field path and the rule broken', () => {
    try {
      decode(VolumeOptions, { name: '-bad', size: '12 parsecs', every: 5 }, 'volumes.create options')
      expect.unreachable()
    } catch (error) {
      expect(isDrError(error, 'E_INVALID_INPUT')).toBe(true)
      const e = error as DrError
      expect(e.message).toContain('volumes.create options')
      expect(e.message).toContain('field "name"')
      expect(e.message).toContain('field "size"')
      const violations = e.details['violations'] as Array<{ path: string; expected: string }>
      expect(violations.map((v) => v.path)).toEqual(['name', 'size'])
      expect(violations[1]?.expected).toMatch(/^Size/)
    }
  })

  it('reports nested paths like sites.east.port', () => {
    const Config = t.type({ sites: t.record(t.string, t.type({ port: t.number })) })
    expect(() => decode(Config, { sites: { east: { port: 'x' } } })).toThrow(/field "sites\.east\.port"/)
  })

  it('reports a missing root as (root)', () => {
    expect(() => decode(VolumeOptions, undefined)).toThrow(/field "\(root\)"/)
  })

  it('parses sizes and durations and refuses nonsense', () => {
    expect(parseSize('1.5 MiB')).toBe(1.5 * 1024 * 1024)
    expect(parseSize('4096B')).toBe(4096)
    expect(parseSize(-1)).toBeUndefined()
    expect(parseSize('1.3B')).toBeUndefined()
    expect(parseSize('10 parsecs')).toBeUndefined()
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('2h')).toBe(7_200_000)
    expect(parseDuration('soon')).toBeUndefined()
    expect(Name.is('a'.repeat(129))).toBe(false)
    expect(Name.is('east-1.db_2')).toBe(true)
  })
})

describe('errors and the Either/Promise bridge', () => {
  it('DrError carries a stable code, details and cause, and serialises to plain data', () => {
    const cause = new Error('disk')
    const error = new DrError('E_ADAPTER', 'write failed', { volume: 'v' }, { cause })
    expect(error.cause).toBe(cause)
    expect(JSON.parse(JSON.stringify(error))).toEqual({ code: 'E_ADAPTER', message: 'write failed', details: { volume: 'v' } })
  })

  it('adapterError wraps foreign errors as E_ADAPTER but keeps DrError codes', () => {
    const wrapped = adapterError('local', 'write', new Error('EIO'))
    expect(wrapped.code).toBe('E_ADAPTER')
    expect(wrapped.details).toEqual({ adapter: 'local', operation: 'write' })
    const own = new DrError('E_NOT_FOUND', 'no volume')
    expect(adapterError('local', 'write', own)).toBe(own)
    expect(toDrError('a string').code).toBe('E_INTERNAL')
  })

  it('moves between Either, TaskEither and Promise', async () => {
    await expect(fromEither(E.right(1))).resolves.toBe(1)
    await expect(fromEither(E.left(new DrError('E_CONFLICT', 'x')))).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect(() => getOrThrow(E.left(new DrError('E_FENCED', 'x')))).toThrow(DrError)
    const task = toTaskEither(async () => {
      throw new Error('boom')
    })
    const result = await task()
    expect(E.isLeft(result) && result.left.code).toBe('E_INTERNAL')
    await expect(fromTaskEither(toTaskEither(async () => 7))).resolves.toBe(7)
  })
})
