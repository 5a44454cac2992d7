import { afterEach, describe, expect, it, vi } from 'vitest'
import { DrError, FenceGuard, ManualClock, MemoryLeaseManager, systemClock } from '../../src/kernel/index.js'

describe('ManualClock', () => {
  it('fires timers in due order only when advanced, and sleeps can be aborted', async () => {
    const clock = new ManualClock(0)
    const fired: string[] = []
    clock.setTimer(200, () => fired.push('b'))
    clock.setTimer(100, () => fired.push('a'))
    const cancel = clock.setTimer(150, () => fired.push('cancelled'))
    cancel()
    await clock.advance(99)
    expect(fired).toEqual([])
    await clock.advance(200)
    expect(fired).toEqual(['a', 'b'])
    expect(clock.now()).toBe(299)
    const controller = new AbortController()
    const sleeping = clock.sleep(1000, controller.signal)
    controller.abort()
    await expect(sleeping).rejects.toMatchObject({ code: 'E_ABORTED' })
  })

  it('lets code that sleeps in a loop progress as time advances', async () => {
    const clock = new ManualClock(0)
    let ticks = 0
    const loop = (async () => {
      while (ticks < 5) {
        await clock.sleep(10)
        ticks++
      }
    })()
    await clock.advance(50)
    await loop
    expect(ticks).toBe(5)
  })
})

describe('fencing', () => {
  it('FenceGuard accepts equal and higher tokens and rejects stale ones per scope with E_FENCED', () => {
    const guard = new FenceGuard('test')
    guard.check({ scope: 's', value: 5 }, 'write')
    guard.check({ scope: 's', value: 5 }, 'write')
    guard.check({ scope: 'other', value: 1 }, 'write')
    expect(() => guard.check({ scope: 's', value: 4 }, 'write')).toThrow(expect.objectContaining({ code: 'E_FENCED' }))
    guard.check({ scope: 's', value: 6 }, 'write')
    expect(guard.highest('s')).toBe(6)
    expect(() => guard.check({ scope: 's' } as never, 'write')).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    const restored = new FenceGuard('test')
    restored.restore(guard.entries())
    expect(() => restored.check({ scope: 's', value: 5 }, 'write')).toThrow(DrError)
  })

  it('leases have one holder per scope, strictly increasing tokens, and expire unless renewed', async () => {
    const clock = new ManualClock(0)
    const leases = new MemoryLeaseManager(clock, { defaultTtlMs: 1000 })
    const a = await leases.acquire('relationship-1', 'a')
    await expect(leases.acquire('relationship-1', 'b')).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await clock.advance(600)
    await a.renew()
    await clock.advance(600)
    expect(a.isValid()).toBe(true)
    await clock.advance(500)
    expect(a.isValid()).toBe(false)
    expect(a.signal.aborted).toBe(true)
    await expect(a.renew()).rejects.toMatchObject({ code: 'E_FENCED' })
    const b = await leases.acquire('relationship-1', 'b')
    expect(b.token.value).toBeGreaterThan(a.token.value)
    await b.release()
    expect(b.isValid()).toBe(false)
    const waiting = leases.acquire('relationship-1', 'c', { waitMs: 5000 })
    await expect(waiting).resolves.toMatchObject({ holder: 'c' })
  })

  it('takes a scope held under the same holder name over only when asked: the old lease ends, the token rises', async () => {
    const clock = new ManualClock(0)
    const leases = new MemoryLeaseManager(clock)
    const old = await leases.acquire('s', 'dr-east-1')
    await expect(leases.acquire('s', 'dr-east-1')).rejects.toMatchObject({ code: 'E_CONFLICT', details: { holder: 'dr-east-1' } })
    expect(old.isValid()).toBe(true)
    const reclaimed = await leases.acquire('s', 'dr-east-1', { takeOver: true })
    expect(reclaimed.token.value).toBeGreaterThan(old.token.value)
    expect(old.isValid()).toBe(false)
    expect(old.signal.reason).toMatchObject({ code: 'E_FENCED', details: { scope: 's' } })
    expect(reclaimed.isValid()).toBe(true)
  })

  it('a waiting acquirer gets the lease when the holder releases it', async () => {
    const clock = new ManualClock(0)
    const leases = new MemoryLeaseManager(clock)
    const a = await leases.acquire('s', 'a')
    const waiting = leases.acquire('s', 'b', { waitMs: 1000 })
    await clock.advance(100)
    await a.release()
    await clock.advance(100)
    await expect(waiting).resolves.toMatchObject({ holder: 'b', token: { scope: 's', value: 2 } })
  })
})

describe('systemClock timers longer than a Node timer can hold', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('a 30-day timer fires once, after 30 days, not at once (Node would fire an over-long timeout after 1 ms)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const day = 24 * 3600 * 1000
    let fired = 0
    systemClock.setTimer(30 * day, () => fired++)
    vi.advanceTimersByTime(1)
    expect(fired).toBe(0)
    vi.advanceTimersByTime(29 * day)
    expect(fired).toBe(0)
    vi.advanceTimersByTime(day)
    expect(fired).toBe(1)
  })

  it('cancelling a long timer in any of its legs stops it', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const day = 24 * 3600 * 1000
    let fired = 0
    const cancel = systemClock.setTimer(60 * day, () => fired++)
    vi.advanceTimersByTime(40 * day)
    cancel()
    vi.advanceTimersByTime(40 * day)
    expect(fired).toBe(0)
  })
})
