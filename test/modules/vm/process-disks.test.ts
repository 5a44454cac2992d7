import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { DiskSync } from '../../../src/adapters/process/disk-sync.js'
import { processHost, type GuestCommand } from '../../../src/adapters/process/process-host.js'
import type { StoragePort } from '../../../src/ports/storage.js'

const token = { scope: 'process-disks', value: 1 }
const counterGuest: GuestCommand = { command: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('../../fixtures/process-vm.ts', import.meta.url))] }
const MiB = 1024 * 1024

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function scratch(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-process-disks-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A process host giving its guests the volumes of `storage` as disks, on a fresh scratch directory. */
async function diskHost(storage: StoragePort, guest?: GuestCommand) {
  const dir = await scratch()
  const rootDir = path.join(dir, 'root')
  const host = processHost({ workDir: path.join(dir, 'work'), rootDir, hosts: [{ name: 'node-1', cpus: 8, memoryMb: 8192 }], disks: { storage }, ...(guest === undefined ? {} : { guest }) })
  cleanups.push(() => host.close())
  return { host, rootDir, dir }
}

/** What a volume holds, as the files of the directory it stores (materialised into a scratch directory). */
async function volumeFiles(storage: StoragePort, volume: string, names: readonly string[]): Promise<Record<string, string>> {
  const dir = path.join(await scratch(), 'view')
  await new DiskSync(storage).materialise(volume, dir)
  const out: Record<string, string> = {}
  for (const name of names) out[name] = await readFile(path.join(dir, name), 'utf8').catch(() => '(missing)')
  return out
}

/** Stores `files` in `volume` as a directory image (what a guest that wrote them would leave there). */
async function storeFiles(storage: StoragePort, volume: string, files: Record<string, string>): Promise<void> {
  const dir = path.join(await scratch(), 'seed')
  await mkdir(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text)
  await new DiskSync(storage).flush(volume, dir, token)
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('process host with disks: a guest gets its real disks', () => {
  it('materialises the disk volume at power-on, and the volume holds what the guest wrote after a quiesce and after power-off', async () => {
    const storage = memoryStorage()
    await storage.createVolume({ name: 'vm-vol', sizeBytes: MiB, blockSize: 4096 }, token)
    await storeFiles(storage, 'vm-vol', { 'seed.txt': 'from the volume' })
    const { host, rootDir } = await diskHost(storage, counterGuest)
    const disk = path.join(rootDir, 'vm/disk')
    await host.registerVm('node-1', { id: 'vm-1', name: 'vm-1', cpus: 1, memoryMb: 64, disks: [{ volume: 'vm-vol', mountPath: '/vm/disk' }], networks: [], tags: [], config: null }, token)
    await host.powerOn('vm-1', token)
    expect(await readFile(path.join(disk, 'seed.txt'), 'utf8')).toBe('from the volume')
    const counter = async (): Promise<number> => Number(await readFile(path.join(disk, 'counter'), 'utf8').catch(() => '0'))
    await until('the guest counts', async () => (await counter()) >= 3)

    await host.quiesce('vm-1', 10_000)
    const held = await counter()
    expect(await volumeFiles(storage, 'vm-vol', ['counter', 'seed.txt'])).toEqual({ counter: String(held), 'seed.txt': 'from the volume' })
    await host.unquiesce('vm-1')
    await until('the guest counts again', async () => (await counter()) > held)

    await host.powerOff('vm-1', token)
    const last = await counter()
    expect(last).toBeGreaterThan(held)
    expect((await volumeFiles(storage, 'vm-vol', ['counter']))['counter']).toBe(String(last))

    await writeFile(path.join(disk, 'stale.txt'), 'not on the volume')
    await storeFiles(storage, 'vm-vol', { 'seed.txt': 'restored' })
    await host.powerOn('vm-1', token)
    expect(await readFile(path.join(disk, 'seed.txt'), 'utf8')).toBe('restored')
    await expect(readFile(path.join(disk, 'stale.txt'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' })
    await host.powerOff('vm-1', token)
  }, 30_000)

  it('a mount materialises its volume and a dismount flushes it; after a restore and a remount an open file reads the restored data', async () => {
    const storage = memoryStorage()
    await storage.createVolume({ name: 'db', sizeBytes: MiB, blockSize: 4096 }, token)
    const { host, rootDir } = await diskHost(storage)
    const mount = { path: '/mnt/db', volume: 'db', identity: 'uuid-db', options: {}, readOnly: false }
    const file = path.join(rootDir, 'mnt/db/app.log')
    await host.mount(mount, token)
    await writeFile(file, 'v1\n')
    await host.dismount('/mnt/db', token)
    expect(await volumeFiles(storage, 'db', ['app.log'])).toEqual({ 'app.log': 'v1\n' })
    await storage.createSnapshot('db', 'before', token)

    await host.mount(mount, token)
    const handle = await open(file, 'r+')
    cleanups.push(() => handle.close())
    await handle.write('v2, after the snapshot\n', 0)
    await host.dismount('/mnt/db', token)
    expect(await volumeFiles(storage, 'db', ['app.log'])).toEqual({ 'app.log': 'v2, after the snapshot\n' })

    await storage.restoreSnapshot('db', 'before', token)
    await host.mount(mount, token)
    const buffer = Buffer.alloc(64)
    const { bytesRead } = await handle.read(buffer, 0, 64, 0)
    expect(buffer.subarray(0, bytesRead).toString('utf8')).toBe('v1\n')
    expect(await readFile(file, 'utf8')).toBe('v1\n')
  })

  it('refuses a volume that holds no directory image with E_CORRUPT, and a directory too big for its volume with E_PRECONDITION (it stays mounted)', async () => {
    const storage = memoryStorage()
    await storage.createVolume({ name: 'raw', sizeBytes: MiB, blockSize: 4096 }, token)
    await storage.write('raw', 0, new Uint8Array(4096).fill(7), token)
    await storage.createVolume({ name: 'tiny', sizeBytes: 4096, blockSize: 4096 }, token)
    const { host, rootDir } = await diskHost(storage)
    await expect(host.mount({ path: '/mnt/raw', volume: 'raw', identity: 'raw', options: {}, readOnly: false }, token)).rejects.toMatchObject({ code: 'E_CORRUPT' })
    expect(await host.getMount('/mnt/raw')).toBeUndefined()
    await host.mount({ path: '/mnt/tiny', volume: 'tiny', identity: 'tiny', options: {}, readOnly: false }, token)
    await writeFile(path.join(rootDir, 'mnt/tiny/big.bin'), new Uint8Array(5000))
    await expect(host.dismount('/mnt/tiny', token)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await host.getMount('/mnt/tiny')).toMatchObject({ volume: 'tiny' })
    expect((await storage.read('tiny', 0, 4096)).every((byte) => byte === 0)).toBe(true)
  })
})
