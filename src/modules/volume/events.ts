import type { ConstituentRole } from './state.js'

/**
 * The events of the volume module. In every payload `site` and `volume` name the expandable volume;
 * constituent-level events add `constituent` (the member's storage volume) and its `role`. Group events carry
 * `group` (the consistency group's workflow id) and `snapshot` (the overall snapshot name).
 *
 * @public
 */
export type VolumeEvents = {
  'volume.created': { site: string; volume: string; dataConstituents: number }
  'volume.expanded': { site: string; volume: string; added: readonly number[] }
  'volume.shrunk': { site: string; volume: string; removed: readonly number[]; evacuated: number }
  'volume.deleted': { site: string; volume: string }
  'volume.constituentAdded': { site: string; volume: string; constituent: string; role: ConstituentRole; ordinal: number }
  'volume.constituentRemoved': { site: string; volume: string; constituent: string; role: ConstituentRole; ordinal: number; retired: boolean }
  'volume.groupStarted': { site: string; volume: string; group: string; snapshot: string; members: readonly string[]; deadline: number }
  'volume.constituentFenced': { site: string; volume: string; group: string; constituent: string; role: ConstituentRole; order: number; at: number }
  'volume.constituentSnapshotted': { site: string; volume: string; group: string; constituent: string; role: ConstituentRole; snapshot: string; at: number }
  'volume.constituentUnfenced': { site: string; volume: string; group: string; constituent: string; role: ConstituentRole; order: number; at: number; attempts: number }
  'volume.unfenceRetried': { site: string; volume: string; group: string; constituent: string; attempt: number; delayMs: number; code: string }
  'volume.groupCommitted': { site: string; volume: string; group: string; snapshot: string; id: number; fenceWindowMs: number; order: readonly string[] }
  'volume.groupFailed': { site: string; volume: string; group: string; snapshot: string; cause: string; code: string }
  'volume.catalogUpdated': { site: string; volume: string; snapshot: string; id: number; change: 'added' | 'removed' | 'invalidated' | 'adopted' }
  'volume.readRedirected': { site: string; volume: string; from: number | null; to: number | null }
  'volume.replicaChanged': { site: string; volume: string; replicaOf: string | null }
}
