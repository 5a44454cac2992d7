import { callAdapter } from '../../kernel/errors.js'
import type { FreezeContext } from './context.js'
import { retrying } from './retrying.js'
import type { ProtectionRecord } from './state.js'
import type { VolumeRuntime } from './volume-runtime.js'
import type { CachedWrite } from './write-cache.js'

/**
 * What the `journal` step saved: how many writes and bytes, and when the oldest was acknowledged.
 *
 * @internal
 */
export interface JournaledWrites {
  readonly count: number
  readonly bytes: number
  readonly oldestAt: number | null
}

/**
 * The `journal` step (seed 004, F5-2): closes the gate, waits for running operations, and saves every cached write
 * the applications consider committed, in order, off the volume. A volume kept dismounted after a failed restore
 * also carries the writes of that restore's retained journal (older, so first) when this process's caches no
 * longer hold them; the retained journal is then marked removed, its writes being in this one. Idempotent.
 *
 * @internal
 */
export async function journalCachedWrites(ctx: FreezeContext, runtime: VolumeRuntime, restoreId: string, record: ProtectionRecord): Promise<JournaledWrites> {
  runtime.gate.close()
  await runtime.gate.drain()
  const cached = runtime.cachedWrites()
  const retained = record.retainedJournal ?? null
  const carried = retained === null || retained === restoreId || runtime.journaled?.restoreId === retained ? [] : await retainedWrites(ctx, retained)
  const saved = await ctx.journal.save(restoreId, [...carried, ...cached])
  if (retained !== null && retained !== restoreId) await ctx.journal.remove(retained)
  runtime.journaled = { restoreId, seqs: new Set(cached.map((w) => w.seq)) }
  return { count: saved.count, bytes: saved.bytes, oldestAt: saved.oldestAt }
}

/**
 * The `replay` step (seed 004, F5-7): writes the journal of `restoreId` to `toVolume` in its order (idempotent: the
 * same bytes in the same order), drops those writes from the caches and marks the journal removed. Returns how many
 * writes it replayed (0 for a journal removed already).
 *
 * @internal
 */
export async function replayJournal(ctx: FreezeContext, runtime: VolumeRuntime, restoreId: string, target: { site: string; volume: string }, signal: AbortSignal): Promise<number> {
  const loaded = await ctx.journal.load(restoreId)
  if (loaded.removed) return 0
  const storage = ctx.storage(target.site)
  for (const write of loaded.writes) {
    await retrying(ctx.clock, () => callAdapter(storage.kind, 'write', () => storage.write(target.volume, write.offset, write.data, ctx.token())), { signal })
  }
  runtime.noteFlush(ctx.clock.now())
  if (runtime.journaled?.restoreId === restoreId) runtime.forgetWrites(runtime.journaled.seqs)
  runtime.journaled = undefined
  await ctx.journal.remove(restoreId)
  return loaded.writes.length
}

async function retainedWrites(ctx: FreezeContext, restoreId: string): Promise<readonly CachedWrite[]> {
  const loaded = await ctx.journal.load(restoreId).catch(() => undefined)
  return loaded === undefined || loaded.removed ? [] : loaded.writes
}
