import { describe, expect, it } from 'vitest'
import { BS, barrier, filled, freezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

async function protectedWorld(extra: Record<string, unknown> = {}): Promise<FreezeWorld> {
  const w = await freezeWorld()
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().write('db-standby', 0, filled(BS, 6), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.freeze.protect(protectDb(extra))
  return w
}

describe('what the freeze path costs the applications', () => {
  it('a planned restore holds I/O only from its journal step: planning, freezing and capturing do not', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const capture = barrier(w.host(), 'getMount')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await capture.entered
    expect(await w.freeze.gate({ site: 'east', volume: 'db' })).toMatchObject({ frozen: false, heldIo: 0 })
    expect(await h.read(0, 4)).toEqual(filled(4, 1))
    const dismount = barrier(w.host(), 'dismount')
    capture.release()
    await dismount.entered
    expect((await w.freeze.gate({ site: 'east', volume: 'db' })).frozen).toBe(true)
    dismount.release()
    await restore
  })

  it('a detected disruption holds I/O at once', async () => {
    const w = await protectedWorld()
    const plan = barrier(w.host(), 'listMounts')
    const report = await w.freeze.reportDisruption({ site: 'east', volume: 'db' })
    await plan.entered
    expect(await w.freeze.gate({ site: 'east', volume: 'db' })).toMatchObject({ frozen: true, restoreId: report.restoreId })
    plan.release()
    await w.freeze.settled({ site: 'east', volume: 'db' })
  })

  it('the actors are recorded in one journal event and frozen together; with no cached writes no journal record is written', async () => {
    const w = await protectedWorld()
    for (const id of ['a1', 'a2', 'a3']) w.host().addActor({ id, kind: 'process', volumes: ['db'] })
    const freezing = barrier(w.host(), 'freezeActor')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await freezing.entered
    // The first freeze is held, yet all three were asked for: they run in parallel.
    for (let turn = 0; turn < 50 && w.hostFaults['east']!.count('freezeActor') < 3; turn++) await new Promise((resolve) => setImmediate(resolve))
    expect(w.hostFaults['east']!.count('freezeActor')).toBe(3)
    freezing.release()
    const result = await restore
    const events = (await w.stateStore.read('freeze/protections')).map((record) => record.type)
    expect(events.filter((type) => type.startsWith('restore.actor'))).toEqual(['restore.actorsOwned'])
    expect(await w.stateStore.listStreams('freeze/journal/')).toEqual([])
    expect(result.replayedWrites).toBe(0)
  })

  it('the remount is one host call, and after a standby swap the first held call does not ask the size again', async () => {
    const w = await protectedWorld({ sources: [{ kind: 'standby', volume: 'db-standby' }] })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    expect(await h.read(0, 4)).toEqual(filled(4, 1))
    const dismount = barrier(w.host(), 'dismount')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await dismount.entered
    const held = h.read(0, 4)
    const hostCalls = w.hostFaults['east']!.calls.length
    const sizeAsked = w.storageFaults['east']!.count('volumeInfo')
    dismount.release()
    await restore
    expect(await held).toEqual(filled(4, 6))
    expect(w.hostFaults['east']!.calls.slice(hostCalls).map((c) => c.method)).toEqual(['mount'])
    // The restore step asked for the standby's size once (it checks the standby is online); nothing asked again.
    expect(w.storageFaults['east']!.count('volumeInfo')).toBe(sizeAsked + 1)
  })
})
