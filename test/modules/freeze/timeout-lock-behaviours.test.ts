import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { BS, barrier, filled, freezeWorld, heldIo, protectDb, token, track, type FreezeWorld } from '../../fixtures/freeze-world.js'

async function manualWorld(extra: Record<string, unknown>, random?: () => number): Promise<{ w: FreezeWorld; clock: ManualClock }> {
  const clock = new ManualClock()
  const w = await freezeWorld({ clock, ...(random === undefined ? {} : { random }) })
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.freeze.protect(protectDb(extra))
  return { w, clock }
}

describe('freeze timeouts', () => {
  it('behaviour 10: when the restore outlasts the freeze timeout, held I/O fails with E_TIMEOUT, the actor is released and the restore goes on', async () => {
    const { w, clock } = await manualWorld({ freezeTimeoutMs: '1s' })
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const held = h.read(0, 4)
    const state = track(held)
    const outcome = held.catch((error: unknown) => error)
    await heldIo(w, 1)
    await clock.advance(999)
    expect(state.settled).toBe(false)
    expect((await w.freeze.gate({ site: 'east', volume: 'db' })).heldIo).toBe(1)
    await clock.advance(1)
    expect(await outcome).toMatchObject({ code: 'E_TIMEOUT' })
    const timedOut = w.names('freeze.timedOut').map((e) => e.payload)
    expect(timedOut).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'io', released: 1, volumeRestored: false }),
        expect.objectContaining({ kind: 'actor', actor: 'p1', volumeRestored: false }),
      ]),
    )
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    const later = h.read(0, 4)
    const laterState = track(later)
    await heldIo(w, 1)
    expect(laterState.settled).toBe(false)
    hold.release()
    const result = await restore
    expect(result.summary.outcome).toBe('restored')
    expect(await later).toEqual(filled(4, 1))
    expect(w.hostFaults['east']!.calls.filter((c) => c.method === 'thawActor')).toHaveLength(1)
  })

  it('behaviour 29: an actor freeze that runs out (a sleep with no wakeup) releases the actor by itself and counts as a timeout', async () => {
    const { w, clock } = await manualWorld({ freezeTimeoutMs: null, actorTimeoutMs: 500 })
    w.host().addActor({ id: 'sleeper', kind: 'process', volumes: ['db'] })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(true)
    await clock.advance(500)
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    expect(w.names('freeze.timedOut')[0]?.payload).toMatchObject({ kind: 'actor', actor: 'sleeper', released: 1 })
    hold.release()
    await restore
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual([])
  })

  it('behaviour 11: a restore that finishes within the timeout emits no timeout and leaves no timer armed', async () => {
    const { w, clock } = await manualWorld({ freezeTimeoutMs: '1s' })
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const held = h.read(0, 4)
    await clock.advance(600)
    hold.release()
    await restore
    expect(await held).toEqual(filled(4, 1))
    expect(clock.pendingTimers).toBe(0)
    await clock.advance(5000)
    expect(w.names('freeze.timedOut')).toEqual([])
    expect(w.names('freeze.thawed')[0]?.payload.freezeWindowMs).toBe(600)
  })

  it('behaviour 35: an actor timeout that fires while the thaw is releasing the actor releases it exactly once', async () => {
    const { w, clock } = await manualWorld({ freezeTimeoutMs: null, actorTimeoutMs: 1000 })
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const thaw = barrier(w.host(), 'thawActor')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await thaw.entered
    await clock.advance(2000)
    thaw.release()
    await restore
    expect(w.hostFaults['east']!.calls.filter((c) => c.method === 'thawActor')).toHaveLength(1)
    expect(w.names('freeze.timedOut')).toEqual([])
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual(['p1'])
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
  })

  it('behaviour 35: a thaw that runs while the actor timeout is releasing the actor releases it exactly once', async () => {
    const { w, clock } = await manualWorld({ freezeTimeoutMs: null, actorTimeoutMs: 1000 })
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const timeoutThaw = barrier(w.host(), 'thawActor')
    await clock.advance(1000)
    await timeoutThaw.entered
    hold.release()
    const result = await restore
    timeoutThaw.release()
    await clock.advance(0)
    expect(result.summary.outcome).toBe('restored')
    expect(w.hostFaults['east']!.calls.filter((c) => c.method === 'thawActor')).toHaveLength(1)
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual([])
    expect(w.names('freeze.timedOut').map((e) => e.payload)).toEqual([expect.objectContaining({ kind: 'actor', actor: 'p1', released: 1 })])
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
  })
})

describe('the update lock', () => {
  it('behaviour 16: with a fixed retry delay the restore waits d, retries, and does not dismount before it has the lock', async () => {
    const { w, clock } = await manualWorld({ lockRetry: { minDelayMs: 500, maxDelayMs: 500 } })
    await w.freeze.lockVolume({ site: 'east', volume: 'db', holder: 'backup-tool' })
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await clock.advance(0)
    expect(w.names('freeze.lockContended').map((e) => e.payload)).toEqual([expect.objectContaining({ holder: 'backup-tool', attempt: 1, delayMs: 500 })])
    await clock.advance(499)
    expect(w.names('freeze.lockContended')).toHaveLength(1)
    await clock.advance(1)
    expect(w.names('freeze.lockContended')).toHaveLength(2)
    expect(w.hostFaults['east']!.calls.map((c) => c.method)).not.toContain('dismount')
    await w.freeze.unlockVolume({ site: 'east', volume: 'db', holder: 'backup-tool' })
    await clock.advance(500)
    expect((await restore).summary.outcome).toBe('restored')
    expect(w.names('freeze.lockContended')).toHaveLength(2)
  })

  it('behaviour 17: with random retry in [a, b] and a seeded RNG, each delay is in range and follows the RNG', async () => {
    const sequence = [0.1, 0.9, 0.5]
    let next = 0
    const { w, clock } = await manualWorld({ lockRetry: { minDelayMs: 100, maxDelayMs: 300 } }, () => sequence[next++ % sequence.length]!)
    await w.freeze.lockVolume({ site: 'east', volume: 'db', holder: 'other' })
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await clock.advance(120 + 280 + 1)
    await w.freeze.unlockVolume({ site: 'east', volume: 'db', holder: 'other' })
    await clock.advance(200)
    await restore
    expect(w.names('freeze.lockContended').map((e) => e.payload.delayMs)).toEqual([120, 280, 200])
  })

  it('behaviour 17: a lock that is never obtained ends the restore with E_CONFLICT after the attempt bound (never E_TIMEOUT, which is the freeze timeout\'s), nothing dismounted', async () => {
    const { w, clock } = await manualWorld({ freezeTimeoutMs: '1h', lockRetry: { minDelayMs: 10, maxDelayMs: 10, maxAttempts: 3 } })
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await w.freeze.lockVolume({ site: 'east', volume: 'db', holder: 'other' })
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    const outcome = restore.catch((error: unknown) => error)
    // Once the restore waits for the lock, the volume's I/O is held.
    for (let i = 0; i < 50 && w.names('freeze.lockContended').length === 0; i++) await clock.advance(0)
    const held = h.read(0, 4).catch((error: unknown) => error)
    await clock.advance(100)
    expect(await outcome).toMatchObject({ code: 'E_CONFLICT', details: { holder: 'other', attempts: 3 } })
    expect(await held).toMatchObject({ code: 'E_CONFLICT', details: { cause: 'E_CONFLICT' } })
    expect(w.names('freeze.restoreFailed')[0]?.payload).toMatchObject({ stage: 'lock', code: 'E_CONFLICT', released: 1 })
    expect(w.hostFaults['east']!.calls.map((c) => c.method)).not.toContain('dismount')
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBe('other')
    await expect(w.freeze.lockVolume({ site: 'east', volume: 'db', holder: 'third', maxAttempts: 1 })).rejects.toMatchObject({ code: 'E_CONFLICT' })
  })

  it('behaviour 18: a lock-respecting writer that asks for the lock during the restore is blocked until it is released', async () => {
    const { w, clock } = await manualWorld({ lockRetry: { minDelayMs: 50, maxDelayMs: 50, maxAttempts: 100 } })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toMatch(/^restore-/)
    const writer = w.freeze.lockVolume({ site: 'east', volume: 'db', holder: 'writer' })
    const state = track(writer)
    await clock.advance(500)
    expect(state.settled).toBe(false)
    hold.release()
    await restore
    await clock.advance(50)
    expect(await writer).toMatchObject({ holder: 'writer' })
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBe('writer')
  })
})
