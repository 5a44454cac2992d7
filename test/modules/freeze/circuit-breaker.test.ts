import { describe, expect, it } from 'vitest'
import { DrError, ManualClock } from '../../../src/kernel/index.js'
import { BS, filled, freezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

/**
 * Bounds a restore loop, so that a regression fails the test instead of starving the worker: from the fourth
 * detection on, every snapshot restore fails (which ends the loop with a failed restore).
 */
function boundLoops(w: FreezeWorld): void {
  let detections = 0
  w.events.on('freeze.disruptionDetected', () => {
    if (++detections === 4) w.storageFaults['east']!.fail({ method: 'restoreSnapshot', error: new DrError('E_INTERNAL', 'restore loop') })
  })
}

describe('errors a restore does not cure start no restore loop', () => {
  it('a write to a read-only protection is the caller’s mistake: it rejects with E_PRECONDITION at once and starts no restore', async () => {
    const w = await freezeWorld()
    await w.storage().createSnapshot('db', 'base', token)
    await w.freeze.protect(protectDb({ readOnly: true }))
    boundLoops(w)
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await expect(h.write(0, filled(8, 1))).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(w.names('freeze.disruptionDetected')).toEqual([])
    expect(await h.read(0, 4)).toEqual(filled(4, 0))
  })

  it('an operation that fails again after the restore its failure started is rejected with E_UNAVAILABLE, after one restore only', async () => {
    const w = await freezeWorld()
    await w.storage().write('db', 0, filled(BS, 1), token)
    await w.storage().createSnapshot('db', 'base', token)
    await w.freeze.protect(protectDb())
    boundLoops(w)
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    w.storageFaults['east']!.fail({ method: 'read', when: (call) => call.args[1] === 7 * BS, error: new DrError('E_CORRUPT', 'bad sector') })
    const error = await h.read(7 * BS, 16).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'E_UNAVAILABLE', details: { reason: 'uncured', cause: 'E_CORRUPT' } })
    expect(w.names('freeze.disruptionDetected')).toHaveLength(1)
    expect((await w.freeze.settled({ site: 'east', volume: 'db' })).lastRestore?.outcome).toBe('restored')
    expect(await h.read(0, 4)).toEqual(filled(4, 1))
  })

  it('automatic restores are bounded per window: beyond the limit errors reach the caller, reported once, until the window moves on', async () => {
    const clock = new ManualClock()
    const w = await freezeWorld({ clock })
    await w.storage().createSnapshot('db', 'base', token)
    await w.freeze.protect(protectDb({ autoRestoreLimit: { restores: 2, windowMs: '1m' } }))
    boundLoops(w)
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const corruptOnce = (block: number): void =>
      void w.storageFaults['east']!.fail({ method: 'read', times: 1, when: (call) => call.args[1] === block * BS, error: new DrError('E_CORRUPT', `bad block ${block}`) })
    for (const block of [1, 2]) {
      corruptOnce(block)
      expect(await h.read(block * BS, 4)).toEqual(filled(4, 0))
    }
    expect(w.names('freeze.thawed')).toHaveLength(2)
    for (const block of [3, 4]) {
      corruptOnce(block)
      await expect(h.read(block * BS, 4)).rejects.toMatchObject({ code: 'E_CORRUPT', message: `bad block ${block}` })
    }
    expect(w.names('freeze.disruptionDetected')).toHaveLength(2)
    expect(w.names('freeze.autoRestoreLimited').map((e) => e.payload)).toEqual([
      { site: 'east', volume: 'db', channel: 'io-error', restores: 2, windowMs: 60_000, code: 'E_CORRUPT', message: 'bad block 3' },
    ])
    await clock.advance(60_000)
    corruptOnce(5)
    expect(await h.read(5 * BS, 4)).toEqual(filled(4, 0))
    expect(w.names('freeze.thawed')).toHaveLength(3)
  })

  it('a planned restore is never limited, and the limit is part of the protection', async () => {
    const w = await freezeWorld()
    await w.storage().createSnapshot('db', 'base', token)
    const view = await w.freeze.protect(protectDb({ autoRestoreLimit: { restores: 1, windowMs: '1h' } }))
    expect(view).toMatchObject({ allowRollback: false, autoRestoreLimit: { restores: 1, windowMs: 3_600_000 } })
    for (let i = 0; i < 3; i++) expect((await w.freeze.restore({ site: 'east', volume: 'db' })).summary.outcome).toBe('restored')
    expect(w.names('freeze.autoRestoreLimited')).toEqual([])
  })
})
