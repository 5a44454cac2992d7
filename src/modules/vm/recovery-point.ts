import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import { siteOf, type VmContext } from './context.js'

/** How many times the newest recovery point is looked up again when replication retired it before the hold. */
const HOLD_ATTEMPTS = 5

/**
 * Holds the recovery point of mirror `mirror` (the newest delta-set snapshot applied at its destination, on
 * `site`) with hold `tag`, so replication cannot retire it while it is read, and resolves with the destination
 * volume and the snapshot. Replication may retire the snapshot a status named before the hold lands (the next
 * delta set was applied meanwhile): then the newer one is held instead. Undefined when nothing was replicated yet.
 *
 * @public
 */
export async function holdRecoveryPoint(ctx: VmContext, site: string, mirror: string, tag: string, token: FenceToken): Promise<{ volume: string; snapshot: string } | undefined> {
  const { storage } = siteOf(ctx, site)
  for (let attempt = 1; ; attempt++) {
    const status = await ctx.mirrors.status(mirror)
    const point = status.recoveryPoint
    if (point === null) return undefined
    const volume = status.destination.volume
    try {
      await callAdapter(storage.kind, 'holdSnapshot', () => storage.holdSnapshot(volume, point.snapshot, tag, token))
      return { volume, snapshot: point.snapshot }
    } catch (error) {
      if (!isDrError(error, 'E_NOT_FOUND') || attempt >= HOLD_ATTEMPTS) throw error
    }
  }
}
