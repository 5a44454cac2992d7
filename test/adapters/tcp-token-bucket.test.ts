import { describe, expect, it } from 'vitest'
import { DrError } from '../../src/kernel/errors.js'
import { ManualClock } from '../../src/kernel/clock.js'
import { TokenBucket } from '../../src/adapters/tcp/token-bucket.js'

/** Takes `sizes` from `bucket` in order and records, for each, the clock time it was granted (or its error). */
function takeAll(bucket: TokenBucket, clock: ManualClock, sizes: readonly number[]) {
  const granted: Array<number | undefined> = sizes.map(() => undefined)
  const errors: unknown[] = []
  const done = sizes.map((size, index) =>
    bucket.take(size).then(
      () => {
        granted[index] = clock.now()
      },
      (error: unknown) => {
        errors[index] = error
      },
    ),
  )
  return { granted, errors, done, count: () => granted.filter((at) => at !== undefined).length }
}

/** A bucket at `rate` bytes per second on a manual clock starting at 0. */
function bucketAt(rate: number): { clock: ManualClock; bucket: TokenBucket } {
  const clock = new ManualClock(0)
  const bucket = new TokenBucket(clock)
  bucket.setRate(rate)
  return { clock, bucket }
}

describe('tcp token bucket (on a manual clock)', () => {
  it('paces takes to the rate: over N seconds no more than rate × N plus one second of burst is granted', async () => {
    const { clock, bucket } = bucketAt(1000)
    const takes = takeAll(bucket, clock, Array.from({ length: 40 }, () => 500))
    await clock.advance(0)
    expect(takes.count()).toBe(2)
    for (let second = 1; second <= 10; second++) {
      await clock.advance(1000)
      const bytes = takes.count() * 500
      expect(bytes).toBeLessThanOrEqual(1000 * second + 1000)
      expect(bytes).toBeGreaterThanOrEqual(1000 * second)
    }
    expect(takes.count()).toBe(22)
    expect(takes.granted.slice(0, 6)).toEqual([0, 0, 500, 1000, 1500, 2000])
  })

  it('an idle bucket holds one second of tokens, never more', async () => {
    const { clock, bucket } = bucketAt(1000)
    await clock.advance(60_000)
    const takes = takeAll(bucket, clock, Array.from({ length: 5 }, () => 400))
    await clock.advance(0)
    expect(takes.count()).toBe(2)
    await clock.advance(199)
    expect(takes.count()).toBe(2)
    await clock.advance(1)
    expect(takes.count()).toBe(3)
  })

  it('a take larger than the bucket goes once the bucket is full and leaves it in debt', async () => {
    const { clock, bucket } = bucketAt(1000)
    const takes = takeAll(bucket, clock, [5000, 100])
    await clock.advance(0)
    expect(takes.granted).toEqual([0, undefined])
    await clock.advance(4099)
    expect(takes.count()).toBe(1)
    await clock.advance(1)
    expect(takes.granted).toEqual([0, 4100])
  })

  it('serves waiters in order: a small take never overtakes a large one waiting before it', async () => {
    const { clock, bucket } = bucketAt(1000)
    await bucket.take(1000)
    const takes = takeAll(bucket, clock, [900, 10, 10])
    await clock.advance(899)
    expect(takes.count()).toBe(0)
    await clock.advance(1)
    expect(takes.granted).toEqual([900, undefined, undefined])
    await clock.advance(20)
    expect(takes.granted).toEqual([900, 910, 920])
  })

  it('lifting the limit releases every waiter at once; a new limit starts with a full bucket', async () => {
    const { clock, bucket } = bucketAt(100)
    const takes = takeAll(bucket, clock, [100, 1000, 1000])
    await clock.advance(0)
    expect(takes.count()).toBe(1)
    bucket.setRate(undefined)
    await clock.advance(0)
    expect(takes.granted).toEqual([0, 0, 0])
    bucket.setRate(2000)
    const again = takeAll(bucket, clock, [2000, 1])
    await clock.advance(0)
    expect(again.granted).toEqual([0, undefined])
    expect(() => bucket.setRate(0)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(() => bucket.setRate(Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(bucket.rate).toBe(2000)
  })

  it('fail() rejects every waiter and every later take with its error', async () => {
    const { clock, bucket } = bucketAt(10)
    const takes = takeAll(bucket, clock, [10, 10, 10])
    await clock.advance(0)
    const broken = new DrError('E_UNAVAILABLE', 'channel closed')
    bucket.fail(broken)
    await Promise.all(takes.done)
    expect(takes.granted).toEqual([0, undefined, undefined])
    expect(takes.errors.slice(1)).toEqual([broken, broken])
    await expect(bucket.take(1)).rejects.toBe(broken)
    await clock.advance(10_000)
    expect(clock.pendingTimers).toBe(0)
  })
})
