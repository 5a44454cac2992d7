import { NonNegativeInt } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError } from '../../kernel/errors.js'
import { WriteBackCache } from './write-cache.js'
import type { VolumeRuntime } from './volume-runtime.js'

/**
 * How a handle caches writes (decoded from the `cache` open option).
 *
 * @public
 */
export interface HandleCachePolicy {
  readonly mode: 'writeBack' | 'writeThrough'
  readonly flushEveryMs: number | null
  readonly maxDirtyBytes: number
}

/**
 * The default cache policy: write-back, flushed every 5 s or beyond 4 MiB dirty.
 *
 * @public
 */
export const DEFAULT_CACHE_POLICY: HandleCachePolicy = { mode: 'writeBack', flushEveryMs: 5000, maxDirtyBytes: 4 * 1024 * 1024 }

/**
 * A protected volume as an application uses it: block reads and writes at byte offsets, `flush` and `close`.
 * Every call passes the volume's I/O gate, so while a restore freezes the volume calls wait (in arrival order) and
 * run against the restored volume after the thaw; a transient storage failure is retried, and a failure that is a
 * disruption is held and starts a restore instead of reaching the application. With the default write-back cache a
 * write is acknowledged once cached; cached writes are flushed in order, and journaled and replayed around a
 * restore, so an acknowledged write is never lost to it. A call rejects (with a `DrError`) only for the caller's
 * own mistakes, for a failure of its own while the volume answers its probe, when the volume could not be restored
 * (or is kept dismounted after a restore failed), with `E_UNAVAILABLE` when it fails again after the restore that
 * re-ran it, and with `E_TIMEOUT` when it waited longer than the volume's freeze timeout.
 *
 * @public
 */
export class VolumeHandle {
  /** The handle's id among the volume's handles. */
  readonly id: string
  /** The site of the volume. */
  readonly site: string
  /** The protected volume (its name when protected; a standby may back it now). */
  readonly volume: string
  /** Where the volume is mounted. */
  readonly mountPath: string
  /** The application the handle belongs to, if given. */
  readonly actor: string | null
  readonly #runtime: VolumeRuntime
  readonly #policy: HandleCachePolicy
  readonly #cache = new WriteBackCache()
  #flushing: Promise<void> = Promise.resolve()
  #closed = false
  #cancelTimer: (() => void) | undefined

  /** Opened by `FreezeFacade.open`. */
  constructor(runtime: VolumeRuntime, options: { readonly id: string; readonly actor: string | null; readonly policy: HandleCachePolicy }) {
    const protection = runtime.protection
    this.id = options.id
    this.site = protection.site
    this.volume = protection.volume
    this.mountPath = protection.mountPath
    this.actor = options.actor
    this.#runtime = runtime
    this.#policy = options.policy
    runtime.register({ id: this.id, actor: this.actor, cache: this.#cache })
    this.#arm()
  }

  /** Bytes written and acknowledged but not yet on the volume. */
  get dirtyBytes(): number {
    return this.#cache.dirtyBytes
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed
  }

  /** Reads `length` bytes at `offset`: the volume's data with this handle's cached writes over it. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    const at = decode(NonNegativeInt, offset, 'read offset')
    const size = decode(NonNegativeInt, length, 'read length')
    return this.#io(async () => {
      await this.#inside(at, size)
      const writes = this.#cache.pending()
      if (this.#cache.covers(at, size, writes)) return this.#cache.overlay(at, size, undefined, writes)
      const base = await this.#runtime.call('read', (storage, volume) => storage.read(volume, at, size))
      return this.#cache.overlay(at, size, base, writes)
    })
  }

  /** Writes `data` at `offset`. With write-back caching it is acknowledged once cached, else once on the volume. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const at = decode(NonNegativeInt, offset, 'write offset')
    if (!(data instanceof Uint8Array)) {
      throw new DrError('E_INVALID_INPUT', 'invalid write data: field "data" must be a Uint8Array', { what: 'write data', violations: [{ path: 'data', expected: 'Uint8Array', actual: typeof data }] })
    }
    // The caller's mistake, checked before the gate: it must never look like a disruption to restore from.
    if (this.#runtime.protection.readOnly) throw new DrError('E_PRECONDITION', `volume ${this.#runtime.key} is mounted read-only`, { key: this.#runtime.key })
    const bytes = data.slice()
    return this.#io(async () => {
      await this.#inside(at, bytes.length)
      if (this.#policy.mode === 'writeThrough') {
        await this.#locked(() => this.#writeThrough(at, bytes))
        return
      }
      this.#cache.put(this.#runtime.nextSeq(), at, bytes, this.#runtime.clock.now())
      if (this.#cache.dirtyBytes > this.#policy.maxDirtyBytes) await this.#locked(() => this.#flushCache())
    })
  }

  /** Writes every cached write to the volume, in order, and resolves once they are all there. */
  flush(): Promise<void> {
    return this.#io(() => this.#locked(() => this.#flushCache()))
  }

  /** Flushes and closes the handle. Later calls reject with `E_CLOSED`; closing twice is a no-op. */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.flush()
    this.#closed = true
    this.#cancelTimer?.()
    this.#runtime.unregister(this.id)
  }

  #io<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new DrError('E_CLOSED', `handle "${this.id}" of volume ${this.#runtime.key} is closed`, { handle: this.id }))
    return this.#runtime.io(op)
  }

  async #inside(offset: number, length: number): Promise<void> {
    const size = await this.#runtime.sizeBytes()
    if (offset + length > size) {
      throw new DrError('E_INVALID_INPUT', `range [${offset}, ${offset + length}) is past the end of volume ${this.#runtime.key} (${size} bytes)`, {
        key: this.#runtime.key,
        offset,
        length,
        sizeBytes: size,
      })
    }
  }

  /** Flushes run one at a time, so that writes reach the volume in the order they were made. */
  #locked(work: () => Promise<void>): Promise<void> {
    const run = this.#flushing.then(work)
    this.#flushing = run.catch(() => undefined)
    return run
  }

  async #flushCache(): Promise<void> {
    for (const write of this.#cache.pending()) {
      await this.#writeThrough(write.offset, write.data)
      this.#cache.remove(new Set([write.seq]))
    }
  }

  async #writeThrough(offset: number, data: Uint8Array): Promise<void> {
    await this.#runtime.call('write', (storage, volume) => storage.write(volume, offset, data, this.#runtime.token()))
    this.#runtime.noteFlush(this.#runtime.clock.now())
  }

  #arm(): void {
    const every = this.#policy.flushEveryMs
    if (every === null || this.#policy.mode === 'writeThrough' || this.#closed) return
    this.#cancelTimer = this.#runtime.clock.setTimer(every, () => {
      this.#cancelTimer = undefined
      if (this.#closed) return
      const background = this.#cache.size === 0 ? Promise.resolve() : this.#io(() => this.#locked(() => this.#flushCache()))
      // A background flush that fails leaves the writes cached; the next flush tries again.
      void background.catch(() => undefined).then(() => this.#arm())
    })
  }
}
