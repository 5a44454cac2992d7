import { describe, expect, it } from 'vitest'
import { EventBus, ManualClock, WorkflowEngine } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { openSnapshotModule } from '../../../src/modules/snapshot/index.js'
import { BS, block, token } from '../../fixtures/mirror-world.js'

/** The snapshot facility the mirror builds on: the snapshot module over memory storage. */
async function facility() {
  const clock = new ManualClock()
  const stateStore = memoryStateStore()
  const storage = memoryStorage({ clock })
  const module = await openSnapshotModule({ stateStore, workflows: new WorkflowEngine({ stateStore, clock }), storage: () => storage, events: new EventBus(), clock, token: () => token })
  await storage.createVolume({ name: 'fs', sizeBytes: 32 * BS, blockSize: BS }, token)
  for (let b = 0; b < 8; b++) await storage.write('fs', b * BS, block(b + 1), token)
  const snap = (name: string) => module.facade.create({ site: 'east', volume: 'fs', name })
  const allocated = async () => (await storage.volumeInfo('fs')).allocatedBytes
  return { storage, snap, allocated }
}

describe('the snapshot facility under the mirror (behaviours 31–33, against the snapshot module and copy-on-write storage)', () => {
  it('behaviour 31: the first write of a block after snapshot J+1 keeps its old value for J+1 (and J); a second write saves nothing more', async () => {
    const f = await facility()
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

  it('behaviour 32: reading from snapshot N a block unchanged since N returns the current value (the read falls through to the live volume)', async () => {
    const f = await facility()
    await f.snap('N')
    await f.snap('N1')
    await f.storage.write('fs', 1 * BS, block(50), token)
    expect(await f.storage.read('fs', 6 * BS, BS, { snapshot: 'N' })).toEqual(await f.storage.read('fs', 6 * BS, BS))
    expect(await f.storage.read('fs', 1 * BS, BS, { snapshot: 'N' })).toEqual(block(2))
    expect((await f.storage.changedBlocks('fs', 'N', 'N1')).blocks).toEqual([])
  })

  it('behaviour 33: writing a block that was never in use in any snapshot saves no before-image anywhere', async () => {
    const f = await facility()
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
