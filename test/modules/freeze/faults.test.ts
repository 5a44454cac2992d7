import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { WriteJournal } from '../../../src/modules/freeze/index.js'
import { BS, filled, freezeWorld, protectDb, token, untilFrozen, type FreezeWorld } from '../../fixtures/freeze-world.js'

async function protectedWorld(): Promise<FreezeWorld> {
  const w = await freezeWorld()
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.freeze.protect(protectDb())
  w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
  return w
}

const TRANSIENT: Array<{ port: 'host' | 'storage'; method: string }> = [
  { port: 'host', method: 'listMounts' },
  { port: 'host', method: 'listActors' },
  { port: 'host', method: 'freezeActor' },
  { port: 'host', method: 'getMount' },
  { port: 'host', method: 'dismount' },
  { port: 'host', method: 'mount' },
  { port: 'host', method: 'thawActor' },
  { port: 'storage', method: 'snapshotInfo' },
  { port: 'storage', method: 'restoreSnapshot' },
  { port: 'storage', method: 'write' },
]

describe('adapter faults during a restore', () => {
  for (const fault of TRANSIENT) {
    it(`a transient ${fault.port}.${fault.method} failure is retried: the restore completes and held I/O succeeds`, async () => {
      const w = await protectedWorld()
      const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
      await h.write(BS, filled(BS, 4))
      const injector = fault.port === 'host' ? w.hostFaults['east']! : w.storageFaults['east']!
      injector.fail({ method: fault.method, times: 2, error: new DrError('E_ADAPTER', `transient ${fault.method}`) })
      const restore = w.freeze.restore({ site: 'east', volume: 'db' })
      const held = h.read(BS, 2)
      expect((await restore).summary.outcome).toBe('restored')
      expect(await held).toEqual(filled(2, 4))
      expect(injector.calls.filter((c) => c.method === fault.method && c.outcome === 'failed')).toHaveLength(2)
      expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
      expect(await w.storage().read('db', BS, 1)).toEqual(filled(1, 4))
    })
  }

  it('a dismount that keeps failing ends the restore compensated: unlocked, thawed, still mounted, held I/O failed clearly', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
    await h.write(BS, filled(BS, 4))
    w.hostFaults['east']!.fail({ method: 'dismount', error: new DrError('E_ADAPTER', 'device busy') })
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await untilFrozen(w)
    const held = h.read(0, 2)
    await expect(restore).rejects.toMatchObject({ code: 'E_ADAPTER' })
    await expect(held).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'db', identity: 'uuid-db' })
    expect(await w.storage().read('db', BS, 1)).toEqual(filled(1, 4))
    expect(h.dirtyBytes).toBe(0)
  })

  it('a host that refuses every mount after the dismount is reported as critical, and the lock and actors are still released', async () => {
    const w = await protectedWorld()
    w.hostFaults['east']!.fail({ method: 'mount', error: new DrError('E_ADAPTER', 'mount table full') })
    await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(w.names('freeze.remountFailed').at(-1)).toMatchObject({ severity: 'critical', payload: { found: null } })
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    expect(await w.workflows.listRunning()).toEqual([])
  })

  it('with the storage crashed no source is reachable: the restore is impossible and freezes nothing; once it is back a new restore succeeds', async () => {
    const w = await protectedWorld()
    w.storageFaults['east']!.crash()
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await expect(restore).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(w.hostFaults['east']!.calls.map((c) => c.method)).not.toContain('freezeActor')
    w.storageFaults['east']!.restart()
    expect((await w.freeze.get({ site: 'east', volume: 'db' })).status).toBe('failed')
    const again = await w.freeze.restore({ site: 'east', volume: 'db' })
    expect(again.summary.outcome).toBe('restored')
    expect((await w.freeze.get({ site: 'east', volume: 'db' })).status).toBe('protected')
  })

  it('a restore that cannot even record its start releases the held I/O with an error instead of holding it forever', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const store = w.stateStore as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
    const append = store['append']!.bind(w.stateStore)
    store['append'] = async (...args: unknown[]) => {
      const records = args[2] as Array<{ type: string }>
      if (records[0]?.type === 'restore.started') throw new DrError('E_ADAPTER', 'journal disk full')
      return append(...args)
    }
    await w.freeze.reportDisruption({ site: 'east', volume: 'db' })
    await expect(h.read(0, 4)).rejects.toMatchObject({ code: 'E_UNAVAILABLE', details: { cause: 'E_ADAPTER' } })
    expect(w.names('freeze.restoreImpossible')[0]?.payload).toMatchObject({ released: 1 })
    expect(w.hostFaults['east']!.calls.map((c) => c.method)).not.toContain('freezeActor')
    store['append'] = append
    expect(await h.read(0, 4)).toEqual(filled(4, 1))
  })

  it('journaled writes that cannot be written back after a failed restore are reported, kept in the caches and the journal, and flushed once storage is back', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
    await h.write(BS, filled(BS, 4))
    // The plan sees the snapshot, the restore step cannot read it: nothing on the volume changes.
    w.storageFaults['east']!.fail({ method: 'snapshotInfo', when: (call) => call.nth >= 2, error: new DrError('E_CORRUPT', 'catalogue damaged') })
    const writes = w.storageFaults['east']!.fail({ method: 'write', error: new DrError('E_ADAPTER', 'write path down') })
    await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    const retained = w.names('freeze.journalRetained')
    expect(retained.map((e) => [e.severity, e.payload])).toEqual([['critical', expect.objectContaining({ writes: 1, code: 'E_ADAPTER' })]])
    const restoreId = retained[0]!.payload.restoreId
    expect((await new WriteJournal(w.stateStore).load(restoreId)).removed).toBe(false)
    expect(h.dirtyBytes).toBe(BS)
    expect(await h.read(BS, 2)).toEqual(filled(2, 4))
    writes()
    await h.flush()
    expect(await w.storage().read('db', BS, 2)).toEqual(filled(2, 4))
    expect(h.dirtyBytes).toBe(0)
  })
})
