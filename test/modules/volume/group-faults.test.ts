import { describe, expect, it } from 'vitest'
import { DrError, ManualClock, type WorkflowHistory } from '../../../src/kernel/index.js'
import { createVolume, fenceCalls, fencedVolumes, members, memberSnapshots, settle, world, type World } from './world.js'

const site = 'east'
const volume = 'db'
const noSnapshots = Object.fromEntries(members().map((m) => [m, [] as string[]]))

async function snapshotJobs(w: World): Promise<WorkflowHistory[]> {
  const jobs: WorkflowHistory[] = []
  for (const stream of await w.stateStore.listStreams('workflow/volume.snapshot')) {
    const history = await w.workflows.history(stream.slice('workflow/'.length))
    if (history !== undefined) jobs.push(history)
  }
  return jobs
}

/** After a failed group: nothing fenced, no member snapshot, no catalog entry, the job failed with `code`. */
async function expectCleanFailure(w: World, code: string): Promise<void> {
  expect(await fencedVolumes(w.base, members())).toEqual([])
  expect(await memberSnapshots(w.base, members())).toEqual(noSnapshots)
  expect(await w.volumes.listSnapshots({ site, volume })).toEqual([])
  const jobs = await snapshotJobs(w)
  expect(jobs.map((j) => [j.status, j.error?.code])).toEqual([['failed', code]])
  const record = await w.volumes.get({ site, volume })
  expect(record.group).toBeNull()
  expect(record.lastGroup).toMatchObject({ outcome: 'failed', code })
  expect(w.seen.filter((e) => e.name === 'volume.groupFailed').map((e) => e.payload.code)).toEqual([code])
}

const onVolume = (name: string) => (call: { args: readonly unknown[] }) => call.args[0] === name

describe('consistency-group failures', () => {
  it('behaviour 3: createSnapshot fails on Vd2 → every member unfenced in exact reverse order, job failed, no valid entry', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    w.faults.fail({ method: 'createSnapshot', when: onVolume('db.dc-2') })
    await expect(w.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toMatchObject({ code: 'E_ADAPTER', details: { injected: true } })
    expect(fenceCalls(w.faults).filter((c) => c.startsWith('unfence'))).toEqual(['db.dc-4', 'db.dc-3', 'db.dc-2', 'db.dc-1', 'db.ols', 'db.ns'].map((m) => `unfence:${m}`))
    await expectCleanFailure(w, 'E_ADAPTER')
  })

  it('behaviour 4: the member snapshots already taken (Vn, Vols, Vd1, …) are deleted when the group fails', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.fail({ method: 'createSnapshot', when: onVolume('db.dc-2') })
    await expect(w.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    const taken = w.faults.calls.filter((c) => c.method === 'createSnapshot' && c.outcome === 'ok').map((c) => String(c.args[0]))
    expect(taken).toEqual(expect.arrayContaining(['db.ns', 'db.ols', 'db.dc-1']))
    const deleted = w.faults.calls.filter((c) => c.method === 'deleteSnapshot' && c.outcome === 'ok').map((c) => String(c.args[0]))
    expect(deleted.sort()).toEqual([...taken].sort())
    await expectCleanFailure(w, 'E_ADAPTER')
  })

  it('behaviour 5: fencing Vd3 fails → the fenced data constituents, then Vols, then Vn are unfenced; createSnapshot is never called', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    w.faults.fail({ method: 'fence', when: onVolume('db.dc-3') })
    await expect(w.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    const unfences = fenceCalls(w.faults).filter((c) => c.startsWith('unfence'))
    // Data constituents are fenced in parallel once the OLS is: Vd4 was fenced alongside Vd1 and Vd2.
    expect(unfences).toEqual(['db.dc-4', 'db.dc-2', 'db.dc-1', 'db.ols', 'db.ns'].map((m) => `unfence:${m}`))
    expect(w.faults.count('createSnapshot')).toBe(0)
    await expectCleanFailure(w, 'E_ADAPTER')
  })

  it('behaviour 5 (OLS): fencing Vols fails → only Vn is unfenced and no data constituent was ever fenced', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    w.faults.fail({ method: 'fence', when: onVolume('db.ols') })
    await expect(w.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(fenceCalls(w.faults)).toEqual(['fence:db.ns', 'fence:db.ols', 'unfence:db.ns'])
    await expectCleanFailure(w, 'E_ADAPTER')
  })

  it('a fence whose reply was lost (it took effect but reported failure) is still undone', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.fail({ method: 'fence', when: onVolume('db.dc-2'), afterEffect: true })
    await expect(w.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    await expectCleanFailure(w, 'E_ADAPTER')
  })

  it('behaviour 6: unfencing Vols fails twice then succeeds → retried with backoff, everything unfenced, Vn last', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    w.faults.fail({ method: 'unfence', when: onVolume('db.ols'), times: 2 })
    const snap = await settle(w.clock, w.volumes.snapshot({ site, volume, name: 'nightly' }))
    expect(snap.valid).toBe(true)
    const unfences = w.faults.calls.filter((c) => c.method === 'unfence').map((c) => `${String(c.args[0])}:${c.outcome}`)
    expect(unfences).toEqual(['db.dc-4:ok', 'db.dc-3:ok', 'db.dc-2:ok', 'db.dc-1:ok', 'db.ols:failed', 'db.ols:failed', 'db.ols:ok', 'db.ns:ok'])
    expect(w.seen.filter((e) => e.name === 'volume.unfenceRetried').map((e) => [e.payload.constituent, e.payload.attempt])).toEqual([
      ['db.ols', 1],
      ['db.ols', 2],
    ])
    expect(await fencedVolumes(w.base, members())).toEqual([])
  })

  it('behaviour 6 (abort path): unfencing Vd2 fails twice while aborting → Vols and Vn wait until it succeeds', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    w.faults.fail({ method: 'createSnapshot', when: onVolume('db.dc-4') })
    w.faults.fail({ method: 'unfence', when: onVolume('db.dc-2'), times: 2 })
    await expect(settle(w.clock, w.volumes.snapshot({ site, volume, name: 'nightly' }))).rejects.toMatchObject({ code: 'E_ADAPTER' })
    const unfences = w.faults.calls.filter((c) => c.method === 'unfence').map((c) => `${String(c.args[0])}:${c.outcome}`)
    const lastDc2 = unfences.lastIndexOf('db.dc-2:ok')
    expect(unfences.filter((u) => u === 'db.dc-2:failed')).toHaveLength(2)
    expect(unfences.indexOf('db.ols:ok')).toBeGreaterThan(lastDc2)
    expect(unfences[unfences.length - 1]).toBe('db.ns:ok')
    await expectCleanFailure(w, 'E_ADAPTER')
  })

  it('behaviour 6 (persistent): Vols cannot be unfenced → Vn stays fenced, the job stays resumable, and recovery finishes the unfence', async () => {
    const w = await world()
    await createVolume(w)
    const stop = w.faults.fail({ method: 'unfence', when: onVolume('db.ols') })
    await expect(settle(w.clock, w.volumes.snapshot({ site, volume, name: 'nightly' }))).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await fencedVolumes(w.base, members())).toEqual(['db.ns', 'db.ols'])
    expect(w.faults.calls.some((c) => c.method === 'unfence' && c.args[0] === 'db.ns')).toBe(false)
    expect((await snapshotJobs(w)).map((j) => j.status)).toEqual(['running'])
    stop()
    const next = await w.restart()
    const outcomes = await next.recover()
    expect(outcomes.map((o) => o.status)).toEqual(['rejected'])
    expect(fenceCalls(next.faults, 'ok')).toEqual(['unfence:db.ols', 'unfence:db.ns'])
    expect(await fencedVolumes(w.base, members())).toEqual([])
    expect(await memberSnapshots(w.base, members())).toEqual(noSnapshots)
    expect((await snapshotJobs(next)).map((j) => j.status)).toEqual(['failed'])
  })

  it('storage unreachable during the snapshot step: the call rejects E_UNAVAILABLE after everything is unfenced and cleaned', async () => {
    const w = await world()
    await createVolume(w)
    w.events.on('volume.constituentFenced', (e) => {
      if (e.payload.constituent !== 'db.dc-4') return
      w.faults.crash()
      w.clock.setTimer(25, () => w.faults.restart())
    })
    await expect(settle(w.clock, w.volumes.snapshot({ site, volume, name: 'nightly' }), 5)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    await expectCleanFailure(w, 'E_UNAVAILABLE')
  })

  it('behaviour 32: a second snapshot while a group is open is rejected with E_CONFLICT; no volume is fenced twice', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 16))
    const w = await world({ clock, faultClock: clock })
    await createVolume(w)
    w.faults.setLatency((call) => (call.method === 'createSnapshot' ? 1_000 : 0))
    w.faults.calls.length = 0
    const first = w.volumes.snapshot({ site, volume, name: 'first' })
    await clock.advance(1)
    expect((await w.volumes.get({ site, volume })).group?.snapshotName).toBe('first')
    await expect(w.volumes.snapshot({ site, volume, name: 'second' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.volumes.expand({ site, volume, add: 1 })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.volumes.shrink({ site, volume, remove: 1 })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.volumes.delete({ site, volume })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await settle(clock, first, 100)
    const fences = fenceCalls(w.faults).filter((c) => c.startsWith('fence'))
    expect(fences).toEqual(members().map((m) => `fence:${m}`))
    expect((await w.volumes.listSnapshots({ site, volume })).map((s) => s.name)).toEqual(['first'])
  })

  it('behaviour 32 (race): two snapshots submitted together — one commits, the other is refused E_CONFLICT at open', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    const results = await Promise.allSettled([w.volumes.snapshot({ site, volume, name: 'a' }), w.volumes.snapshot({ site, volume, name: 'b' })])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(rejected?.reason).toMatchObject({ code: 'E_CONFLICT' })
    expect(fenceCalls(w.faults).filter((c) => c.startsWith('fence'))).toEqual(members().map((m) => `fence:${m}`))
    expect(await w.volumes.listSnapshots({ site, volume })).toHaveLength(1)
  })

  it('maximum fence-hold time: a member snapshot that hangs aborts the group with E_TIMEOUT and unfences at the deadline', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 16))
    const w = await world({ clock, faultClock: clock })
    await createVolume(w)
    w.faults.setLatency((call) => (call.method === 'createSnapshot' && call.args[0] === 'db.dc-2' ? 60_000 : 0))
    const start = clock.now()
    await expect(settle(clock, w.volumes.snapshot({ site, volume, name: 'slow', maxFenceHoldMs: '5s' }), 100)).rejects.toMatchObject({ code: 'E_TIMEOUT' })
    const nsUnfenced = w.seen.flatMap((e) => (e.name === 'volume.constituentUnfenced' && e.payload.constituent === 'db.ns' ? [e.payload.at] : []))
    expect(nsUnfenced).toHaveLength(1)
    expect(nsUnfenced[0]).toBeLessThanOrEqual(start + 5_200)
    expect(clock.now()).toBeGreaterThanOrEqual(start + 60_000)
    await expectCleanFailure(w, 'E_TIMEOUT')
  })

  it('maximum fence-hold time from the volume: a fence that hangs aborts with E_TIMEOUT; the late fence is undone once it lands', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 16))
    const w = await world({ clock, faultClock: clock })
    await w.volumes.create({ site, volume, dataConstituents: 4, size: '256KiB', maxObjects: 64, maxFenceHoldMs: 2_000 })
    w.faults.setLatency((call) => (call.method === 'fence' && call.args[0] === 'db.dc-3' ? 10_000 : 0))
    await expect(settle(clock, w.volumes.snapshot({ site, volume, name: 'slow' }), 100)).rejects.toMatchObject({ code: 'E_TIMEOUT' })
    expect(w.faults.count('createSnapshot')).toBe(0)
    await expectCleanFailure(w, 'E_TIMEOUT')
  })

  it('an AbortSignal aborts the group with E_ABORTED: unfenced in reverse, member snapshots deleted', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 16))
    const w = await world({ clock, faultClock: clock })
    await createVolume(w)
    w.faults.setLatency((call) => (call.method === 'createSnapshot' && call.args[0] === 'db.dc-1' ? 1_000 : 0))
    const controller = new AbortController()
    clock.setTimer(200, () => controller.abort(new DrError('E_ABORTED', 'operator cancelled')))
    w.faults.calls.length = 0
    await expect(settle(clock, w.volumes.snapshot({ site, volume, name: 'cancelled', signal: controller.signal }), 50)).rejects.toMatchObject({ code: 'E_ABORTED' })
    expect(fenceCalls(w.faults, 'ok').filter((c) => c.startsWith('unfence'))).toEqual(['db.dc-4', 'db.dc-3', 'db.dc-2', 'db.dc-1', 'db.ols', 'db.ns'].map((m) => `unfence:${m}`))
    await expectCleanFailure(w, 'E_ABORTED')
  })

  it('an already aborted signal fences nothing', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    await expect(w.volumes.snapshot({ site, volume, name: 'never', signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'E_ABORTED' })
    expect(fenceCalls(w.faults)).toEqual([])
    expect(await w.volumes.listSnapshots({ site, volume })).toEqual([])
  })

  it('a member snapshot name already used by someone else on a constituent fails the group without deleting that snapshot', async () => {
    const w = await world()
    await createVolume(w)
    await w.base.createSnapshot('db.dc-3', 'nightly', { scope: 'test', value: 1 }, { owner: 'someone' })
    await expect(w.volumes.snapshot({ site, volume, name: 'nightly' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await memberSnapshots(w.base, members()))['db.dc-3']).toEqual(['nightly'])
    expect(await fencedVolumes(w.base, members())).toEqual([])
    expect(await w.volumes.listSnapshots({ site, volume })).toEqual([])
  })
})
