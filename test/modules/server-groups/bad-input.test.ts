import { afterEach, describe, expect, it } from 'vitest'
import type { GroupsWorld } from '../../fixtures/groups-world.js'
import { serverWorld } from '../../fixtures/groups-server.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

describe('server groups: bad input is rejected and changes nothing', () => {
  it('a rejection names the method, the field (its io-ts path) and the rule', async () => {
    const { w } = await serverWorld()
    worlds.push(w)
    const samples: Array<[() => Promise<unknown>, string, string]> = [
      [() => w.serverGroups.define({ name: 'x', sites: ['east', 'west'], members: [], mounts: [{ path: 'relative', volume: 'fs1' }] }), 'serverGroups.define options', 'mounts.0.path'],
      [() => w.serverGroups.offerInterfaces({ site: 'west', interfaces: ['cge0', 'bad name'] }), 'serverGroups.offerInterfaces options', 'interfaces.1'],
      [() => w.serverGroups.failover({ name: 'vs1', onDiscrepancy: 'maybe' } as never), 'serverGroups.failover options', 'onDiscrepancy'],
      [() => w.serverGroups.schedule({ name: 'vs1', every: '-1h' }), 'serverGroups.schedule options', 'every'],
      [() => w.serverGroups.changeConfiguration({ name: 'vs1', interfaces: [{ name: 'cge0', address: 'a b' }] }), 'serverGroups.changeConfiguration options', 'interfaces.0.address'],
    ]
    for (const [call, what, path] of samples) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error, path).toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringContaining(`invalid ${what}: field "${path}"`), details: { what, violations: expect.arrayContaining([expect.objectContaining({ path })]) } })
    }
  })

  it('define validates names, sites, identity and mounts', async () => {
    const { w, group } = await serverWorld()
    worlds.push(w)
    const bad: unknown[] = [
      undefined,
      { name: 'x', sites: ['east'], members: [] },
      { name: 'x', sites: ['east', 'west'] },
      { name: 'x y', sites: ['east', 'west'], members: [] },
      { name: 'x', sites: ['east', 'west'], members: [], interfaces: [{ name: 'cge0' }] },
      { name: 'x', sites: ['east', 'west'], members: [], nameRecords: [{ name: 'a b', address: '1' }] },
      { name: 'x', sites: ['east', 'west'], members: [], mounts: [{ path: 'relative', volume: 'fs1' }] },
      { name: 'x', sites: ['east', 'west'], members: [], mounts: [{ path: '/a/../b', volume: 'fs1' }] },
    ]
    for (const options of bad) await expect(w.serverGroups.define(options as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(w.serverGroups.define({ name: 'x', sites: ['east', 'east'], members: [] })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(w.serverGroups.define({ name: 'x', sites: ['east', 'west'], members: ['nope'] })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.serverGroups.define({ name: 'x', sites: ['east', 'mars'], members: [] })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.serverGroups.define({ name: 'vs1', sites: ['east', 'west'], members: [] })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.serverGroups.define({ name: 'x', sites: ['east', 'west'], members: ['fs1'] })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await w.serverGroups.list()).map((g) => g.name)).toEqual(['vs1'])
    expect(await w.serverGroups.get({ name: 'vs1' })).toEqual(group)
  })

  it('every other method validates its options and names', async () => {
    const { w, group } = await serverWorld()
    worlds.push(w)
    const invalid: Array<() => Promise<unknown>> = [
      () => w.serverGroups.offerInterfaces({ site: 'east', interfaces: 'cge0' } as never),
      () => w.serverGroups.get({} as never),
      () => w.serverGroups.prevalidate({ name: 'vs1', site: 7 } as never),
      () => w.serverGroups.load({ name: 'vs1' } as never),
      () => w.serverGroups.move({ name: 'vs1', site: '' }),
      () => w.serverGroups.unload({ name: '' }),
      () => w.serverGroups.failover({ name: 'vs1', onDiscrepancy: 'maybe' } as never),
      () => w.serverGroups.changeConfiguration({ name: 'vs1', mounts: [{ path: 'x', volume: 'fs1' }] }),
      () => w.serverGroups.resync({ name: 'vs1', acknowledgeDataLoss: false } as never),
      () => w.serverGroups.schedule({ name: 'vs1', every: '-1h' }),
      () => w.serverGroups.info(null as never),
      () => w.serverGroups.reinitialize({ name: 'vs1' } as never),
      () => w.serverGroups.snapshot({ name: 'a/b' }),
      () => w.serverGroups.delete({} as never),
      () => w.serverGroups.unload({ name: 'vs1', site: 'a b' }),
      () => w.serverGroups.replicatedDefinition({ site: 'west', volume: 'fs1' } as never),
    ]
    for (const call of invalid) await expect(call()).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    // The interfaces each site offers are unchanged: west still offers all three (nothing to report for vs1).
    expect((await w.serverGroups.prevalidate({ name: 'vs1' })).discrepancies).toEqual([])
    await expect(w.serverGroups.offerInterfaces({ site: 'west', interfaces: ['cge0', 'bad name'] })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect((await w.serverGroups.prevalidate({ name: 'vs1' })).available.interfaces).toEqual(['cge0', 'cge1', 'cge2'])
    const unknown: Array<() => Promise<unknown>> = [
      () => w.serverGroups.get({ name: 'nope' }),
      () => w.serverGroups.failover({ name: 'nope' }),
      () => w.serverGroups.reinitialize({ name: 'vs1', member: 'fs9' }),
      () => w.serverGroups.load({ name: 'vs1', site: 'mars' }),
      () => w.serverGroups.move({ name: 'vs1', site: 'mars' }),
      () => w.serverGroups.unload({ name: 'vs1', site: 'mars' }),
      () => w.serverGroups.resync({ name: 'nope' }),
      () => w.serverGroups.changeConfiguration({ name: 'nope', config: null }),
    ]
    for (const call of unknown) await expect(call()).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    // Nothing failed over, so there is nothing to resync: refused before anything starts.
    await expect(w.serverGroups.resync({ name: 'vs1' })).rejects.toMatchObject({ code: 'E_PRECONDITION', message: expect.stringContaining('nothing to resync') })
    expect(await w.serverGroups.get({ name: 'vs1' })).toEqual(group)
    expect((await w.evMirrors.get({ id: 'fs1' })).state).toBe('replicating')
  })
})
