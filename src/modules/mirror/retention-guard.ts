import { sessionSnapshotPrefix } from './naming.js'
import type { MirrorState } from './state.js'

/**
 * Builds the retention guard the snapshot scheduler consults: true (keep) for every snapshot a relationship owns
 * on one of its volumes — delta-set bases, restart points, resync snapshots. Holds already protect the bases;
 * the guard also covers unheld cuts the destination has not acknowledged yet.
 *
 * @public
 */
export function mirrorRetentionGuard(state: () => MirrorState): (site: string, volume: string, snapshot: string) => boolean {
  return (site, volume, snapshot) =>
    Object.values(state().relationships).some(
      (rel) => snapshot.startsWith(sessionSnapshotPrefix(rel.id)) && [rel.a, rel.b].some((ref) => ref.site === site && ref.volume === volume),
    )
}
