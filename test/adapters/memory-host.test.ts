import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/kernel/clock.js'
import type { HookRequest, VmSpec } from '../../src/ports/host.js'
import { memoryHost } from '../../src/adapters/memory/host.js'
import { hostConformance } from '../../src/testkit/host-conformance.js'

const token = { scope: 'test', value: 1 }
const hook: HookRequest = { script: '/hooks/exit-3.sh', args: ['pre-failover'], env: { DR_SITE: 'west' }, timeoutMs: 1000 }

function spec(id: string, cpus = 2, memoryMb = 1024): VmSpec {
  return { id, name: id, cpus, memoryMb, disks: [{ volume: 'db', mountPath: '/var/lib/db' }], networks: ['lan'], tags: ['db'], config: { tier: 'gold' } }
}

/** Tracks whether a promise settled, without leaving a rejection unhandled. */
function track(promise: Promise<unknown>): { settled: boolean } {
  const state = { settled: false }
  promise.then(
    () => {
      state.settled = true
    },
    () => {
      state.settled = true
    },
  )
  return state
}

describe('memory host: conformance', () => {
  const suite = hostConformance({
    async create() {
      const policies = { backupEveryMs: 2 * 3600_000, replicateEveryMs: 6 * 3600_000 }
      const host = memoryHost({ hosts: [{ name: 'esx-2', cpus: 4, memoryMb: 4096, policies }, { name: 'esx-1', cpus: 16, memoryMb: 65536, tags: ['gpu'] }] })
      host.addActor({ id: 'postgres', kind: 'process', volumes: ['db', 'wal'], pid: 4242 })
      host.addActor({ id: 'backup-agent', kind: 'vm', volumes: ['db'] })
      host.setHookHandler((request) => ({ exitCode: request.script === hook.script ? 3 : 0, stdout: '', stderr: '', timedOut: false }))
      return { host, hostName: 'esx-1', actorVolume: 'db', hook: { request: hook, exitCode: 3 }, policies: { host: 'esx-2', expected: policies } }
    },
    async dispose(target) {
      await target.host.close()
    },
  })
  for (const c of suite) it(c.name, c.run)
})

describe('memory host: quiesce behaviours', () => {
  it('a hanging VM fails quiesce with E_TIMEOUT after timeoutMs on the clock and is left unquiesced', async () => {
    const clock = new ManualClock(0)
    const host = memoryHost({ clock, hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096 }] })
    await host.registerVm('esx-1', spec('vm-1'), token)
    await host.powerOn('vm-1', token)
    host.setQuiesceBehaviour('vm-1', 'hang')
    const quiescing = host.quiesce('vm-1', 5000)
    const state = track(quiescing)
    await clock.advance(4999)
    expect(state.settled).toBe(false)
    await clock.advance(1)
    await expect(quiescing).rejects.toMatchObject({ code: 'E_TIMEOUT' })
    expect(host.isQuiesced('vm-1')).toBe(false)
  })

  it('a failing VM answers not application-consistent; a healthy one quiesces until unquiesced or powered off', async () => {
    const host = memoryHost({ hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096 }] })
    await host.registerVm('esx-1', spec('vm-1'), token)
    await host.powerOn('vm-1', token)
    host.setQuiesceBehaviour('vm-1', 'fail')
    expect(await host.quiesce('vm-1', 1000)).toEqual({ vmId: 'vm-1', applicationConsistent: false, writers: [] })
    expect(host.isQuiesced('vm-1')).toBe(false)
    host.setQuiesceBehaviour('vm-1', 'ok')
    expect(await host.quiesce('vm-1', 1000)).toMatchObject({ applicationConsistent: true })
    expect(host.isQuiesced('vm-1')).toBe(true)
    await host.unquiesce('vm-1')
    expect(host.isQuiesced('vm-1')).toBe(false)
    await host.quiesce('vm-1', 1000)
    await host.powerOff('vm-1', token)
    expect(host.isQuiesced('vm-1')).toBe(false)
    await host.unquiesce('not-registered')
  })

  it('closing the host rejects a hanging quiesce with E_CLOSED', async () => {
    const host = memoryHost({ clock: new ManualClock(0), hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096 }] })
    await host.registerVm('esx-1', spec('vm-1'), token)
    await host.powerOn('vm-1', token)
    host.setQuiesceBehaviour('vm-1', 'hang')
    const quiescing = host.quiesce('vm-1', 5000)
    await host.close()
    await expect(quiescing).rejects.toMatchObject({ code: 'E_CLOSED' })
  })
})

describe('memory host: hooks', () => {
  it('a hook handler that does not answer in time counts as killed: timedOut, exit code null', async () => {
    const clock = new ManualClock(0)
    const host = memoryHost({ clock })
    host.setHookHandler(() => new Promise(() => undefined))
    const running = host.runHook({ ...hook, timeoutMs: 250 })
    const state = track(running)
    await clock.advance(249)
    expect(state.settled).toBe(false)
    await clock.advance(1)
    expect(await running).toEqual({ exitCode: null, stdout: '', stderr: '', timedOut: true })
    expect(clock.pendingTimers).toBe(0)
  })

  it('runs the default handler (exit 0), passes a copy of the request and turns a throwing handler into exit code 1', async () => {
    const host = memoryHost()
    expect(await host.runHook(hook)).toEqual({ exitCode: 0, stdout: '', stderr: '', timedOut: false })
    const seen: HookRequest[] = []
    host.setHookHandler((request) => {
      seen.push(request)
      return { exitCode: 0, stdout: `hello ${request.env['DR_SITE'] ?? ''}`, stderr: '', timedOut: false }
    })
    expect((await host.runHook(hook)).stdout).toBe('hello west')
    expect(seen[0]).toEqual(hook)
    expect(seen[0]).not.toBe(hook)
    host.setHookHandler(() => {
      throw new Error('script crashed')
    })
    expect(await host.runHook(hook)).toEqual({ exitCode: 1, stdout: '', stderr: 'script crashed', timedOut: false })
  })
})

describe('memory host: hosts, latency and copies', () => {
  it('every call takes latencyMs on the clock', async () => {
    const clock = new ManualClock(0)
    const host = memoryHost({ clock, latencyMs: 20, hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096 }] })
    const listing = host.listHosts()
    const state = track(listing)
    await clock.advance(19)
    expect(state.settled).toBe(false)
    await clock.advance(1)
    expect((await listing).map((h) => h.name)).toEqual(['esx-1'])
  })

  it('a host going offline powers its VMs off and refuses registrations and power-on until it is back', async () => {
    const host = memoryHost({ hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096 }] })
    await host.registerVm('esx-1', spec('vm-1'), token)
    await host.powerOn('vm-1', token)
    host.setHostOnline('esx-1', false)
    expect((await host.hostInfo('esx-1')).online).toBe(false)
    expect((await host.getVm('vm-1'))?.power).toBe('off')
    await expect(host.powerOn('vm-1', token)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(host.registerVm('esx-1', spec('vm-2'), token)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    host.setHostOnline('esx-1', true)
    await host.powerOn('vm-1', token)
    expect(() => host.setHostOnline('esx-9', true)).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }))
  })

  it('returns copies: changing what it returned changes nothing it holds', async () => {
    const host = memoryHost({ hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096, tags: ['ssd'] }] })
    host.addActor({ id: 'pg', kind: 'process', volumes: ['db'] })
    const registered = await host.registerVm('esx-1', spec('vm-1'), token)
    ;(registered.config as Record<string, unknown>)['tier'] = 'bronze'
    ;(registered.tags as string[]).push('changed')
    ;((await host.hostInfo('esx-1')).tags as string[]).push('changed')
    const mounted = await host.mount({ path: '/mnt/db', volume: 'db', identity: 'id-db', options: { mode: 'rw' }, readOnly: false }, token)
    ;(mounted.options as Record<string, string>)['mode'] = 'ro'
    ;((await host.listActors('db'))[0]?.volumes as string[]).push('changed')
    expect((await host.getVm('vm-1'))?.config).toEqual({ tier: 'gold' })
    expect((await host.getVm('vm-1'))?.tags).toEqual(['db'])
    expect((await host.hostInfo('esx-1')).tags).toEqual(['ssd'])
    expect((await host.getMount('/mnt/db'))?.options).toEqual({ mode: 'rw' })
    expect((await host.listActors('db'))[0]?.volumes).toEqual(['db'])
  })

  it('test controls refuse duplicates and bad input; removeActor is idempotent', async () => {
    const host = memoryHost({ hosts: [{ name: 'esx-1', cpus: 4, memoryMb: 4096 }] })
    expect(() => host.addHost({ name: 'esx-1', cpus: 1, memoryMb: 1 })).toThrow(expect.objectContaining({ code: 'E_CONFLICT' }))
    expect(() => host.addHost({ name: 'bad name', cpus: 1, memoryMb: 1 })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    host.addActor({ id: 'pg', kind: 'process', volumes: ['db'] })
    expect(() => host.addActor({ id: 'pg', kind: 'process', volumes: [] })).toThrow(expect.objectContaining({ code: 'E_CONFLICT' }))
    host.removeActor('pg')
    host.removeActor('pg')
    expect(await host.listActors('db')).toEqual([])
    const notJson = { ...spec('vm-1'), config: { when: new Date(0) } } as unknown as VmSpec
    await expect(host.registerVm('esx-1', notJson, token)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(host.mount({ path: '', volume: 'db', identity: 'x', options: {}, readOnly: true }, token)).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    })
    await expect(host.quiesce('vm-1', -1)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(() => memoryHost({ latencyMs: -5 })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
  })
})
