import { afterEach, describe, expect, it } from 'vitest'
import { groupsWorld, makeVolume, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function world(): Promise<GroupsWorld> {
  const w = await groupsWorld()
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', 1)
  return w
}

describe('ev-mirror: bad input is rejected and changes nothing', () => {
  it('a rejection names the method, the field (its io-ts path) and the rule', async () => {
    const w = await world()
    const samples: Array<[() => Promise<unknown>, string, string]> = [
      [() => w.evMirrors.create({ source: { site: 'east', volume: '../db' }, destination: { site: 'west' } }), 'evMirrors.create options', 'source.volume'],
      [() => w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, config: { schedule: '-5s' } }), 'evMirrors.create options', 'config.schedule'],
      [() => w.evMirrors.transfer({ id: 'db', snapshot: '' }), 'evMirrors.transfer options', 'snapshot'],
      [() => w.evMirrors.resync({ id: 'db', acknowledgeDataLoss: false } as never), 'evMirrors.resync options', 'acknowledgeDataLoss'],
      [() => w.evMirrors.replicatedConfiguration({ site: 'west', volume: 'db', snapshot: 'a/b' }), 'evMirrors.replicatedConfiguration options', 'snapshot'],
    ]
    for (const [call, what, path] of samples) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error, path).toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringContaining(`invalid ${what}: field "${path}"`), details: { what, violations: expect.arrayContaining([expect.objectContaining({ path })]) } })
    }
    expect(await w.evMirrors.list()).toEqual([])
  })

  const badCreates: unknown[] = [
    undefined,
    {},
    { source: { site: 'east' }, destination: { site: 'west' } },
    { source: { site: 'east', volume: 'db' } },
    { source: { site: 'east', volume: '../db' }, destination: { site: 'west' } },
    { source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, id: '-bad' },
    { source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, config: { schedule: '-5s' } },
    { source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, config: { authorizedUsers: 'alice' } },
  ]
  for (const [i, options] of badCreates.entries()) {
    it(`create #${i} is E_INVALID_INPUT`, async () => {
      const w = await world()
      await expect(w.evMirrors.create(options as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
      expect(await w.evMirrors.list()).toEqual([])
      expect(await w.volumes.list({ site: 'west' })).toEqual([])
    })
  }

  it('unknown sites, volumes and relationships are E_NOT_FOUND', async () => {
    const w = await world()
    await expect(w.evMirrors.create({ source: { site: 'mars', volume: 'db' }, destination: { site: 'west' } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.evMirrors.create({ source: { site: 'east', volume: 'nope' }, destination: { site: 'west' } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'mars' } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    for (const call of [() => w.evMirrors.get({ id: 'x' }), () => w.evMirrors.transfer({ id: 'x' }), () => w.evMirrors.failover({ id: 'x' }), () => w.evMirrors.resync({ id: 'x' }), () => w.evMirrors.delete({ id: 'x' })]) {
      await expect(call()).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    }
    expect(await w.evMirrors.list()).toEqual([])
  })

  it('every other method validates its options', async () => {
    const w = await world()
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    const bad: Array<() => Promise<unknown>> = [
      () => w.evMirrors.get({} as never),
      () => w.evMirrors.transfer({ id: 'db', snapshot: '' }),
      () => w.evMirrors.transfer({ id: 'db', signal: 'stop' } as never),
      () => w.evMirrors.failover({ id: 7 } as never),
      () => w.evMirrors.resync({ id: 'db', acknowledgeDataLoss: false } as never),
      () => w.evMirrors.snapshotConfiguration({ id: 'db' } as never),
      () => w.evMirrors.memberRelationships(null as never),
      () => w.evMirrors.delete({ id: 'a b' }),
      () => w.evMirrors.failover({ id: 'db', force: false } as never),
      () => w.evMirrors.transfer({ id: 'db', attachment: { at: new Date() } } as never),
      () => w.evMirrors.replicatedConfiguration({ site: 'west', volume: 'db' } as never),
    ]
    for (const call of bad) await expect(call()).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    const rel = await w.evMirrors.get({ id: 'db' })
    expect(rel.sequence).toBe(0)
    expect(rel.state).toBe('replicating')
    expect(await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).toEqual([])
  })

  it('operations in the wrong state are E_PRECONDITION and change nothing', async () => {
    const w = await world()
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await expect(w.evMirrors.resync({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(w.evMirrors.transfer({ id: 'db', snapshot: 'missing' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await w.evMirrors.transfer({ id: 'db' })
    await w.evMirrors.failover({ id: 'db' })
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(w.evMirrors.failover({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await w.evMirrors.get({ id: 'db' })).epoch).toBe(2)
    await w.evMirrors.delete({ id: 'db' })
    expect(await w.evMirrors.list()).toEqual([])
  })
})
