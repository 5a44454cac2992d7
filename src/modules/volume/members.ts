import type { ConstituentRole, VolumeMember, SnapshotEntry, VolumeRecord } from './state.js'

/**
 * The storage volume name of a constituent: `<ev>.ns`, `<ev>.ols` or `<ev>.dc-<ordinal>`.
 *
 * @public
 */
export function constituentName(volume: string, role: ConstituentRole, ordinal: number): string {
  if (role === 'namespace') return `${volume}.ns`
  if (role === 'ols') return `${volume}.ols`
  return `${volume}.dc-${ordinal}`
}

/**
 * The members of an expandable volume that take part in a consistency group — every member but the retired
 * ones — in fence order: the namespace, then the OLS, then the data constituents by ordinal.
 *
 * @public
 */
export function constituentFenceOrder(record: VolumeRecord): VolumeMember[] {
  const rank = (m: VolumeMember): number => (m.role === 'namespace' ? 0 : m.role === 'ols' ? 1 : 2)
  return record.members.filter((m) => m.state !== 'retired').sort((a, b) => rank(a) - rank(b) || a.ordinal - b.ordinal)
}

/**
 * The data constituents that receive new objects (active ones), by ordinal.
 *
 * @public
 */
export function placementTargets(record: VolumeRecord): VolumeMember[] {
  return record.members.filter((m) => m.role === 'data' && m.state === 'active').sort((a, b) => a.ordinal - b.ordinal)
}

/**
 * The member of `record` with `role` (and `ordinal` for data constituents), retired ones included.
 *
 * @public
 */
export function constituentOf(record: VolumeRecord, role: ConstituentRole, ordinal = 0): VolumeMember | undefined {
  return record.members.find((m) => m.role === role && (role !== 'data' || m.ordinal === ordinal))
}

/**
 * True when a catalogued snapshot of any expandable volume references the storage volume `volume`.
 *
 * @public
 */
export function referencedBySnapshot(snapshots: Readonly<Record<string, SnapshotEntry>>, site: string, volume: string): boolean {
  return Object.values(snapshots).some((entry) => entry.site === site && entry.members.some((m) => m.volume === volume))
}
