import { DrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { PoolLock } from './pool-lock.js'
import type { PoolMetadata } from './pool-metadata.js'
import type { PoolState, SnapshotState, VolumeState } from './pool-state.js'
import type { LogRecord } from './records.js'
import { VolumeIo } from './volume-io.js'

/**
 * An open pool: its metadata, its lock, and the I/O discipline of each volume. The port's operations are
 * written against this; it also persists every new highest fence token, so a restart does not forget them.
 */
export class LocalPool {
  /** Crash-safe metadata of the pool. */
  readonly metadata: PoolMetadata
  /** The pool directory lock held while open. */
  readonly lock: PoolLock
  readonly #ios = new Map<VolumeState, VolumeIo>()

  constructor(metadata: PoolMetadata, lock: PoolLock) {
    this.metadata = metadata
    this.lock = lock
  }

  /** The pool as of every committed change. */
  get state(): PoolState {
    return this.metadata.state
  }

  /** The lock and fence of `volume` (one per volume incarnation: a re-created name gets a fresh one). */
  io(volume: VolumeState): VolumeIo {
    let io = this.#ios.get(volume)
    if (io === undefined) {
      io = new VolumeIo()
      this.#ios.set(volume, io)
    }
    return io
  }

  /** Forgets a deleted volume's I/O state, failing the I/O still deferred by its fence. */
  dropIo(volume: VolumeState): void {
    this.#ios.get(volume)?.abort(
      new DrError('E_NOT_FOUND', `local: volume "${volume.name}" was deleted`, { adapter: 'local', volume: volume.name }),
    )
    this.#ios.delete(volume)
  }

  /** Fails every deferred I/O of every volume (the adapter is closing). */
  abortAll(error: DrError): void {
    for (const io of this.#ios.values()) io.abort(error)
  }

  /**
   * Checks the caller's fence token before anything changes (`E_FENCED` when stale) and logs a new highest
   * value; the log record is durable no later than the change that follows it.
   */
  authorize(token: FenceToken, operation: string): void {
    this.#raise(token, operation)?.catch(() => undefined)
  }

  /** Like {@link LocalPool.authorize}, but resolves only once a raised token is durable. */
  async authorizeDurably(token: FenceToken, operation: string): Promise<void> {
    await this.#raise(token, operation)
  }

  /** Checks `token`; when it raises the scope's highest value, returns the commit of the new value. */
  #raise(token: FenceToken, operation: string): Promise<void> | undefined {
    const before = this.state.guard.highest(token?.scope)
    this.state.guard.check(token, operation)
    return before === token.value ? undefined : this.metadata.commit({ op: 'token', scope: token.scope, value: token.value })
  }

  /** Applies a change and resolves once it is durable. */
  commit(record: LogRecord): Promise<void> {
    return this.metadata.commit(record)
  }

  /** Applies several records as one change that a crash keeps whole or drops whole; resolves once it is durable. */
  commitAll(records: readonly LogRecord[]): Promise<void> {
    return this.metadata.commitAll(records)
  }

  /**
   * Runs a map change that may free slots under the volume's exclusive lock (so no read is using them), then
   * waits for it to be durable outside the lock. `change` re-checks its preconditions and commits.
   */
  async exclusive(volume: VolumeState, change: () => Promise<void>): Promise<void> {
    const unlock = await this.io(volume).lock('exclusive')
    let durable: Promise<void>
    try {
      this.current(volume)
      durable = change()
    } finally {
      unlock()
    }
    await durable
  }

  /** `E_NOT_FOUND` unless `volume` is still the pool's volume of that name (it may have gone while waiting). */
  current(volume: VolumeState): VolumeState {
    if (this.state.volumes.get(volume.name) !== volume) {
      throw new DrError('E_NOT_FOUND', `local: volume "${volume.name}" does not exist`, { adapter: 'local', volume: volume.name })
    }
    return volume
  }

  /** `E_NOT_FOUND` unless `snapshot` still belongs to `volume`. */
  currentSnapshot(volume: VolumeState, snapshot: SnapshotState): SnapshotState {
    if (this.current(volume).snapshots.get(snapshot.name) !== snapshot) {
      throw new DrError('E_NOT_FOUND', `local: snapshot "${volume.name}@${snapshot.name}" does not exist`, {
        adapter: 'local',
        volume: volume.name,
        snapshot: snapshot.name,
      })
    }
    return snapshot
  }
}
