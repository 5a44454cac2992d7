import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { content, groupsWorld, liveView, makeVolume, readerView, token, volumeHash, type GroupsWorld } from '../../fixtures/groups-world.js'
import { noFences, relationshipInvariants, watchPrimaries } from '../../fixtures/groups-invariants.js'

/** Resumes the volume workflows a crash interrupted (a consistency group holding fences is finished or aborted). */
async function recoverVolumes(w: GroupsWorld): Promise<void> {
  for (const id of await w.workflows.listRunning()) if (!id.startsWith('evMirror.')) await w.workflows.resume(id).catch(() => undefined)
}

/** Resumes what a crash interrupted, as the system does at start-up: volume workflows first, then ev-mirror's. */
async function recover(w: GroupsWorld): Promise<void> {
  await recoverVolumes(w)
  await w.evMirrors.recover()
}

/** A world whose crash hook fires at the k-th workflow step point once armed. */
async function armedWorld(chunkBytes?: number): Promise<{ w: GroupsWorld; arm: (k: number) => void; fired: () => CrashPoint | null }> {
  let target = -1
  let seen = 0
  let hit: CrashPoint | null = null
  const w = await groupsWorld({
    ...(chunkBytes === undefined ? {} : { chunkBytes }),
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

interface Prepared {
  readonly w: GroupsWorld
  readonly arm: (k: number) => void
  readonly fired: () => CrashPoint | null
}

/** db (2 data constituents) replicated once east → west, then expanded to 3 and written at east. */
async function prepared(chunkBytes?: number): Promise<Prepared> {
  const world = await armedWorld(chunkBytes)
  const { w } = world
  await makeVolume(w.volumes, 'east', 'db', 2)
  for (let i = 0; i < 6; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`, 9000) })
  await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  await w.evMirrors.transfer({ id: 'db' })
  await w.volumes.expand({ site: 'east', volume: 'db', add: 1 })
  for (let i = 0; i < 6; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/n${i}`, data: content(`v2-${i}`, 9000) })
  return world
}

/** What a reader may see after a crash: one whole view, by JSON. */
type Views = ReadonlyArray<Record<string, string>>

interface Scenario {
  readonly what: string
  /** Brings the prepared world to where the operation starts; returns the views a reader may see meanwhile. */
  readonly setup: (w: GroupsWorld) => Promise<{ reader: { site: 'east' | 'west' }; allowed: Views }>
  readonly operation: (w: GroupsWorld) => Promise<unknown>
  readonly check: (w: GroupsWorld) => Promise<void>
}

/**
 * Crashes the scenario's operation at every workflow step point in turn (before and after each step); after each
 * crash checks that a reader sees one of the allowed whole views, restarts, recovers and checks the scenario's
 * invariants; stops at the first run that did not crash. Returns the number of crash points.
 */
async function crashEverywhere(scenario: Scenario): Promise<number> {
  for (let k = 0; k < 200; k++) {
    const { w, arm, fired } = await prepared()
    const { reader, allowed } = await scenario.setup(w)
    const violations = watchPrimaries(w)
    arm(k)
    const outcome = await scenario.operation(w).then(
      () => null,
      (error: unknown) => error,
    )
    if (fired() === null) {
      expect(outcome, `${scenario.what}: uncrashed run`).toBeNull()
      await scenario.check(w)
      expect(violations, `${scenario.what}: primaries`).toEqual([])
      await w.close()
      return k
    }
    expect(outcome, `${scenario.what}: crash ${k}`).toBeInstanceOf(InjectedCrash)
    const restarted = await w.restart()
    const after = watchPrimaries(restarted)
    // A reader that comes after the crash — once a consistency group the crash left fenced is closed (its reads wait
    // until then, as a fence defers I/O) — sees one whole snapshot, before the interrupted operation is resumed.
    await recoverVolumes(restarted)
    const seen = JSON.stringify(await readerView(restarted.volumes, reader.site, 'db'))
    expect(allowed.map((v) => JSON.stringify(v)), `${scenario.what}: reader after crash ${k} (${JSON.stringify(fired())}) sees a mix`).toContain(seen)
    await restarted.evMirrors.recover()
    await scenario.check(restarted)
    expect([...violations, ...after], `${scenario.what}: primaries around crash ${k}`).toEqual([])
    await restarted.close()
    await w.close()
  }
  throw new Error(`${scenario.what}: still crashing after 200 points`)
}

/** Every constituent of the last transferred snapshot is byte-identical on both sides, and so are the destination's live constituents. */
async function identical(w: GroupsWorld): Promise<void> {
  const rel = await w.evMirrors.get({ id: 'db' })
  const name = rel.lastTransferred?.name
  const find = async (site: 'east' | 'west') => (await w.volumes.listSnapshots({ site, volume: 'db' })).find((s) => s.name === name)
  const [source, destination] = [await find(rel.source.site as 'east' | 'west'), await find(rel.destination.site as 'east' | 'west')]
  if (source === undefined || destination === undefined) throw new Error(`"${String(name)}" is not on both sides`)
  expect(destination.members.map((m) => m.volume)).toEqual(source.members.map((m) => m.volume))
  for (const m of source.members) {
    const twin = destination.members.find((x) => x.volume === m.volume)
    const at = { s: w.bases[rel.source.site as 'east' | 'west'], d: w.bases[rel.destination.site as 'east' | 'west'] }
    const bytes = await volumeHash(at.s, m.volume, m.snapshot)
    expect(await volumeHash(at.d, m.volume, twin?.snapshot), m.volume).toBe(bytes)
    expect(await volumeHash(at.d, m.volume), `${m.volume} live`).toBe(bytes)
  }
}

describe('ev-mirror: crash at every step, resume, invariants hold', () => {
  it('transfer (with its consistency-group snapshot and the resize): readers never see a mix; after recovery the destination serves the new snapshot', async () => {
    const points = await crashEverywhere({
      what: 'transfer',
      setup: async (w) => ({ reader: { site: 'west' }, allowed: [await readerView(w.volumes, 'west', 'db'), await liveView(w.volumes, 'east', 'db')] }),
      operation: (w) => w.evMirrors.transfer({ id: 'db' }),
      check: async (w) => {
        const rel = await w.evMirrors.get({ id: 'db' })
        expect(rel.sequence).toBe(2)
        expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
        await relationshipInvariants(w, 'db')
        await identical(w)
        // No member snapshot is left over at the destination: each constituent has exactly those its catalog names.
        const catalogued = (await w.volumes.listSnapshots({ site: 'west', volume: 'db' })).flatMap((s) => s.members.map((m) => `${m.volume}@${m.snapshot}`))
        for (const v of ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2', 'db.dc-3']) {
          for (const snapshot of await w.bases.west.listSnapshots(v)) expect(catalogued, `${v}@${snapshot.name}`).toContain(`${v}@${snapshot.name}`)
        }
      },
    })
    expect(points).toBeGreaterThanOrEqual(18)
  }, 120_000)

  it('failover: after recovery the destination is failed over at the newest complete snapshot, the source read-only', async () => {
    const points = await crashEverywhere({
      what: 'failover',
      setup: async (w) => ({ reader: { site: 'west' }, allowed: [await readerView(w.volumes, 'west', 'db')] }),
      operation: (w) => w.evMirrors.failover({ id: 'db' }),
      check: async (w) => {
        const rel = await w.evMirrors.get({ id: 'db' })
        expect(rel).toMatchObject({ state: 'failedOver', epoch: 2 })
        expect((await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect).toBeNull()
        expect(await liveView(w.volumes, 'west', 'db')).toEqual(await readerView(w.volumes, 'east', 'db'))
        for (const v of ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2']) expect((await w.bases.west.volumeInfo(v)).writable, `west ${v}`).toBe(true)
        await relationshipInvariants(w, 'db')
      },
    })
    expect(points).toBeGreaterThanOrEqual(8)
  }, 120_000)

  it('resync: after recovery the old primary equals the new one byte for byte, readers there never saw a mix, the relationship is reversed', async () => {
    const points = await crashEverywhere({
      what: 'resync',
      setup: async (w) => {
        await w.evMirrors.failover({ id: 'db' })
        await w.volumes.expand({ site: 'west', volume: 'db', add: 1 })
        await w.volumes.putObject({ site: 'west', volume: 'db', path: '/dr', data: content('dr') })
        return { reader: { site: 'east' }, allowed: [await readerView(w.volumes, 'east', 'db'), await liveView(w.volumes, 'west', 'db')] }
      },
      operation: (w) => w.evMirrors.resync({ id: 'db', acknowledgeDataLoss: true }),
      check: async (w) => {
        const rel = await w.evMirrors.get({ id: 'db' })
        expect(rel).toMatchObject({ direction: 'reversed', state: 'replicating', epoch: 3 })
        expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
        await relationshipInvariants(w, 'db')
        await identical(w)
      },
    })
    expect(points).toBeGreaterThanOrEqual(30)
  }, 120_000)

  it('resync keeping a safety snapshot of writes the cut-off old primary took: after recovery the safety snapshot holds them', async () => {
    let late = ''
    const points = await crashEverywhere({
      what: 'resync with a safety snapshot',
      setup: async (w) => {
        w.fabric.partition('east', 'west')
        await w.evMirrors.failover({ id: 'db' })
        w.fabric.heal('east', 'west')
        await w.bases.east.write('db.dc-1', 0, content('late', 4096), token)
        late = await volumeHash(w.bases.east, 'db.dc-1')
        return { reader: { site: 'east' }, allowed: [await readerView(w.volumes, 'east', 'db'), await liveView(w.volumes, 'west', 'db')] }
      },
      operation: (w) => w.evMirrors.resync({ id: 'db', safetySnapshot: true }),
      check: async (w) => {
        expect((await w.evMirrors.get({ id: 'db' })).direction).toBe('reversed')
        const safety = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === 'db.safety.3')
        const member = safety?.members.find((m) => m.volume === 'db.dc-1')
        if (member === undefined) throw new Error('no safety snapshot of db.dc-1')
        expect(await volumeHash(w.bases.east, 'db.dc-1', member.snapshot)).toBe(late)
        await relationshipInvariants(w, 'db')
        await identical(w)
      },
    })
    expect(points).toBeGreaterThanOrEqual(30)
  }, 120_000)
})

describe('ev-mirror: a crash inside the member transfers', () => {
  it('the coordinator dies after the k-th chunk read of a member transfer; after a restart every member resumes from its recorded progress', async () => {
    let resumedMidway = 0
    let crashes = 0
    for (let k = 3; ; k += 4) {
      const { w } = await prepared(4096)
      const before = await readerView(w.volumes, 'west', 'db')
      let reads = 0
      w.faults.east.fail({
        method: 'readRanges',
        when: () => {
          if (++reads !== k) return false
          // The process dies: nothing else of it gets through to storage.
          w.faults.east.crash()
          w.faults.west.crash()
          return true
        },
        error: new InjectedCrash({ workflowId: 'member-transfer', index: k, step: 'members', phase: 'before' }),
      })
      const outcome = await w.evMirrors.transfer({ id: 'db' }).catch((e: unknown) => e)
      if (outcome === null || !(outcome instanceof InjectedCrash)) {
        // k is past the last block read: the transfer ran to the end.
        expect(outcome).toMatchObject({ snapshot: 'db.2' })
        await w.close()
        break
      }
      crashes++
      const restarted = await w.restart()
      expect(await readerView(restarted.volumes, 'west', 'db')).toEqual(before)
      await recover(restarted)
      const moved = restarted.seen.filter((e) => e.name === 'evMirror.memberTransferred').map((e) => e.payload as { resumedFrom: number; chunks: number; sent: number })
      for (const m of moved) expect(m.sent, 'chunks resent').toBe(m.chunks - m.resumedFrom)
      if (moved.some((m) => m.resumedFrom > 0 && m.resumedFrom < m.chunks)) resumedMidway++
      expect(await readerView(restarted.volumes, 'west', 'db')).toEqual(await liveView(restarted.volumes, 'east', 'db'))
      await relationshipInvariants(restarted, 'db')
      await identical(restarted)
      await restarted.close()
      await w.close()
    }
    expect(crashes).toBeGreaterThanOrEqual(5)
    expect(resumedMidway).toBeGreaterThanOrEqual(3)
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
