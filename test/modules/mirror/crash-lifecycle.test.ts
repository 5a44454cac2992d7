import { describe, expect, it } from 'vitest'
import { InjectedCrash, ManualClock } from '../../../src/kernel/index.js'
import { BS, block, blockHashes, settle, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem, replicating, type Durable } from '../../fixtures/mirror-system.js'

type System = Awaited<ReturnType<typeof openSystem>>

const CREATE = ['prepare-destination', 'record', 'start']
const DELETE = ['clean-a', 'clean-b', 'forget']

const create = { id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, transfer: { chunkSize: 4 * BS } }

/** Opens a system that crashes `type` at step `index` (`phase`), runs `operation` into the crash, and closes it. */
async function crashIn(d: Durable, type: string, index: number, phase: 'before' | 'after', operation: (s: System) => Promise<unknown>): Promise<System> {
  const crashing = await openSystem(d, { crashAt: (p) => p.workflowId.startsWith(type) && p.index === index && p.phase === phase })
  await expect(operation(crashing)).rejects.toBeInstanceOf(InjectedCrash)
  await crashing.module.close()
  await settle(20)
  return crashing
}

/** What a restarted system does (createDrSystem resumes every running workflow, then the module's operations). */
async function restart(d: Durable): Promise<System> {
  const recovered = await openSystem(d)
  for (const id of await recovered.workflows.listRunning()) await recovered.workflows.resume(id)
  await recovered.mirrors.recover()
  return recovered
}

describe('mirror crash safety: create and delete resume after the coordinator dies at every step', () => {
  for (const phase of ['before', 'after'] as const) {
    CREATE.forEach((step, index) => {
      it(`create: crash ${phase} step ${index} (${step}), restart, resume: one relationship, replicating, the destination read-only and equal to the source`, async () => {
        const d = await durable({ clock: new ManualClock(), sizeBlocks: 64 })
        for (let b = 0; b < 8; b++) await d.raw['east']!.write('db', b * BS, block(b + 1), token)
        const crashing = await crashIn(d, 'mirror.create', index, phase, (s) => s.mirrors.create(create))
        const recovered = await restart(d)
        await until(async () => (await recovered.mirrors.status('m')).lastPlayedBack === 1, 'initial copy after the restart')
        expect(await recovered.mirrors.list()).toHaveLength(1)
        expect(await recovered.mirrors.status('m')).toMatchObject({ state: 'replicating', epoch: 1, destination: { site: 'west', writable: false } })
        expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
        expect([...crashing.names('mirror.created'), ...recovered.names('mirror.created')]).toHaveLength(1)
        expect(d.violations).toEqual([])
        await recovered.module.close()
      })
    })
  }

  for (const phase of ['before', 'after'] as const) {
    DELETE.forEach((step, index) => {
      it(`delete: crash ${phase} step ${index} (${step}), restart, resume: the relationship, its snapshots, staging and records are gone on both sites; the volumes stay`, async () => {
        const d = await durable({ clock: new ManualClock(), sizeBlocks: 64 })
        const setup = await openSystem(d)
        await replicating(setup, { blocks: 8 })
        await d.raw['east']!.write('db', 20 * BS, block(20), token)
        const { deltaSet } = await setup.mirrors.cutNow('m')
        await until(async () => (await setup.mirrors.status('m')).lastPlayedBack === deltaSet, 'played')
        await setup.module.close()
        await crashIn(d, 'mirror.delete', index, phase, (s) => s.mirrors.delete('m'))
        const recovered = await restart(d)
        expect(await recovered.mirrors.list()).toEqual([])
        for (const site of ['east', 'west']) {
          const storage = d.raw[site]!
          expect((await storage.listSnapshots('db')).map((s) => s.name)).toEqual([])
          expect((await storage.listVolumes()).map((v) => v.name)).toEqual(['db'])
          expect(await storage.listConfig('db')).toEqual([])
        }
        expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
        expect((await d.raw['west']!.volumeInfo('db')).writable).toBe(false)
        await recovered.module.close()
      })
    })
  }

  it('the step lists above are the workflows\' real steps', async () => {
    const d = await durable({ clock: new ManualClock(), sizeBlocks: 64 })
    const s = await openSystem(d)
    await replicating(s, { blocks: 8 })
    await s.mirrors.delete('m')
    const steps = async (type: string) => {
      const streams = await d.stateStore.listStreams(`workflow/${type}`)
      return (await d.stateStore.read(streams[0]!)).filter((r) => r.type === 'step.completed').map((r) => (r.data as { name: string }).name)
    }
    expect(await steps('mirror.create')).toEqual(CREATE)
    expect(await steps('mirror.delete')).toEqual(DELETE)
    await s.module.close()
  })
})
