import { afterAll, describe, expect, it } from 'vitest'
import { FenceGuard, type LeaseManager } from '../../src/kernel/fencing.js'
import { isDrError } from '../../src/kernel/errors.js'
import { createDrSystem } from '../../src/system.js'
import { memoryStorage } from '../../src/adapters/memory/storage.js'
import { EtcdLeaseManager, etcdLeaseManager } from '../../src/adapters/etcd/etcd-lease-manager.js'
import { etcdCoordination } from '../../src/adapters/etcd/etcd-coordination.js'
import { EtcdConnection } from '../../src/adapters/etcd/etcd-connection.js'
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

/** Leases of 2 s: headroom for a starved CPU on a loaded 2-core machine. */
const TTL_MS = 2_000

/** A lease manager on `prefix`, on its own connection (returned, for tests that intercept its calls). */
function managerWithConnection(prefix: string, ttlMs = TTL_MS): { manager: EtcdLeaseManager; connection: EtcdConnection } {
  cluster.track(prefix)
  const connection = new EtcdConnection({ hosts: etcdEndpoints(), prefix })
  const manager = new EtcdLeaseManager({ hosts: etcdEndpoints(), prefix, ttlMs }, { connection })
  managers.push(manager)
  return { manager, connection }
}

function managerOn(prefix: string, ttlMs = TTL_MS): EtcdLeaseManager {
  cluster.track(prefix)
  const manager = etcdLeaseManager({ hosts: etcdEndpoints(), prefix, ttlMs })
  managers.push(manager)
  return manager
}

const code = (error: unknown): string => (isDrError(error) ? error.code : String(error))
const abortedWith = (signal: AbortSignal): string => code(signal.reason)
const lost = (lease: { signal: AbortSignal }): Promise<void> =>
  lease.signal.aborted ? Promise.resolve() : new Promise((resolve) => lease.signal.addEventListener('abort', () => resolve(), { once: true }))

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

  it('keeps a lease alive past several TTLs with acknowledged keep-alives', async () => {
    const prefix = uniquePrefix('keepalive')
    const { manager, connection } = managerWithConnection(prefix)
    const leaseClient = connection.client.leaseClient
    const open = leaseClient.leaseKeepAlive.bind(leaseClient)
    let acknowledged = 0
    let onAck = (): void => undefined
    leaseClient.leaseKeepAlive = async () => {
      const stream = await open()
      stream.on('data', () => (acknowledged++, onAck()))
      return stream
    }
    const held = await manager.acquire('s', 'a')
    // Keep-alives go out every third of the TTL: seven acknowledged span more than two TTLs.
    await new Promise<void>((resolve) => {
      onAck = () => {
        if (acknowledged >= 7) resolve()
      }
    })
    expect(held.isValid()).toBe(true)
    expect(held.signal.aborted).toBe(false)
    const key = await cluster.admin().get(new EtcdKeys(prefix).lease('s').toString()).exec()
    expect(Number(key.kvs[0]?.create_revision)).toBe(held.token.value)
    await held.release()
  })

  it('hands a released lease to a waiting acquirer at once, not when its TTL would have run out', async () => {
    const prefix = uniquePrefix('handover')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    // A TTL far beyond this test's timeout: only the release can let the waiter in.
    const held = await a.acquire('s', 'a', { ttlMs: 600_000 })
    const waiting = b.acquire('s', 'b', { waitMs: 600_000 })
    await held.release()
    const next = await waiting
    expect(next.token.value).toBeGreaterThan(held.token.value)
    expect(next.isValid()).toBe(true)
    await next.release()
  }, 30_000)

  it('bounds a keep-alive whose stream never opens: renew still resolves while the lease holds, and the next keep-alive works', async () => {
    const prefix = uniquePrefix('stuck-keepalive')
    const { manager, connection } = managerWithConnection(prefix, 6_000)
    const leaseClient = connection.client.leaseClient
    const open = leaseClient.leaseKeepAlive.bind(leaseClient)
    const held = await manager.acquire('k', 'a')
    leaseClient.leaseKeepAlive = () => new Promise(() => undefined)
    await held.renew()
    expect(held.isValid()).toBe(true)
    leaseClient.leaseKeepAlive = open
    await held.renew()
    expect(held.isValid()).toBe(true)
    await held.release()
  })

  it('aborts the signal when the etcd lease is revoked or the key deleted, and lets the next holder in', async () => {
    const prefix = uniquePrefix('loss')
    const a = managerOn(prefix)
    const b = managerOn(prefix)
    const revoked = await a.acquire('r', 'a')
    expect(revoked).toBeInstanceOf(EtcdLease)
    await adminClient().leaseClient.leaseRevoke({ ID: (revoked as EtcdLease).leaseId })
    await lost(revoked)
    expect(revoked.isValid()).toBe(false)
    expect(abortedWith(revoked.signal)).toBe('E_FENCED')
    const taken = await b.acquire('r', 'b')
    expect(taken.token.value).toBeGreaterThan(revoked.token.value)

    await adminClient().delete().key(new EtcdKeys(prefix).lease('r'))
    await lost(taken)
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
    await expect(b.acquire('w', 'b', { waitMs: 300 })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CONFLICT') && e.details['holder'] === 'a')
    expect(b.held()).toEqual([])
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    await expect(b.acquire('w', 'b', { waitMs: 10_000, signal: controller.signal })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_ABORTED'))
    expect(held.isValid()).toBe(true)
    await held.release()
  })

  it('treats the same holder name as another holder unless asked to take over, which ends the old lease with a higher token', async () => {
    const prefix = uniquePrefix('same')
    const a = managerOn(prefix)
    const a2 = managerOn(prefix)
    const old = await a.acquire('x', 'coordinator-1')
    await expect(a2.acquire('x', 'coordinator-1')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CONFLICT') && e.details['holder'] === 'coordinator-1')
    expect(old.isValid()).toBe(true)
    const fresh = await a2.acquire('x', 'coordinator-1', { takeOver: true })
    expect(fresh.token.value).toBeGreaterThan(old.token.value)
    await lost(old)
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
    const one = await createDrSystem({ state: first.state, leases: first.leases, coordinator: 'one', leaseTtlMs: TTL_MS, sites: sites() })
    await expect(createDrSystem({ state: second.state, leases: second.leases, coordinator: 'two', leaseTtlMs: TTL_MS, sites: sites() })).rejects.toSatisfy(
      (e: unknown) => isDrError(e, 'E_CONFLICT'),
    )
    const token = one.token()
    await one.close()
    expect(first.leases.held()).toEqual([])
    await expect(first.state.version('x')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CLOSED'))
    const two = await createDrSystem({ state: second.state, leases: second.leases, coordinator: 'two', leaseTtlMs: TTL_MS, sites: sites() })
    expect(two.token().value).toBeGreaterThan(token.value)
    await two.close()
  })

  it('binds a system\'s journal to its etcd lease: once deposed, the coordinator can no longer write it', async () => {
    const prefix = cluster.prefix('deposed')
    const first = etcdCoordination({ hosts: etcdEndpoints(), prefix })
    const second = etcdCoordination({ hosts: etcdEndpoints(), prefix })
    const one = await createDrSystem({ state: first.state, leases: first.leases, coordinator: 'one', leaseTtlMs: TTL_MS, sites: { east: { storage: memoryStorage() } } })
    const waiting: LeaseManager = { acquire: (scope, holder, options) => second.leases.acquire(scope, holder, { ...options, waitMs: 60_000 }) }
    const taking = createDrSystem({ state: second.state, leases: waiting, coordinator: 'two', leaseTtlMs: TTL_MS, sites: { east: { storage: memoryStorage() } } })
    // etcd ends the first coordinator's lease (its keep-alives stopped during a pause, say); the second takes over.
    const [held] = first.leases.held()
    await adminClient().leaseClient.leaseRevoke({ ID: held?.leaseId ?? '0' })
    const two = await taking
    await expect(first.state.append('anything', 0, [{ type: 't', data: 1 }])).rejects.toMatchObject({ code: 'E_FENCED', details: { scope: 'drkit/system' } })
    await expect(first.state.saveSnapshot({ stream: 'anything', version: 0, state: null })).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(await second.state.listStreams('anything')).toEqual([])
    await Promise.all([one.close(), two.close()])
  })

  it('refuses to start a system whose etcd journal is not bound to an etcd lease of the same prefix (in-process leases)', async () => {
    const { state } = etcdCoordination({ hosts: etcdEndpoints(), prefix: cluster.prefix('mismatch') })
    await expect(createDrSystem({ state, sites: { east: { storage: memoryStorage() } } })).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(await state.listStreams('')).toEqual([])
    await state.close()
  })
})
