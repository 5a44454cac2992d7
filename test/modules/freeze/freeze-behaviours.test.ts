import { describe, expect, it } from 'vitest'
import { DrError, ManualClock } from '../../../src/kernel/index.js'
import { BS, barrier, filled, freezeWorld, heldIo, protectDb, token, track } from '../../fixtures/freeze-world.js'

async function protectedWorld(clock?: ManualClock) {
  const w = await freezeWorld(clock === undefined ? {} : { clock })
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.storage().createVolume({ name: 'logs', sizeBytes: 16 * BS, blockSize: BS }, token)
  await w.freeze.protect(protectDb())
  await w.freeze.protect({ site: 'east', volume: 'logs', mountPath: '/mnt/logs', identity: 'uuid-logs', sources: [], freezeTimeoutMs: null })
  return w
}

describe('freezing only what touches the volume', () => {
  it('behaviour 1: a disruption of V freezes P1 (V) while P2 (W only) keeps running and completes I/O on W', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    w.host().addActor({ id: 'p2', kind: 'process', volumes: ['logs'] })
    const v = await w.freeze.open({ site: 'east', volume: 'db', actor: 'p1' })
    const other = await w.freeze.open({ site: 'east', volume: 'logs', actor: 'p2', cache: { mode: 'writeThrough' } })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const frozen = Object.fromEntries((await w.host().listActors('db')).concat(await w.host().listActors('logs')).map((a) => [a.id, a.frozen]))
    expect(frozen).toEqual({ p1: true, p2: false })
    const heldRead = v.read(0, 4)
    const read = track(heldRead)
    await other.write(0, filled(8, 9))
    expect(await other.read(0, 8)).toEqual(filled(8, 9))
    await heldIo(w, 1)
    expect(read.settled).toBe(false)
    expect(await w.freeze.gate({ site: 'east', volume: 'logs' })).toMatchObject({ frozen: false, heldIo: 0 })
    hold.release()
    await restore
    expect(await heldRead).toEqual(filled(4, 1))
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
  })

  it('behaviour 25: an application with LGWR on V1 and DBWR on V2 — only LGWR is frozen when V1 is disrupted', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'lgwr', kind: 'process', volumes: ['db'] })
    w.host().addActor({ id: 'dbwr', kind: 'process', volumes: ['logs'] })
    const dbwr = await w.freeze.open({ site: 'east', volume: 'logs', actor: 'dbwr', cache: { mode: 'writeThrough' } })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    for (let i = 0; i < 5; i++) await dbwr.write(i * BS, filled(BS, i + 1))
    expect(w.names('freeze.frozen')[0]?.payload.actors).toEqual(['lgwr'])
    hold.release()
    await restore
    expect(await w.storage().read('logs', 4 * BS, 2)).toEqual(filled(2, 5))
  })

  it('behaviour 4: with three actors on V, the dismount comes strictly after all three freezes', async () => {
    const w = await protectedWorld()
    for (const id of ['a1', 'a2', 'a3']) w.host().addActor({ id, kind: 'process', volumes: ['db'] })
    await w.freeze.restore({ site: 'east', volume: 'db' })
    const calls = w.hostFaults['east']!.calls.map((c) => c.method).filter((m) => m === 'freezeActor' || m === 'dismount')
    expect(calls).toEqual(['freezeActor', 'freezeActor', 'freezeActor', 'dismount'])
    expect(w.names('freeze.frozen')[0]?.payload.actors).toEqual(['a1', 'a2', 'a3'])
  })

  it('behaviour 3: a call on a frozen volume does not settle until the thaw, then succeeds against the restored volume', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { mode: 'writeThrough' } })
    await h.write(0, filled(BS, 5))
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const read = h.read(0, 4)
    const state = track(read)
    await heldIo(w, 1)
    const reads = w.storageFaults['east']!.count('read')
    expect(state.settled).toBe(false)
    hold.release()
    await restore
    expect(await read).toEqual(filled(4, 1))
    expect(w.storageFaults['east']!.count('read')).toBe(reads + 1)
  })

  it('behaviour 5: while V is dismounted nothing reads through its path, yet the volume stays visible to the storage', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', mountPath: '/mnt/data' })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    expect(await w.host().getMount('/mnt/data')).toBeUndefined()
    expect((await w.storage().volumeInfo('db')).name).toBe('db')
    const read = h.read(0, 4)
    const state = track(read)
    await heldIo(w, 1)
    expect(state.settled).toBe(false)
    hold.release()
    await restore
    expect(await read).toEqual(filled(4, 1))
    expect((await w.host().getMount('/mnt/data'))?.identity).toBe('uuid-db')
  })

  it('behaviour 6: an actor that starts using V during the restore is frozen as a late joiner and thawed with the others', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    w.host().addActor({ id: 'p3', kind: 'process', volumes: ['db'] })
    await w.freeze.open({ site: 'east', volume: 'db', actor: 'p3' })
    expect((await w.host().listActors('db')).find((a) => a.id === 'p3')?.frozen).toBe(true)
    const late = w.names('freeze.frozen').find((e) => e.payload.lateJoiner)
    expect(late?.payload.actors).toEqual(['p3'])
    hold.release()
    const result = await restore
    expect(result.summary.outcome).toBe('restored')
    expect((await w.host().listActors('db')).every((a) => !a.frozen)).toBe(true)
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual(['p1', 'p3'])
  })

  it('behaviour 6: the periodic sweep freezes an actor the host starts listing during the restore', async () => {
    const clock = new ManualClock()
    const w = await protectedWorld(clock)
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    w.host().addActor({ id: 'p4', kind: 'process', volumes: ['db'] })
    await clock.advance(99)
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    await clock.advance(1)
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(true)
    expect(w.names('freeze.frozen').find((e) => e.payload.lateJoiner)?.payload.actors).toEqual(['p4'])
    hold.release()
    await restore
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
  })

  it('behaviour 9: frozen actors resume with the same pid and no error reaches their I/O', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'], pid: 4100 })
    const h = await w.freeze.open({ site: 'east', volume: 'db', actor: 'p1' })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const ops = [h.write(2 * BS, filled(10, 3)), h.read(2 * BS, 10), h.flush()]
    hold.release()
    await restore
    const settled = await Promise.allSettled(ops)
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    expect((await w.host().listActors('db'))[0]).toMatchObject({ id: 'p1', pid: 4100, frozen: false })
  })

  it('behaviour 12: with no freeze timeout held I/O waits as long as the restore takes', async () => {
    const clock = new ManualClock()
    const w = await protectedWorld(clock)
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const read = h.read(0, 4)
    const state = track(read)
    await heldIo(w, 1)
    await clock.advance(24 * 3600_000)
    expect(state.settled).toBe(false)
    expect(await w.freeze.gate({ site: 'east', volume: 'db' })).toMatchObject({ frozen: true, heldIo: 1 })
    expect(w.names('freeze.timedOut')).toEqual([])
    hold.release()
    await restore
    expect(await read).toEqual(filled(4, 1))
  })

  it('behaviour 22: a backend error on I/O is held, detected as a disruption, and never reaches the application', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db', actor: 'p1' })
    await h.read(0, 1)
    // The backend error outlasts the retries of the read, and the volume fails its probe too.
    w.storageFaults['east']!.fail({ method: 'read', times: 4, error: new DrError('E_ADAPTER', 'backend lost') })
    w.storageFaults['east']!.fail({ method: 'volumeInfo', times: 1, error: new DrError('E_ADAPTER', 'backend lost') })
    const data = await h.read(0, 4)
    expect(data).toEqual(filled(4, 1))
    const detected = w.names('freeze.disruptionDetected')
    expect(detected).toHaveLength(1)
    expect(detected[0]?.payload).toMatchObject({ channel: 'io-error', code: 'E_ADAPTER', planned: false })
    expect((await w.freeze.settled({ site: 'east', volume: 'db' })).lastRestore?.outcome).toBe('restored')
  })

  it('behaviour 24: actors named by a kernel-exception report are frozen even if the host does not list them for V', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'pid-4242', kind: 'process', volumes: [] })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const report = await w.freeze.reportDisruption({ site: 'east', volume: 'db', actors: ['pid-4242'], code: 'EIO', reason: 'kernel storage exception' })
    await hold.entered
    expect((await w.host().listActors('db')).map((a) => a.id)).toEqual([])
    expect(w.names('freeze.frozen')[0]?.payload.actors).toEqual(['pid-4242'])
    expect(w.names('freeze.disruptionDetected')[0]?.payload).toMatchObject({ channel: 'reported', restoreId: report.restoreId, actors: ['pid-4242'] })
    hold.release()
    await w.freeze.settled({ site: 'east', volume: 'db' })
    expect(w.hostFaults['east']!.calls.filter((c) => c.method === 'thawActor').map((c) => c.args[0])).toEqual(['pid-4242'])
  })

  it('behaviour 26: a second disruption of V while its restore runs starts no second restore', async () => {
    const w = await protectedWorld()
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const first = await w.freeze.reportDisruption({ site: 'east', volume: 'db' })
    await hold.entered
    const second = await w.freeze.reportDisruption({ site: 'east', volume: 'db' })
    const planned = w.freeze.restore({ site: 'east', volume: 'db' })
    expect(second).toEqual({ restoreId: first.restoreId, coalesced: true })
    hold.release()
    expect((await planned).summary.restoreId).toBe(first.restoreId)
    expect(w.names('freeze.disruptionDetected')).toHaveLength(1)
    expect((await w.workflows.listRunning()).length).toBe(0)
  })

  it('behaviour 34: an actor that exits while frozen is skipped at the thaw and the others are thawed', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    w.host().addActor({ id: 'p2', kind: 'process', volumes: ['db'] })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    w.host().removeActor('p1')
    hold.release()
    const result = await restore
    expect(result.summary.outcome).toBe('restored')
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual(['p2'])
    expect((await w.host().listActors('db'))[0]).toMatchObject({ id: 'p2', frozen: false })
  })
})
