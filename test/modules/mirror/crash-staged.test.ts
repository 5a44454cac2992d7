import { describe, expect, it } from 'vitest'
import { InjectedCrash } from '../../../src/kernel/index.js'
import type { FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { BS, block, blockHashes, settle, token, until } from '../../fixtures/mirror-world.js'
import { openSystem, type Durable } from '../../fixtures/mirror-system.js'
import { faultyDurable } from './faulty-durable.js'

const FAILOVER = ['probe-source', 'check-destination', 'source-read-only', 'fence-destination', 'stop-source', 'play-received', 'promote', 'restart-point', 'destination-writable', 'commit']

/**
 * Delta set 1 (the initial copy) played back, delta set 2 (block 5) completely received but not played: playback
 * is batched hourly and the clock does not move.
 */
async function receivedNotPlayed(faults?: Record<string, FaultInjector<StoragePort>>): Promise<Durable> {
  const d = await faultyDurable(faults)
  const setup = await openSystem(d)
  await setup.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, playback: { every: '1h' } })
  await until(async () => (await setup.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
  await d.raw['east']!.write('db', 5 * BS, block(5), token)
  const { deltaSet } = await setup.mirrors.cutNow('m')
  expect(deltaSet).toBe(2)
  await until(async () => (await setup.mirrors.status('m')).lastReceived === 2, 'received 2')
  expect((await setup.mirrors.status('m')).lastPlayedBack).toBe(1)
  await setup.module.close()
  return d
}

async function expectEverythingReceivedApplied(d: Durable, restartPoint: { lastApplied: number | null; snapshot: string }): Promise<void> {
  expect(restartPoint.lastApplied).toBe(2)
  expect(await d.raw['west']!.read('db', 5 * BS, BS)).toEqual(block(5))
  expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
  expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['west']!, 'db', restartPoint.snapshot))
  expect(await d.writableNow()).toEqual(['west'])
}

describe('mirror crash safety: delta sets received but not played back survive a crashed failover', () => {
  for (const phase of ['before', 'after'] as const) {
    FAILOVER.forEach((step, index) => {
      it(`behaviour 18: default failover crashing ${phase} step ${index} (${step}) and resumed still plays the delta set received but not played`, async () => {
        const d = await receivedNotPlayed()
        const violationsBefore = d.violations.length
        const crashing = await openSystem(d, { crashAt: (p) => p.workflowId.startsWith('mirror.failover') && p.index === index && p.phase === phase })
        await expect(crashing.mirrors.failover('m', { mode: 'default' })).rejects.toBeInstanceOf(InjectedCrash)
        await crashing.module.close()
        await settle(20)
        const recovered = await openSystem(d)
        await recovered.mirrors.recover()
        const status = await recovered.mirrors.status('m')
        expect(status).toMatchObject({ state: 'failedOver', epoch: 2, operation: null })
        await expectEverythingReceivedApplied(d, status.restartPoint!)
        expect(d.violations.slice(violationsBefore)).toEqual([])
        expect([...crashing.names('mirror.failedOver'), ...recovered.names('mirror.failedOver')]).toHaveLength(1)
        await recovered.module.close()
      })
    })
  }

  it('behaviour 18: a fence that stopped after staging was stamped with the new epoch but before the session record was raised loses nothing; the re-issued failover plays the received delta set', async () => {
    const faults: Record<string, FaultInjector<StoragePort>> = {}
    const d = await receivedNotPlayed(faults)
    const failing = await openSystem(d)
    faults['west']!.fail({
      method: 'putConfig',
      when: (call) => call.args[0] === 'db' && call.args[1] === 'drkit.mirror.session' && (call.args[2] as { epoch: number }).epoch === 2,
      times: 1,
    })
    await expect(failing.mirrors.failover('m', { mode: 'default' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await d.raw['west']!.getConfig('db.mirror-staging', 'drkit.mirror.staging')).toMatchObject({ epoch: 2, sets: [expect.objectContaining({ n: 2 })] })
    expect(await d.raw['west']!.getConfig('db', 'drkit.mirror.session')).toMatchObject({ epoch: 1 })
    await failing.module.close()
    const restarted = await openSystem(d)
    await restarted.mirrors.recover()
    expect(await restarted.mirrors.status('m')).toMatchObject({ state: 'failingOver', operation: 'failover' })
    const result = await restarted.mirrors.failover('m', { mode: 'default' })
    expect(result).toMatchObject({ lastApplied: 2, epoch: 2 })
    await expectEverythingReceivedApplied(d, { lastApplied: result.lastApplied, snapshot: result.restartPoint })
    await restarted.module.close()
  })
})
