import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import * as t from 'io-ts'
import type { IKeyValue } from 'etcd3'
import { DrError } from '../../kernel/errors.js'
import { NonNegativeInt, PositiveInt } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { StreamName } from '../../kernel/state-store-input.js'
import type { AcquireOptions, Lease, LeaseManager } from '../../kernel/fencing.js'
import { EtcdConnection, EtcdConnectionOptionsCodec, type EtcdConnectionOptions } from './etcd-connection.js'
import { EtcdKeys } from './etcd-keys.js'
import { EtcdLease } from './etcd-lease.js'

/**
 * Options of {@link etcdLeaseManager}: where etcd is (see {@link EtcdConnectionOptions}) and the TTL of leases
 * acquired without one.
 *
 * @public
 */
export interface EtcdLeaseManagerOptions extends EtcdConnectionOptions {
  /**
   * Default lease time-to-live (default 10 s). etcd counts TTLs in whole seconds and has a cluster minimum
   * (1.5 × the election timeout, rounded up: 2 s with etcd's default timings), so the TTL actually granted is
   * rounded up to that.
   */
  readonly ttlMs?: number
}

const EtcdLeaseManagerOptionsCodec = t.intersection([EtcdConnectionOptionsCodec, t.partial({ ttlMs: PositiveInt })], 'EtcdLeaseManagerOptions')

/** A scope or holder name: the rules of a stream name (it becomes part of a key the same way). */
const ScopeText = new t.Type<string, string, unknown>('Scope (1-1024 characters, no control characters)', StreamName.is, StreamName.validate, t.identity)
const isSignal = (u: unknown): u is AbortSignal => u instanceof AbortSignal
const SignalCodec = new t.Type<AbortSignal, AbortSignal, unknown>('AbortSignal', isSignal, (u, c) => (isSignal(u) ? t.success(u) : t.failure(u, c)), t.identity)
const AcquireInput = t.type({
  scope: ScopeText,
  holder: ScopeText,
  options: t.partial({ ttlMs: PositiveInt, waitMs: NonNegativeInt, signal: SignalCodec, takeOver: t.boolean }),
})

const DEFAULT_TTL_MS = 10_000

interface KeyHolder {
  readonly holder: string
  readonly nonce: string
}

function holderOf(kv: IKeyValue): KeyHolder {
  try {
    const parsed = JSON.parse(kv.value.toString('utf8')) as { readonly holder?: unknown; readonly nonce?: unknown }
    return { holder: typeof parsed.holder === 'string' ? parsed.holder : '(unknown)', nonce: typeof parsed.nonce === 'string' ? parsed.nonce : '' }
  } catch {
    return { holder: '(unknown)', nonce: '' }
  }
}

function aborted(signal: AbortSignal | undefined, scope: string): DrError {
  return new DrError('E_ABORTED', `acquiring the lease for "${scope}" was aborted`, { scope, reason: String(signal?.reason) })
}

/**
 * A `LeaseManager` on etcd, for coordinators on several machines: one leader per scope (a site, a
 * relationship, `drkit/system`), elected by creating the scope's key `<prefix>/l/<scope>` only if it is absent,
 * attached to an etcd lease with the requested TTL and kept alive in the background. The fence token is the
 * key's create revision — strictly greater for every later leader, cluster-wide — so adapters behind a
 * `FenceGuard` refuse a deposed leader. `acquire` with `waitMs` watches the key and takes over as soon as it
 * disappears (released, or its holder's TTL ran out), else rejects with `E_CONFLICT`. A key held under the same
 * holder name is another holder's too, unless `takeOver` is asked for: then the old key is deleted and the scope
 * taken at once with a new, higher token (a restarted coordinator reclaiming its scope).
 *
 * @public
 */
export class EtcdLeaseManager implements LeaseManager {
  readonly #connection: EtcdConnection
  readonly #keys: EtcdKeys
  readonly #defaultTtlMs: number
  readonly #held = new Set<EtcdLease>()
  #closed = false

  /**
   * Prefer {@link etcdLeaseManager}. `connection` is shared with other etcd components when given (the manager
   * then releases its use of it on close), created from `options` otherwise.
   */
  constructor(options: EtcdLeaseManagerOptions, shared?: { readonly connection: EtcdConnection }) {
    decode(EtcdLeaseManagerOptionsCodec, options, 'etcdLeaseManager options')
    this.#connection = (shared?.connection ?? new EtcdConnection(options, 'etcdLeaseManager options')).retain()
    this.#keys = new EtcdKeys(this.#connection.prefix)
    this.#defaultTtlMs = options.ttlMs ?? DEFAULT_TTL_MS
  }

  /** The leases this manager holds now. */
  held(): readonly EtcdLease[] {
    return [...this.#held]
  }

  /**
   * Takes the lease of a scope for a holder. Rejects with `E_CONFLICT` (naming the holder) when another holder keeps the
   * scope past `waitMs`, `E_ABORTED` when `signal` aborts, `E_UNAVAILABLE` when etcd cannot be reached, and
   * `E_CLOSED` after {@link EtcdLeaseManager.close}.
   */
  async acquire(scope: string, holder: string, options: AcquireOptions = {}): Promise<Lease> {
    this.#checkOpen('acquire')
    const input = decode(AcquireInput, { scope, holder, options }, 'LeaseManager.acquire input')
    const { signal } = input.options
    const ttlSeconds = Math.max(1, Math.ceil((input.options.ttlMs ?? this.#defaultTtlMs) / 1000))
    const deadline = performance.now() + (input.options.waitMs ?? 0)
    const key = this.#keys.lease(input.scope)
    for (;;) {
      if (signal?.aborted === true) throw aborted(signal, input.scope)
      this.#checkOpen('acquire')
      const current = await this.#call('acquire', () => this.#connection.client.kv.range({ key }))
      const kv = current.kvs[0]
      if (kv !== undefined) {
        const { holder: other } = holderOf(kv)
        if (other !== input.holder || input.options.takeOver !== true) {
          if (performance.now() >= deadline) {
            throw new DrError('E_CONFLICT', `lease for scope "${input.scope}" is held by "${other}"`, { scope: input.scope, holder: other })
          }
          await this.#waitForChange(key, Number(current.header.revision) + 1, deadline, signal, input.scope)
          continue
        }
        // The same holder taking its scope over at once (as MemoryLeaseManager does): end the old key.
        await this.#call('acquire', () =>
          this.#connection.client.kv.txn({
            compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision }],
            success: [{ request_delete_range: { key } }],
          }),
        )
      }
      const lease = await this.#tryCreate(key, input.scope, input.holder, ttlSeconds)
      if (lease !== undefined) return lease
    }
  }

  /** Releases every lease this manager still holds and lets go of the etcd connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      await Promise.all([...this.#held].map((lease) => lease.release()))
    } finally {
      this.#connection.release()
    }
  }

  async #tryCreate(key: Buffer, scope: string, holder: string, ttlSeconds: number): Promise<EtcdLease | undefined> {
    const grantedAt = performance.now()
    const grant = await this.#call('acquire', () => this.#connection.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }))
    const nonce = randomUUID()
    const value = Buffer.from(JSON.stringify({ holder, nonce, lease: grant.ID, at: new Date().toISOString() }))
    let response
    try {
      response = await this.#call('acquire', () =>
        this.#connection.client.kv.txn({
          compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [{ request_put: { key, value, lease: grant.ID } }],
          failure: [{ request_range: { key } }],
        }),
      )
    } catch (error) {
      void this.#revoke(grant.ID)
      throw error
    }
    let token = response.succeeded ? Number(response.header.revision) : undefined
    const existing = response.responses[0]?.response_range?.kvs[0]
    // A retried request whose first attempt created the key fails its compare; the key is then ours.
    if (token === undefined && existing !== undefined && holderOf(existing).nonce === nonce) token = Number(existing.create_revision)
    if (token === undefined) {
      void this.#revoke(grant.ID)
      return undefined
    }
    const lease = new EtcdLease({
      connection: this.#connection,
      scope,
      holder,
      key,
      leaseId: grant.ID,
      ttlSeconds: Number(grant.TTL),
      grantedAt,
      token,
      onEnd: (ended) => this.#held.delete(ended),
    })
    this.#held.add(lease)
    if (this.#closed) {
      await lease.release()
      this.#checkOpen('acquire')
    }
    return lease
  }

  async #revoke(id: string): Promise<void> {
    try {
      await this.#connection.client.leaseClient.leaseRevoke({ ID: id })
    } catch {
      // Expires by itself.
    }
  }

  /** Resolves when the key changes (watched from `fromRevision`) or at `deadline`; rejects when `signal` aborts. */
  async #waitForChange(key: Buffer, fromRevision: number, deadline: number, signal: AbortSignal | undefined, scope: string): Promise<void> {
    const watcher = this.#connection.client.watch().key(key).startRevision(String(fromRevision)).watcher()
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, Math.max(0, deadline - performance.now()))
        const onAbort = (): void => {
          clearTimeout(timer)
          reject(aborted(signal, scope))
        }
        function done(): void {
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        watcher.on('delete', done)
        watcher.on('put', done)
        // A cancelled watch (compaction): look at the key again.
        watcher.on('error', done)
      })
    } finally {
      void watcher.cancel().catch(() => undefined)
    }
  }

  #call<R>(operation: string, run: () => Promise<R>): Promise<R> {
    return this.#connection.call('lease manager', operation, run)
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new DrError('E_CLOSED', `etcd lease manager is closed (${operation})`, { adapter: 'etcd', operation })
  }
}

/**
 * Creates an {@link EtcdLeaseManager}. Nothing is sent to etcd until the first `acquire`. Close it when the
 * coordinator stops (or use {@link etcdCoordination}, whose state store closes it). Throws `E_INVALID_INPUT` on
 * bad options.
 *
 * @public
 */
export function etcdLeaseManager(options: EtcdLeaseManagerOptions): EtcdLeaseManager {
  return new EtcdLeaseManager(options)
}
