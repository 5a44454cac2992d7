import type { Clock } from '../../kernel/clock.js'
import { DrError, callAdapter, isDrError, toDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { ReadSource, StoragePort } from '../../ports/storage.js'
import { blockRuns, chooseCommonSnapshot, type SourceFact } from './decide.js'
import type { RestoreSource } from './inputs.js'
import { retrying } from './retrying.js'

/**
 * Where a replica reference points: the site and volume holding the replica, optionally the snapshot of it to
 * restore (default: its live data) and the snapshot both sides share (default: found by name).
 *
 * @public
 */
export interface ReplicaLocation {
  readonly site: string
  readonly volume: string
  readonly snapshot?: string
  readonly common?: string
}

/**
 * Resolves a `replica` source's reference (e.g. a mirror id) to the volume that holds the replica. The mirror
 * module provides one for its mirror ids; embedders may provide their own.
 *
 * @public
 */
export type ResolveReplica = (ref: string) => Promise<ReplicaLocation>

/**
 * What restoring from a source needs: the site and the volume to restore (the one backing the protection now),
 * the storage of every site, the fence token, the replica resolver, the clock transient failures are retried on,
 * and what to do before the volume's data starts to change.
 *
 * @public
 */
export interface SourceContext {
  readonly site: string
  readonly volume: string
  readonly readOnly: boolean
  readonly storage: (site: string) => StoragePort
  readonly token: () => FenceToken
  readonly resolveReplica: ResolveReplica | undefined
  readonly clock: Clock
  readonly signal: AbortSignal
  /** Called before the first call that changes the volume's data (a rollback, resize, trim or copy). */
  readonly beforeChange?: () => Promise<void>
}

/**
 * The result of a restore from one source: which volume now holds the data (the standby after a swap) and its size,
 * how many blocks were copied, and when the restored data was captured (null: current).
 *
 * @public
 */
export interface SourceOutcome {
  readonly toVolume: string
  readonly sizeBytes: number
  readonly copiedBlocks: number
  readonly restorePointAt: number | null
}

/** Bytes copied per read/write when restoring from a replica. */
const COPY_RUN_BYTES = 1024 * 1024
/** Copies in flight when restoring from a replica. */
const COPY_CONCURRENCY = 4

/**
 * Checks, without changing anything, whether `source` can be used now: the snapshot exists, the replica resolves
 * and answers, the standby is online (and writable unless the mount is read-only) and is not the volume itself.
 *
 * @public
 */
export async function probeSource(ctx: SourceContext, source: RestoreSource): Promise<SourceFact> {
  const storage = ctx.storage(ctx.site)
  const call = <R>(port: StoragePort, operation: string, run: () => Promise<R>): Promise<R> =>
    retrying(ctx.clock, () => callAdapter(port.kind, operation, run), { signal: ctx.signal })
  try {
    switch (source.kind) {
      case 'snapshot':
        await call(storage, 'snapshotInfo', () => storage.snapshotInfo(ctx.volume, source.snapshot))
        break
      case 'replica': {
        const location = await resolve(ctx, source.ref)
        const remote = ctx.storage(location.site)
        const info = await call(remote, 'volumeInfo', () => remote.volumeInfo(location.volume))
        if (!info.online) return unreachable(source, `replica volume ${location.site}/${location.volume} is offline`)
        if (location.snapshot !== undefined) await call(remote, 'snapshotInfo', () => remote.snapshotInfo(location.volume, location.snapshot as string))
        break
      }
      case 'standby': {
        if (source.volume === ctx.volume) return unreachable(source, 'the standby is the volume being restored')
        const info = await call(storage, 'volumeInfo', () => storage.volumeInfo(source.volume))
        if (!info.online) return unreachable(source, `standby volume "${source.volume}" is offline`)
        if (!info.writable && !ctx.readOnly) return unreachable(source, `standby volume "${source.volume}" is read-only`)
        break
      }
    }
    return { source, reachable: true, reason: null }
  } catch (error) {
    return unreachable(source, toDrError(error).message)
  }
}

/**
 * How many blocks of the volume were written or trimmed since `snapshot` of it (null when the storage cannot
 * say): what rolling the volume back to the snapshot would discard.
 *
 * @public
 */
export async function changedSince(ctx: SourceContext, snapshot: string): Promise<number | null> {
  const storage = ctx.storage(ctx.site)
  try {
    const changed = await retrying(ctx.clock, () => callAdapter(storage.kind, 'changedBlocks', () => storage.changedBlocks(ctx.volume, snapshot, 'live')), { signal: ctx.signal })
    return changed.blocks.length + changed.holes.length
  } catch (error) {
    if (isDrError(error, 'E_ABORTED')) throw error
    return null
  }
}

/**
 * Restores the volume from `source`: rolls it back to the snapshot, copies the replica into it, or names the
 * standby that takes its place. Transient adapter failures are retried; the copy is idempotent, so running it
 * again after a crash gives the same data. `ctx.beforeChange` runs before the first call that changes the volume's
 * data (never for a standby, which changes nothing).
 *
 * @public
 */
export async function restoreFrom(ctx: SourceContext, source: RestoreSource): Promise<SourceOutcome> {
  const storage = ctx.storage(ctx.site)
  const retry = <R>(work: () => Promise<R>): Promise<R> => retrying(ctx.clock, work, { signal: ctx.signal })
  switch (source.kind) {
    case 'snapshot': {
      const info = await retry(() => call(storage, 'snapshotInfo', () => storage.snapshotInfo(ctx.volume, source.snapshot)))
      await ctx.beforeChange?.()
      await retry(() => call(storage, 'restoreSnapshot', () => storage.restoreSnapshot(ctx.volume, source.snapshot, ctx.token())))
      return { toVolume: ctx.volume, sizeBytes: info.sizeBytes, copiedBlocks: 0, restorePointAt: info.createdAt }
    }
    case 'standby': {
      const info = await retry(() => call(storage, 'volumeInfo', () => storage.volumeInfo(source.volume)))
      if (!info.online) throw new DrError('E_PRECONDITION', `standby volume "${source.volume}" is offline`, { volume: source.volume })
      return { toVolume: source.volume, sizeBytes: info.sizeBytes, copiedBlocks: 0, restorePointAt: null }
    }
    case 'replica':
      return copyReplica(ctx, await resolve(ctx, source.ref), retry)
  }
}

async function copyReplica(ctx: SourceContext, location: ReplicaLocation, retry: <R>(work: () => Promise<R>) => Promise<R>): Promise<SourceOutcome> {
  const local = ctx.storage(ctx.site)
  const remote = ctx.storage(location.site)
  const target = location.snapshot ?? 'live'
  const remoteInfo = await retry(() => call(remote, 'volumeInfo', () => remote.volumeInfo(location.volume)))
  const localInfo = await retry(() => call(local, 'volumeInfo', () => local.volumeInfo(ctx.volume)))
  if (remoteInfo.blockSize !== localInfo.blockSize) {
    throw new DrError('E_PRECONDITION', `replica ${location.site}/${location.volume} has block size ${remoteInfo.blockSize}, volume "${ctx.volume}" has ${localInfo.blockSize}`, {
      replica: location.volume,
      volume: ctx.volume,
    })
  }
  const snapshot = target === 'live' ? undefined : await retry(() => call(remote, 'snapshotInfo', () => remote.snapshotInfo(location.volume, target)))
  const targetSize = snapshot?.sizeBytes ?? remoteInfo.sizeBytes
  const localSnapshots = (await retry(() => call(local, 'listSnapshots', () => local.listSnapshots(ctx.volume)))).map((s) => s.name)
  const remoteSnapshots = (await retry(() => call(remote, 'listSnapshots', () => remote.listSnapshots(location.volume)))).map((s) => s.name)
  const common =
    location.common !== undefined
      ? localSnapshots.includes(location.common) && remoteSnapshots.includes(location.common)
        ? location.common
        : null
      : chooseCommonSnapshot(localSnapshots, remoteSnapshots, target)
  // Everything that can be found out is, before the volume's data changes.
  const changed = await retry(() => call(remote, 'changedBlocks', () => remote.changedBlocks(location.volume, common, target)))
  await ctx.beforeChange?.()
  if (common !== null) await retry(() => call(local, 'restoreSnapshot', () => local.restoreSnapshot(ctx.volume, common, ctx.token())))
  const current = await retry(() => call(local, 'volumeInfo', () => local.volumeInfo(ctx.volume)))
  if (current.sizeBytes !== targetSize) await retry(() => call(local, 'resizeVolume', () => local.resizeVolume(ctx.volume, targetSize, ctx.token())))
  if (common === null) await retry(() => call(local, 'trim', () => local.trim(ctx.volume, 0, targetSize, ctx.token())))
  const blockSize = remoteInfo.blockSize
  const lastBlock = targetSize / blockSize
  const holes = new Set(changed.holes)
  const data = changed.blocks.filter((block) => block < lastBlock && !holes.has(block))
  const zeroed = changed.holes.filter((block) => block < lastBlock)
  const readSource: ReadSource | undefined = target === 'live' ? undefined : { snapshot: target }
  const runs = blockRuns(data, Math.max(1, Math.floor(COPY_RUN_BYTES / blockSize)))
  let next = 0
  const worker = async (): Promise<void> => {
    for (let run = runs[next++]; run !== undefined; run = runs[next++]) {
      const { start, count } = run
      if (ctx.signal.aborted) throw new DrError('E_ABORTED', 'replica copy aborted', { volume: ctx.volume })
      const bytes = await retry(() => call(remote, 'read', () => remote.read(location.volume, start * blockSize, count * blockSize, readSource)))
      await retry(() => call(local, 'write', () => local.write(ctx.volume, start * blockSize, bytes, ctx.token())))
    }
  }
  await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, runs.length) }, worker))
  for (const hole of blockRuns(zeroed, Number.MAX_SAFE_INTEGER)) {
    await retry(() => call(local, 'trim', () => local.trim(ctx.volume, hole.start * blockSize, hole.count * blockSize, ctx.token())))
  }
  return { toVolume: ctx.volume, sizeBytes: targetSize, copiedBlocks: data.length, restorePointAt: snapshot?.createdAt ?? null }
}

async function resolve(ctx: SourceContext, ref: string): Promise<ReplicaLocation> {
  if (ctx.resolveReplica === undefined) {
    throw new DrError('E_PRECONDITION', `replica source "${ref}" needs a resolveReplica dependency, and none was given`, { ref })
  }
  const resolver = ctx.resolveReplica
  return callAdapter('resolveReplica', 'resolve', () => resolver(ref))
}

function unreachable(source: RestoreSource, reason: string): SourceFact {
  return { source, reachable: false, reason }
}

function call<R>(storage: StoragePort, operation: string, run: () => Promise<R>): Promise<R> {
  return callAdapter(storage.kind, operation, run)
}
