/**
 * The events of the snapshot module.
 *
 * @public
 */
export type SnapshotEvents = {
  'snapshot.created': { site: string; volume: string; name: string; createdAt: number; schedule: string | null }
  'snapshot.deleted': { site: string; volume: string; name: string }
  'snapshot.restored': { site: string; volume: string; name: string }
  'snapshot.cloned': { site: string; volume: string; name: string; clone: string }
  'snapshot.expired': { site: string; volume: string; name: string; schedule: string }
  'snapshot.scheduleFailed': { schedule: string; code: string; message: string }
  /** A schedule's run finished: the snapshot it took and the snapshots its retention grid expired. */
  'snapshot.scheduleRan': { schedule: string; site: string; volume: string; snapshot: string; at: number; expired: readonly string[] }
}
