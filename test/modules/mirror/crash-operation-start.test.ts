import { describe, expect, it } from 'vitest'
import { InjectedCrash, type StateStore } from '../../../src/kernel/index.js'
import type { FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { BS, blockHashes } from '../../fixtures/mirror-world.js'
import { openSystem, replicating, type Durable } from '../../fixtures/mirror-system.js'
import { faultyDurable } from './faulty-durable.js'

type System = Awaited<ReturnType<typeof openSystem>>

/**
 * A journal whose append of `workflow.started` of a failover first runs `atStart`: a coordinator dies there when
 * it throws {@link InjectedCrash}, or is held there while it is pending.
 */
function atFailoverStart(store: StateStore, atStart: () => Promise<void>): StateStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'append') {
        return async (stream: string, version: number, records: Parameters<StateStore['append']>[2]) => {
          if (stream.startsWith('workflow/mirror.failover:') && records.some((r) => r.type === 'workflow.started')) await atStart()
          return target.append(stream, version, records)
        }
      }
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
}

const dies = async (): Promise<never> => {
  throw new InjectedCrash({ workflowId: 'mirror.failover', index: -1, step: 'workflow.started', phase: 'before' })
}

/** Replicating `m` (east → west), then a coordinator that records a failover and dies before its workflow starts. */
async function stuckFailover(faults?: Record<string, FaultInjector<StoragePort>>, before?: (s: System) => Promise<void>): Promise<Durable> {
  const d = await faultyDurable(faults)
  const setup = await openSystem(d)
  await replicating(setup, { blocks: 8 })
  await before?.(setup)
  await setup.module.close()
  const dying = await openSystem({ ...d, stateStore: atFailoverStart(d.stateStore, dies) })
  await expect(dying.mirrors.failover('m', { mode: 'default' })).rejects.toBeInstanceOf(InjectedCrash)
  await dying.module.close()
  return d
}

async function failoverStreams(d: Durable): Promise<readonly string[]> {
  return d.stateStore.listStreams('workflow/mirror.failover')
}

describe('mirror crash safety: the coordinator dies after recording an operation and before its workflow started', () => {
  it('recover() records the never-started failover as failed with nothing changed, and the failover can be issued again', async () => {
    const d = await stuckFailover()
    expect(await failoverStreams(d)).toEqual([])
    const recovered = await openSystem(d)
    expect(await recovered.mirrors.status('m')).toMatchObject({ state: 'failingOver', operation: 'failover' })
    await recovered.mirrors.recover()
    expect(await recovered.mirrors.status('m')).toMatchObject({ state: 'replicating', operation: null, epoch: 1 })
    expect(recovered.names('mirror.operationFailed').map((e) => e.payload)).toEqual([
      expect.objectContaining({ id: 'm', kind: 'failover', state: 'replicating', resumable: false, code: 'E_ABORTED' }),
    ])
    expect(await d.writableNow()).toEqual(['east'])
    const result = await recovered.mirrors.failover('m', { mode: 'default' })
    expect(result).toMatchObject({ lastApplied: 1, epoch: 2 })
    expect(await recovered.mirrors.status('m')).toMatchObject({ state: 'failedOver', operation: null, epoch: 2 })
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    expect(await d.writableNow()).toEqual(['west'])
    expect(d.violations).toEqual([])
    await recovered.module.close()
  })

  it('re-issuing the never-started failover (without recover) starts it under its recorded workflow id and completes it', async () => {
    const d = await stuckFailover()
    const restarted = await openSystem(d)
    const result = await restarted.mirrors.failover('m', { mode: 'default' })
    expect(result).toMatchObject({ lastApplied: 1, epoch: 2 })
    expect(await restarted.mirrors.status('m')).toMatchObject({ state: 'failedOver', operation: null, epoch: 2 })
    expect(await failoverStreams(d)).toHaveLength(1)
    expect(restarted.names('mirror.operationFailed')).toEqual([])
    expect(restarted.names('mirror.failedOver')).toHaveLength(1)
    expect(await d.writableNow()).toEqual(['west'])
    expect(d.violations).toEqual([])
    await restarted.module.close()
  })

  it('a never-started re-issue of a failover that failed past its point of no return keeps the resume point: recover() leaves it resumable and the next re-issue finishes it', async () => {
    const faults: Record<string, FaultInjector<StoragePort>> = {}
    const d = await stuckFailover(faults, async (s) => {
      faults['west']!.fail({ method: 'setWritable', when: (call) => call.args[0] === 'db' && call.args[1] === true, times: 1 })
      await expect(s.mirrors.failover('m', { mode: 'default' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
      expect(await s.mirrors.status('m')).toMatchObject({ state: 'failingOver', operation: 'failover', epoch: 2 })
    })
    const recovered = await openSystem(d)
    await recovered.mirrors.recover()
    expect(await recovered.mirrors.status('m')).toMatchObject({ state: 'failingOver', operation: 'failover', epoch: 2 })
    expect(recovered.names('mirror.operationFailed').map((e) => e.payload)).toEqual([expect.objectContaining({ kind: 'failover', resumable: true, code: 'E_ABORTED' })])
    const result = await recovered.mirrors.failover('m', { mode: 'default' })
    expect(result).toMatchObject({ restartPoint: 'drkit.m.m.rp-2', epoch: 2 })
    expect(await recovered.mirrors.status('m')).toMatchObject({ state: 'failedOver', operation: null, epoch: 2 })
    expect(await d.raw['west']!.read('db', 0, BS)).toEqual(await d.raw['east']!.read('db', 0, BS))
    expect(await d.writableNow()).toEqual(['west'])
    expect(d.violations).toEqual([])
    await recovered.module.close()
  })

  it('recover() leaves alone an operation this coordinator is still starting (its workflow not journaled yet)', async () => {
    const d = await faultyDurable()
    let reached: () => void = () => undefined
    let release: () => void = () => undefined
    const atStart = new Promise<void>((resolve) => (reached = resolve))
    const released = new Promise<void>((resolve) => (release = resolve))
    const gated = atFailoverStart(d.stateStore, async () => {
      reached()
      await released
    })
    const s = await openSystem({ ...d, stateStore: gated })
    await replicating(s, { blocks: 8 })
    const failover = s.mirrors.failover('m', { mode: 'default' })
    await atStart
    await s.mirrors.recover()
    expect(await s.mirrors.status('m')).toMatchObject({ state: 'failingOver', operation: 'failover' })
    release()
    await expect(failover).resolves.toMatchObject({ epoch: 2 })
    expect(s.names('mirror.operationFailed')).toEqual([])
    expect(s.names('mirror.failedOver')).toHaveLength(1)
    expect(await d.writableNow()).toEqual(['west'])
    await s.module.close()
  })
})
