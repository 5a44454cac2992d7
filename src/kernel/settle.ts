/**
 * Waits for every promise to settle, then resolves with their values, or rejects with the first failure in
 * array order. Unlike `Promise.all`, nothing is still running when it rejects: for operations that write into
 * memory or slots the caller reuses once the call failed.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(promises)
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<T>).value)
}
