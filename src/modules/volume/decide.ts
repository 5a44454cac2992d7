import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import { constituentName, constituentFenceOrder, placementTargets, referencedBySnapshot } from './members.js'
import {
  volumeKey,
  type MembershipChange,
  type FenceRecord,
  type GroupRecord,
  type VolumeMember,
  type SnapshotEntry,
  type VolumeCatalogState,
  type VolumeJournalEvent,
  type VolumeRecord,
} from './state.js'

type Decided = DrEither<readonly VolumeJournalEvent[]>
const none: Decided = E.right([])

/**
 * The catalogued expandable volume `site/name`, or `E_NOT_FOUND`.
 *
 * @public
 */
export function findVolume(state: VolumeCatalogState, site: string, name: string): DrEither<VolumeRecord> {
  const record = state.volumes[volumeKey(site, name)]
  return record === undefined
    ? E.left(new DrError('E_NOT_FOUND', `expandable volume "${name}" does not exist on site "${site}"`, { site, volume: name }))
    : E.right(record)
}

/**
 * The catalogued overall snapshots of one expandable volume, oldest first.
 *
 * @public
 */
export function volumeSnapshotsOf(state: VolumeCatalogState, site: string, name: string): SnapshotEntry[] {
  return Object.values(state.snapshots)
    .filter((e) => e.site === site && e.volume === name)
    .sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
}

/**
 * Refuses with `E_CONFLICT` while a consistency group or a membership change is running on the volume, and with
 * `E_PRECONDITION` while it is not ready. Membership changes and groups never overlap: a group reads the
 * membership when it opens, and a change waits for no one — it is refused.
 *
 * @public
 */
export function requireVolumeIdle(record: VolumeRecord, action: string): DrEither<VolumeRecord> {
  const where = { site: record.site, volume: record.name }
  if (record.group !== null) {
    return E.left(new DrError('E_CONFLICT', `cannot ${action} "${record.name}": consistency group ${record.group.id} is open`, { ...where, group: record.group.id }))
  }
  if (record.change !== null) {
    return E.left(new DrError('E_CONFLICT', `cannot ${action} "${record.name}": a ${record.change.kind} is in progress`, { ...where, change: record.change.id }))
  }
  if (record.status !== 'ready') return E.left(new DrError('E_PRECONDITION', `cannot ${action} "${record.name}": it is ${record.status}`, { ...where, status: record.status }))
  return E.right(record)
}

/**
 * Decides to register a new expandable volume (status `creating`, its create change open); `E_CONFLICT` if the
 * name is taken. Registering the same create again decides nothing.
 *
 * @public
 */
export function decideRegister(state: VolumeCatalogState, record: VolumeRecord): Decided {
  const existing = state.volumes[volumeKey(record.site, record.name)]
  if (existing === undefined) return E.right([{ type: 'volume.registered', data: record }])
  if (existing.change !== null && existing.change.id === record.change?.id) return none
  return E.left(new DrError('E_CONFLICT', `expandable volume "${record.name}" already exists on site "${record.site}"`, { site: record.site, volume: record.name }))
}

/**
 * Decides the end of a create: `ready` when it succeeded, dropped from the catalog when it was rolled back. Only
 * the create change `change` can end it (idempotent).
 *
 * @public
 */
export function decideEndCreate(state: VolumeCatalogState, site: string, name: string, change: string, ok: boolean): Decided {
  const record = state.volumes[volumeKey(site, name)]
  if (record?.change?.id !== change) return none
  return E.right([{ type: ok ? 'volume.ready' : 'volume.registrationDropped', data: { site, name, change } }])
}

function beginChange(state: VolumeCatalogState, site: string, name: string, change: MembershipChange, build: (record: VolumeRecord) => DrEither<MembershipChange>): Decided {
  const found = findVolume(state, site, name)
  if (E.isLeft(found)) return found
  const record = found.right
  if (record.change?.id === change.id) return none
  const takeover = change.kind === 'delete' && record.change?.kind === 'delete' && record.group === null
  const idle = takeover ? E.right(record) : requireVolumeIdle(record, change.kind)
  if (E.isLeft(idle)) return idle
  const built = build(record)
  return E.isLeft(built) ? built : E.right([{ type: 'volume.changeStarted', data: { site, name, change: built.right } }])
}

/**
 * Decides to start adding `count` data constituents: reserves the next ordinals. Refused while a group or
 * another change runs.
 *
 * @public
 */
export function decideBeginExpand(state: VolumeCatalogState, site: string, name: string, id: string, count: number, at: number): Decided {
  return beginChange(state, site, name, { id, kind: 'expand', ordinals: [], since: at }, (record) =>
    E.right({ id, kind: 'expand', ordinals: Array.from({ length: count }, (_, i) => record.nextOrdinal + i), since: at }),
  )
}

/**
 * Decides to start removing data constituents — the `remove` highest active ordinals, or the listed ordinals —
 * which then drain (receive no new objects) while their objects are evacuated. At least one active data
 * constituent must remain (`E_PRECONDITION`); an ordinal that is not an active data constituent is `E_NOT_FOUND`.
 *
 * @public
 */
export function decideBeginShrink(state: VolumeCatalogState, site: string, name: string, id: string, remove: number | readonly number[], at: number): Decided {
  return beginChange(state, site, name, { id, kind: 'shrink', ordinals: [], since: at }, (record) => {
    const active = placementTargets(record).map((m) => m.ordinal)
    const ordinals = typeof remove === 'number' ? active.slice(Math.max(0, active.length - remove)) : [...new Set(remove)].sort((a, b) => a - b)
    const unknown = ordinals.filter((o) => !active.includes(o))
    if (unknown.length > 0) {
      return E.left(new DrError('E_NOT_FOUND', `"${name}" has no active data constituent ${unknown.join(', ')}`, { site, volume: name, ordinals: unknown }))
    }
    if (typeof remove === 'number' ? remove >= active.length : ordinals.length >= active.length) {
      return E.left(new DrError('E_PRECONDITION', `"${name}" must keep at least one data constituent`, { site, volume: name, active: active.length }))
    }
    return E.right({ id, kind: 'shrink', ordinals, since: at })
  })
}

/**
 * Decides to start deleting an expandable volume. `E_PRECONDITION` while catalogued snapshots of it exist
 * (delete them first). A delete that failed half-way may be taken over by a new one.
 *
 * @public
 */
export function decideBeginDelete(state: VolumeCatalogState, site: string, name: string, id: string, at: number): Decided {
  const snapshots = volumeSnapshotsOf(state, site, name)
  if (snapshots.length > 0) {
    return E.left(new DrError('E_PRECONDITION', `"${name}" still has ${snapshots.length} snapshot(s): delete them first`, { site, volume: name, snapshots: snapshots.map((s) => s.name) }))
  }
  return beginChange(state, site, name, { id, kind: 'delete', ordinals: [], since: at }, () => E.right({ id, kind: 'delete', ordinals: [], since: at }))
}

/**
 * Decides to give up change `id` (its constituents go back to active). Idempotent.
 *
 * @public
 */
export function decideAbandonChange(state: VolumeCatalogState, site: string, name: string, id: string): Decided {
  return state.volumes[volumeKey(site, name)]?.change?.id === id ? E.right([{ type: 'volume.changeAbandoned', data: { site, name, change: id } }]) : none
}

/**
 * Decides to add the data constituents an expand reserved, as active members. Idempotent.
 *
 * @public
 */
export function decideAddConstituents(state: VolumeCatalogState, site: string, name: string, id: string, at: number): Decided {
  const record = state.volumes[volumeKey(site, name)]
  if (record?.change?.id !== id) return none
  const members: VolumeMember[] = record.change.ordinals.map((ordinal) => ({ volume: constituentName(name, 'data', ordinal), role: 'data', ordinal, state: 'active', addedAt: at }))
  return E.right([{ type: 'volume.constituentsAdded', data: { site, name, change: id, members } }])
}

/**
 * Decides to remove the drained data constituents of shrink `id` from the volume: a constituent that a
 * catalogued snapshot still references is kept as `retired` (its storage volume holds that snapshot), the others
 * leave the catalog. Idempotent.
 *
 * @public
 */
export function decideRemoveConstituents(state: VolumeCatalogState, site: string, name: string, id: string): Decided {
  const record = state.volumes[volumeKey(site, name)]
  if (record?.change?.id !== id) return none
  const draining = record.members.filter((m) => m.state === 'draining').map((m) => m.volume)
  const retired = draining.filter((v) => referencedBySnapshot(state.snapshots, site, v))
  const removed = draining.filter((v) => !retired.includes(v))
  return E.right([{ type: 'volume.constituentsRemoved', data: { site, name, change: id, removed, retired } }])
}

/**
 * The retired constituents of a volume that no catalogued snapshot references any more: their storage volumes
 * can go.
 *
 * @public
 */
export function unreferencedRetired(state: VolumeCatalogState, site: string, name: string): string[] {
  const record = state.volumes[volumeKey(site, name)]
  if (record === undefined) return []
  return record.members.filter((m) => m.state === 'retired' && !referencedBySnapshot(state.snapshots, site, m.volume)).map((m) => m.volume)
}

/**
 * Decides to forget retired constituents whose storage volumes were deleted. Idempotent.
 *
 * @public
 */
export function decideForgetRetired(state: VolumeCatalogState, site: string, name: string, volumes: readonly string[]): Decided {
  const record = state.volumes[volumeKey(site, name)]
  const known = volumes.filter((v) => record?.members.some((m) => m.volume === v && m.state === 'retired') === true)
  return known.length === 0 ? none : E.right([{ type: 'volume.constituentsForgotten', data: { site, name, volumes: known } }])
}

/**
 * Decides to drop a deleted expandable volume from the catalog (only its delete change can). Idempotent.
 *
 * @public
 */
export function decideRemoveVolume(state: VolumeCatalogState, site: string, name: string, id: string): Decided {
  return state.volumes[volumeKey(site, name)]?.change?.id === id ? E.right([{ type: 'volume.removed', data: { site, name, change: id } }]) : none
}

/**
 * What opening a consistency group needs: the volume, the group (workflow) id, the snapshot name, when, and the
 * maximum fence-hold time.
 *
 * @public
 */
export interface OpenGroupCommand {
  readonly site: string
  readonly name: string
  readonly id: string
  readonly snapshotName: string
  readonly at: number
  readonly maxFenceHoldMs: number
}

/**
 * Decides to open a consistency group over every non-retired member, in fence order, with the next overall
 * snapshot id. One group per volume at a time (`E_CONFLICT`), never during a membership change (`E_CONFLICT`),
 * and the snapshot name must be new for the volume (`E_CONFLICT`). Opening the same group again decides nothing.
 *
 * @public
 */
export function decideOpenGroup(state: VolumeCatalogState, command: OpenGroupCommand): Decided {
  const found = findVolume(state, command.site, command.name)
  if (E.isLeft(found)) return found
  if (found.right.group?.id === command.id) return none
  const idle = requireVolumeIdle(found.right, 'snapshot')
  if (E.isLeft(idle)) return idle
  if (volumeSnapshotsOf(state, command.site, command.name).some((s) => s.name === command.snapshotName)) {
    return E.left(new DrError('E_CONFLICT', `"${command.name}" already has a snapshot named "${command.snapshotName}"`, { site: command.site, volume: command.name, snapshot: command.snapshotName }))
  }
  const group: GroupRecord = {
    id: command.id,
    snapshotId: state.nextSnapshotId,
    snapshotName: command.snapshotName,
    fenceOrder: constituentFenceOrder(found.right).map((m) => ({ volume: m.volume, role: m.role, ordinal: m.ordinal })),
    openedAt: command.at,
    deadline: command.at + command.maxFenceHoldMs,
    fences: [],
  }
  return E.right([{ type: 'volume.groupOpened', data: { site: command.site, name: command.name, group } }])
}

/**
 * Decides to add acknowledged fences to the persisted fence record of group `id` (ignored once it closed).
 *
 * @public
 */
export function decideRecordFences(state: VolumeCatalogState, site: string, name: string, id: string, fences: readonly FenceRecord[]): Decided {
  const group = state.volumes[volumeKey(site, name)]?.group
  if (group?.id !== id) return none
  const fresh = fences.filter((f) => !group.fences.some((g) => g.volume === f.volume))
  return fresh.length === 0 ? none : E.right([{ type: 'volume.groupFenced', data: { site, name, group: id, fences: fresh } }])
}

/**
 * Decides to commit group `id`: the valid catalog entry and the group's closing, in one journal event, written
 * only after every member's snapshot exists and every fence is lifted. Committing again decides nothing; a group
 * that is no longer open (it aborted) cannot commit (`E_PRECONDITION`).
 *
 * @public
 */
export function decideCommitSnapshot(state: VolumeCatalogState, id: string, entry: SnapshotEntry): Decided {
  const existing = state.snapshots[String(entry.id)]
  if (existing !== undefined && existing.name === entry.name && existing.volume === entry.volume) return none
  const record = state.volumes[volumeKey(entry.site, entry.volume)]
  if (record?.group?.id !== id) {
    return E.left(new DrError('E_PRECONDITION', `consistency group ${id} of "${entry.volume}" is no longer open`, { site: entry.site, volume: entry.volume, group: id }))
  }
  return E.right([{ type: 'volume.snapshotCommitted', data: { group: id, entry } }])
}

/**
 * Decides to close group `id` as failed with `code` (idempotent; another group is left alone).
 *
 * @public
 */
export function decideAbortGroup(state: VolumeCatalogState, site: string, name: string, id: string, code: string, at: number): Decided {
  return state.volumes[volumeKey(site, name)]?.group?.id === id ? E.right([{ type: 'volume.groupAborted', data: { site, name, group: id, code, at } }]) : none
}

/**
 * Decides to catalogue a snapshot that was made elsewhere (a mirror's destination records the snapshots it
 * received): the volume must exist, the name must be new for it, and every member must be one of its
 * constituents (`E_PRECONDITION`). The entry gets the next overall id.
 *
 * @public
 */
export function decideAdoptSnapshot(state: VolumeCatalogState, entry: Omit<SnapshotEntry, 'id'>): Decided {
  const found = findVolume(state, entry.site, entry.volume)
  if (E.isLeft(found)) return found
  if (volumeSnapshotsOf(state, entry.site, entry.volume).some((s) => s.name === entry.name)) {
    return E.left(new DrError('E_CONFLICT', `"${entry.volume}" already has a snapshot named "${entry.name}"`, { site: entry.site, volume: entry.volume, snapshot: entry.name }))
  }
  const strangers = entry.members.filter((m) => !found.right.members.some((k) => k.volume === m.volume && k.role === m.role)).map((m) => m.volume)
  const roles = new Set(entry.members.map((m) => m.role))
  if (strangers.length > 0 || !roles.has('namespace') || !roles.has('ols') || !roles.has('data')) {
    return E.left(
      new DrError('E_PRECONDITION', `a snapshot of "${entry.volume}" needs its namespace, OLS and data constituents, and only those`, {
        site: entry.site,
        volume: entry.volume,
        strangers,
      }),
    )
  }
  return E.right([{ type: 'volume.snapshotAdopted', data: { ...entry, id: state.nextSnapshotId } }])
}

/**
 * Decides to mark an overall snapshot invalid (it is being deleted, or it turned out incomplete). Idempotent.
 *
 * @public
 */
export function decideInvalidateSnapshot(state: VolumeCatalogState, id: number): Decided {
  return state.snapshots[String(id)]?.valid === true ? E.right([{ type: 'volume.snapshotInvalidated', data: { id } }]) : none
}

/**
 * Decides to drop an overall snapshot from the catalog. Idempotent.
 *
 * @public
 */
export function decideRemoveSnapshot(state: VolumeCatalogState, id: number): Decided {
  return state.snapshots[String(id)] === undefined ? none : E.right([{ type: 'volume.snapshotRemoved', data: { id } }])
}

/**
 * Decides to point reads of the volume's active file system at overall snapshot `snapshot` (or back at the
 * active file system with null). The target must be a snapshot of this volume (`E_NOT_FOUND`) and valid: an
 * invalid entry is never a redirect target (`E_PRECONDITION`).
 *
 * @public
 */
export function decideSetRedirect(state: VolumeCatalogState, site: string, name: string, snapshot: number | null): Decided {
  const found = findVolume(state, site, name)
  if (E.isLeft(found)) return found
  if (snapshot !== null) {
    const entry = state.snapshots[String(snapshot)]
    if (entry === undefined || entry.site !== site || entry.volume !== name) {
      return E.left(new DrError('E_NOT_FOUND', `"${name}" has no snapshot ${snapshot}`, { site, volume: name, snapshot }))
    }
    if (!entry.valid) return E.left(new DrError('E_PRECONDITION', `snapshot ${snapshot} of "${name}" is not valid`, { site, volume: name, snapshot, reason: 'invalid' }))
  }
  return found.right.readRedirect === snapshot ? none : E.right([{ type: 'volume.redirectSet', data: { site, name, snapshot } }])
}

/**
 * Decides to mark the volume as the read-only side of replication relationship `replicaOf` (or to give it back
 * to its clients with null). Nothing when it is marked so already.
 *
 * @public
 */
export function decideSetReplica(state: VolumeCatalogState, site: string, name: string, replicaOf: string | null): Decided {
  const found = findVolume(state, site, name)
  if (E.isLeft(found)) return found
  return (found.right.replicaOf ?? null) === replicaOf ? none : E.right([{ type: 'volume.replicaSet', data: { site, name, replicaOf } }])
}
