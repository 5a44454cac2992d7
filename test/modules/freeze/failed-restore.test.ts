import { describe, expect, it } from 'vitest'
import { DrError, ManualClock, type Clock } from '../../../src/kernel/index.js'
import { BS, filled, freezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

/** `db` (block 10 holds 5s) protected with a replica on west that shares no snapshot with it. */
async function replicaWorld(clock?: Clock): Promise<FreezeWorld> {
  const w = await freezeWorld({ resolveReplica: async (ref) => ({ site: 'west', volume: ref }), ...(clock === undefined ? {} : { clock }) })
  await w.storage('west').createVolume({ name: 'secondary', sizeBytes: 64 * BS, blockSize: BS }, token)
  for (const i of [0, 10]) await w.storage('west').write('secondary', i * BS, filled(BS, 40 + i), token)
  await w.storage().write('db', 10 * BS, filled(BS, 5), token)
  await w.freeze.protect(protectDb({ sources: [{ kind: 'replica', ref: 'secondary' }] }))
  w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
  return w
}

describe('a restore that fails never exposes damaged data as the volume', () => {
  it('a replica copy that fails after the trim keeps the volume dismounted: no zeros served, handles fail clearly, lock and actors released', async () => {
    const w = await replicaWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    expect(await h.read(10 * BS, 4)).toEqual(filled(4, 5))
    const removeFault = w.storageFaults['west']!.fail({ method: 'read', error: new DrError('E_CORRUPT', 'replica block damaged') })
    const error = await w.freeze.restore({ site: 'east', volume: 'db' }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'E_UNAVAILABLE' })
    expect(w.storageFaults['east']!.calls.map((c) => c.method)).toContain('trim')
    expect(await w.host().getMount('/mnt/data')).toBeUndefined()
    expect(w.names('freeze.restoreFailed')[0]?.payload).toMatchObject({ stage: 'restore', volumeDismounted: true })
    expect(await w.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ status: 'failed', dismounted: true })
    await expect(h.read(10 * BS, 4)).rejects.toMatchObject({ code: 'E_UNAVAILABLE', details: { reason: 'dismounted' } })
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)

    // Protecting again keeps it dismounted; only a restore that succeeds brings it back.
    await w.freeze.protect(protectDb({ sources: [{ kind: 'replica', ref: 'secondary' }] }))
    expect(await w.host().getMount('/mnt/data')).toBeUndefined()
    removeFault()
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    const held = h.read(10 * BS, 4)
    const result = await restore
    expect(result.summary.outcome).toBe('restored')
    expect(await held).toEqual(filled(4, 50))
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'db', identity: 'uuid-db' })
    expect(await w.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ status: 'protected', dismounted: false })
  })

  it('a restore that fails before it changed any data puts the volume back as it was, and the original data is served', async () => {
    const w = await replicaWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    // The replica answers the plan's probe, then stops answering before the copy touches the volume.
    w.storageFaults['west']!.fail({ method: 'listSnapshots', error: new DrError('E_CORRUPT', 'catalogue damaged') })
    await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect(w.storageFaults['east']!.calls.map((c) => c.method).filter((m) => ['trim', 'write', 'resizeVolume', 'restoreSnapshot'].includes(m))).toEqual([])
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'db', identity: 'uuid-db' })
    expect(w.names('freeze.restoreFailed')[0]?.payload).toMatchObject({ stage: 'restore', volumeDismounted: false })
    expect(await w.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ status: 'failed', dismounted: false })
    expect(await h.read(10 * BS, 4)).toEqual(filled(4, 5))
  })

  it('a dismounted volume is not declared recovered by its probe and starts no automatic restore', async () => {
    const clock = new ManualClock()
    const w = await replicaWorld(clock)
    await w.freeze.protect(protectDb({ sources: [{ kind: 'replica', ref: 'secondary' }], probeEveryMs: 10 }))
    w.storageFaults['west']!.fail({ method: 'read', error: new DrError('E_CORRUPT', 'replica block damaged') })
    await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    const probes = w.storageFaults['east']!.count('volumeInfo')
    await clock.advance(100)
    expect(w.storageFaults['east']!.count('volumeInfo')).toBe(probes)
    expect(await w.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ status: 'failed', dismounted: true })
    expect(w.names('freeze.disruptionDetected')).toHaveLength(1)
    await w.module.close()
  })
})
