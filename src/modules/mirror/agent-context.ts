import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { NetworkPort } from '../../ports/network.js'
import type { SnapshotInfo, StoragePort } from '../../ports/storage.js'
import type { MirrorEvents } from './events.js'
import { MIRROR_LABEL, baseHold, parseDeltaSetSnapshot } from './naming.js'
import type { BufferPool } from '../../kernel/buffer-pool.js'

/**
 * What a site's mirror agent works with: its site name, storage and network, the kernel clock, the fence token
 * source, where to publish events, and the buffers its delta sets are sent from.
 *
 * @public
 */
export interface AgentContext {
  readonly site: string
  readonly storage: StoragePort
  readonly network: NetworkPort
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly events: EventSink<MirrorEvents>
  /** The buffers the site's source sessions build chunk frames in (shared, so idle memory is bounded per site). */
  readonly sendBuffers: BufferPool
}

/** Runs a storage call of `ctx`, wrapping failures as `E_ADAPTER` with the adapter and operation. */
export function store<R>(ctx: AgentContext, operation: string, run: (storage: StoragePort) => Promise<R>): Promise<R> {
  return callAdapter(ctx.storage.kind, operation, () => run(ctx.storage))
}

/** Runs a storage call and turns `E_NOT_FOUND` into undefined. */
export async function storeOptional<R>(ctx: AgentContext, operation: string, run: (storage: StoragePort) => Promise<R>): Promise<R | undefined> {
  try {
    return await store(ctx, operation, run)
  } catch (error) {
    if (isDrError(error, 'E_NOT_FOUND')) return undefined
    throw error
  }
}

/**
 * A delta-set snapshot of a session found on a volume: its number, name and labels.
 *
 * @public
 */
export interface DeltaSetSnapshot {
  readonly n: number
  readonly info: SnapshotInfo
}

/** The delta-set snapshots of `session` on `volume`, ascending by number. */
export async function deltaSetSnapshots(ctx: AgentContext, volume: string, session: string): Promise<DeltaSetSnapshot[]> {
  const infos = await store(ctx, 'listSnapshots', (s) => s.listSnapshots(volume))
  const found: DeltaSetSnapshot[] = []
  for (const info of infos) {
    const n = parseDeltaSetSnapshot(session, info.name)
    if (n !== undefined && info.labels[MIRROR_LABEL.session] === session) found.push({ n, info })
  }
  return found.sort((a, b) => a.n - b.n)
}

/**
 * Keeps only what a side still needs of a session's delta-set snapshots: holds `keep` as the base and deletes
 * every older delta-set snapshot (releasing the base hold first; snapshots others hold stay).
 */
export async function retainDeltaSets(ctx: AgentContext, volume: string, session: string, keep: number): Promise<void> {
  const tag = baseHold(session)
  for (const snap of await deltaSetSnapshots(ctx, volume, session)) {
    if (snap.n === keep) {
      if (!snap.info.holds.includes(tag)) await store(ctx, 'holdSnapshot', (s) => s.holdSnapshot(volume, snap.info.name, tag, ctx.token()))
      continue
    }
    if (snap.n > keep) continue
    if (snap.info.holds.includes(tag)) await store(ctx, 'releaseSnapshot', (s) => s.releaseSnapshot(volume, snap.info.name, tag, ctx.token()))
    if (snap.info.holds.some((h) => h !== tag)) continue
    await store(ctx, 'deleteSnapshot', (s) => s.deleteSnapshot(volume, snap.info.name, ctx.token())).catch((error: unknown) => {
      if (!isDrError(error, 'E_NOT_FOUND') && !isDrError(error, 'E_PRECONDITION')) throw error
    })
  }
}

/**
 * A promise that settles when `notify` is called enough: waiters on a numeric progress value.
 */
export class ProgressWaiters {
  #waiters: Array<{ target: number; resolve: () => void; reject: (error: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }> = []

  /** Resolves once `current()` reaches `target`, rejects when `signal` aborts. */
  wait(current: () => number | null, target: number, signal?: AbortSignal): Promise<void> {
    const value = current()
    if (value !== null && value >= target) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const entry = {
        target,
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#waiters = this.#waiters.filter((w) => w !== entry)
          reject(abortError(signal))
        },
      }
      if (signal?.aborted === true) return reject(abortError(signal))
      signal?.addEventListener('abort', entry.onAbort, { once: true })
      this.#waiters.push(entry)
    })
  }

  /** Wakes every waiter whose target `value` reaches. */
  notify(value: number | null): void {
    if (value === null) return
    const due = this.#waiters.filter((w) => w.target <= value)
    this.#waiters = this.#waiters.filter((w) => w.target > value)
    for (const w of due) {
      w.signal?.removeEventListener('abort', w.onAbort)
      w.resolve()
    }
  }

}

/** The `E_ABORTED` error for an aborted signal (its reason kept when it is already a DrError). */
export function abortError(signal: AbortSignal | undefined): DrError {
  const reason: unknown = signal?.reason
  if (reason instanceof DrError) return reason
  return new DrError('E_ABORTED', 'operation aborted', { reason: String(reason) })
}
