import { afterAll, describe, expect, it } from 'vitest'
import { FenceGuard } from '../../src/kernel/fencing.js'
import { isDrError } from '../../src/kernel/errors.js'
import { createDrSystem } from '../../src/system.js'
import { memoryStorage } from '../../src/adapters/memory/storage.js'
import { EtcdLeaseManager, etcdLeaseManager } from '../../src/adapters/etcd/etcd-lease-manager.js'
import { etcdCoordination } from '../../src/adapters/etcd/etcd-coordination.js'
import { EtcdLease } from '../../src/adapters/etcd/etcd-lease.js'
import { EtcdKeys } from '../../src/adapters/etcd/etcd-keys.js'
import { EtcdTestCluster, etcdEndpoints, uniquePrefix } from '../fixtures/etcd-endpoints.js'

const cluster = new EtcdTestCluster()
const managers: EtcdLeaseManager[] = []
const adminClient = () => cluster.admin()

afterAll(async () => {
  await Promise.all(managers.map((manager) => manager.close()))
  await cluster.cleanUp()
})

function managerOn(prefix: string, ttlMs = 1_000): EtcdLeaseManager {
  cluster.track(prefix)
  const manager = etcdLeaseManager({ hosts: etcdEndpoints(), prefix, ttlMs })
  managers.push(manager)
  return manager
}

const code = (error: unknown): string => (isDrError(error) ? error.code : String(error))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const abortedWith = (signal: AbortSignal): string => code(signal.reason)

describe('etcd lease manager', () => {
  it('elects one holder per scope; the next holder gets a higher token and a FenceGuard refuses the old one', async () => {
    const prefix = uniquePrefix('lease')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    const first = await a.acquire('site/east', 'coordinator-a')
    expect(first.token.scope).toBe('site/east')
    expect(first.isValid()).toBe(true)
    await expect(b.acquire('site/east', 'coordinator-b')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CONFLICT') && e.details['holder'] === 'coordinator-a')
    const other = await b.acquire('site/west', 'coordinator-b')
    expect(other.isValid()).toBe(true)
    await first.release()
    expect(first.isValid()).toBe(false)
    expect(first.signal.aborted).toBe(true)
    expect(abortedWith(first.signal)).toBe('E_FENCED')
    const second = await b.acquire('site/east', 'coordinator-b')
    expect(second.token.value).toBeGreaterThan(first.token.value)
    const guard = new FenceGuard('effects')
    guard.check(first.token, 'write')
    guard.check(second.token, 'write')
    expect(() => guard.check(first.token, 'write')).toThrow(expect.objectContaining({ code: 'E_FENCED' }))
    await expect(first.renew()).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_FENCED'))
    await second.renew()
    await second.release()
    await other.release()
    await first.release()
  })

  it('keeps a lease alive past many TTLs, and hands it over when released to a waiting acquirer', async () => {
    const prefix = uniquePrefix('keepalive')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    const held = await a.acquire('s', 'a', { ttlMs: 1_000 })
    await sleep(2_500)
    expect(held.isValid()).toBe(true)
    expect(held.signal.aborted).toBe(false)
    const waiting = b.acquire('s', 'b', { waitMs: 10_000 })
    await sleep(200)
    const releasedAt = Date.now()
    await held.release()
    const next = await waiting
    expect(Date.now() - releasedAt).toBeLessThan(1_000)
    expect(next.token.value).toBeGreaterThan(held.token.value)
    await next.release()
  })

  it('aborts the signal when the etcd lease is revoked or the key deleted, and lets the next holder in', async () => {
    const prefix = uniquePrefix('loss')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    const revoked = await a.acquire('r', 'a')
    expect(revoked).toBeInstanceOf(EtcdLease)
    await adminClient().leaseClient.leaseRevoke({ ID: (revoked as EtcdLease).leaseId })
    await waitFor(() => revoked.signal.aborted)
    expect(revoked.isValid()).toBe(false)
    expect(abortedWith(revoked.signal)).toBe('E_FENCED')
    const taken = await b.acquire('r', 'b')
    expect(taken.token.value).toBeGreaterThan(revoked.token.value)

    await adminClient().delete().key(new EtcdKeys(prefix).lease('r'))
    await waitFor(() => taken.signal.aborted)
    expect(abortedWith(taken.signal)).toBe('E_FENCED')
    const again = await a.acquire('r', 'a')
    expect(again.token.value).toBeGreaterThan(taken.token.value)
    await again.release()
  })

  it('waits up to waitMs and then rejects with E_CONFLICT; an aborted wait rejects with E_ABORTED', async () => {
    const prefix = uniquePrefix('wait')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    const held = await a.acquire('w', 'a')
    const started = Date.now()
    await expect(b.acquire('w', 'b', { waitMs: 600 })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CONFLICT'))
    expect(Date.now() - started).toBeGreaterThanOrEqual(550)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    await expect(b.acquire('w', 'b', { waitMs: 10_000, signal: controller.signal })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_ABORTED'))
    expect(held.isValid()).toBe(true)
    await held.release()
  })

  it('lets the same holder take its scope over at once, with a higher token, ending the old lease', async () => {
    const prefix = uniquePrefix('same')
    const a = managerOn(prefix)
    const a2 = managerOn(prefix)
    const old = await a.acquire('x', 'coordinator-1')
    const fresh = await a2.acquire('x', 'coordinator-1')
    expect(fresh.token.value).toBeGreaterThan(old.token.value)
    await waitFor(() => old.signal.aborted)
    expect(fresh.isValid()).toBe(true)
    await old.release()
    expect(fresh.isValid()).toBe(true)
    await fresh.release()
  })

  it('releases held leases on close, then rejects with E_CLOSED; bad input is E_INVALID_INPUT; no etcd is E_UNAVAILABLE', async () => {
    const prefix = uniquePrefix('close')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    const held = await a.acquire('c', 'a')
    expect(a.held()).toEqual([held])
    await a.close()
    await a.close()
    expect(held.signal.aborted).toBe(true)
    await expect(a.acquire('c', 'a')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CLOSED'))
    const next = await b.acquire('c', 'b')
    const bad = <T>(value: unknown): T => value as T
    await expect(b.acquire('', 'b')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
    await expect(b.acquire('c', bad(undefined))).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
    await expect(b.acquire('c', 'b', { ttlMs: 0 })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
    await expect(b.acquire('c', 'b', { waitMs: -1 })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
    expect(() => etcdLeaseManager(bad({ hosts: 'http://h:1', ttlMs: 'soon' }))).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    await next.release()
    const nowhere = etcdLeaseManager({ hosts: 'http://127.0.0.1:9', dialTimeoutMs: 500 })
    await expect(nowhere.acquire('c', 'z')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_UNAVAILABLE'))
    await nowhere.close()
  })

  it('runs createDrSystem on etcd: a second coordinator is refused while the first holds drkit/system, then takes over', async () => {
    const prefix = cluster.prefix('system')
    const first = etcdCoordination({ hosts: etcdEndpoints(), prefix })
    const second = etcdCoordination({ hosts: etcdEndpoints(), prefix })
    const sites = () => ({ east: { storage: memoryStorage() } })
    const one = await createDrSystem({ state: first.state, leases: first.leases, coordinator: 'one', leaseTtlMs: 1_000, sites: sites() })
    await expect(createDrSystem({ state: second.state, leases: second.leases, coordinator: 'two', leaseTtlMs: 1_000, sites: sites() })).rejects.toSatisfy(
      (e: unknown) => isDrError(e, 'E_CONFLICT'),
    )
    const token = one.token()
    await one.close()
    expect(first.leases.held()).toEqual([])
    await expect(first.state.version('x')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CLOSED'))
    const two = await createDrSystem({ state: second.state, leases: second.leases, coordinator: 'two', leaseTtlMs: 1_000, sites: sites() })
    expect(two.token().value).toBeGreaterThan(token.value)
    await two.close()
  })
})

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(20)
  }
}
