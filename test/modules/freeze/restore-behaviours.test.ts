import { describe, expect, it } from 'vitest'
import { DrError, ManualClock, isDrError } from '../../../src/kernel/index.js'
import { WriteJournal } from '../../../src/modules/freeze/index.js'
import { BS, barrier, filled, freezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

async function protectedWorld(extra: Record<string, unknown> = {}, options: Parameters<typeof freezeWorld>[0] = {}): Promise<FreezeWorld> {
  const w = await freezeWorld(options)
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.freeze.protect(protectDb(extra))
  return w
}

/** Logs, in one sequence, the host and storage calls and the state-store appends of a world. */
function sequence(w: FreezeWorld): string[] {
  const log: string[] = []
  w.hostFaults['east']!.setLatency((call) => (log.push(`host.${call.method}`), 0))
  w.storageFaults['east']!.setLatency((call) => (log.push(`storage.${call.method}`), 0))
  const store = w.stateStore as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const append = store['append']!.bind(w.stateStore)
  store['append'] = async (...args: unknown[]) => {
    const stream = String(args[0])
    const records = args[2] as Array<{ type: string }>
    for (const record of records) log.push(`${stream.split('/').slice(0, 2).join('/')}:${record.type}`)
    return append(...args)
  }
  return log
}

describe('the restore flow', () => {
  it('behaviour 2: an infeasible restore (the host cannot be managed) freezes nothing, dismounts nothing and fails held I/O clearly', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    w.hostFaults['east']!.fail({ method: 'listMounts', error: new DrError('E_UNAVAILABLE', 'client OS error') })
    w.storageFaults['east']!.fail({ method: 'read', nth: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    const read = h.read(0, 4)
    await expect(read).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    const calls = w.hostFaults['east']!.calls.map((c) => c.method)
    expect(calls).not.toContain('freezeActor')
    expect(calls).not.toContain('dismount')
    expect((await w.host().getMount('/mnt/data'))?.volume).toBe('db')
    const impossible = w.names('freeze.restoreImpossible')
    expect(impossible).toHaveLength(1)
    expect(impossible[0]?.payload.reason).toMatch(/client OS error/)
    const record = await w.freeze.get({ site: 'east', volume: 'db' })
    expect(record).toMatchObject({ status: 'failed', restore: null, lastRestore: { outcome: 'impossible' } })
  })

  it('behaviour 2: with no reachable source the planned restore rejects with E_PRECONDITION and changes nothing', async () => {
    const w = await protectedWorld({ sources: [{ kind: 'snapshot', snapshot: 'missing' }] })
    await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(w.hostFaults['east']!.calls.map((c) => c.method).filter((m) => m === 'dismount' || m === 'freezeActor')).toEqual([])
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
  })

  it('behaviour 7: the volume comes back at exactly its path and identity (UNIX path and drive letter)', async () => {
    for (const mountPath of ['/mnt/data', 'F:']) {
      const w = await protectedWorld({ mountPath, identity: `id-${mountPath}` })
      await w.freeze.restore({ site: 'east', volume: 'db' })
      expect(await w.host().getMount(mountPath)).toMatchObject({ path: mountPath, volume: 'db', identity: `id-${mountPath}` })
      expect(w.names('freeze.thawed')[0]?.payload).toMatchObject({ mountPath, identityPreserved: true })
      expect((await w.host().listMounts()).map((m) => m.path)).toEqual([mountPath])
    }
  })

  it('behaviour 13: capture < journal < lock < dismount < restore < remount < replay < unlock < thaw', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await h.write(BS, filled(BS, 4))
    const log = sequence(w)
    await w.freeze.restore({ site: 'east', volume: 'db' })
    const at = (entry: string, from = 0): number => {
      const i = log.indexOf(entry, from)
      expect(i, entry).toBeGreaterThanOrEqual(0)
      return i
    }
    const capture = at('host.getMount')
    const journal = at('freeze/journal:journal.sealed')
    const lock = at('freeze/lock:lock.acquired')
    const dismount = at('host.dismount')
    const restore = at('storage.restoreSnapshot')
    const remount = at('host.mount')
    const replay = at('storage.write', remount)
    const unlock = at('freeze/lock:lock.released')
    const thaw = at('host.thawActor')
    expect([capture, journal, lock, dismount, restore, remount, replay, unlock, thaw]).toEqual(
      [capture, journal, lock, dismount, restore, remount, replay, unlock, thaw].sort((a, b) => a - b),
    )
    expect(log.indexOf('storage.write')).toBe(replay)
  })

  it('behaviour 14: five acknowledged unflushed writes are journaled off the volume before the dismount and replayed in order', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
    for (let i = 0; i < 5; i++) await h.write(BS + i * 100, filled(BS, 10 + i))
    expect(h.dirtyBytes).toBe(5 * BS)
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const restoreId = w.names('freeze.disruptionDetected')[0]!.payload.restoreId
    const journal = await new WriteJournal(w.stateStore).load(restoreId)
    expect(journal.writes.map((write) => write.data[0])).toEqual([10, 11, 12, 13, 14])
    expect(journal.writes.map((write) => write.seq)).toEqual([...journal.writes.map((write) => write.seq)].sort((a, b) => a - b))
    expect(await w.storage().read('db', BS, 1)).toEqual(filled(1, 0))
    hold.release()
    expect((await restore).replayedWrites).toBe(5)
    const data = await w.storage().read('db', BS, BS + 400)
    expect([data[0], data[100], data[200], data[300], data[400], data[BS + 399]]).toEqual([10, 11, 12, 13, 14, 14])
    expect(h.dirtyBytes).toBe(0)
  })

  it('behaviour 15: the write journal is removed once it has been replayed', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await h.write(0, filled(10, 9))
    const result = await w.freeze.restore({ site: 'east', volume: 'db' })
    expect((await new WriteJournal(w.stateStore).load(result.summary.restoreId)).removed).toBe(true)
  })

  it('behaviour 19: the remount gets exactly the captured mount point, file-system type and network flag', async () => {
    const w = await protectedWorld({ mountOptions: { fsType: 'ext4', netdev: 'true' } })
    await w.freeze.restore({ site: 'east', volume: 'db' })
    const mounts = w.hostFaults['east']!.calls.filter((c) => c.method === 'mount').map((c) => c.args[0])
    expect(mounts.at(-1)).toEqual({ path: '/mnt/data', volume: 'db', identity: 'uuid-db', options: { fsType: 'ext4', netdev: 'true' }, readOnly: false })
  })

  it('behaviour 20: an up-to-date standby is swapped in with no data copy, at the original path, and the actors are thawed', async () => {
    const w = await protectedWorld({ sources: [{ kind: 'standby', volume: 'db-standby' }] })
    await w.storage().write('db-standby', 0, filled(BS, 6), token)
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db', actor: 'p1' })
    const log = sequence(w)
    const result = await w.freeze.reportDisruption({ site: 'east', volume: 'db' }).then(() => w.freeze.settled({ site: 'east', volume: 'db' }))
    expect(result).toMatchObject({ activeVolume: 'db-standby', lastRestore: { outcome: 'restored', source: { kind: 'standby', ref: 'db-standby' } } })
    expect(log.filter((entry) => ['storage.write', 'storage.restoreSnapshot', 'storage.read'].includes(entry))).toEqual([])
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'db-standby', identity: 'uuid-db' })
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    expect(await h.read(0, 2)).toEqual(filled(2, 6))
  })

  it('behaviour 21: a planned restore to a replacement volume runs the whole sequence and is reported as planned', async () => {
    const w = await protectedWorld()
    await w.storage().createVolume({ name: 'replacement', sizeBytes: 64 * BS, blockSize: BS }, token)
    await w.storage().write('replacement', 0, filled(BS, 8), token)
    const result = await w.freeze.restore({ site: 'east', volume: 'db', source: { kind: 'standby', volume: 'replacement' } })
    expect(result.activeVolume).toBe('replacement')
    expect(w.names('freeze.disruptionDetected')[0]?.payload).toMatchObject({ planned: true, channel: 'planned' })
    expect(w.seen.map((e) => e.name)).toEqual(['freeze.disruptionDetected', 'freeze.frozen', 'freeze.restored', 'freeze.thawed'])
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'replacement', identity: 'uuid-db' })
  })

  it('behaviour 23: the health probe detects a volume that stops answering though no application I/O failed', async () => {
    const clock = new ManualClock()
    const w = await protectedWorld({ probeEveryMs: 20 }, { clock })
    w.storageFaults['east']!.fail({ method: 'volumeInfo', times: 1, error: new DrError('E_UNAVAILABLE', 'no answer') })
    await clock.advance(19)
    expect(w.names('freeze.disruptionDetected')).toEqual([])
    await clock.advance(1)
    expect(w.names('freeze.disruptionDetected')[0]?.payload).toMatchObject({ channel: 'probe', code: 'E_UNAVAILABLE' })
    expect((await w.freeze.settled({ site: 'east', volume: 'db' })).lastRestore?.outcome).toBe('restored')
    expect(w.names('freeze.thawed')).toHaveLength(1)
    await w.module.close()
  })

  it('behaviour 27: when the restore provider throws, the volume is not remounted with its identity, the lock is released, the failure is reported and held I/O fails clearly', async () => {
    const w = await protectedWorld()
    w.host().addActor({ id: 'p1', kind: 'process', volumes: ['db'] })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    w.storageFaults['east']!.fail({ method: 'restoreSnapshot', error: new DrError('E_CORRUPT', 'snapshot damaged') })
    const hold = barrier(w.host(), 'dismount')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    const held = h.read(0, 4)
    hold.release()
    await expect(restore).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    await expect(held).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect(w.names('freeze.sourceFailed')[0]?.payload).toMatchObject({ code: 'E_CORRUPT' })
    expect(w.names('freeze.restoreFailed')[0]?.payload).toMatchObject({ stage: 'restore', code: 'E_UNAVAILABLE', released: 1, volumeDismounted: true })
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
    expect((await w.host().listActors('db'))[0]?.frozen).toBe(false)
    expect(await w.host().getMount('/mnt/data')).toBeUndefined()
    expect(await w.host().listMounts()).toEqual([])
    expect(await w.freeze.get({ site: 'east', volume: 'db' })).toMatchObject({ status: 'failed', dismounted: true })
    await expect(h.read(0, 4)).rejects.toMatchObject({ code: 'E_UNAVAILABLE', details: { reason: 'dismounted' } })
  })

  it('behaviour 31: a snapshot restore rolls the volume back in place, with no block copy', async () => {
    const w = await protectedWorld()
    await w.storage().write('db', 0, filled(BS, 2), token)
    const log = sequence(w)
    const result = await w.freeze.restore({ site: 'east', volume: 'db' })
    expect(result.copiedBlocks).toBe(0)
    expect(log.filter((entry) => entry === 'storage.write' || entry === 'storage.read')).toEqual([])
    expect(await w.storage().read('db', 0, 2)).toEqual(filled(2, 1))
  })

  it('behaviour 32: if the path was taken during the outage the remount fails loudly and nothing is mounted elsewhere', async () => {
    const w = await protectedWorld()
    await w.storage().createVolume({ name: 'intruder', sizeBytes: 4 * BS, blockSize: BS }, token)
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const hold = barrier(w.storage(), 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    await w.host().mount({ path: '/mnt/data', volume: 'intruder', identity: 'other', options: {}, readOnly: false }, token)
    const held = h.read(0, 4)
    hold.release()
    const error = await restore.catch((e: unknown) => e)
    expect(isDrError(error, 'E_CONFLICT')).toBe(true)
    await expect(held).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect(w.names('freeze.remountFailed')[0]?.payload).toMatchObject({ mountPath: '/mnt/data', expected: { volume: 'db', identity: 'uuid-db' }, found: { volume: 'intruder' } })
    expect(await w.host().listMounts()).toEqual([{ path: '/mnt/data', volume: 'intruder', identity: 'other', options: {}, readOnly: false }])
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'db' })).toBeNull()
  })

  it('behaviour 33: a restore point older than writes already flushed to the volume raises a consistency warning', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await h.write(0, filled(8, 3))
    await h.flush()
    await w.freeze.restore({ site: 'east', volume: 'db' })
    const restored = w.names('freeze.restored')[0]
    expect(restored?.severity).toBe('warning')
    expect(restored?.payload.consistencyWarning).toBe(true)
  })

  it('behaviour 33: a restore point older than the journaled writes, with nothing on the volume written after it, gives exactly the state the application saw: no warning', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { flushEveryMs: null } })
    await h.read(0, 1)
    await w.storage().createSnapshot('db', 'point', token)
    await h.write(2 * BS, filled(BS, 7))
    const result = await w.freeze.restore({ site: 'east', volume: 'db', source: { kind: 'snapshot', snapshot: 'point' } })
    expect(result.replayedWrites).toBe(1)
    expect(w.names('freeze.restored')[0]?.payload).toMatchObject({ consistencyWarning: false })
    expect(await w.storage().read('db', 2 * BS, 1)).toEqual(filled(1, 7))
  })

  it('behaviour 33: no warning when the restore point holds everything written', async () => {
    const w = await protectedWorld()
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await h.read(0, 1)
    await w.storage().createSnapshot('db', 'fresh', token)
    await w.freeze.restore({ site: 'east', volume: 'db', source: { kind: 'snapshot', snapshot: 'fresh' } })
    expect(w.names('freeze.restored')[0]?.payload.consistencyWarning).toBe(false)
  })
})
