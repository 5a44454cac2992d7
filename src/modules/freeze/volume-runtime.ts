import { DrError, callAdapter } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Clock } from '../../kernel/clock.js'
import type { StoragePort } from '../../ports/storage.js'
import { IoGate, type InterceptDecision } from './io-gate.js'
import { retrying } from './retrying.js'
import type { CachedWrite, WriteBackCache } from './write-cache.js'
import type { ProtectionRecord } from './state.js'

/**
 * What a volume handle registers with its volume: its id, the application it belongs to and its write cache.
 *
 * @public
 */
export interface HandleLink {
  readonly id: string
  readonly actor: string | null
  readonly cache: WriteBackCache
}

/**
 * What a {@link VolumeRuntime} needs: the clock, the protection it serves (read fresh on every call), storage and
 * the fence token, what to do with an operation's failure (hold it for a restore, or let it through), and what to
 * do when held I/O times out.
 *
 * @public
 */
export interface VolumeRuntimeDeps {
  readonly key: string
  readonly clock: Clock
  readonly protection: () => ProtectionRecord
  readonly storage: () => StoragePort
  readonly token: () => FenceToken
  readonly intercept: InterceptDecision
  readonly onTimeout: (released: number) => void
}

/**
 * The in-memory side of one protected volume in this process: its I/O gate, the handles open on it (and so the
 * acknowledged writes they cache), the write order counter, when writes were last flushed to the volume, and the
 * restore that is running for it. Nothing here is durable: after a restart the module rebuilds it, and a resumed
 * restore relies on the journal alone.
 *
 * @public
 */
export class VolumeRuntime {
  readonly key: string
  readonly gate: IoGate
  readonly clock: Clock
  /** When this runtime started seeing flushes (flushes before it are unknown). */
  readonly trackedSince: number
  readonly #deps: VolumeRuntimeDeps
  readonly #handles = new Map<string, HandleLink>()
  #seq = 0
  #handleCount = 0
  #lastFlushAt: number | null = null
  #sizeBytes: number | undefined
  /** The restore detections coalesce into, until it opens the gate. */
  active: { readonly restoreId: string; readonly done: Promise<unknown> } | undefined
  /** Restores of this volume run one after the other. */
  chain: Promise<unknown> = Promise.resolve()
  /** Writes journaled by restore `restoreId` that this process's caches still hold. */
  journaled: { readonly restoreId: string; readonly seqs: ReadonlySet<number> } | undefined
  /** Cancels what the running restore armed in memory (actor timeouts, the late-joiner sweep). */
  readonly disarm = new Set<() => void>()
  /** `restoreId/actor` of the actors a restore released already (each is released exactly once). */
  readonly releasedActors = new Set<string>()
  /** The restore whose thaw has begun: no actor joins it any more. */
  thawing: string | undefined
  /** Freezes and thaws of this volume's actors, one at a time. */
  #actorQueue: Promise<unknown> = Promise.resolve()
  /** When the automatic restores of the current window started. */
  #autoRestores: number[] = []
  /** True once the current window's limit was reported. */
  #limitReported = false

  constructor(deps: VolumeRuntimeDeps) {
    this.#deps = deps
    this.key = deps.key
    this.clock = deps.clock
    this.trackedSince = deps.clock.now()
    this.gate = new IoGate({
      clock: deps.clock,
      timeoutMs: deps.protection().freezeTimeoutMs,
      onTimeout: deps.onTimeout,
      timeoutError: (waitedMs) =>
        new DrError('E_TIMEOUT', `volume ${deps.key} stayed frozen for ${waitedMs} ms, longer than its freeze timeout; the restore goes on`, {
          key: deps.key,
          waitedMs,
        }),
    })
  }

  /** The protection as it stands now. */
  get protection(): ProtectionRecord {
    return this.#deps.protection()
  }

  /** The storage port of the volume's site. */
  storage(): StoragePort {
    return this.#deps.storage()
  }

  /** The caller's fence token. */
  token(): FenceToken {
    return this.#deps.token()
  }

  /**
   * Runs one storage call of an application operation against the volume backing the protection now, retrying a
   * transient failure (`FREEZE_RETRY`) before it counts: one lost reply is not a disruption.
   */
  call<R>(operation: string, run: (storage: StoragePort, volume: string) => Promise<R>): Promise<R> {
    return retrying(this.clock, () => {
      const storage = this.storage()
      const volume = this.protection.activeVolume
      return callAdapter(storage.kind, operation, () => run(storage, volume))
    })
  }

  /**
   * Runs one application operation through the gate; disruptions are held, not failed. While the volume is kept
   * dismounted after a failed restore, the operation fails with `E_UNAVAILABLE` (reason `dismounted`) instead of
   * reaching data that may be damaged.
   */
  io<T>(op: () => Promise<T>): Promise<T> {
    return this.gate.run(() => {
      if (this.protection.dismounted === true) {
        return Promise.reject(
          new DrError('E_UNAVAILABLE', `volume ${this.key} is dismounted: a restore failed while it was changing its data; restore it to mount it again`, {
            key: this.key,
            reason: 'dismounted',
          }),
        )
      }
      return op()
    }, this.#deps.intercept)
  }

  /** The next write order number of the volume. */
  nextSeq(): number {
    return this.#seq++
  }

  /** A fresh handle id. */
  nextHandleId(): string {
    return `h${++this.#handleCount}`
  }

  /** Registers an open handle; `E_CONFLICT` if its id is taken. */
  register(link: HandleLink): void {
    if (this.#handles.has(link.id)) throw new DrError('E_CONFLICT', `a handle "${link.id}" is open on volume ${this.key} already`, { key: this.key, handle: link.id })
    this.#handles.set(link.id, link)
  }

  /** Forgets a closed handle. */
  unregister(id: string): void {
    this.#handles.delete(id)
  }

  /** The open handles. */
  handles(): readonly HandleLink[] {
    return [...this.#handles.values()]
  }

  /** Every write the open handles cache, in the order the application made them. */
  cachedWrites(): readonly CachedWrite[] {
    return this.handles()
      .flatMap((link) => link.cache.pending())
      .sort((a, b) => a.seq - b.seq)
  }

  /** Forgets cached writes that are on the volume now (replayed after a restore). */
  forgetWrites(seqs: ReadonlySet<number>): void {
    for (const link of this.#handles.values()) link.cache.remove(seqs)
  }

  /** Notes that cached writes reached the volume at `at`. */
  noteFlush(at: number): void {
    this.#lastFlushAt = at
  }

  /**
   * Whether writes may have reached the volume after `restorePointAt` and so are missing from data restored to that
   * point: known when this runtime saw every flush since then, else assumed (true).
   */
  flushedSince(restorePointAt: number): boolean {
    if (restorePointAt < this.trackedSince) return true
    return this.#lastFlushAt !== null && this.#lastFlushAt >= restorePointAt
  }

  /** The size of the volume now backing the protection (asked once, then kept until {@link VolumeRuntime.knowSize}). */
  async sizeBytes(): Promise<number> {
    if (this.#sizeBytes === undefined) this.#sizeBytes = (await this.call('volumeInfo', (storage, volume) => storage.volumeInfo(volume))).sizeBytes
    return this.#sizeBytes
  }

  /** The backing volume changed or was restored: its size is `sizeBytes` (undefined: unknown, asked next time). */
  knowSize(sizeBytes: number | undefined): void {
    this.#sizeBytes = sizeBytes
  }

  /**
   * Counts an automatic restore about to start at `now` against `limit`: `admitted` (counted), or, when the
   * window is full, `limited` the first time (to be reported) and `limitedAgain` after that.
   */
  admitAutoRestore(limit: { readonly restores: number; readonly windowMs: number }, now: number): 'admitted' | 'limited' | 'limitedAgain' {
    this.#autoRestores = this.#autoRestores.filter((at) => at > now - limit.windowMs)
    if (this.#autoRestores.length < limit.restores) {
      this.#autoRestores.push(now)
      this.#limitReported = false
      return 'admitted'
    }
    if (this.#limitReported) return 'limitedAgain'
    this.#limitReported = true
    return 'limited'
  }

  /** Runs `work` (a freeze or thaw of actors) after every earlier one has settled. */
  withActors<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#actorQueue.then(work, work)
    this.#actorQueue = run.catch(() => undefined)
    return run
  }

  /** Cancels everything the running restore armed in memory. */
  disarmAll(): void {
    for (const cancel of this.disarm) cancel()
    this.disarm.clear()
  }

  /** Forgets which actors restore `restoreId` released, once it has ended. */
  forgetReleased(restoreId: string): void {
    for (const key of this.releasedActors) if (key.startsWith(`${restoreId}/`)) this.releasedActors.delete(key)
  }
}
