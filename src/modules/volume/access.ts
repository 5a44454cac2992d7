import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import { activeView, type ReadView, type ResolvedObject } from './objects.js'
import type { SnapshotEntry, VolumeCatalogState, VolumeRecord } from './state.js'

/**
 * The overall snapshot id that names the active file system in a handle.
 *
 * @public
 */
export const ACTIVE_FILE_SYSTEM = 0

/**
 * Where a handle is served from after the redirect check: the active file system, or an overall snapshot —
 * the one the handle names, or the one the volume's AFS redirect names (`redirected`).
 *
 * @public
 */
export type HandleSource =
  | { readonly kind: 'active' }
  | { readonly kind: 'snapshot'; readonly entry: SnapshotEntry; readonly redirected: boolean }

/**
 * What a handle resolves to — the request the owner of the data constituent receives: the constituent, the
 * name of its own snapshot in the overall snapshot (null for the active file system), and where the object is.
 *
 * @public
 */
export interface DataHandle {
  readonly site: string
  readonly volume: string
  readonly constituent: string
  readonly ordinal: number
  readonly snapshot: string | null
  readonly snapshotId: number
  readonly id: number
  readonly offset: number
  readonly length: number
  readonly checksum: number
}

/**
 * The data handle of an object resolved through a source: the constituent and ordinal that hold it (its location
 * id), its own snapshot name, and its global object id, offset, length and checksum.
 *
 * @public
 */
export function dataHandle(site: string, volume: string, source: HandleSource, resolved: ResolvedObject): DataHandle {
  return {
    site,
    volume,
    constituent: resolved.data.volume,
    ordinal: resolved.locator.ordinal,
    snapshot: resolved.data.snapshot ?? null,
    snapshotId: source.kind === 'snapshot' ? source.entry.id : 0,
    id: resolved.locator.id,
    offset: resolved.locator.offset,
    length: resolved.locator.length,
    checksum: resolved.locator.crc,
  }
}

/**
 * Chooses the source of a handle (the redirect flow): a non-zero snapshot id skips the redirect check and names
 * an overall snapshot of this volume (`E_NOT_FOUND` otherwise); id 0 is the active file system, unless the
 * volume's AFS redirect names a snapshot, in which case that snapshot serves it. A replica's active file system
 * is only ever served through its redirect: before its first complete snapshot, id 0 is `E_UNAVAILABLE`
 * (`reason: 'replicaNotConsistent'`), never the half-written constituents.
 *
 * @public
 */
export function chooseHandleSource(state: VolumeCatalogState, record: VolumeRecord, snapshot: number): DrEither<HandleSource> {
  const id = snapshot === ACTIVE_FILE_SYSTEM ? record.readRedirect : snapshot
  if (id === null && record.replicaOf !== undefined) {
    return E.left(
      new DrError('E_UNAVAILABLE', `"${record.name}" is a replica of "${record.replicaOf}" with no snapshot complete on every constituent yet`, {
        site: record.site,
        volume: record.name,
        replicaOf: record.replicaOf,
        reason: 'replicaNotConsistent',
      }),
    )
  }
  if (id === null) return E.right({ kind: 'active' })
  const entry = state.snapshots[String(id)]
  if (entry === undefined || entry.site !== record.site || entry.volume !== record.name) {
    return E.left(new DrError('E_NOT_FOUND', `"${record.name}" has no snapshot ${id}`, { site: record.site, volume: record.name, snapshot: id }))
  }
  return E.right({ kind: 'snapshot', entry, redirected: snapshot === ACTIVE_FILE_SYSTEM })
}

/**
 * Checks that `client` may read through `entry`: the entry must be valid (`E_PRECONDITION`, `reason: 'invalid'`)
 * and, when it lists allowed clients, name the client (`E_PRECONDITION`, `reason: 'accessDenied'`).
 *
 * @public
 */
export function checkSnapshotAccess(entry: SnapshotEntry, client: string | undefined): DrEither<SnapshotEntry> {
  const where = { site: entry.site, volume: entry.volume, snapshot: entry.id }
  if (!entry.valid) return E.left(new DrError('E_PRECONDITION', `snapshot ${entry.id} ("${entry.name}") of "${entry.volume}" is not valid`, { ...where, reason: 'invalid' }))
  if (entry.allowedClients !== null && (client === undefined || !entry.allowedClients.includes(client))) {
    return E.left(
      new DrError('E_PRECONDITION', `client ${client === undefined ? '(anonymous)' : `"${client}"`} may not read snapshot ${entry.id} of "${entry.volume}"`, {
        ...where,
        client: client ?? null,
        reason: 'accessDenied',
      }),
    )
  }
  return E.right(entry)
}

/**
 * The read view of an overall snapshot: each constituent read through its own member snapshot. A data
 * constituent that is not a member of the snapshot (it was added after it) is `E_NOT_FOUND`.
 *
 * @public
 */
export function snapshotView(entry: SnapshotEntry): ReadView {
  const member = (role: 'namespace' | 'ols'): { volume: string; snapshot: string } => {
    const found = entry.members.find((m) => m.role === role)
    if (found === undefined) throw new DrError('E_CORRUPT', `snapshot ${entry.id} of "${entry.volume}" has no ${role} member`, { snapshot: entry.id, role })
    return { volume: found.volume, snapshot: found.snapshot }
  }
  return {
    namespace: member('namespace'),
    ols: member('ols'),
    data: (ordinal) => {
      const found = entry.members.find((m) => m.role === 'data' && m.ordinal === ordinal)
      if (found === undefined) {
        throw new DrError('E_NOT_FOUND', `data constituent ${ordinal} of "${entry.volume}" is not a member of snapshot ${entry.id}`, {
          site: entry.site,
          volume: entry.volume,
          snapshot: entry.id,
          ordinal,
        })
      }
      return { volume: found.volume, snapshot: found.snapshot }
    },
  }
}

/**
 * The read view for a chosen source.
 *
 * @public
 */
export function handleView(record: VolumeRecord, source: HandleSource): ReadView {
  return source.kind === 'active' ? activeView(record) : snapshotView(source.entry)
}

/**
 * Checks that clients may use a volume's live constituents directly: writing (`write`) or reading the active file
 * system around the read redirect (`live`). A replica (`replicaOf` set) refuses both with `E_PRECONDITION`
 * (`reason: 'replica'`): only its replicator writes it, and its readers go through the redirect (snapshot 0).
 *
 * @public
 */
export function checkClientAccess(record: VolumeRecord, access: 'write' | 'live'): DrEither<VolumeRecord> {
  if (record.replicaOf === undefined) return E.right(record)
  const what = access === 'write' ? 'written by clients' : 'read around its read redirect (use snapshot 0 handles)'
  return E.left(
    new DrError('E_PRECONDITION', `"${record.name}" on ${record.site} is a replica of "${record.replicaOf}"; it cannot be ${what}`, {
      site: record.site,
      volume: record.name,
      replicaOf: record.replicaOf,
      reason: 'replica',
    }),
  )
}
