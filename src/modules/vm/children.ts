import { toDrError } from '../../kernel/errors.js'
import { isInterruption } from '../../kernel/workflow.js'
import { mapBounded } from './bounded.js'
import { failedOutcome, type VmOutcome } from './outcomes.js'

/**
 * Runs one child workflow per item, at most `limit` at once, and resolves with each one's outcome in input order:
 * a child that fails becomes a failed outcome (`failed` may report it), so one VM's failure never stops the
 * others. A crash injected into a child (the coordinator dying, in tests) stops the children not yet started and
 * is rethrown once the running ones have settled, so nothing is journaled as done that was not.
 *
 * @public
 */
export async function runChildren<T extends { readonly vmId: string }>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<VmOutcome>,
  failed: (item: T, reason: string) => VmOutcome,
): Promise<VmOutcome[]> {
  let crash: unknown
  const outcomes = await mapBounded(items, limit, async (item): Promise<VmOutcome> => {
    if (crash !== undefined) return failedOutcome(item.vmId, 'coordinator stopped')
    try {
      return await run(item)
    } catch (error) {
      if (isInterruption(error)) crash = error
      return failed(item, toDrError(error).message)
    }
  })
  if (crash !== undefined) throw crash
  return outcomes
}
