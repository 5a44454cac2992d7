import { afterEach, describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { EV_CHUNK, decodeChunk, encodeChunk } from '../../../src/modules/ev-mirror/chunks.js'
import { payloadCrc } from '../../../src/modules/mirror/delta-chunks.js'
import { encodeRuns } from '../../../src/modules/mirror/protocol.js'
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

  it('a run of an unknown kind is E_CORRUPT even when the checksum matches (the mirror protocol\'s run codec)', () => {
    const runs = encodeRuns([{ start: 1, count: 1, data: null }])
    runs[8] = 7
    const frame = new Uint8Array(13 + runs.length)
    const view = new DataView(frame.buffer)
    view.setUint8(0, EV_CHUNK)
    view.setUint32(1, 0, true)
    view.setUint32(5, 1, true)
    view.setUint32(9, payloadCrc(runs), true)
    frame.set(runs, 13)
    expect(() => decodeChunk(frame, 4096)).toThrow(expect.objectContaining({ code: 'E_CORRUPT', message: expect.stringContaining('malformed run') }))
  })
})
