import { describe, expect, it } from 'vitest'
import { DrError, InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { BS, barrier, filled, freezeDurable, openFreezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

/** Two coordinator processes over one journal, storage and host; `db` protected by the first. */
async function twoCoordinators(crashB?: (point: CrashPoint) => boolean): Promise<{ a: FreezeWorld; b: FreezeWorld }> {
  const d = freezeDurable()
  const east = d.raw['east']!
  for (const name of ['db', 'db-standby']) await east.createVolume({ name, sizeBytes: 64 * BS, blockSize: BS }, token)
  await east.write('db', 0, filled(BS, 1), token)
  await east.createSnapshot('db', 'base', token)
  await east.write('db-standby', 0, filled(BS, 6), token)
  const a = await openFreezeWorld(d)
  await a.freeze.protect(protectDb({ sources: [{ kind: 'standby', volume: 'db-standby' }] }))
  const b = await openFreezeWorld(d, crashB === undefined ? {} : { crashAt: crashB })
  return { a, b }
}

describe('two coordinators that see the same disruption', () => {
  it('the second joins the restore the first runs: its held I/O waits for it and then runs against the restored volume', async () => {
    const { a, b } = await twoCoordinators()
    const bHandle = await b.freeze.open({ site: 'east', volume: 'db' })
    expect(await bHandle.read(0, 4)).toEqual(filled(4, 1))
    const remount = barrier(a.host(), 'mount')
    const restore = a.freeze.restore({ site: 'east', volume: 'db' })
    await remount.entered
    b.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    const held = bHandle.read(0, 4)
    for (let i = 0; i < 100 && b.names('freeze.disruptionDetected').length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(b.names('freeze.disruptionDetected')).toHaveLength(1)
    remount.release()
    const result = await restore
    expect(result.activeVolume).toBe('db-standby')
    expect(await held).toEqual(filled(4, 6))
    expect(b.names('freeze.restoreFailed')).toEqual([])
    expect(await b.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ activeVolume: 'db-standby', status: 'protected', lastRestore: { restoreId: result.summary.restoreId } })
  })

  it('when the restore it joined fails, the second releases its held I/O with that failure', async () => {
    const { a, b } = await twoCoordinators()
    const bHandle = await b.freeze.open({ site: 'east', volume: 'db' })
    await bHandle.read(0, 1)
    const remount = barrier(a.host(), 'mount')
    a.hostFaults['east']!.fail({ method: 'mount', when: (call) => (call.args[0] as { volume: string }).volume === 'db-standby', error: new DrError('E_ADAPTER', 'mount refused') })
    const restore = a.freeze.restore({ site: 'east', volume: 'db' }).catch((error: unknown) => error)
    await remount.entered
    b.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    const held = bHandle.read(0, 4).catch((error: unknown) => error)
    for (let i = 0; i < 100 && b.names('freeze.disruptionDetected').length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
    remount.release()
    expect(await restore).toMatchObject({ code: 'E_ADAPTER' })
    expect(await held).toMatchObject({ code: 'E_UNAVAILABLE', details: { cause: 'E_ADAPTER' } })
  })

  for (const phase of ['before', 'after'] as const) {
    it(`a crash ${phase} the join step: the resumed restore finds the one it joined ended and leaves nothing running`, async () => {
      const { a, b } = await twoCoordinators((point) => point.step === 'join' && point.phase === phase)
      const bHandle = await b.freeze.open({ site: 'east', volume: 'db' })
      await bHandle.read(0, 1)
      const remount = barrier(a.host(), 'mount')
      const restore = a.freeze.restore({ site: 'east', volume: 'db' })
      await remount.entered
      b.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
      void bHandle.read(0, 4).catch(() => undefined)
      for (let i = 0; i < 100 && b.names('freeze.disruptionDetected').length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
      const joined = b.names('freeze.disruptionDetected')[0]!.payload.restoreId
      remount.release()
      await restore
      await expect(b.freeze.settled({ site: 'east', volume: 'db' })).resolves.toBeDefined()
      const history = await b.workflows.history(`freeze-restore-${joined}`)
      if (phase === 'before') expect(history?.steps.map((step) => step.name)).toEqual(['begin'])
      const next = await b.restart()
      expect(await next.freeze.recover()).toBe(1)
      expect(await next.workflows.listRunning()).toEqual([])
      expect(await next.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ activeVolume: 'db-standby', status: 'protected', restore: null })
      expect(next.names('freeze.restoreFailed')).toEqual([])
    })
  }

  it('after a crash, a disruption seen before recover() joins the interrupted restore, and recover() still resumes it', async () => {
    const { a } = await twoCoordinators()
    const crashing = await a.restart({ crashAt: (point) => point.step === 'restore' && point.phase === 'before' })
    await expect(crashing.freeze.restore({ site: 'east', volume: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    const next = await a.restart()
    const h = await next.freeze.open({ site: 'east', volume: 'db' })
    next.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    const held = h.read(0, 4)
    for (let i = 0; i < 100 && next.names('freeze.disruptionDetected').length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(next.names('freeze.disruptionDetected')).toHaveLength(1)
    expect(await next.freeze.recover()).toBe(1)
    expect(await held).toEqual(filled(4, 6))
    await next.freeze.settled({ site: 'east', volume: 'db' })
    expect(await next.workflows.listRunning()).toEqual([])
    expect(await next.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ activeVolume: 'db-standby', status: 'protected' })
  }, 15_000)
})
