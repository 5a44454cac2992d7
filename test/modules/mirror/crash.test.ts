import { describe, expect, it } from 'vitest'
import { InjectedCrash, ManualClock } from '../../../src/kernel/index.js'
import { BS, block, blockHashes, settle, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem, type Durable } from '../../fixtures/mirror-system.js'

type System = Awaited<ReturnType<typeof openSystem>>
type Phase = 'before' | 'after'

const FAILOVER = ['probe-source', 'check-destination', 'source-read-only', 'fence-destination', 'stop-source', 'play-received', 'promote', 'restart-point', 'destination-writable', 'commit']
const FAILOVER_SYNC = ['probe-source', 'check-destination', 'converge', 'source-read-only', 'final-cut', 'drain', 'fence-destination', 'stop-source', 'play-received', 'promote', 'restart-point', 'destination-writable', 'commit']
const RESYNC = ['probe-old-source', 'fence-old-source', 'locate-base', 'plan-undo', 'undo', 'rebase-old-source', 'reverse', 'await-intermediate', 'cleanup', 'commit']
const FAILBACK = ['probe', 'converge', 'primary-read-only', 'final-cut', 'drain', 'detach', 'reverse', 'promote', 'commit']

/** A replicating relationship with a few delta sets played and one more received but not played. */
async function replicating(): Promise<{ d: Durable; setup: System }> {
  const d = await durable({ clock: new ManualClock(), sizeBlocks: 128 })
  const setup = await openSystem(d)
  for (let b = 0; b < 24; b++) await d.raw['east']!.write('db', b * BS, block(b + 1), token)
  await setup.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, transfer: { chunkSize: 4 * BS } })
  for (let n = 2; n <= 4; n++) {
    await d.raw['east']!.write('db', (n + 30) * BS, block(n + 30), token)
    await setup.mirrors.cutNow('m')
  }
  await until(async () => (await setup.mirrors.status('m')).lastPlayedBack === 4, 'played 4')
  await d.raw['east']!.write('db', 40 * BS, block(40), token)
  return { d, setup }
}

/** Failed over while east was cut off (east changed after the restart point), east back and writing. */
async function failedOver(): Promise<{ d: Durable; setup: System }> {
  const { d, setup } = await replicating()
  d.fabric.partition('east', 'west')
  await d.raw['east']!.write('db', 41 * BS, block(41), token)
  await setup.mirrors.cutNow('m')
  await setup.mirrors.failover('m', { mode: 'default' })
  d.fabric.heal('east', 'west')
  await d.raw['east']!.write('db', 42 * BS, block(42), token)
  await d.raw['west']!.write('db', 43 * BS, block(43), token)
  return { d, setup }
}

/** Resynced (replicating west → east) with a write pending on west. */
async function resynced(): Promise<{ d: Durable; setup: System }> {
  const { d, setup } = await replicating()
  await setup.mirrors.failover('m', { mode: 'default' })
  await d.raw['west']!.write('db', 50 * BS, block(50), token)
  await setup.mirrors.resync('m', { acknowledgeDataLoss: true })
  await d.raw['west']!.write('db', 51 * BS, block(51), token)
  return { d, setup }
}

function appliedOnce(systems: System[]): void {
  const seen = new Map<string, number>()
  for (const s of systems) {
    for (const e of s.names('mirror.deltaSetApplied')) {
      const key = `${e.payload['site']}:${e.payload['deltaSet']}`
      seen.set(key, (seen.get(key) ?? 0) + 1)
    }
  }
  expect([...seen.entries()].filter(([, count]) => count > 1)).toEqual([])
}

async function crashAndRecover(
  prepare: () => Promise<{ d: Durable; setup: System }>,
  type: string,
  index: number,
  phase: Phase,
  operation: (s: System) => Promise<unknown>,
): Promise<{ d: Durable; systems: System[]; recovered: System; violationsBefore: number }> {
  const { d, setup } = await prepare()
  await setup.module.close()
  const violationsBefore = d.violations.length
  const crashing = await openSystem(d, { crashAt: (p) => p.workflowId.startsWith(type) && p.index === index && p.phase === phase })
  await expect(operation(crashing)).rejects.toBeInstanceOf(InjectedCrash)
  await crashing.module.close()
  await settle(20)
  const recovered = await openSystem(d)
  await recovered.mirrors.recover()
  return { d, systems: [setup, crashing, recovered], recovered, violationsBefore }
}

describe('mirror crash safety: the coordinator dies at every step and resumes (failover, resync, failback, swap)', () => {
  for (const [mode, steps] of [['default', FAILOVER], ['now', FAILOVER], ['sync', FAILOVER_SYNC]] as const) {
    for (const phase of ['before', 'after'] as const) {
      steps.forEach((step, index) => {
        it(`failover ${mode}: crash ${phase} step ${index} (${step}), restart, resume: failed over once, destination equals the restart point, never both writable`, async () => {
          const { d, systems, recovered, violationsBefore } = await crashAndRecover(replicating, 'mirror.failover', index, phase, (s) => s.mirrors.failover('m', { mode }))
          const status = await recovered.mirrors.status('m')
          expect(status).toMatchObject({ state: 'failedOver', epoch: 2, direction: 'reverse', operation: null })
          const rp = status.restartPoint!
          if (mode === 'sync') expect(rp.lastApplied).toBeGreaterThanOrEqual(5)
          else expect(rp.lastApplied).toBe(4)
          expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['west']!, 'db', rp.snapshot))
          if (mode === 'sync') expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
          expect(await d.writableNow()).toEqual(['west'])
          expect(d.violations.slice(violationsBefore)).toEqual([])
          expect(systems.flatMap((s) => s.names('mirror.failedOver'))).toHaveLength(1)
          appliedOnce(systems)
          await recovered.module.close()
        })
      })
    }
  }

  for (const phase of ['before', 'after'] as const) {
    RESYNC.forEach((step, index) => {
      it(`resync: crash ${phase} step ${index} (${step}), restart, resume: the old source is rebuilt by undo and equals the new primary's intermediate point`, async () => {
        const { d, systems, recovered, violationsBefore } = await crashAndRecover(failedOver, 'mirror.resync', index, phase, (s) => s.mirrors.resync('m', { acknowledgeDataLoss: true }))
        const status = await recovered.mirrors.status('m')
        expect(status).toMatchObject({ state: 'replicating', direction: 'reverse', operation: null, restartPoint: null })
        const played = status.lastPlayedBack!
        expect(await blockHashes(d.raw['east']!, 'db')).toEqual(await blockHashes(d.raw['west']!, 'db', `drkit.m.m.ds-${played}`))
        expect(await d.raw['east']!.read('db', 42 * BS, BS)).toEqual(new Uint8Array(BS))
        expect(await d.raw['east']!.read('db', 43 * BS, BS)).toEqual(block(43))
        expect(await d.writableNow()).toEqual(['west'])
        expect(d.violations.slice(violationsBefore)).toEqual([])
        expect(systems.flatMap((s) => s.names('mirror.resynced'))).toEqual([expect.objectContaining({ payload: expect.objectContaining({ mode: 'undo' }) })])
        appliedOnce(systems)
        await recovered.module.close()
      })
    })
  }

  for (const phase of ['before', 'after'] as const) {
    FAILBACK.forEach((step, index) => {
      it(`failback: crash ${phase} step ${index} (${step}), restart, resume: both sides identical, the original source writable, never both writable`, async () => {
        const { d, systems, recovered, violationsBefore } = await crashAndRecover(resynced, 'mirror.reverse', index, phase, (s) => s.mirrors.failback('m'))
        const status = await recovered.mirrors.status('m')
        expect(status).toMatchObject({ state: 'replicating', direction: 'forward', epoch: 3, operation: null })
        expect(await blockHashes(d.raw['east']!, 'db')).toEqual(await blockHashes(d.raw['west']!, 'db'))
        expect(await d.raw['east']!.read('db', 51 * BS, BS)).toEqual(block(51))
        expect(await d.writableNow()).toEqual(['east'])
        expect(d.violations.slice(violationsBefore)).toEqual([])
        expect(systems.flatMap((s) => s.names('mirror.deltaSetSent')).slice(1).every((e) => e.payload['full'] === false)).toBe(true)
        appliedOnce(systems)
        await recovered.module.close()
      })
    })
  }

  for (const phase of ['before', 'after'] as const) {
    FAILBACK.forEach((step, index) => {
      it(`swap: crash ${phase} step ${index} (${step}), restart, resume: reversed once without a full copy, both sides identical, never both writable`, async () => {
        const { d, systems, recovered, violationsBefore } = await crashAndRecover(replicating, 'mirror.reverse', index, phase, (s) => s.mirrors.swap('m'))
        const status = await recovered.mirrors.status('m')
        expect(status).toMatchObject({ state: 'replicating', direction: 'reverse', epoch: 2, operation: null })
        expect(await blockHashes(d.raw['east']!, 'db')).toEqual(await blockHashes(d.raw['west']!, 'db'))
        expect(await d.raw['west']!.read('db', 40 * BS, BS)).toEqual(block(40))
        expect(await d.writableNow()).toEqual(['west'])
        expect(d.violations.slice(violationsBefore)).toEqual([])
        expect(systems.flatMap((s) => s.names('mirror.failedBack'))).toHaveLength(1)
        expect(systems.flatMap((s) => s.names('mirror.deltaSetSent')).slice(1).every((e) => e.payload['full'] === false)).toBe(true)
        appliedOnce(systems)
        await recovered.module.close()
      })
    })
  }

  it('the step lists above are the workflows\' real steps', async () => {
    const { d, setup } = await failedOver()
    await setup.mirrors.resync('m', { acknowledgeDataLoss: true })
    await setup.mirrors.failback('m')
    await setup.mirrors.failover('m', { mode: 'sync' })
    const steps = async (type: string): Promise<string[][]> => {
      const runs: string[][] = []
      for (const stream of await d.stateStore.listStreams(`workflow/${type}`)) {
        runs.push((await d.stateStore.read(stream)).filter((r) => r.type === 'step.completed').map((r) => (r.data as { name: string }).name))
      }
      return runs
    }
    expect(await steps('mirror.failover')).toEqual(expect.arrayContaining([FAILOVER, FAILOVER_SYNC]))
    expect(await steps('mirror.resync')).toEqual([RESYNC])
    expect(await steps('mirror.reverse')).toEqual([FAILBACK])
    await setup.module.close()
  })
})
