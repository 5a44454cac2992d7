import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { InjectedCrash } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { localStorage } from '../../../src/adapters/local/local-storage.js'
import { bytes, fencedVolumes, members, memberSnapshots, text, world } from './world.js'

const site = 'east'
const volume = 'db'
const dirs: string[] = []

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

describe('expandable volumes on the local (real files) storage adapter', () => {
  it('creates, writes, snapshots under fences, survives a coordinator crash and a storage reopen, and shrinks', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-volume-'))
    dirs.push(dir)
    const stateStore = memoryStateStore()
    const first = localStorage({ dir, fsync: false })
    const w = await world({ base: first, stateStore })
    await w.volumes.create({ site, volume, dataConstituents: 3, size: '1MiB', maxObjects: 128 })
    const paths = Array.from({ length: 24 }, (_, i) => `dir/${i}.bin`)
    for (const p of paths) await w.volumes.putObject({ site, volume, path: p, data: bytes(`v1 ${p}`) })

    const crashing = await w.restart({ crashAt: (point) => point.workflowId.startsWith('volume.snapshot') && point.step === 'snapshot' && point.phase === 'after' })
    await expect(crashing.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toBeInstanceOf(InjectedCrash)
    expect(await fencedVolumes(first, members(volume, 3))).toEqual(members(volume, 3))
    const recovered = await crashing.restart()
    expect((await recovered.recover()).map((o) => o.status)).toEqual(['fulfilled'])
    expect(await fencedVolumes(first, members(volume, 3))).toEqual([])
    const [snap] = await recovered.volumes.listSnapshots({ site, volume })
    expect(snap?.members).toHaveLength(5)

    for (const p of paths.slice(0, 12)) await recovered.volumes.putObject({ site, volume, path: p, data: bytes(`v2 ${p}`) })
    for (const p of paths.slice(12, 16)) await recovered.volumes.deleteObject({ site, volume, path: p })
    await first.close()

    const reopened = localStorage({ dir, fsync: false })
    const again = await world({ base: reopened, stateStore })
    expect(await memberSnapshots(reopened, members(volume, 3))).toEqual(Object.fromEntries(members(volume, 3).map((m) => [m, ['nightly']])))
    for (const p of paths) {
      expect(text(await again.volumes.readSnapshotObject({ site, volume, snapshot: snap?.id ?? -1, path: p }))).toBe(`v1 ${p}`)
    }
    expect(text(await again.volumes.getObject({ site, volume, path: paths[0] ?? '' }))).toBe(`v2 ${paths[0]}`)
    await expect(again.volumes.getObject({ site, volume, path: paths[12] ?? '' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })

    await again.volumes.shrink({ site, volume, remove: 1 })
    for (const p of [...paths.slice(0, 12), ...paths.slice(16)]) expect(text(await again.volumes.getObject({ site, volume, path: p }))).toMatch(/^v[12] /)
    expect((await again.volumes.get({ site, volume })).members.find((m) => m.volume === 'db.dc-3')?.state).toBe('retired')
    await again.volumes.deleteSnapshot({ site, volume, name: 'nightly' })
    expect((await reopened.listVolumes()).map((v) => v.name)).toEqual(['db.dc-1', 'db.dc-2', 'db.ns', 'db.ols'])
    await reopened.close()
  })
})
