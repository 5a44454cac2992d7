import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { bytes, createVolume, fenceCalls, fencedVolumes, members, memberSnapshots, settle, text, world, type World } from './world.js'

const site = 'east'
const volume = 'db'
const STEPS = ['open', 'fence:namespace', 'fence:ols', 'fence:data', 'snapshot', 'unfence:data', 'unfence:ols', 'unfence:namespace', 'commit']
const PATHS = ['a', 'b', 'c', 'd', 'e', 'f']

async function prepared(): Promise<World> {
  const w = await world({ base: memoryStorage() })
  await createVolume(w)
  for (const path of PATHS) await w.volumes.putObject({ site, volume, path, data: bytes(`v-${path}`) })
  return w
}

const inGroup =
  (index: number, phase: CrashPoint['phase']) =>
  (point: CrashPoint): boolean =>
    point.workflowId.startsWith('volume.snapshot') && point.index === index && point.phase === phase

/**
 * The invariants after recovery: nothing fenced, no group open, and the snapshot either valid on every member
 * (catalogued, each member snapshot present, every object readable through it) or absent (no catalog entry and
 * no member snapshot anywhere).
 */
async function expectConsistent(w: World, expected: 'present' | 'absent'): Promise<void> {
  expect(await fencedVolumes(w.base, members())).toEqual([])
  expect((await w.volumes.get({ site, volume })).group).toBeNull()
  const catalog = await w.volumes.listSnapshots({ site, volume })
  const onStorage = await memberSnapshots(w.base, members())
  if (expected === 'absent') {
    expect(catalog).toEqual([])
    expect(onStorage).toEqual(Object.fromEntries(members().map((m) => [m, []])))
    return
  }
  expect(catalog).toHaveLength(1)
  const [entry] = catalog
  expect(entry?.valid).toBe(true)
  expect(entry?.members.map((m) => m.volume)).toEqual(members())
  expect(onStorage).toEqual(Object.fromEntries(members().map((m) => [m, ['nightly']])))
  for (const path of PATHS) expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: entry?.id ?? -1, path }))).toBe(`v-${path}`)
}

describe('consistency-group crash recovery', () => {
  for (const [index, step] of STEPS.entries()) {
    for (const phase of ['before', 'after'] as const) {
      it(`coordinator killed ${phase} step ${index} (${step}), resumed by a new coordinator: completes, nothing fenced`, async () => {
        const w = await prepared()
        const crashing = await w.restart({ crashAt: inGroup(index, phase) })
        await expect(crashing.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toBeInstanceOf(InjectedCrash)
        const recovered = await crashing.restart()
        const outcomes = await recovered.recover()
        expect(outcomes.map((o) => o.status)).toEqual(['fulfilled'])
        await expectConsistent(recovered, 'present')
      })

      const aborts = index < 6 && !(index === 0 && phase === 'before')
      const outcome = aborts ? 'aborts with E_TIMEOUT' : index === 0 ? 'the group had not opened, so it opens now and completes' : 'commit already began, completes'
      it(`coordinator killed ${phase} step ${index} (${step}) and resumed after the maximum fence-hold time: ${outcome}`, async () => {
        const w = await prepared()
        const crashing = await w.restart({ crashAt: inGroup(index, phase) })
        await expect(crashing.volumes.snapshot({ site, volume, name: 'nightly', maxFenceHoldMs: '10s' })).rejects.toBeInstanceOf(InjectedCrash)
        await w.clock.advance(11_000)
        const recovered = await crashing.restart()
        const outcomes = await recovered.recover()
        if (aborts) {
          expect(outcomes).toEqual([{ status: 'rejected', reason: expect.objectContaining({ code: 'E_TIMEOUT' }) }])
          await expectConsistent(recovered, 'absent')
          expect((await recovered.volumes.get({ site, volume })).lastGroup).toMatchObject({ outcome: 'failed', code: 'E_TIMEOUT' })
        } else {
          expect(outcomes.map((o) => o.status)).toEqual(['fulfilled'])
          await expectConsistent(recovered, 'present')
        }
      })
    }
  }

  const failures: Array<[string, (w: World) => void]> = [
    ['the OLS fence fails', (w) => void w.faults.fail({ method: 'fence', when: (c) => c.args[0] === 'db.ols' })],
    ['the Vd3 fence fails', (w) => void w.faults.fail({ method: 'fence', when: (c) => c.args[0] === 'db.dc-3' })],
    ['the Vd2 snapshot fails', (w) => void w.faults.fail({ method: 'createSnapshot', when: (c) => c.args[0] === 'db.dc-2' })],
    ['unfencing the data constituents fails for good', (w) => void w.faults.fail({ method: 'unfence', when: (c) => c.args[0] === 'db.dc-1' })],
  ]
  for (const [what, inject] of failures) {
    it(`coordinator killed while compensating (${what}), resumed: the compensation finishes — nothing fenced, no member snapshot`, async () => {
      const w = await prepared()
      const crashing = await w.restart({ crashAt: inGroup(0, 'compensate') })
      inject(crashing)
      await expect(settle(w.clock, crashing.volumes.snapshot({ site, volume, name: 'nightly' }))).rejects.toBeInstanceOf(InjectedCrash)
      const recovered = await crashing.restart()
      const outcomes = await recovered.recover()
      expect(outcomes.map((o) => o.status)).toEqual(['rejected'])
      await expectConsistent(recovered, 'absent')
      const unfences = fenceCalls(recovered.faults).filter((c) => c.startsWith('unfence'))
      if (unfences.length > 0) expect(unfences[unfences.length - 1]).toBe('unfence:db.ns')
    })
  }

  it('behaviour 33: killed with Vn, Vols and Vd1 fenced; recovered after the hold time → unfences Vd1, Vols, Vn in that order', async () => {
    const w = await prepared()
    const crashing = await w.restart()
    const point: CrashPoint = { workflowId: 'volume.snapshot', index: 3, step: 'fence:data', phase: 'before' }
    crashing.faults.fail({ method: 'fence', when: (c) => ['db.dc-2', 'db.dc-3', 'db.dc-4'].includes(String(c.args[0])), error: new InjectedCrash(point) })
    await expect(crashing.volumes.snapshot({ site, volume, name: 'nightly', maxFenceHoldMs: '5s' })).rejects.toBeInstanceOf(InjectedCrash)
    expect(await fencedVolumes(w.base, members())).toEqual(['db.ns', 'db.ols', 'db.dc-1'])
    const persisted = (await w.restart()).volumes
    const record = await persisted.get({ site, volume })
    expect(record.group?.fenceOrder.map((m) => m.volume)).toEqual(members())
    expect(record.group?.fences.map((f) => [f.volume, f.order])).toEqual([
      ['db.ns', 1],
      ['db.ols', 2],
    ])
    await w.clock.advance(6_000)
    const recovered = await crashing.restart()
    await recovered.recover()
    expect(fenceCalls(recovered.faults)).toEqual(['unfence:db.dc-1', 'unfence:db.ols', 'unfence:db.ns'])
    await expectConsistent(recovered, 'absent')
  })

  it('behaviour 33 (in time): killed with Vn, Vols and Vd1 fenced; recovered within the hold time → the group completes', async () => {
    const w = await prepared()
    const crashing = await w.restart()
    const point: CrashPoint = { workflowId: 'volume.snapshot', index: 3, step: 'fence:data', phase: 'before' }
    crashing.faults.fail({ method: 'fence', when: (c) => ['db.dc-2', 'db.dc-3', 'db.dc-4'].includes(String(c.args[0])), error: new InjectedCrash(point) })
    await expect(crashing.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toBeInstanceOf(InjectedCrash)
    const recovered = await crashing.restart()
    await recovered.recover()
    await expectConsistent(recovered, 'present')
  })
})

describe('membership change crash recovery', () => {
  const kinds = [
    { kind: 'expand', steps: 3, run: (w: World) => w.volumes.expand({ site, volume, add: 2 }), dcs: [1, 2, 3, 4, 5, 6] },
    { kind: 'shrink', steps: 4, run: (w: World) => w.volumes.shrink({ site, volume, remove: [2, 3] }), dcs: [1, 4] },
  ] as const
  for (const { kind, steps, run, dcs } of kinds) {
    for (let index = 0; index < steps; index++) {
      for (const phase of ['before', 'after'] as const) {
        it(`${kind} killed ${phase} step ${index}, resumed: membership ends as expected and every object is readable`, async () => {
          const w = await prepared()
          const crashing = await w.restart({ crashAt: (p) => p.workflowId.startsWith(`volume.${kind}`) && p.index === index && p.phase === phase })
          await expect(run(crashing)).rejects.toBeInstanceOf(InjectedCrash)
          const recovered = await crashing.restart()
          expect((await recovered.recover()).map((o) => o.status)).toEqual(['fulfilled'])
          const record = await recovered.volumes.get({ site, volume })
          expect(record.change).toBeNull()
          expect(record.members.filter((m) => m.role === 'data').map((m) => m.ordinal)).toEqual(dcs)
          expect((await w.base.listVolumes()).map((v) => v.name).sort()).toEqual(record.members.map((m) => m.volume).sort())
          for (const path of PATHS) expect(text(await recovered.volumes.getObject({ site, volume, path }))).toBe(`v-${path}`)
        })
      }
    }
  }
})
