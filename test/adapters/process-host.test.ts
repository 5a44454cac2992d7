import { afterEach, describe, expect, it } from 'vitest'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { processHost, type ProcessHost, type ProcessHostOptions } from '../../src/adapters/process/process-host.js'
import type { GuestCommand } from '../../src/adapters/process/types.js'
import type { HostPort, VmSpec } from '../../src/ports/host.js'
import { hostConformance } from '../../src/testkit/host-conformance.js'

const token = { scope: 'process-test', value: 1 }
const vmFixture = fileURLToPath(new URL('../fixtures/process-vm.ts', import.meta.url))
const actorFixture = fileURLToPath(new URL('../fixtures/process-actor.ts', import.meta.url))
const counterGuest: GuestCommand = { command: process.execPath, args: ['--import', 'tsx', vmFixture] }
const deafGuest: GuestCommand = { command: process.execPath, args: ['--import', 'tsx', vmFixture, '--ignore-quiesce'] }

/** True when no process `pid` exists any more (a zombie waiting for its reaper counts as gone). */
async function gone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
}

/** The one-letter state of a process from /proc (`S` sleeping, `R` running, `T` stopped…). */
async function processState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

/** Polls `check` every 20 ms until it holds, failing after `limitMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function readCounter(file: string): Promise<number> {
  return Number(await readFile(file, 'utf8').catch(() => '0'))
}

function vmSpec(id: string, volume = 'vm-vol', mountPath = '/vm/disk'): VmSpec {
  return { id, name: id, cpus: 1, memoryMb: 64, disks: [{ volume, mountPath }], networks: [], tags: [], config: { tier: 'test' } }
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A fresh work directory and root, removed after the test. */
async function scratch(): Promise<{ workDir: string; rootDir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-process-host-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return { workDir: path.join(dir, 'work'), rootDir: path.join(dir, 'root') }
}

/** A process host on a fresh scratch directory, closed after the test. */
async function newHost(options: Partial<ProcessHostOptions> = {}): Promise<{ host: ProcessHost; rootDir: string; workDir: string }> {
  const dirs = await scratch()
  const host = processHost({ ...dirs, hosts: [{ name: 'node-1', cpus: 8, memoryMb: 8192 }], ...options })
  cleanups.push(() => host.close())
  return { host, ...dirs }
}

describe('process host: conformance', () => {
  const pids = new Map<HostPort, number[]>()
  const suite = hostConformance({
    async create() {
      const dirs = await scratch()
      const policies = { backupEveryMs: 3600_000, replicateEveryMs: 4 * 3600_000 }
      const host = processHost({ ...dirs, hosts: [{ name: 'node-2', cpus: 4, memoryMb: 4096, policies }, { name: 'node-1', cpus: 16, memoryMb: 65536, tags: ['big'] }] })
      const actor = await host.startActor({ id: 'postgres', command: 'sleep', args: ['60'], volumes: ['db', 'wal'] }, { scope: 'setup', value: 1 })
      pids.set(host, [actor.pid ?? -1])
      const hook = { request: { script: 'test "$1" = pre && exit 3', args: ['pre'], env: {}, timeoutMs: 5000 }, exitCode: 3 }
      return { host, hostName: 'node-1', actorVolume: 'db', hook, policies: { host: 'node-2', expected: policies } }
    },
    async dispose(target) {
      await target.host.close()
      for (const pid of pids.get(target.host) ?? []) expect(await gone(pid)).toBe(true)
    },
  })
  for (const c of suite) it(c.name, c.run)
})

describe('process host: VMs are guest processes', () => {
  it('quiesce holds the guest writes until unquiesce, and power off ends the process', async () => {
    const { host, rootDir } = await newHost({ guest: counterGuest })
    await host.registerVm('node-1', vmSpec('vm-1'), token)
    await host.powerOn('vm-1', token)
    await host.powerOn('vm-1', token)
    expect((await host.getVm('vm-1'))?.power).toBe('running')
    const [actor] = await host.listActors('vm-vol')
    expect(actor).toMatchObject({ id: 'vm-1', kind: 'vm', volumes: ['vm-vol'], frozen: false })
    const pid = actor?.pid ?? -1
    const counter = path.join(rootDir, 'vm/disk/counter')
    await until('the guest counts', async () => (await readCounter(counter)) >= 3)

    const result = await host.quiesce('vm-1', 10_000)
    expect(result).toEqual({ vmId: 'vm-1', applicationConsistent: true, writers: ['counter-writer'] })
    const held = await readCounter(counter)

    await host.unquiesce('vm-1')
    expect(await readCounter(path.join(rootDir, 'vm/disk/released'))).toBe(held)
    await host.unquiesce('vm-1')
    await until('the guest counts again', async () => (await readCounter(counter)) > held)

    await host.powerOff('vm-1', token)
    await host.powerOff('vm-1', token)
    expect((await host.getVm('vm-1'))?.power).toBe('off')
    expect(await gone(pid)).toBe(true)
    expect(await host.listActors('vm-vol')).toEqual([])
    await expect(host.quiesce('vm-1', 1000)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
  })

  it('a guest that ignores quiesce fails it with E_TIMEOUT and keeps running unquiesced', async () => {
    const { host, rootDir } = await newHost({ guest: deafGuest })
    await host.registerVm('node-1', vmSpec('vm-deaf'), token)
    await host.powerOn('vm-deaf', token)
    const counter = path.join(rootDir, 'vm/disk/counter')
    await until('the guest counts', async () => (await readCounter(counter)) >= 1)
    await expect(host.quiesce('vm-deaf', 300)).rejects.toMatchObject({ code: 'E_TIMEOUT', details: { vm: 'vm-deaf', timeoutMs: 300 } })
    expect((await host.getVm('vm-deaf'))?.power).toBe('running')
    const before = await readCounter(counter)
    await until('the guest still counts', async () => (await readCounter(counter)) > before)
    await host.unquiesce('vm-deaf')
  })

  it('an unquiesce asked for while the guest is still quiescing releases it', async () => {
    const { host, rootDir } = await newHost({ guest: { ...counterGuest, args: [...counterGuest.args, '--slow-quiesce'] } })
    await host.registerVm('node-1', vmSpec('vm-slow'), token)
    await host.powerOn('vm-slow', token)
    const counter = path.join(rootDir, 'vm/disk/counter')
    await until('the guest counts', async () => (await readCounter(counter)) >= 1)
    const quiescing = host.quiesce('vm-slow', 10_000)
    await sleep(50)
    await host.unquiesce('vm-slow')
    expect(await quiescing).toMatchObject({ vmId: 'vm-slow', applicationConsistent: true })
    const after = await readCounter(counter)
    await until('the guest counts after the release', async () => (await readCounter(counter)) > after)
    await host.quiesce('vm-slow', 10_000)
    const held = await readCounter(counter)
    await host.unquiesce('vm-slow')
    expect(await readCounter(path.join(rootDir, 'vm/disk/released'))).toBe(held)
  })

  it('the built-in guest quiesces, is given its disks and environment, and a guest that exits on its own is off', async () => {
    const { host, rootDir } = await newHost()
    await host.registerVm('node-1', vmSpec('vm-builtin', 'data', '/srv/data'), token)
    await host.powerOn('vm-builtin', token)
    expect((await stat(path.join(rootDir, 'srv/data'))).isDirectory()).toBe(true)
    expect(await host.quiesce('vm-builtin', 10_000)).toMatchObject({ vmId: 'vm-builtin', applicationConsistent: true })
    await host.unquiesce('vm-builtin')
    await host.powerOff('vm-builtin', token)

    const out = path.join(rootDir, 'env.json')
    const script = `printf '{"id":"%s","host":"%s","disk":"%s"}' "$DRKIT_VM_ID" "$DRKIT_VM_HOST" "$1" > ${out}`
    const shortLived = await newHost({ guest: { command: '/bin/sh', args: ['-c', script, 'guest'] } })
    await shortLived.host.registerVm('node-1', vmSpec('vm-short', 'data', '/srv/data'), token)
    await shortLived.host.powerOn('vm-short', token)
    await until('the guest has exited', async () => (await shortLived.host.getVm('vm-short'))?.power === 'off')
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ id: 'vm-short', host: 'node-1', disk: path.join(shortLived.rootDir, 'srv/data') })
    await shortLived.host.unregisterVm('vm-short', token)
  })

  it('a guest that cannot start fails power on with E_ADAPTER and the VM stays off', async () => {
    const { host } = await newHost({ guest: { command: '/no/such/guest', args: [] } })
    await host.registerVm('node-1', vmSpec('vm-broken'), token)
    await expect(host.powerOn('vm-broken', token)).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect((await host.getVm('vm-broken'))?.power).toBe('off')
  })
})

describe('process host: I/O actors', () => {
  it('SIGSTOP freezes an actor (no progress), SIGCONT thaws it and it finishes with every line written', async () => {
    const { host, rootDir } = await newHost()
    await mkdir(rootDir, { recursive: true })
    const file = path.join(rootDir, 'actor.log')
    const count = 40
    const actor = await host.startActor(
      { id: 'writer', command: process.execPath, args: ['--import', 'tsx', actorFixture, file, String(count), '15'], volumes: ['logs'] },
      token,
    )
    expect(actor).toMatchObject({ id: 'writer', kind: 'process', volumes: ['logs'], frozen: false })
    await expect(host.startActor({ id: 'writer', command: 'true', args: [], volumes: [] }, token)).rejects.toMatchObject({ code: 'E_CONFLICT' })
    const lines = async (): Promise<number> => (await readFile(file, 'utf8').catch(() => '')).split('\n').length - 1
    await until('the actor writes', async () => (await lines()) >= 3)

    await host.freezeActor('writer', token)
    await host.freezeActor('writer', token)
    expect((await host.listActors('logs'))[0]?.frozen).toBe(true)
    const frozenSize = (await stat(file)).size
    await sleep(250)
    expect((await stat(file)).size).toBe(frozenSize)
    expect(await lines()).toBeLessThan(count)

    await host.thawActor('writer', token)
    expect((await host.listActors('logs'))[0]?.frozen).toBe(false)
    expect(await host.actorExit('writer')).toEqual({ code: 0, signal: null })
    const expected = Array.from({ length: count }, (_, i) => `${i}\n`).join('')
    expect(await readFile(file, 'utf8')).toBe(expected)
    expect(await host.listActors('logs')).toEqual([])
    await expect(host.freezeActor('writer', token)).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
  })

  it('behaviour 28 (seed 004): the lowest-priority mechanism drops a frozen actor to nice 19 and gives back its own priority at the thaw', async () => {
    const { host } = await newHost({ freezeMechanism: 'lowest-priority' })
    const actor = await host.startActor({ id: 'busy', command: 'sleep', args: ['60'], volumes: ['v'] }, token)
    const pid = actor.pid ?? -1
    os.setPriority(pid, 5) // its own base priority π, not the default
    await host.freezeActor('busy', token)
    expect(os.getPriority(pid)).toBe(19)
    expect((await host.listActors('v'))[0]?.frozen).toBe(true)
    expect(await processState(pid)).not.toBe('T') // starved, not stopped
    await host.freezeActor('busy', token)
    await host.thawActor('busy', token)
    expect(os.getPriority(pid)).toBe(5)
    expect((await host.listActors('v'))[0]?.frozen).toBe(false)
    await expect(newHost({ freezeMechanism: 'nice' as never })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
  })

  it('stopActor ends a frozen actor', async () => {
    const { host } = await newHost()
    const actor = await host.startActor({ id: 'sleeper', command: 'sleep', args: ['60'], volumes: ['v'] }, token)
    await host.freezeActor('sleeper', token)
    expect(await host.stopActor('sleeper', token)).toEqual({ code: null, signal: 'SIGTERM' })
    expect(await gone(actor.pid ?? -1)).toBe(true)
    await expect(host.stopActor('sleeper', token)).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
  })

  it('starts one actor per id even when asked twice at once, and reports a command that cannot start as E_ADAPTER', async () => {
    const { host } = await newHost()
    const twice = await Promise.allSettled([0, 1].map(() => host.startActor({ id: 'twin', command: 'sleep', args: ['60'], volumes: ['v'] }, token)))
    expect(twice.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected'])
    expect(twice.find((outcome) => outcome.status === 'rejected')).toMatchObject({ reason: { code: 'E_CONFLICT' } })
    expect(await host.listActors('v')).toHaveLength(1)
    await expect(host.startActor({ id: 'ghost', command: '/no/such/program', args: [], volumes: ['v'] }, token)).rejects.toMatchObject({ code: 'E_ADAPTER' })
    await expect(host.actorExit('ghost')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
  })
})

describe('process host: hooks', () => {
  it('runs a shell script with args and env, capturing its output and exit code', async () => {
    const { host } = await newHost()
    const result = await host.runHook({ script: 'echo "$1-$DR_SITE"; echo oops >&2; exit 4', args: ['pre'], env: { DR_SITE: 'west' }, timeoutMs: 10_000 })
    expect(result).toEqual({ exitCode: 4, stdout: 'pre-west\n', stderr: 'oops\n', timedOut: false })
    const missing = await host.runHook({ script: '/no/such/hook', args: [], env: {}, timeoutMs: 10_000 })
    expect(missing.exitCode).toBe(127)
  })

  it('runs an executable file directly and bounds its output', async () => {
    const { host, rootDir } = await newHost()
    const script = path.join(rootDir, 'hook.sh')
    await mkdir(rootDir, { recursive: true })
    await writeFile(script, '#!/bin/sh\necho "args: $1 $2"\nhead -c 200000 /dev/zero | tr "\\0" a >&2\n')
    await chmod(script, 0o755)
    const result = await host.runHook({ script, args: ['a b', 'c'], env: {}, timeoutMs: 10_000 })
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toBe('args: a b c\n')
    expect(result.stderr.length).toBeLessThan(70 * 1024)
    expect(result.stderr).toContain('more bytes of output not kept')
  })

  it('kills the whole process group of a hook that runs out of time', async () => {
    const { host, rootDir } = await newHost()
    await mkdir(rootDir, { recursive: true })
    const pidFile = path.join(rootDir, 'sleep.pid')
    const result = await host.runHook({ script: `sleep 30 & echo $! > ${pidFile}; wait`, args: [], env: {}, timeoutMs: 300 })
    expect(result).toMatchObject({ exitCode: null, timedOut: true })
    const pid = Number(await readFile(pidFile, 'utf8'))
    await until('the hook child is gone', () => gone(pid), 5000)
  })
})

describe('process host: mounts and restarts', () => {
  it('keeps mounts and fence tokens across a restart, creates the directory and refuses a relative path', async () => {
    const { host, workDir, rootDir } = await newHost()
    const mount = { path: '/mnt/db', volume: 'db', identity: 'db-identity', options: { mode: 'rw' }, readOnly: false }
    await host.mount(mount, { scope: 'process-test', value: 7 })
    await expect(host.mount({ ...mount, path: '/mnt/db/' }, { scope: 'process-test', value: 7 })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(host.mount({ ...mount, path: 'relative' }, { scope: 'process-test', value: 7 })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect((await stat(path.join(rootDir, 'mnt/db'))).isDirectory()).toBe(true)
    await host.close()

    const again = processHost({ workDir, rootDir })
    cleanups.push(() => again.close())
    expect(await again.listMounts()).toEqual([mount])
    await expect(again.dismount('/mnt/db', { scope: 'process-test', value: 6 })).rejects.toMatchObject({ code: 'E_FENCED' })
    await again.dismount('/mnt/db', { scope: 'process-test', value: 7 })
    expect(await again.getMount('/mnt/db')).toBeUndefined()
  })

  it('keeps registered VMs (off) and the idempotency keys of the calls that acted across a restart', async () => {
    const { host, workDir, rootDir } = await newHost({ guest: counterGuest })
    const registered = await host.registerVm('node-1', vmSpec('vm-kept'), token, { idempotencyKey: 'register-kept' })
    await host.powerOn('vm-kept', token, { idempotencyKey: 'start-kept' })
    await host.close()

    const again = processHost({ workDir, rootDir, hosts: [{ name: 'node-1', cpus: 8, memoryMb: 8192 }], guest: counterGuest })
    cleanups.push(() => again.close())
    expect(await again.getVm('vm-kept')).toEqual({ ...registered, power: 'off' })
    expect((await again.hostInfo('node-1')).allocatedMemoryMb).toBe(64)
    expect(await again.registerVm('node-1', vmSpec('vm-kept'), token, { idempotencyKey: 'register-kept' })).toEqual({ ...registered, power: 'off' })
    await again.powerOn('vm-kept', token, { idempotencyKey: 'start-kept' })
    expect((await again.getVm('vm-kept'))?.power).toBe('off')
    await expect(again.registerVm('node-1', vmSpec('vm-kept'), token)).rejects.toMatchObject({ code: 'E_CONFLICT' })
  })

  it('reads a registry of version 1 (mounts and fence tokens only)', async () => {
    const { workDir, rootDir } = await scratch()
    await mkdir(workDir, { recursive: true })
    const mount = { path: '/mnt/old', volume: 'old', identity: 'old-id', options: {}, readOnly: true }
    await writeFile(path.join(workDir, 'process-host.json'), JSON.stringify({ version: 1, mounts: [mount], fences: [['process-test', 3]] }))
    const old = processHost({ workDir, rootDir })
    cleanups.push(() => old.close())
    expect(await old.listMounts()).toEqual([mount])
    expect(await old.listVms()).toEqual([])
    await expect(old.dismount('/mnt/old', { scope: 'process-test', value: 2 })).rejects.toMatchObject({ code: 'E_FENCED' })
  })

  it('refuses a damaged registry with E_CORRUPT and bad options with E_INVALID_INPUT', async () => {
    const { workDir, rootDir } = await scratch()
    const first = processHost({ workDir, rootDir })
    await first.listMounts()
    await first.close()
    await writeFile(path.join(workDir, 'process-host.json'), '{"version":1,"mounts":[{"path":3}]}')
    const damaged = processHost({ workDir, rootDir })
    cleanups.push(() => damaged.close())
    await expect(damaged.listMounts()).rejects.toMatchObject({ code: 'E_CORRUPT' })
    expect(() => processHost({ workDir: '' })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }) as Error)
    const hosts = [{ name: 'a', cpus: 1, memoryMb: 1 }, { name: 'a', cpus: 1, memoryMb: 1 }]
    expect(() => processHost({ workDir, hosts })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }) as Error)
  })
})

describe('process host: close', () => {
  it('ends every guest, actor and hook it started, frozen or not, and leaves no process behind', async () => {
    const { host } = await newHost({ guest: counterGuest })
    await host.registerVm('node-1', vmSpec('vm-a', 'vol-a', '/a'), token)
    await host.registerVm('node-1', vmSpec('vm-b', 'vol-b', '/b'), token)
    await host.powerOn('vm-a', token)
    await host.powerOn('vm-b', token)
    await host.freezeActor('vm-b', token)
    await host.startActor({ id: 'frozen', command: 'sleep', args: ['60'], volumes: ['vol-a'] }, token)
    await host.startActor({ id: 'busy', command: '/bin/sh', args: ['-c', 'while :; do sleep 1; done'], volumes: ['vol-a'] }, token)
    await host.freezeActor('frozen', token)
    const pids = [...(await host.listActors('vol-a')), ...(await host.listActors('vol-b'))].map((actor) => actor.pid ?? -1)
    expect(pids).toHaveLength(4)
    const hook = host.runHook({ script: 'sleep 60', args: [], env: {}, timeoutMs: 60_000 })
    const hookRejected = expect(hook).rejects.toMatchObject({ code: 'E_CLOSED' })

    const quick = processHost({ workDir: (await scratch()).workDir, stopGraceMs: 200 })
    cleanups.push(() => quick.close())
    const stubborn = await quick.startActor({ id: 'stubborn', command: '/bin/sh', args: ['-c', 'trap "" TERM; sleep 60 & wait'], volumes: [] }, token)

    await Promise.all([host.close(), host.close(), quick.close()])
    await hookRejected
    for (const pid of [...pids, stubborn.pid ?? -1]) expect(await gone(pid)).toBe(true)
    await expect(host.listActors('vol-a')).rejects.toMatchObject({ code: 'E_CLOSED' })
    await expect(host.powerOn('vm-a', token)).rejects.toMatchObject({ code: 'E_CLOSED' })
  })
})
