import { performance } from 'node:perf_hooks'
import type { ILeaseKeepAliveResponse, IKeyValue, Watcher } from 'etcd3'
import { DrError } from '../../kernel/errors.js'
import type { FenceToken, Lease } from '../../kernel/fencing.js'
import type { EtcdConnection } from './etcd-connection.js'

/**
 * Local validity is cut short by this fraction of the TTL, for clock-rate differences between this machine and
 * the etcd leader (etcd itself only ever extends a lease, on leader change).
 */
const SAFETY = 0.02

/**
 * What an {@link EtcdLease} is made of once the leadership key was created.
 *
 * @public
 */
export interface EtcdLeaseGrant {
  readonly connection: EtcdConnection
  readonly scope: string
  readonly holder: string
  readonly key: Buffer
  /** The etcd lease id the key is attached to. */
  readonly leaseId: string
  /** The TTL etcd granted, in seconds (at least the cluster's minimum). */
  readonly ttlSeconds: number
  /** `performance.now()` when the grant request was sent: validity counts from there. */
  readonly grantedAt: number
  /** The create revision of the leadership key. */
  readonly token: number
  /** Called once when the lease ends, however it ends. */
  readonly onEnd: (lease: EtcdLease) => void
}

/**
 * A lease held through etcd: a leadership key created only if absent and attached to an etcd lease that is kept
 * alive every third of its TTL. The fence token is the key's create revision, which etcd makes strictly greater
 * for every later holder of the scope. `signal` aborts with `E_FENCED` when a keep-alive says the etcd lease is
 * gone, when no keep-alive was acknowledged within the TTL (counted from when it was sent, so a process that was
 * paused or partitioned knows it lost the lease before etcd could tell it), or when the key is deleted or
 * replaced (watched); `isValid()` checks the same deadline synchronously, so a coordinator resumed after a pause
 * stops before its next step.
 *
 * @public
 */
export class EtcdLease implements Lease {
  /** The scope this lease leads. */
  readonly scope: string
  /** Who holds the lease. */
  readonly holder: string
  /** The fence token every mutating adapter call of the holder carries. */
  readonly token: FenceToken
  /** The etcd lease id the leadership key is attached to. */
  readonly leaseId: string
  readonly #grant: EtcdLeaseGrant
  readonly #controller = new AbortController()
  readonly #ttlMs: number
  #validUntil: number
  #keepAliveTimer: NodeJS.Timeout | undefined
  #expiryTimer: NodeJS.Timeout | undefined
  #watcher: Watcher | undefined
  #inFlight: Promise<boolean> | undefined

  /** Made by {@link EtcdLeaseManager.acquire}; starts keep-alives and the watch at once. */
  constructor(grant: EtcdLeaseGrant) {
    this.#grant = grant
    this.scope = grant.scope
    this.holder = grant.holder
    this.leaseId = grant.leaseId
    this.token = { scope: grant.scope, value: grant.token }
    this.#ttlMs = grant.ttlSeconds * 1000
    this.#validUntil = grant.grantedAt + this.#ttlMs * (1 - SAFETY)
    this.#armExpiry()
    this.#keepAliveTimer = setInterval(() => void this.#keepAlive(), Math.max(100, Math.floor(this.#ttlMs / 3)))
    this.#keepAliveTimer.unref()
    this.#watch(grant.token + 1)
  }

  /** Aborts (with `E_FENCED`) when the lease is lost. */
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** True while the lease is held. */
  isValid(): boolean {
    return !this.#controller.signal.aborted && performance.now() < this.#validUntil
  }

  /**
   * Renews the lease. Resolves while the lease is still held, even if etcd could not be reached this
   * time (keep-alives continue in the background until the TTL runs out).
   */
  async renew(): Promise<void> {
    if (!this.isValid()) throw this.#fenced('was lost')
    await this.#keepAlive()
    if (!this.isValid()) throw this.#fenced('was lost')
  }

  /**
   * Gives the lease up. Deletes the leadership key (only if it is still this lease's) and revokes the
   * etcd lease; if etcd cannot be reached the key goes away by itself when the TTL runs out.
   */
  async release(): Promise<void> {
    if (this.#controller.signal.aborted) return
    this.#end('was released')
    await this.#cleanUp()
  }

  /** Ends the lease locally with `why` (used by the manager on close). */
  abandon(why: string): void {
    this.#end(why)
  }

  #fenced(why: string): DrError {
    return new DrError('E_FENCED', `etcd lease for "${this.scope}" held by "${this.holder}" ${why}`, {
      scope: this.scope,
      holder: this.holder,
      token: this.token.value,
    })
  }

  #end(why: string): void {
    if (this.#controller.signal.aborted) return
    clearInterval(this.#keepAliveTimer)
    clearTimeout(this.#expiryTimer)
    const watcher = this.#watcher
    this.#watcher = undefined
    if (watcher !== undefined) void watcher.cancel().catch(() => undefined)
    this.#controller.abort(this.#fenced(why))
    this.#grant.onEnd(this)
  }

  /** Ends the lease and makes sure etcd lets the next holder in without waiting for the TTL. */
  #lose(why: string): void {
    if (this.#controller.signal.aborted) return
    this.#end(why)
    void this.#cleanUp()
  }

  async #cleanUp(): Promise<void> {
    const { connection, key, token, leaseId } = this.#grant
    if (connection.closed) return
    // Past one TTL the key is gone anyway: do not hold up a close for longer than that.
    const options = { deadline: Date.now() + Math.min(this.#ttlMs, connection.callTimeoutMs) }
    try {
      await connection.client.kv.txn(
        { compare: [{ key, target: 'Create', result: 'Equal', create_revision: token }], success: [{ request_delete_range: { key } }] },
        options,
      )
      await connection.client.leaseClient.leaseRevoke({ ID: leaseId }, options)
    } catch {
      // Unreachable etcd or an etcd lease already gone: the TTL removes the key either way.
    }
  }

  #armExpiry(): void {
    clearTimeout(this.#expiryTimer)
    this.#expiryTimer = setTimeout(() => {
      if (performance.now() >= this.#validUntil) this.#lose(`expired: no keep-alive was acknowledged within its ${this.#ttlMs} ms TTL`)
      else this.#armExpiry()
    }, Math.max(0, this.#validUntil - performance.now()))
    this.#expiryTimer.unref()
  }

  /** One keep-alive; resolves true if etcd extended the lease. Concurrent calls share one request. */
  #keepAlive(): Promise<boolean> {
    this.#inFlight ??= this.#sendKeepAlive().finally(() => {
      this.#inFlight = undefined
    })
    return this.#inFlight
  }

  async #sendKeepAlive(): Promise<boolean> {
    if (this.#controller.signal.aborted) return false
    const sentAt = performance.now()
    if (sentAt >= this.#validUntil) {
      // Once past its deadline a lease stays lost, even if etcd has not expired it yet: callers may have acted on it.
      this.#lose(`expired: no keep-alive was acknowledged within its ${this.#ttlMs} ms TTL`)
      return false
    }
    let response: ILeaseKeepAliveResponse
    try {
      response = await this.#keepAliveRequest()
    } catch {
      return false
    }
    const ttl = Number(response.TTL)
    if (!(ttl > 0)) {
      this.#lose('expired: etcd no longer knows its etcd lease')
      return false
    }
    if (this.#controller.signal.aborted) return false
    this.#validUntil = Math.max(this.#validUntil, sentAt + ttl * 1000 * (1 - SAFETY))
    this.#armExpiry()
    return true
  }

  /**
   * Opens a keep-alive stream, sends one keep-alive and waits for its answer, all within half the TTL: a stream that
   * never opens must not hold up every later keep-alive (they share one request in flight).
   */
  async #keepAliveRequest(): Promise<ILeaseKeepAliveResponse> {
    const { connection, leaseId } = this.#grant
    const opening = connection.client.leaseClient.leaseKeepAlive()
    let timer: NodeJS.Timeout | undefined
    let finished = false
    try {
      return await new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
        timer = setTimeout(() => reject(new DrError('E_TIMEOUT', 'etcd keep-alive timed out')), Math.max(200, this.#ttlMs / 2))
        opening.then((stream) => {
          if (finished) return
          stream.on('data', resolve)
          stream.on('error', reject)
          stream.write({ ID: leaseId })
        }, reject)
      })
    } finally {
      finished = true
      clearTimeout(timer)
      // Ends the stream whenever it opens, even after the deadline.
      opening.then(
        (stream) => stream.end(),
        () => undefined,
      )
    }
  }

  #watch(fromRevision: number): void {
    if (this.#controller.signal.aborted) return
    const { connection, key } = this.#grant
    const watcher = connection.client.watch().key(key).startRevision(String(fromRevision)).watcher()
    this.#watcher = watcher
    watcher.on('delete', () => this.#lose('ended: its leadership key was deleted'))
    watcher.on('put', (kv: IKeyValue) => {
      if (Number(kv.create_revision) !== this.token.value) this.#lose(`was taken over (token ${kv.create_revision})`)
    })
    watcher.on('error', () => {
      if (this.#watcher !== watcher) return
      this.#watcher = undefined
      void watcher.cancel().catch(() => undefined)
      void this.#recheck()
    })
  }

  /** After the watch was cancelled (compaction): checks the key directly, then watches again from there. */
  async #recheck(): Promise<void> {
    const { connection, key } = this.#grant
    while (!this.#controller.signal.aborted && !connection.closed) {
      try {
        const response = await connection.client.kv.range({ key })
        const kv = response.kvs[0]
        if (kv === undefined || Number(kv.create_revision) !== this.token.value) {
          this.#lose('ended: its leadership key is gone')
          return
        }
        this.#watch(Number(response.header.revision) + 1)
        return
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200).unref())
      }
    }
  }
}
