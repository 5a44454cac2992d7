import { afterEach, describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { chainCrc, decodeChunk, encodeChunk, planRuns } from '../../../src/modules/ev-mirror/chunks.js'
import { content, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function replicatedSmallChunks(): Promise<GroupsWorld> {
  const w = await groupsWorld({ chunkBytes: 4096 })
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', 2)
  for (let i = 0; i < 10; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`, 9000) })
  await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  return w
}

describe('ev-mirror: fault injection', () => {
  it('a member transfer broken half way resumes at the next chunk the destination needs, without resending what it applied', async () => {
    const w = await replicatedSmallChunks()
    let writes = 0
    w.faults.west.fail({ method: 'write', when: (call) => call.args[0] === 'db.dc-1' && ++writes === 3, times: 1 })
    await w.evMirrors.transfer({ id: 'db' })
    const dc1 = w.seen.filter((e) => e.name === 'evMirror.memberTransferred').map((e) => e.payload as { constituent: string; resumedFrom: number; sent: number; chunks: number }).find((p) => p.constituent === 'db.dc-1')
    expect(dc1?.resumedFrom).toBe(2)
    expect(dc1?.sent).toBe((dc1?.chunks ?? 0) - 2)
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })

  it('a partition during the transfer fails it after its retries, leaving readers on the previous snapshot; the next transfer succeeds', async () => {
    const w = await replicatedSmallChunks()
    await w.evMirrors.transfer({ id: 'db' })
    const before = await readerView(w.volumes, 'west', 'db')
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/late', data: content('late') })
    w.fabric.partition('east', 'west')
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(before)
    expect((await w.evMirrors.get({ id: 'db' })).operation).toBeNull()
    w.fabric.heal('east', 'west')
    await w.evMirrors.transfer({ id: 'db' })
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })

  it('a storage failure at the destination during the catalog update compensates: no catalog entry, no member snapshots left behind', async () => {
    const w = await replicatedSmallChunks()
    w.faults.west.fail({ method: 'snapshotInfo', error: new DrError('E_PRECONDITION', 'catalog store down'), times: 1 })
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await w.volumes.listSnapshots({ site: 'west', volume: 'db' })).toEqual([])
    for (const v of ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2']) expect(await w.bases.west.listSnapshots(v)).toEqual([])
    await w.evMirrors.transfer({ id: 'db' })
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })
})

describe('ev-mirror: chunks', () => {
  it('a chunk whose payload does not match its checksum is rejected with E_CORRUPT and never decoded into writes', () => {
    const { frame } = encodeChunk(3, [{ start: 7, count: 1, data: new Uint8Array(4096).fill(9) }, { start: 9, count: 2, data: null }])
    expect(decodeChunk(frame, 4096).runs.map((r) => [r.start, r.count, r.data === null])).toEqual([[7, 1, false], [9, 2, true]])
    const damaged = frame.slice()
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] ?? 0) ^ 0xff
    expect(() => decodeChunk(damaged, 4096)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
    expect(() => decodeChunk(frame.subarray(0, 20), 4096)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
  })

  it('plans cover every changed block once, in order, with at most the chunk size of data per chunk', () => {
    const blocks = [0, 1, 2, 5, 6, 9, 10, 11, 12, 40]
    const plans = planRuns(blocks, [5, 6, 40], 4096, 8192)
    const covered = plans.flatMap((runs) => runs.flatMap((r) => Array.from({ length: r.count }, (_, i) => r.start + i)))
    expect(covered).toEqual(blocks)
    for (const runs of plans) expect(runs.filter((r) => !r.hole).reduce((n, r) => n + r.count, 0)).toBeLessThanOrEqual(2)
    expect(planRuns([], [], 4096, 8192)).toEqual([])
    expect(chainCrc(chainCrc(0, 1), 2)).not.toBe(chainCrc(chainCrc(0, 2), 1))
  })
})
