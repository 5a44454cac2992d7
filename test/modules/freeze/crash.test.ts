import { describe, expect, it } from 'vitest'
import { DrError, InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { WriteJournal } from '../../../src/modules/freeze/index.js'
import { BS, filled, freezeDurable, openFreezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

const STEPS = ['begin', 'assess', 'freeze', 'capture', 'journal', 'lock', 'dismount', 'restore', 'remount', 'replay', 'unlock', 'thaw'] as const

async function crashWorld(crashAt: (p: CrashPoint) => boolean, sources?: unknown[]): Promise<FreezeWorld> {
  const d = freezeDurable()
  const east = d.raw['east']!
  await east.createVolume({ name: 'db', sizeBytes: 64 * BS, blockSize: BS }, token)
  await east.createVolume({ name: 'db-standby', sizeBytes: 64 * BS, blockSize: BS }, token)
  await east.write('db', 0, filled(BS, 1), token)
  await east.createSnapshot('db', 'base', token)
  const w = await openFreezeWorld(d, { crashAt })
  await w.freeze.protect(protectDb(sources === undefined ? {} : { sources }))
  w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
  w.host().addActor({ id: 'p2', kind: 'process', volumes: ['db-standby'] })
  return w
}

/** Nothing frozen, nothing locked, the volume mounted at its path with its identity, no restore left running. */
async function expectClean(w: FreezeWorld, activeVolume: string): Promise<void> {
  const actors = [...(await w.host().listActors('db')), ...(await w.host().listActors('db-standby'))]
  expect(actors.filter((a) => a.frozen)).toEqual([])
  expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
  expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: activeVolume, identity: 'uuid-db' })
  const record = await w.freeze.get({ site: 'east', volume: 'db' })
  expect(record.restore).toBeNull()
  expect(record.activeVolume).toBe(activeVolume)
  expect(await w.workflows.listRunning()).toEqual([])
}

describe('crash at every step, then resume', () => {
  for (const step of STEPS) {
    for (const phase of ['before', 'after'] as const) {
      it(`crash ${phase} "${step}": the resumed restore finishes, acknowledged journaled writes are on the volume, nothing is left frozen, locked or dismounted`, async () => {
        const w = await crashWorld((p) => p.step === step && p.phase === phase)
        const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
        await h.write(2 * BS, filled(BS, 7))
        const crashed = await w.freeze.restore({ site: 'east', volume: 'db' }).catch((error: unknown) => error)
        expect(crashed).toBeInstanceOf(InjectedCrash)
        const restoreId = w.names('freeze.disruptionDetected')[0]!.payload.restoreId
        const next = await w.restart()
        expect(await next.freeze.recover()).toBe(1)
        await expectClean(next, 'db')
        expect((await next.freeze.get({ site: 'east', volume: 'db' })).lastRestore).toMatchObject({ restoreId, outcome: 'restored' })
        const journaled = STEPS.indexOf(step) > STEPS.indexOf('journal') || (step === 'journal' && phase === 'after')
        expect(await w.storage().read('db', 2 * BS, 1)).toEqual(filled(1, journaled ? 7 : 0))
        if (journaled) expect((await new WriteJournal(w.stateStore).load(restoreId)).removed).toBe(true)
        expect(await w.storage().read('db', 0, 1)).toEqual(filled(1, 1))
      })
    }
  }

  for (const step of ['remount', 'thaw'] as const) {
    it(`crash after "${step}" of a standby swap: the resumed restore keeps the standby at the path with the volume's identity`, async () => {
      const w = await crashWorld((p) => p.step === step && p.phase === 'after', [{ kind: 'standby', volume: 'db-standby' }])
      await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
      const next = await w.restart()
      await next.freeze.recover()
      await expectClean(next, 'db-standby')
    })
  }

  const COMPENSATED = ['dismount', 'lock', 'journal', 'freeze', 'begin'] as const

  for (const step of COMPENSATED) {
    it(`crash while compensating "${step}" of a restore that failed before changing any data: the resumed compensation leaves the original volume mounted, unlocked and thawed`, async () => {
      const w = await crashWorld((p) => p.step === step && p.phase === 'compensate')
      // The plan sees the snapshot; the restore step cannot read it any more.
      w.storageFaults['east']!.fail({ method: 'snapshotInfo', when: (call) => call.nth >= 2, error: new DrError('E_CORRUPT', 'snapshot catalogue damaged') })
      const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
      await h.write(3 * BS, filled(BS, 5))
      await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
      const next = await w.restart()
      await next.freeze.recover()
      await expectClean(next, 'db')
      const record = await next.freeze.get({ site: 'east', volume: 'db' })
      expect(record).toMatchObject({ status: 'failed', dismounted: false, lastRestore: { outcome: 'failed', code: 'E_UNAVAILABLE' } })
      expect(await w.storage().read('db', 3 * BS, 1)).toEqual(filled(1, 5))
    })
  }

  for (const step of COMPENSATED) {
    it(`crash while compensating "${step}" of a restore that failed while changing the data: the volume stays dismounted, unlocked and thawed, and the next restore brings it back with the acknowledged write`, async () => {
      const w = await crashWorld((p) => p.step === step && p.phase === 'compensate')
      const fault = w.storageFaults['east']!.fail({ method: 'restoreSnapshot', error: new DrError('E_CORRUPT', 'snapshot damaged') })
      const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
      await h.write(3 * BS, filled(BS, 5))
      await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
      const next = await w.restart()
      await next.freeze.recover()
      const actors = [...(await next.host().listActors('db')), ...(await next.host().listActors('db-standby'))]
      expect(actors.filter((a) => a.frozen)).toEqual([])
      expect(await next.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
      expect(await next.host().getMount('/mnt/data')).toBeUndefined()
      expect(await next.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ status: 'failed', dismounted: true, restore: null })
      fault()
      expect((await next.freeze.restore({ site: 'east', volume: 'db' })).summary.outcome).toBe('restored')
      await expectClean(next, 'db')
      expect(await w.storage().read('db', 3 * BS, 1)).toEqual(filled(1, 5))
      expect(await w.storage().read('db', 0, 1)).toEqual(filled(1, 1))
    })
  }
})
