import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { BS, barrier, filled, freezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

async function protectedWorld(clock?: ManualClock): Promise<FreezeWorld> {
  const w = await freezeWorld(clock === undefined ? {} : { clock })
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.freeze.protect(protectDb())
  w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
  return w
}

/**
 * A restore held at its data step while actor p9 starts using the volume, and the late-joiner sweep (on a manual
 * clock) held at its first call of host `method`.
 */
async function sweepHeldAt(method: 'listActors' | 'freezeActor') {
  const clock = new ManualClock()
  const w = await protectedWorld(clock)
  const hold = barrier(w.storage(), 'restoreSnapshot')
  const restore = w.freeze.restore({ site: 'east', volume: 'db' })
  await hold.entered
  w.host().addActor({ id: 'p9', kind: 'process', volumes: ['db'] })
  const sweep = barrier(w.host(), method)
  await clock.advance(100)
  await sweep.entered
  return { w, clock, hold, restore, sweep }
}

async function frozen(w: FreezeWorld): Promise<string[]> {
  return (await w.host().listActors('db')).filter((a) => a.frozen).map((a) => a.id)
}

describe('an actor that joins while the restore thaws is never left frozen (behaviour 6)', () => {
  it('an application that opens a handle while the thaw runs is not frozen, and its I/O runs', async () => {
    const w = await protectedWorld()
    const thaw = barrier(w.host(), 'thawActor')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await thaw.entered
    w.host().addActor({ id: 'p9', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db', actor: 'p9' })
    thaw.release()
    expect((await restore).summary.outcome).toBe('restored')
    expect(await frozen(w)).toEqual([])
    expect(await h.read(0, 4)).toEqual(filled(4, 1))
  })

  it('a late joiner whose freeze is in flight when the thaw starts is thawed after it, with the others', async () => {
    const { w, clock, hold, restore, sweep: lateFreeze } = await sweepHeldAt('freezeActor')
    hold.release()
    // The restore gets as far as the thaw (the lock is released just before it) and waits for the late freeze.
    for (let i = 0; i < 50 && (await w.freeze.lockHolder({ site: 'east', volume: 'db' })) !== null; i++) await clock.advance(0)
    for (let i = 0; i < 5; i++) await clock.advance(0)
    expect(w.hostFaults['east']!.calls.filter((c) => c.method === 'thawActor')).toEqual([])
    lateFreeze.release()
    expect((await restore).summary.outcome).toBe('restored')
    expect(await frozen(w)).toEqual([])
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual(['p1', 'p9'])
  })

  it('a sweep that lists an actor after the restore finished does not freeze it', async () => {
    const { w, clock, hold, restore, sweep: listing } = await sweepHeldAt('listActors')
    hold.release()
    expect((await restore).summary.outcome).toBe('restored')
    listing.release()
    await clock.advance(0)
    expect(await frozen(w)).toEqual([])
    expect(w.names('freeze.frozen').filter((e) => e.payload.lateJoiner)).toEqual([])
  })
})
