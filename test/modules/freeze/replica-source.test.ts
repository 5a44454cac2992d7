import { describe, expect, it } from 'vitest'
import { DrError, ManualClock } from '../../../src/kernel/index.js'
import { memoryHost } from '../../../src/adapters/memory/host.js'
import { BS as MIRROR_BS, block, blockHashes, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem } from '../../fixtures/mirror-system.js'
import { BS, filled, freezeWorld, openFreezeWorld, freezeDurable, protectDb, token } from '../../fixtures/freeze-world.js'

describe('restoring from a replica', () => {
  it("behaviour 8: restoring from the mirror's destination brings back its recovery point, at the same path and identity", async () => {
    const d = await durable({ clock: new ManualClock(), sizeBlocks: 32 })
    const east = d.raw['east']!
    await east.write('db', 0, block(1, MIRROR_BS), token)
    await east.write('db', 3 * MIRROR_BS, block(3, MIRROR_BS), token)
    const mirror = await openSystem(d)
    await mirror.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h' } })
    await until(async () => (await mirror.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    const expected = await blockHashes(d.raw['west']!, 'db')
    await east.write('db', 3 * MIRROR_BS, block(99, MIRROR_BS), token)
    const w = await openFreezeWorld(freezeDurable({ clock: d.clock, storages: d.raw, hosts: { east: memoryHost({ clock: d.clock }) } }), {
      resolveReplica: async (ref) => {
        const status = await mirror.mirrors.status(ref)
        const point = status.recoveryPoint
        if (point === null) throw new DrError('E_PRECONDITION', `mirror ${ref} has no recovery point`)
        return { site: status.destination.site, volume: status.destination.volume, snapshot: point.snapshot }
      },
    })
    await w.freeze.protect({ site: 'east', volume: 'db', mountPath: 'F:', identity: 'vol-serial-1', sources: [{ kind: 'replica', ref: 'm' }], freezeTimeoutMs: null })
    const result = await w.freeze.restore({ site: 'east', volume: 'db' })
    expect(result.summary).toMatchObject({ outcome: 'restored', source: { kind: 'replica', ref: 'm' } })
    expect(await blockHashes(east, 'db')).toEqual(expected)
    expect(await w.host().getMount('F:')).toMatchObject({ path: 'F:', volume: 'db', identity: 'vol-serial-1' })
    expect(w.names('freeze.restored')[0]?.payload).toMatchObject({ fromVolume: 'db', toVolume: 'db' })
    await mirror.module.close()
  })

  it('behaviour 30: with no common snapshot the data flows from the secondary (west) to the primary (east), block by block', async () => {
    const w = await freezeWorld({ resolveReplica: async (ref) => ({ site: 'west', volume: ref }) })
    await w.storage('west').createVolume({ name: 'secondary', sizeBytes: 64 * BS, blockSize: BS }, token)
    for (const i of [0, 5, 6, 40]) await w.storage('west').write('secondary', i * BS, filled(BS, i + 1), token)
    await w.storage().write('db', 9 * BS, filled(BS, 77), token)
    await w.freeze.protect(protectDb({ sources: [{ kind: 'replica', ref: 'secondary' }] }))
    const result = await w.freeze.restore({ site: 'east', volume: 'db' })
    expect(result.copiedBlocks).toBe(4)
    expect(w.storageFaults['west']!.calls.filter((c) => c.method === 'read').length).toBeGreaterThan(0)
    expect(w.storageFaults['west']!.calls.filter((c) => c.method === 'write')).toEqual([])
    for (const i of [0, 5, 6, 40]) expect(await w.storage().read('db', i * BS, 1)).toEqual(filled(1, i + 1))
    expect(await w.storage().read('db', 9 * BS, 1)).toEqual(filled(1, 0))
  })

  it('falls back to the next source when the replica cannot be resolved, and says why', async () => {
    const w = await freezeWorld({ resolveReplica: async () => Promise.reject(new Error('mirror unknown')) })
    await w.storage().createSnapshot('db', 'base', token)
    await w.freeze.protect(protectDb({ sources: [{ kind: 'replica', ref: 'gone' }, { kind: 'snapshot', snapshot: 'base' }] }))
    const result = await w.freeze.restore({ site: 'east', volume: 'db' })
    expect(result.summary.source).toEqual({ kind: 'snapshot', ref: 'base' })
  })

  it('a replica source without a resolveReplica dependency is unreachable: the restore is impossible, nothing is frozen', async () => {
    const w = await freezeWorld()
    await w.freeze.protect(protectDb({ sources: [{ kind: 'replica', ref: 'm' }] }))
    const error = await w.freeze.restore({ site: 'east', volume: 'db' }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'E_PRECONDITION' })
    expect((error as DrError).message).toMatch(/resolveReplica/)
    expect(w.hostFaults['east']!.calls.map((c) => c.method)).not.toContain('dismount')
  })
})
