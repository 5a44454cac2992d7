import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { BS, barrier, filled, freezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

/** `db` holds 1s in block 0 when snapshot `base` is taken; a write-through handle then writes 9s to block 5. */
async function writtenSinceBase(extra: Record<string, unknown> = {}): Promise<{ w: FreezeWorld; h: Awaited<ReturnType<FreezeWorld['freeze']['open']>> }> {
  const w = await freezeWorld()
  await w.storage().write('db', 0, filled(BS, 1), token)
  await w.storage().createSnapshot('db', 'base', token)
  await w.freeze.protect(protectDb(extra))
  const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { mode: 'writeThrough' } })
  await h.write(5 * BS, filled(BS, 9))
  return { w, h }
}

/** The backend is lost: every call on `db` fails, until the returned function is called. */
function loseBackend(w: FreezeWorld): () => void {
  return w.storageFaults['east']!.fail({ when: (call) => call.args[0] === 'db', error: new DrError('E_ADAPTER', 'backend lost') })
}

describe('acknowledged data is never rolled back by an automatic restore', () => {
  it('one transient read error is retried: no restore starts and the write-through write is still there', async () => {
    const { w, h } = await writtenSinceBase()
    w.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_ADAPTER', 'one lost reply') })
    expect(await h.read(5 * BS, 4)).toEqual(filled(4, 9))
    expect(w.names('freeze.disruptionDetected')).toEqual([])
    expect(await w.storage().read('db', 5 * BS, 4)).toEqual(filled(4, 9))
  })

  it('an operation that keeps failing while the volume answers its probe gets its error; no restore starts', async () => {
    const { w, h } = await writtenSinceBase()
    w.storageFaults['east']!.fail({ method: 'read', when: (call) => call.args[1] === 5 * BS, error: new DrError('E_ADAPTER', 'stuck request') })
    await expect(h.read(5 * BS, 4)).rejects.toMatchObject({ code: 'E_ADAPTER', message: 'stuck request' })
    expect(w.names('freeze.disruptionDetected')).toEqual([])
    expect(w.storageFaults['east']!.calls.filter((c) => c.method === 'read' && c.outcome === 'failed')).toHaveLength(4)
  })

  it('a lost backend is a disruption; with its snapshot lost too the restore is impossible: nothing is frozen or rolled back', async () => {
    const { w, h } = await writtenSinceBase()
    const restore = loseBackend(w)
    await expect(h.read(5 * BS, 4)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(w.names('freeze.disruptionDetected')[0]?.payload).toMatchObject({ channel: 'io-error', code: 'E_ADAPTER', message: 'backend lost' })
    expect(w.names('freeze.restoreImpossible')[0]?.payload.reason).toMatch(/backend lost/)
    expect(w.hostFaults['east']!.calls.map((c) => c.method).filter((m) => m === 'freezeActor' || m === 'dismount')).toEqual([])
    restore()
    expect(await w.storage().read('db', 5 * BS, 4)).toEqual(filled(4, 9))
  })

  it('when what changed since the snapshot cannot be known, the rollback is refused as well', async () => {
    const { w, h } = await writtenSinceBase()
    w.storageFaults['east']!.fail({ method: 'changedBlocks', error: new DrError('E_ADAPTER', 'no change tracking') })
    w.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    await expect(h.read(5 * BS, 4)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(w.names('freeze.rollbackRefused').map((e) => e.payload)).toEqual([
      expect.objectContaining({ site: 'east', volume: 'db', snapshot: 'base', changedBlocks: null }),
    ])
    expect(w.storageFaults['east']!.calls.map((c) => c.method)).not.toContain('restoreSnapshot')
    expect(await w.storage().read('db', 5 * BS, 4)).toEqual(filled(4, 9))
  })

  it('with the backend answering, the refusal counts the blocks a rollback would discard, and another source is used', async () => {
    const { w, h } = await writtenSinceBase({ sources: [{ kind: 'snapshot', snapshot: 'base' }, { kind: 'standby', volume: 'db-standby' }] })
    await w.storage().write('db-standby', 5 * BS, filled(BS, 9), token)
    w.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    expect(await h.read(5 * BS, 4)).toEqual(filled(4, 9))
    expect(w.names('freeze.rollbackRefused')[0]?.payload).toMatchObject({ snapshot: 'base', changedBlocks: 1 })
    expect((await w.freeze.get({ site: 'east', volume: 'db' })).lastRestore).toMatchObject({ outcome: 'restored', source: { kind: 'standby' } })
  })

  it('with allowRollback the snapshot is used, and the rollback is flagged as inconsistent', async () => {
    const { w, h } = await writtenSinceBase({ allowRollback: true })
    w.storageFaults['east']!.fail({ method: 'read', times: 1, error: new DrError('E_CORRUPT', 'checksum mismatch') })
    expect(await h.read(5 * BS, 4)).toEqual(filled(4, 0))
    expect(w.names('freeze.rollbackRefused')).toEqual([])
    expect(w.names('freeze.restored')[0]?.payload).toMatchObject({ source: { kind: 'snapshot', ref: 'base' }, consistencyWarning: true })
  })

  it('a write that lands after the plan was made is seen before the rollback: the snapshot is refused at the restore step', async () => {
    const w = await freezeWorld()
    await w.storage().createSnapshot('db', 'base', token)
    await w.freeze.protect(protectDb())
    const h = await w.freeze.open({ site: 'east', volume: 'db', cache: { mode: 'writeThrough' } })
    await h.read(0, 1)
    const inFlight = barrier(w.storage(), 'write')
    const write = h.write(5 * BS, filled(BS, 9))
    await inFlight.entered
    const capture = barrier(w.host(), 'getMount')
    const report = await w.freeze.reportDisruption({ site: 'east', volume: 'db' })
    await capture.entered
    inFlight.release()
    await write
    capture.release()
    const settled = await w.freeze.settled({ site: 'east', volume: 'db' })
    expect(settled.lastRestore).toMatchObject({ restoreId: report.restoreId, outcome: 'failed' })
    expect(w.names('freeze.rollbackRefused')[0]?.payload).toMatchObject({ snapshot: 'base', changedBlocks: 1 })
    expect(w.storageFaults['east']!.calls.map((c) => c.method)).not.toContain('restoreSnapshot')
    expect(await w.storage().read('db', 5 * BS, 4)).toEqual(filled(4, 9))
  })
})
