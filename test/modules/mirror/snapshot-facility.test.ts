import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventBus, ManualClock, WorkflowEngine } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { localStorage } from '../../../src/adapters/local/local-storage.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { openSnapshotModule } from '../../../src/modules/snapshot/index.js'
import { BS, block, token } from '../../fixtures/mirror-world.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** The two shipped storage adapters the mirror runs on: memory, and local (real files, CoW by block generation). */
const adapters: ReadonlyArray<{ readonly adapter: string; readonly open: (clock: ManualClock) => Promise<StoragePort> }> = [
  { adapter: 'memory', open: async (clock) => memoryStorage({ clock }) },
  {
    adapter: 'local',
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'drkit-facility-'))
      const storage = localStorage({ dir, fsync: false })
      cleanups.push(async () => {
        await storage.close()
        await rm(dir, { recursive: true, force: true })
      })
      return storage
    },
  },
]

/** The snapshot facility the mirror builds on: the snapshot module over the adapter's copy-on-write storage. */
async function facility(open: (clock: ManualClock) => Promise<StoragePort>) {
  const clock = new ManualClock()
  const stateStore = memoryStateStore()
  const storage = await open(clock)
  const module = await openSnapshotModule({ stateStore, workflows: new WorkflowEngine({ stateStore, clock }), storage: () => storage, events: new EventBus(), clock, token: () => token })
  await storage.createVolume({ name: 'fs', sizeBytes: 32 * BS, blockSize: BS }, token)
  for (let b = 0; b < 8; b++) await storage.write('fs', b * BS, block(b + 1), token)
  const snap = (name: string) => module.facade.create({ site: 'east', volume: 'fs', name })
  const allocated = async () => (await storage.volumeInfo('fs')).allocatedBytes
  return { storage, snap, allocated }
}

describe.each(adapters)('the snapshot facility under the mirror, $adapter storage (behaviours 31–33, against the snapshot module and copy-on-write storage)', ({ open }) => {
  it('behaviour 31: the first write of a block after snapshot J+1 keeps its old value for J+1 (and J); a second write saves nothing more', async () => {
    const f = await facility(open)
    await f.snap('J')
    await f.snap('J1')
    const before = await f.allocated()
    await f.storage.write('fs', 3 * BS, block(90), token)
    const afterFirst = await f.allocated()
    await f.storage.write('fs', 3 * BS, block(91), token)
    expect(afterFirst - before).toBe(BS)
    expect(await f.allocated()).toBe(afterFirst)
    expect(await f.storage.read('fs', 3 * BS, BS, { snapshot: 'J1' })).toEqual(block(4))
    expect(await f.storage.read('fs', 3 * BS, BS, { snapshot: 'J' })).toEqual(block(4))
    expect(await f.storage.read('fs', 3 * BS, BS)).toEqual(block(91))
  })

  it('behaviour 32: a block snapshot N did not save is read from the next snapshot that did (N+1, N+2 …) and, when none did, from the live volume', async () => {
    const f = await facility(open)
    await f.snap('N')
    await f.snap('N1')
    await f.storage.write('fs', 1 * BS, block(50), token)
    await f.snap('N2')
    await f.storage.write('fs', 1 * BS, block(51), token)
    // N saved nothing for block 1 (it changed only after N1 was taken): N reads what N1 kept, as N1 does.
    expect(await f.storage.read('fs', 1 * BS, BS, { snapshot: 'N' })).toEqual(block(2))
    expect(await f.storage.read('fs', 1 * BS, BS, { snapshot: 'N1' })).toEqual(block(2))
    expect(await f.storage.read('fs', 1 * BS, BS, { snapshot: 'N2' })).toEqual(block(50))
    expect(await f.storage.read('fs', 1 * BS, BS)).toEqual(block(51))
    // Block 6 never changed: every snapshot falls through to the live volume.
    for (const snapshot of ['N', 'N1', 'N2']) expect(await f.storage.read('fs', 6 * BS, BS, { snapshot })).toEqual(await f.storage.read('fs', 6 * BS, BS))
    expect((await f.storage.changedBlocks('fs', 'N', 'N1')).blocks).toEqual([])
    expect((await f.storage.changedBlocks('fs', 'N1', 'N2')).blocks).toEqual([1])
  })

  it('behaviour 33: writing a block that was never in use in any snapshot saves no before-image anywhere', async () => {
    const f = await facility(open)
    await f.snap('J')
    await f.snap('J1')
    const before = await f.allocated()
    await f.storage.write('fs', 20 * BS, block(20), token)
    expect((await f.allocated()) - before).toBe(BS)
    expect(await f.storage.read('fs', 20 * BS, BS, { snapshot: 'J1' })).toEqual(new Uint8Array(BS))
    expect((await f.storage.changedBlocks('fs', null, 'J1')).blocks).not.toContain(20)
    expect((await f.storage.changedBlocks('fs', 'J1', 'live')).blocks).toEqual([20])
  })
})
