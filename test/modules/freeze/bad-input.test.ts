import { describe, expect, it } from 'vitest'
import { BS, filled, freezeWorld, protectDb, token } from '../../fixtures/freeze-world.js'

describe('bad input is rejected with a stable code and changes nothing', () => {
  it('every facade entry point rejects malformed options with E_INVALID_INPUT naming the field', async () => {
    const w = await freezeWorld()
    const streamsBefore = await w.stateStore.listStreams('')
    const bad: Array<[() => Promise<unknown>, string]> = [
      [() => w.freeze.protect({} as never), 'site'],
      [() => w.freeze.protect(protectDb({ volume: 'bad name!' })), 'volume'],
      [() => w.freeze.protect(protectDb({ mountPath: '' })), 'mountPath'],
      [() => w.freeze.protect(protectDb({ mountPath: '/mnt/\u0000x' })), 'mountPath'],
      [() => w.freeze.protect(protectDb({ identity: 'x'.repeat(300) })), 'identity'],
      [() => w.freeze.protect(protectDb({ freezeTimeoutMs: 0 })), 'freezeTimeoutMs'],
      [() => w.freeze.protect(protectDb({ freezeTimeoutMs: '10 parsecs' })), 'freezeTimeoutMs'],
      [() => w.freeze.protect(protectDb({ freezeTimeoutMs: undefined })), 'freezeTimeoutMs'],
      [() => w.freeze.protect(protectDb({ sources: [{ kind: 'tape', ref: 'x' }] })), 'sources'],
      [() => w.freeze.protect(protectDb({ sources: [{ kind: 'snapshot' }] })), 'sources'],
      [() => w.freeze.protect(protectDb({ probeEveryMs: -5 })), 'probeEveryMs'],
      [() => w.freeze.protect(protectDb({ lockRetry: { maxAttempts: 0 } })), 'lockRetry'],
      [() => w.freeze.protect(protectDb({ lockRetry: { minDelayMs: 500, maxDelayMs: 100 } })), 'lockRetry.minDelayMs'],
      [() => w.freeze.protect(protectDb({ mountOptions: { fsType: 4 } })), 'mountOptions'],
      [() => w.freeze.protect(protectDb({ allowRollback: 'yes' })), 'allowRollback'],
      [() => w.freeze.protect(protectDb({ autoRestoreLimit: { restores: 0, windowMs: '1m' } })), 'autoRestoreLimit'],
      [() => w.freeze.protect(protectDb({ autoRestoreLimit: { restores: 3 } })), 'autoRestoreLimit'],
      [() => w.freeze.unprotect({ site: 'east' } as never), 'volume'],
      [() => w.freeze.get(null as never), '(root)'],
      [() => w.freeze.list({ site: '' }), 'site'],
      [() => w.freeze.open({ site: 'east' } as never), 'volume'],
      [() => w.freeze.open({ site: 'east', volume: 'db', cache: { mode: 'sometimes' } } as never), 'cache'],
      [() => w.freeze.open({ site: 'east', volume: 'db', cache: { maxDirtyBytes: 0 } }), 'cache'],
      [() => w.freeze.restore({ site: 'east', volume: 'db', source: { kind: 'standby' } } as never), 'source'],
      [() => w.freeze.reportDisruption({ site: 'east', volume: 'db', actors: ['no spaces'] }), 'actors'],
      [() => w.freeze.reportDisruption({ site: 'east', volume: 'db', reason: '' }), 'reason'],
      [() => w.freeze.lockVolume({ site: 'east', volume: 'db' } as never), 'holder'],
      [() => w.freeze.unlockVolume({ site: 'east', volume: 'db', holder: '' }), 'holder'],
      [() => w.freeze.lockHolder({ site: 1 } as never), 'site'],
      [() => w.freeze.settled({} as never), 'site'],
      [() => w.freeze.gate({ site: 'east', volume: '' }), 'volume'],
    ]
    for (const [call, field] of bad) {
      const error = await call().catch((e: unknown) => e)
      expect(error, field).toMatchObject({ code: 'E_INVALID_INPUT' })
      expect((error as Error).message, field).toContain(field)
    }
    expect(() => w.freeze.registerMountHook({ name: 'x' } as never)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(() => w.freeze.registerMountHook({ name: '', capture: async () => null })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(await w.stateStore.listStreams('')).toEqual(streamsBefore)
    expect(await w.host().listMounts()).toEqual([])
  })

  it('handle calls reject bad offsets, lengths and data, and ranges past the end, without holding or restoring', async () => {
    const w = await freezeWorld()
    await w.freeze.protect(protectDb())
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    await expect(h.read(-1, 4)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(h.read(0, 1.5)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(h.write(0, 'text' as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(h.write(64 * BS - 2, filled(4, 1))).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(h.read(64 * BS, 1)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(w.names('freeze.disruptionDetected')).toEqual([])
    await h.close()
    await expect(h.read(0, 1)).rejects.toMatchObject({ code: 'E_CLOSED' })
    await h.close()
  })

  it('refuses what the state does not allow: unknown volumes, taken paths, identity changes, busy volumes, duplicate handles and hooks', async () => {
    const w = await freezeWorld()
    await expect(w.freeze.protect(protectDb({ volume: 'nope' }))).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await w.host().mount({ path: '/mnt/taken', volume: 'other', identity: 'x', options: {}, readOnly: false }, token)
    await expect(w.freeze.protect(protectDb({ mountPath: '/mnt/taken' }))).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect(await w.freeze.list()).toEqual([])
    await w.freeze.protect(protectDb())
    await expect(w.freeze.protect(protectDb({ volume: 'db-standby' }))).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.freeze.protect(protectDb({ identity: 'another' }))).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.freeze.get({ site: 'east', volume: 'db-standby' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.freeze.open({ site: 'east', mountPath: '/mnt/other' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.freeze.restore({ site: 'east', volume: 'db-standby' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await w.freeze.open({ site: 'east', volume: 'db', id: 'h1' })
    await expect(w.freeze.open({ site: 'east', volume: 'db', id: 'h1' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.freeze.unprotect({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    w.freeze.registerMountHook({ name: 'exports', capture: async () => null })
    expect(() => w.freeze.registerMountHook({ name: 'exports', capture: async () => null })).toThrow(expect.objectContaining({ code: 'E_CONFLICT' }))
    expect((await w.freeze.list()).map((p) => p.volume)).toEqual(['db'])
  })

  it('protect is idempotent and updates sources and timeouts; unprotect forgets the volume but leaves it mounted', async () => {
    const w = await freezeWorld()
    const first = await w.freeze.protect(protectDb({ freezeTimeoutMs: '30s' }))
    expect(first).toMatchObject({ freezeTimeoutMs: 30_000, actorTimeoutMs: 30_000, status: 'protected', activeVolume: 'db', lockRetry: { minDelayMs: 10, maxDelayMs: 100, maxAttempts: 50 } })
    const version = (await w.stateStore.read('freeze/protections')).length
    await w.freeze.protect(protectDb({ freezeTimeoutMs: '30s' }))
    expect((await w.stateStore.read('freeze/protections')).length).toBe(version)
    const updated = await w.freeze.protect(protectDb({ freezeTimeoutMs: null, sources: [{ kind: 'standby', volume: 'db-standby' }] }))
    expect(updated).toMatchObject({ freezeTimeoutMs: null, sources: [{ kind: 'standby', volume: 'db-standby' }] })
    expect(await w.freeze.list({ site: 'west' })).toEqual([])
    await w.freeze.unprotect({ site: 'east', volume: 'db' })
    await expect(w.freeze.unprotect({ site: 'east', volume: 'db' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'db' })
  })
})
