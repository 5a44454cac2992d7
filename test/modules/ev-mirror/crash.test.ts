import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { content, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

/** Resumes what a crash interrupted, as the system does at start-up: volume workflows first, then ev-mirror's. */
async function recover(w: GroupsWorld): Promise<void> {
  for (const id of await w.workflows.listRunning()) if (!id.startsWith('evMirror.')) await w.workflows.resume(id).catch(() => undefined)
  await w.evMirrors.recover()
}

async function noFences(w: GroupsWorld): Promise<void> {
  for (const [site, storage] of [['east', w.bases.east], ['west', w.bases.west]] as const) {
    for (const v of await storage.listVolumes()) expect(await storage.isFenced(v.name), `${site} ${v.name} fenced`).toBe(false)
  }
}

/** A world whose crash hook fires at the k-th workflow step point once armed. */
async function armedWorld(): Promise<{ w: GroupsWorld; arm: (k: number) => void; fired: () => CrashPoint | null }> {
  let target = -1
  let seen = 0
  let hit: CrashPoint | null = null
  const w = await groupsWorld({
    crashAt: (point) => {
      if (target < 0 || point.phase === 'compensate') return false
      if (seen++ !== target) return false
      hit = point
      target = -1
      return true
    },
  })
  return {
    w,
    arm: (k) => {
      target = k
      seen = 0
      hit = null
    },
    fired: () => hit,
  }
}

async function prepared(): Promise<{ w: GroupsWorld; arm: (k: number) => void; fired: () => CrashPoint | null; before: Record<string, string> }> {
  const world = await armedWorld()
  const { w } = world
  await makeVolume(w.volumes, 'east', 'db', 2)
  for (let i = 0; i < 6; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
  await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  await w.evMirrors.transfer({ id: 'db' })
  const before = await readerView(w.volumes, 'west', 'db')
  await w.volumes.expand({ site: 'east', volume: 'db', add: 1 })
  for (let i = 0; i < 6; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/n${i}`, data: content(`v2-${i}`) })
  return { ...world, before }
}

async function crashEverywhere(what: string, operation: (w: GroupsWorld) => Promise<unknown>, check: (w: GroupsWorld, before: Record<string, string>) => Promise<void>, setup?: (w: GroupsWorld) => Promise<void>): Promise<number> {
  for (let k = 0; k < 200; k++) {
    const { w, arm, fired, before } = await prepared()
    if (setup !== undefined) await setup(w)
    const reference = await readerView(w.volumes, 'west', 'db')
    const target = await liveView(w.volumes, 'east', 'db')
    arm(k)
    const outcome = await operation(w).then(
      () => null,
      (error: unknown) => error,
    )
    if (fired() === null) {
      expect(outcome, `${what}: uncrashed run`).toBeNull()
      await check(w, before)
      await w.close()
      return k
    }
    expect(outcome, `${what}: crash ${k}`).toBeInstanceOf(InjectedCrash)
    if (setup === undefined) {
      const reader = await readerView(w.volumes, 'west', 'db')
      const whole = [reference, target].some((view) => JSON.stringify(view) === JSON.stringify(reader))
      expect(whole, `${what}: reader after crash ${k} (${JSON.stringify(fired())}) sees a mix`).toBe(true)
    }
    const restarted = await w.restart()
    await recover(restarted)
    await check(restarted, before)
    await restarted.close()
    await w.close()
  }
  throw new Error(`${what}: still crashing after 200 points`)
}

describe('ev-mirror: crash at every step, resume, invariants hold', () => {
  it('transfer (with its consistency-group snapshot and the resize): readers never see a mix; after recovery the destination serves the new snapshot', async () => {
    const points = await crashEverywhere(
      'transfer',
      (w) => w.evMirrors.transfer({ id: 'db' }),
      async (w) => {
        const rel = await w.evMirrors.get({ id: 'db' })
        expect(rel.operation).toBeNull()
        expect(rel.sequence).toBe(2)
        expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
        await noFences(w)
      },
    )
    expect(points).toBeGreaterThan(10)
  }, 120_000)

  it('failover: after recovery the destination is failed over at the newest complete snapshot', async () => {
    await crashEverywhere(
      'failover',
      (w) => w.evMirrors.failover({ id: 'db' }),
      async (w, before) => {
        const rel = await w.evMirrors.get({ id: 'db' })
        expect(rel.state).toBe('failedOver')
        expect(rel.operation).toBeNull()
        expect(await liveView(w.volumes, 'west', 'db')).toEqual(before)
      },
    )
  }, 120_000)

  it('resync: after recovery the old primary equals the new one and the relationship is reversed', async () => {
    await crashEverywhere(
      'resync',
      (w) => w.evMirrors.resync({ id: 'db', acknowledgeDataLoss: true }),
      async (w) => {
        const rel = await w.evMirrors.get({ id: 'db' })
        expect(rel.direction).toBe('reversed')
        expect(rel.operation).toBeNull()
        expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
        await noFences(w)
      },
      async (w) => {
        await w.evMirrors.failover({ id: 'db' })
        await w.volumes.expand({ site: 'west', volume: 'db', add: 1 })
        await w.volumes.putObject({ site: 'west', volume: 'db', path: '/dr', data: content('dr') })
      },
    )
  }, 120_000)
})

describe('ev-mirror: a crash inside the transfer snapshot', () => {
  it('behaviour 33: the coordinator crashed with the namespace, OLS and data constituents fenced; recovery unfences them data first, namespace last, and the transfer completes', async () => {
    let armed = false
    const w = await groupsWorld({ crashAt: (point) => armed && point.workflowId.startsWith('volume.snapshot') && point.step === 'snapshot' && point.phase === 'before' })
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/a', data: content('a') })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    armed = true
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    for (const v of ['db.ns', 'db.ols', 'db.dc-1']) expect(await w.bases.east.isFenced(v)).toBe(true)
    const restarted = await w.restart()
    const from = restarted.faults.east.calls.length
    await recover(restarted)
    const unfenced = restarted.faults.east.calls.slice(from).filter((c) => c.method === 'unfence').map((c) => c.args[0])
    expect(unfenced.slice(0, 3)).toEqual(['db.dc-1', 'db.ols', 'db.ns'])
    await noFences(restarted)
    expect((await restarted.evMirrors.get({ id: 'db' })).lastTransferred).not.toBeNull()
    expect(await readerView(restarted.volumes, 'west', 'db')).toEqual(await liveView(restarted.volumes, 'east', 'db'))
    await restarted.close()
    await w.close()
  })
})

describe('ev-mirror: recovery by the system', () => {
  it('when the system resumed the interrupted transfer itself, recover() closes its operation record and the next transfer runs', async () => {
    let armed = false
    const w = await groupsWorld({ crashAt: (point) => armed && point.step === 'members' && point.phase === 'after' })
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/a', data: content('a') })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    armed = true
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    const restarted = await w.restart()
    for (const id of await restarted.workflows.listRunning()) await restarted.workflows.resume(id)
    expect((await restarted.evMirrors.get({ id: 'db' })).operation).not.toBeNull()
    await restarted.evMirrors.recover()
    expect((await restarted.evMirrors.get({ id: 'db' })).operation).toBeNull()
    await restarted.volumes.putObject({ site: 'east', volume: 'db', path: '/b', data: content('b') })
    await restarted.evMirrors.transfer({ id: 'db' })
    expect(await readerView(restarted.volumes, 'west', 'db')).toEqual(await liveView(restarted.volumes, 'east', 'db'))
    await restarted.close()
    await w.close()
  })
})
