import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { processHost, type ProcessHost } from '../../../src/adapters/process/process-host.js'
import { hostPath } from '../../../src/adapters/process/mount-table.js'
import { BS, barrier, filled, freezeDurable, openFreezeWorld, pause, token } from '../../fixtures/freeze-world.js'

const actorFixture = fileURLToPath(new URL('../../fixtures/process-actor.ts', import.meta.url))
const cleanup: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const undo of cleanup.splice(0).reverse()) await undo()
})

/** The scheduler state of process `pid` (`T`: stopped by a signal). */
async function processState(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8')
  return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3)
}

async function until(what: string, check: () => Promise<boolean>, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await pause(20)
  }
}

describe('a real child process on a mounted volume', () => {
  it('behaviour 9: is frozen by SIGSTOP during the restore, thawed by SIGCONT with the same pid, and finishes its file I/O with correct data', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'drkit-freeze-proc-'))
    const rootDir = path.join(work, 'root')
    const host: ProcessHost = processHost({ workDir: path.join(work, 'host'), rootDir })
    cleanup.push(async () => {
      await host.close()
      await rm(work, { recursive: true, force: true })
    })
    const storage = memoryStorage()
    await storage.createVolume({ name: 'db', sizeBytes: 16 * BS, blockSize: BS }, token)
    await storage.write('db', 0, filled(BS, 1), token)
    await storage.createSnapshot('db', 'base', token)
    const w = await openFreezeWorld(freezeDurable({ storages: { east: storage }, hosts: { east: host } }))
    await w.freeze.protect({ site: 'east', volume: 'db', mountPath: '/mnt/data', identity: 'uuid-db', sources: [{ kind: 'snapshot', snapshot: 'base' }], freezeTimeoutMs: null })
    const file = path.join(hostPath(rootDir, '/mnt/data'), 'app.log')
    const count = 60
    const actor = await host.startActor({ id: 'app', command: process.execPath, args: ['--import', 'tsx', actorFixture, file, String(count), '15'], volumes: ['db'] }, token)
    const pid = actor.pid as number
    const lines = async (): Promise<number> => (await readFile(file, 'utf8').catch(() => '')).split('\n').length - 1
    await until('the application writes', async () => (await lines()) >= 5)

    const hold = barrier(storage, 'restoreSnapshot')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await hold.entered
    expect(await processState(pid)).toBe('T')
    expect((await host.listActors('db'))[0]).toMatchObject({ id: 'app', frozen: true, pid })
    expect(await host.getMount('/mnt/data')).toBeUndefined()
    const frozenSize = (await stat(file)).size
    await pause(300)
    expect((await stat(file)).size).toBe(frozenSize)
    expect(await lines()).toBeLessThan(count)
    hold.release()
    const result = await restore
    expect(result.summary.outcome).toBe('restored')
    expect(await host.getMount('/mnt/data')).toMatchObject({ volume: 'db', identity: 'uuid-db' })
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual(['app'])
    expect(await processState(pid)).not.toBe('T')
    expect(await host.actorExit('app')).toEqual({ code: 0, signal: null })
    expect(await readFile(file, 'utf8')).toBe(Array.from({ length: count }, (_, i) => `${i}\n`).join(''))
  }, 30_000)
})
