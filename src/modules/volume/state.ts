import * as t from 'io-ts'

const nullable = <C extends t.Mixed>(codec: C) => t.union([codec, t.null])

/**
 * The role of a constituent in an expandable volume: the namespace (directory entries → stubs), the object
 * locator store (`ols`: global object id → location) or a data constituent holding the objects.
 *
 * @public
 */
export const ConstituentRoleCodec = t.keyof({ namespace: null, ols: null, data: null }, 'ConstituentRole')

/**
 * One of {@link ConstituentRoleCodec}.
 *
 * @public
 */
export type ConstituentRole = t.TypeOf<typeof ConstituentRoleCodec>

/**
 * A member of an expandable volume: its storage volume, role and ordinal (0 for the namespace and the OLS,
 * 1, 2, … for data constituents — stable, never reused), and its state: `active`; `draining` while a shrink
 * evacuates it; `retired` once removed from the expandable volume but still kept because a catalogued
 * snapshot references it.
 *
 * @public
 */
export const VolumeMemberCodec = t.type(
  {
    volume: t.string,
    role: ConstituentRoleCodec,
    ordinal: t.number,
    state: t.keyof({ active: null, draining: null, retired: null }),
    addedAt: t.number,
  },
  'VolumeMember',
)

/**
 * One member of an expandable volume.
 *
 * @public
 */
export type VolumeMember = t.TypeOf<typeof VolumeMemberCodec>

/**
 * The fixed geometry of an expandable volume's constituents: namespace slots, object ids of the OLS, and the
 * size of each data constituent, in bytes.
 *
 * @public
 */
export const VolumeGeometryCodec = t.type({ namespaceSlots: t.number, objectIds: t.number, dataSizeBytes: t.number }, 'VolumeGeometry')

/**
 * One constituent's geometry.
 *
 * @public
 */
export type VolumeGeometry = t.TypeOf<typeof VolumeGeometryCodec>

/**
 * One fence of a consistency group, as persisted: the constituent, its role, its place in the fence order and
 * when the fence was acknowledged.
 *
 * @public
 */
export const FenceRecordCodec = t.type({ volume: t.string, role: ConstituentRoleCodec, order: t.number, at: t.number }, 'FenceRecord')

/**
 * One persisted fence.
 *
 * @public
 */
export type FenceRecord = t.TypeOf<typeof FenceRecordCodec>

/**
 * An open consistency group — the persisted fence record: the snapshot it takes, its members in fence order,
 * when it opened, the deadline after which it aborts (open + maximum fence-hold time) and every fence
 * acknowledged so far with its timestamp.
 *
 * @public
 */
export const GroupRecordCodec = t.type(
  {
    id: t.string,
    snapshotId: t.number,
    snapshotName: t.string,
    fenceOrder: t.array(t.type({ volume: t.string, role: ConstituentRoleCodec, ordinal: t.number })),
    openedAt: t.number,
    deadline: t.number,
    fences: t.array(FenceRecordCodec),
  },
  'GroupRecord',
)

/**
 * An open consistency group.
 *
 * @public
 */
export type GroupRecord = t.TypeOf<typeof GroupRecordCodec>

/**
 * A membership change in progress (create, expand, shrink, delete): the workflow doing it, and the data
 * constituent ordinals it adds or removes. At most one per expandable volume, never while a group is open.
 *
 * @public
 */
export const MembershipChangeCodec = t.type(
  { id: t.string, kind: t.keyof({ create: null, expand: null, shrink: null, delete: null }), ordinals: t.array(t.number), since: t.number },
  'MembershipChange',
)

/**
 * A membership change in progress.
 *
 * @public
 */
export type MembershipChange = t.TypeOf<typeof MembershipChangeCodec>

/**
 * How the last consistency group of an expandable volume ended: committed, or failed with an error code.
 *
 * @public
 */
export const GroupOutcomeCodec = t.type(
  { id: t.string, snapshotName: t.string, outcome: t.keyof({ committed: null, failed: null }), code: nullable(t.string), closedAt: t.number },
  'GroupOutcome',
)

/**
 * The outcome of a closed consistency group.
 *
 * @public
 */
export type GroupOutcome = t.TypeOf<typeof GroupOutcomeCodec>

/**
 * An expandable volume in the volume catalog: site, name, lifecycle status, geometry, default maximum
 * fence-hold time, members, the next data ordinal, the open group and change (if any), the last group's
 * outcome, the AFS read redirect (the overall snapshot id that reads of the active file system are served
 * from, or null), and — when it is the read-only side of a replication relationship — `replicaOf`, the
 * relationship's id (absent on a volume clients own).
 *
 * @public
 */
export const VolumeRecordCodec = t.intersection(
  [
    t.type({
      site: t.string,
      name: t.string,
      status: t.keyof({ creating: null, ready: null, deleting: null }),
      createdAt: t.number,
      geometry: VolumeGeometryCodec,
      maxFenceHoldMs: t.number,
      members: t.array(VolumeMemberCodec),
      nextOrdinal: t.number,
      group: nullable(GroupRecordCodec),
      change: nullable(MembershipChangeCodec),
      lastGroup: nullable(GroupOutcomeCodec),
      readRedirect: nullable(t.number),
    }),
    t.partial({ replicaOf: t.string }),
  ],
  'VolumeRecord',
)

/**
 * One expandable volume as catalogued.
 *
 * @public
 */
export type VolumeRecord = t.TypeOf<typeof VolumeRecordCodec>

/**
 * One member of an overall snapshot: the constituent, its role and ordinal, the name of its own storage
 * snapshot (the per-volume snapshot id) and when that was taken.
 *
 * @public
 */
export const SnapshotMemberCodec = t.type(
  { volume: t.string, role: ConstituentRoleCodec, ordinal: t.number, snapshot: t.string, timestamp: t.number },
  'SnapshotMember',
)

/**
 * One member snapshot.
 *
 * @public
 */
export type SnapshotMember = t.TypeOf<typeof SnapshotMemberCodec>

/**
 * An overall snapshot of an expandable volume in the snapshot catalog: its id (a positive integer; 0 is the
 * active file system), site, expandable volume, name, creation time, valid flag, the clients allowed to read it
 * (null: any client) and one row per member.
 *
 * @public
 */
export const SnapshotEntryCodec = t.type(
  {
    id: t.number,
    site: t.string,
    volume: t.string,
    name: t.string,
    createdAt: t.number,
    valid: t.boolean,
    allowedClients: nullable(t.array(t.string)),
    members: t.array(SnapshotMemberCodec),
  },
  'SnapshotEntry',
)

/**
 * One overall snapshot.
 *
 * @public
 */
export type SnapshotEntry = t.TypeOf<typeof SnapshotEntryCodec>

/**
 * The volume module's catalog: expandable volumes by `site/name`, overall snapshots by id, and the next
 * overall snapshot id. Plain, serialisable data.
 *
 * @public
 */
export interface VolumeCatalogState {
  readonly volumes: Readonly<Record<string, VolumeRecord>>
  readonly snapshots: Readonly<Record<string, SnapshotEntry>>
  readonly nextSnapshotId: number
}

/**
 * Codec for {@link VolumeCatalogState}, checked when a saved state is loaded.
 *
 * @public
 */
export const VolumeCatalogStateCodec = t.type({
  volumes: t.record(t.string, VolumeRecordCodec),
  snapshots: t.record(t.string, SnapshotEntryCodec),
  nextSnapshotId: t.number,
})

/**
 * The empty catalog. Overall snapshot ids start at 1: 0 is reserved for the active file system.
 *
 * @public
 */
export const emptyVolumeCatalog: VolumeCatalogState = { volumes: {}, snapshots: {}, nextSnapshotId: 1 }

const Ref = { site: t.string, name: t.string }

/**
 * The journal events of the volume catalog.
 *
 * @public
 */
export const VolumeJournalEventCodec = t.union([
  t.type({ type: t.literal('volume.registered'), data: VolumeRecordCodec }),
  t.type({ type: t.literal('volume.registrationDropped'), data: t.type({ ...Ref, change: t.string }) }),
  t.type({ type: t.literal('volume.ready'), data: t.type({ ...Ref, change: t.string }) }),
  t.type({ type: t.literal('volume.changeStarted'), data: t.type({ ...Ref, change: MembershipChangeCodec }) }),
  t.type({ type: t.literal('volume.changeAbandoned'), data: t.type({ ...Ref, change: t.string }) }),
  t.type({ type: t.literal('volume.constituentsAdded'), data: t.type({ ...Ref, change: t.string, members: t.array(VolumeMemberCodec) }) }),
  t.type({ type: t.literal('volume.constituentsRemoved'), data: t.type({ ...Ref, change: t.string, removed: t.array(t.string), retired: t.array(t.string) }) }),
  t.type({ type: t.literal('volume.constituentsForgotten'), data: t.type({ ...Ref, volumes: t.array(t.string) }) }),
  t.type({ type: t.literal('volume.removed'), data: t.type({ ...Ref, change: t.string }) }),
  t.type({ type: t.literal('volume.groupOpened'), data: t.type({ ...Ref, group: GroupRecordCodec }) }),
  t.type({ type: t.literal('volume.groupFenced'), data: t.type({ ...Ref, group: t.string, fences: t.array(FenceRecordCodec) }) }),
  t.type({ type: t.literal('volume.snapshotCommitted'), data: t.type({ group: t.string, entry: SnapshotEntryCodec }) }),
  t.type({ type: t.literal('volume.groupAborted'), data: t.type({ ...Ref, group: t.string, code: t.string, at: t.number }) }),
  t.type({ type: t.literal('volume.snapshotAdopted'), data: SnapshotEntryCodec }),
  t.type({ type: t.literal('volume.snapshotInvalidated'), data: t.type({ id: t.number }) }),
  t.type({ type: t.literal('volume.snapshotRemoved'), data: t.type({ id: t.number }) }),
  t.type({ type: t.literal('volume.redirectSet'), data: t.type({ ...Ref, snapshot: nullable(t.number) }) }),
  t.type({ type: t.literal('volume.replicaSet'), data: t.type({ ...Ref, replicaOf: nullable(t.string) }) }),
])

/**
 * One decoded volume journal event.
 *
 * @public
 */
export type VolumeJournalEvent = t.TypeOf<typeof VolumeJournalEventCodec>

/**
 * The catalog key of an expandable volume.
 *
 * @public
 */
export function volumeKey(site: string, name: string): string {
  return `${site}/${name}`
}

type Draft = { volumes: Record<string, VolumeRecord>; snapshots: Record<string, SnapshotEntry>; nextSnapshotId: number }

/**
 * Folds one journal event into the catalog (used with immer). Events about an unknown volume, group or change
 * are ignored: deciders never emit them, and replay must not fail on them.
 *
 * @public
 */
export function reduceVolumeCatalog(draft: Draft, event: VolumeJournalEvent): void {
  if (event.type === 'volume.registered') {
    draft.volumes[volumeKey(event.data.site, event.data.name)] = event.data
    return
  }
  if (event.type === 'volume.snapshotCommitted' || event.type === 'volume.snapshotAdopted') {
    const entry = event.type === 'volume.snapshotAdopted' ? event.data : event.data.entry
    draft.snapshots[String(entry.id)] = entry
    draft.nextSnapshotId = Math.max(draft.nextSnapshotId, entry.id + 1)
    const record = draft.volumes[volumeKey(entry.site, entry.volume)]
    if (event.type === 'volume.snapshotCommitted' && record?.group?.id === event.data.group) {
      record.group = null
      record.lastGroup = { id: event.data.group, snapshotName: entry.name, outcome: 'committed', code: null, closedAt: entry.createdAt }
    }
    return
  }
  if (event.type === 'volume.snapshotInvalidated' || event.type === 'volume.snapshotRemoved') {
    const entry = draft.snapshots[String(event.data.id)]
    if (entry === undefined) return
    if (event.type === 'volume.snapshotRemoved') delete draft.snapshots[String(event.data.id)]
    else entry.valid = false
    return
  }
  const key = volumeKey(event.data.site, event.data.name)
  const record = draft.volumes[key]
  if (record === undefined) return
  reduceVolumeRecord(draft, key, record, event)
}

function reduceVolumeRecord(draft: Draft, key: string, record: VolumeRecord, event: VolumeJournalEvent): void {
  switch (event.type) {
    case 'volume.registrationDropped':
    case 'volume.removed':
      if (record.change?.id === event.data.change) delete draft.volumes[key]
      return
    case 'volume.ready':
      if (record.change?.id !== event.data.change) return
      record.status = 'ready'
      record.change = null
      return
    case 'volume.changeStarted':
      record.change = event.data.change
      if (event.data.change.kind === 'expand') record.nextOrdinal = Math.max(record.nextOrdinal, ...event.data.change.ordinals.map((o) => o + 1))
      if (event.data.change.kind === 'delete') record.status = 'deleting'
      if (event.data.change.kind === 'shrink') {
        for (const member of record.members) if (member.role === 'data' && event.data.change.ordinals.includes(member.ordinal)) member.state = 'draining'
      }
      return
    case 'volume.changeAbandoned':
      if (record.change?.id !== event.data.change) return
      record.change = null
      for (const member of record.members) if (member.state === 'draining') member.state = 'active'
      return
    case 'volume.constituentsAdded':
      if (record.change?.id !== event.data.change) return
      record.members.push(...event.data.members)
      record.change = null
      return
    case 'volume.constituentsRemoved':
      if (record.change?.id !== event.data.change) return
      record.members = record.members.filter((m) => !event.data.removed.includes(m.volume))
      for (const member of record.members) if (event.data.retired.includes(member.volume)) member.state = 'retired'
      record.change = null
      return
    case 'volume.constituentsForgotten':
      record.members = record.members.filter((m) => m.state !== 'retired' || !event.data.volumes.includes(m.volume))
      return
    case 'volume.groupOpened':
      record.group = event.data.group
      draft.nextSnapshotId = Math.max(draft.nextSnapshotId, event.data.group.snapshotId + 1)
      return
    case 'volume.groupFenced':
      if (record.group?.id !== event.data.group) return
      for (const fence of event.data.fences) {
        if (!record.group.fences.some((f) => f.volume === fence.volume)) record.group.fences.push(fence)
      }
      return
    case 'volume.groupAborted':
      if (record.group?.id !== event.data.group) return
      record.lastGroup = { id: event.data.group, snapshotName: record.group.snapshotName, outcome: 'failed', code: event.data.code, closedAt: event.data.at }
      record.group = null
      return
    case 'volume.redirectSet':
      record.readRedirect = event.data.snapshot
      return
    case 'volume.replicaSet':
      if (event.data.replicaOf === null) delete record.replicaOf
      else record.replicaOf = event.data.replicaOf
      return
    default:
      return
  }
}
