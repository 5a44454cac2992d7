import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint, type Json } from '../../../src/kernel/index.js'
import type { MountPropertyHook } from '../../../src/modules/freeze/index.js'
import { BS, barrier, filled, freezeDurable, openFreezeWorld, protectDb, token, type FreezeWorld } from '../../fixtures/freeze-world.js'

/** The export rules of mount paths as the embedder keeps them outside drkit (think /etc/exports). */
type Exports = Map<string, Json>

const RULES: Json = { clients: ['10.1.0.0/16'], access: 'rw', rootSquash: true }

/** A mount hook that keeps `exports` with the mount, logging each call. */
function exportsHook(exports: Exports, log: string[]): MountPropertyHook {
  return {
    name: 'exports',
    capture: async ({ mount }) => {
      log.push(`capture ${mount.path} ${mount.volume}`)
      return exports.get(mount.path) ?? null
    },
    apply: async ({ mount, saved }) => {
      log.push(`apply ${mount.path} ${mount.volume}`)
      exports.set(mount.path, saved)
    },
  }
}

async function world(crashAt?: (point: CrashPoint) => boolean): Promise<FreezeWorld> {
  const d = freezeDurable()
  const east = d.raw['east']!
  for (const name of ['db', 'db-standby']) await east.createVolume({ name, sizeBytes: 64 * BS, blockSize: BS }, token)
  await east.write('db-standby', 0, filled(BS, 6), token)
  const w = await openFreezeWorld(d, crashAt === undefined ? {} : { crashAt })
  await w.freeze.protect(protectDb({ sources: [{ kind: 'standby', volume: 'db-standby' }] }))
  return w
}

describe('mount property hooks', () => {
  it('what a hook captures before the dismount is given back after the remount, with the mount as it is now', async () => {
    const w = await world()
    const exports: Exports = new Map([['/mnt/data', RULES]])
    const log: string[] = []
    w.freeze.registerMountHook(exportsHook(exports, log))
    const hold = barrier(w.host(), 'mount')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    exports.delete('/mnt/data') // the dismount took the export rules with it
    hold.release()
    await restore
    expect(exports.get('/mnt/data')).toEqual(RULES)
    expect(log).toEqual(['capture /mnt/data db', 'apply /mnt/data db-standby'])
  })

  it('a crash between capture and apply: the resumed restore applies what was captured before the crash, not what is there now', async () => {
    const w = await world((point) => point.step === 'dismount' && point.phase === 'after')
    const exports: Exports = new Map([['/mnt/data', RULES]])
    const log: string[] = []
    w.freeze.registerMountHook(exportsHook(exports, log))
    await expect(w.freeze.restore({ site: 'east', volume: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    exports.delete('/mnt/data')
    const next = await w.restart()
    next.freeze.registerMountHook(exportsHook(exports, log))
    expect(await next.freeze.recover()).toBe(1)
    expect(exports.get('/mnt/data')).toEqual(RULES)
    expect(log).toEqual(['capture /mnt/data db', 'apply /mnt/data db-standby'])
    expect(await next.host().getMount('/mnt/data')).toMatchObject({ volume: 'db-standby', identity: 'uuid-db' })
  })

  it('a hook that cannot capture stops a planned restore before its I/O is held: nothing is changed and the application goes on', async () => {
    const w = await world()
    w.freeze.registerMountHook({
      name: 'broken',
      capture: async () => {
        throw new Error('exports file unreadable')
      },
    })
    const h = await w.freeze.open({ site: 'east', volume: 'db' })
    const restore = w.freeze.restore({ site: 'east', volume: 'db' }).catch((error: unknown) => error)
    const read = h.read(0, 4)
    expect(await restore).toMatchObject({ code: 'E_ADAPTER', message: expect.stringMatching(/exports file unreadable/) })
    expect(await read).toEqual(filled(4, 0))
    expect(w.names('freeze.restoreFailed')[0]?.payload).toMatchObject({ stage: 'capture', volumeDismounted: false, released: 0 })
    expect(w.hostFaults['east']!.calls.map((c) => c.method)).not.toContain('dismount')
    expect(await w.host().getMount('/mnt/data')).toMatchObject({ volume: 'db', identity: 'uuid-db' })
  })
})
