import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { processHost, type ProcessHost } from '../../../src/adapters/process/process-host.js'
import { hostPath } from '../../../src/adapters/process/mount-table.js'
import { DiskSync } from '../../../src/adapters/process/disk-sync.js'
import { BS, barrier, freezeDurable, openFreezeWorld, pause, token } from '../../fixtures/freeze-world.js'
import { syncReplicated } from '../../fixtures/freeze-soak.js'

const ledgerActor = fileURLToPath(new URL('../../fixtures/freeze-ledger-actor.ts', import.meta.url))
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

const ledgerOf = (count: number): string => Array.from({ length: count }, (_, i) => `${i}\n`).join('')

describe('a real child process on a mounted volume', () => {
  it('behaviour 9: keeps its ledger on the volume, is frozen by SIGSTOP while the volume is swapped for its standby, and goes on with the same pid from what the restored volume holds', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'drkit-freeze-proc-'))
    const rootDir = path.join(work, 'root')
    const raw = memoryStorage()
    for (const name of ['db', 'db-standby']) await raw.createVolume({ name, sizeBytes: 64 * BS, blockSize: BS }, token)
    // Synchronous replication keeps the standby identical to the volume, block for block.
    const storage = syncReplicated(raw, ['db', 'db-standby'])
    // With `disks`, a mount is the volume's contents materialised at the mount path, flushed back at dismount.
    const host: ProcessHost = processHost({ workDir: path.join(work, 'host'), rootDir, disks: { storage } })
    cleanup.push(async () => {
      await host.close()
      await rm(work, { recursive: true, force: true })
    })
    const w = await openFreezeWorld(freezeDurable({ storages: { east: storage }, hosts: { east: host } }))
    await w.freeze.protect({ site: 'east', volume: 'db', mountPath: '/mnt/data', identity: 'uuid-db', sources: [{ kind: 'standby', volume: 'db-standby' }], freezeTimeoutMs: null })
    const file = path.join(hostPath(rootDir, '/mnt/data'), 'ledger.txt')
    const count = 60
    const actor = await host.startActor({ id: 'app', command: process.execPath, args: ['--import', 'tsx', ledgerActor, file, String(count), '15'], volumes: ['db'] }, token)
    const pid = actor.pid as number
    const lines = async (): Promise<number> => (await readFile(file, 'utf8').catch(() => '')).split('\n').length - 1
    await until('the application writes its ledger', async () => (await lines()) >= 5)

    const remount = barrier(host, 'mount')
    const restore = w.freeze.restore({ site: 'east', volume: 'db' })
    await remount.entered
    // Frozen by signal, the volume dismounted (its directory flushed into it), nothing written meanwhile.
    expect(await processState(pid)).toBe('T')
    expect((await host.listActors('db'))[0]).toMatchObject({ id: 'app', frozen: true, pid })
    expect(await host.getMount('/mnt/data')).toBeUndefined()
    const frozenSize = (await stat(file)).size
    await pause(100)
    expect((await stat(file)).size).toBe(frozenSize)
    // The standby the restore swaps in holds the ledger as the application left it…
    const frozenLines = await lines()
    const standby = path.join(work, 'standby-view')
    await new DiskSync(raw).materialise('db-standby', standby)
    expect(await readFile(path.join(standby, 'ledger.txt'), 'utf8')).toBe(ledgerOf(frozenLines))
    // …and the directory left behind is damaged: only what the remount brings back from the volume is read.
    await writeFile(file, 'garbage left behind\n')
    remount.release()
    const result = await restore
    expect(result).toMatchObject({ activeVolume: 'db-standby', summary: { outcome: 'restored', source: { kind: 'standby', ref: 'db-standby' } } })
    expect(await host.getMount('/mnt/data')).toMatchObject({ volume: 'db-standby', identity: 'uuid-db' })
    expect(w.names('freeze.thawed')[0]?.payload.actors).toEqual(['app'])
    expect(await processState(pid)).not.toBe('T')
    expect(await host.actorExit('app')).toEqual({ code: 0, signal: null })
    expect(await readFile(file, 'utf8')).toBe(ledgerOf(count))
  }, 30_000)
})
