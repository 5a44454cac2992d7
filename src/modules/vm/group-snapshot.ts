import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StoragePort } from '../../ports/storage.js'

/**
 * Snapshots `volumes` as one consistency group named `snapshot`: every volume is fenced (in name order), the
 * snapshots are taken (replacing any left by an interrupted attempt, so all come from one fence window), and
 * every fence is lifted again — always, also when a fence or a snapshot fails. Writes that arrive meanwhile wait
 * and run after the snapshots, in order: none is lost and none is in the snapshot.
 *
 * @public
 */
export async function groupSnapshot(storage: StoragePort, token: FenceToken, volumes: readonly string[], snapshot: string): Promise<void> {
  const ordered = [...new Set(volumes)].sort()
  const fenced: string[] = []
  try {
    for (const volume of ordered) {
      await callAdapter(storage.kind, 'fence', () => storage.fence(volume, token))
      fenced.push(volume)
    }
    for (const volume of ordered) {
      await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(volume, snapshot, token)).catch((error: unknown) => {
        if (!isDrError(error, 'E_NOT_FOUND')) throw error
      })
      await callAdapter(storage.kind, 'createSnapshot', () => storage.createSnapshot(volume, snapshot, token, { 'drkit.vm': 'backup' }))
    }
  } finally {
    for (const volume of fenced.reverse()) await storage.unfence(volume, token).catch(() => undefined)
  }
}
