import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import { interfaceHolder, interfaceProblem, volumeHolder } from './prevalidate.js'
import type { GroupMount, GroupOperation, PartialFailover, Reservation, SeriesSnapshot, ServerGroup, ServerGroupsJournalEvent, ServerGroupsState } from './state.js'

type Decided = DrEither<ServerGroupsJournalEvent[]>

/**
 * The server group `name`, or `E_NOT_FOUND`.
 *
 * @public
 */
export function findGroup(state: ServerGroupsState, name: string): DrEither<ServerGroup> {
  const group = state.groups[name]
  return group === undefined ? E.left(new DrError('E_NOT_FOUND', `server group "${name}" does not exist`, { name })) : E.right(group)
}

const on = (name: string, decide: (group: ServerGroup) => Decided) => (state: ServerGroupsState): Decided => E.chain(decide)(findGroup(state, name))

/**
 * Decides the definition of a group: `E_CONFLICT` when the name is taken or a member relationship already
 * belongs to another group, `E_INVALID_INPUT` when both sites are the same.
 *
 * @public
 */
export function decideDefine(state: ServerGroupsState, group: ServerGroup): Decided {
  if (state.groups[group.name] !== undefined) return E.left(new DrError('E_CONFLICT', `server group "${group.name}" already exists`, { name: group.name }))
  if (group.sites[0] === group.sites[1]) return E.left(new DrError('E_INVALID_INPUT', 'a server group needs two different sites', { name: group.name, violations: [{ path: 'sites' }] }))
  const taken = Object.values(state.groups).find((g) => g.members.some((m) => group.members.includes(m)))
  if (taken !== undefined) return E.left(new DrError('E_CONFLICT', `a member of "${group.name}" already belongs to server group "${taken.name}"`, { name: group.name, other: taken.name }))
  return E.right([{ type: 'group.defined', data: group }])
}

/**
 * Decides where a group is loaded once a load, unload or move has done its work: on `site`, or nowhere (null).
 * Nothing when it is recorded so already.
 *
 * @public
 */
export function decidePlaced(state: ServerGroupsState, name: string, site: string | null): Decided {
  return on(name, (group) => {
    if (group.loadedOn === site) return E.right([])
    return E.right(site === null ? [{ type: 'group.unloaded', data: { name } }] : [{ type: 'group.loaded', data: { name, site } }])
  })(state)
}

/**
 * Decides the deletion of a group: refused with `E_PRECONDITION` while it is loaded with data volumes mounted,
 * `E_CONFLICT` while an operation runs.
 *
 * @public
 */
export function decideDelete(state: ServerGroupsState, name: string): Decided {
  return on(name, (group) => {
    if (group.operation !== null) return E.left(new DrError('E_CONFLICT', `server group "${name}" is running ${group.operation.kind}`, { name, running: group.operation.kind, workflowId: group.operation.workflowId }))
    if (group.loadedOn !== null && group.mounts.length > 0) {
      return E.left(new DrError('E_PRECONDITION', `server group "${name}" has data volumes mounted on ${group.loadedOn}; unload it first`, { name, mounts: group.mounts.map((m) => m.path) }))
    }
    return E.right([{ type: 'group.deleted', data: { name } }])
  })(state)
}

/**
 * What an operation is asked to do, as far as starting it is decided: its kind, and for a load or a move the site.
 *
 * @public
 */
export type GroupRequest = { readonly kind: 'load' | 'move'; readonly site: string } | { readonly kind: Exclude<GroupOperation['kind'], 'load' | 'move'> }

/**
 * Decides the start of operation `workflowId` on a group, on the journal as it is: `E_CONFLICT` while another
 * operation runs (`details.running` names it); a load is refused with `E_CONFLICT` while the group is loaded
 * anywhere (behaviour 38); a move with `E_PRECONDITION` when the group is not loaded, or when an interface it uses
 * is not offered or is used by another group at the target (behaviour 40, `details.discrepancies`).
 *
 * @public
 */
export function decideBegin(state: ServerGroupsState, name: string, workflowId: string, request: GroupRequest): Decided {
  return on(name, (group) => {
    const running = group.operation
    if (running?.workflowId === workflowId) return E.right([])
    if (running !== null) return E.left(new DrError('E_CONFLICT', `server group "${name}" is running ${running.kind}`, { name, running: running.kind, workflowId: running.workflowId }))
    if (request.kind === 'load' && group.loadedOn !== null) return E.left(new DrError('E_CONFLICT', `server group "${name}" is already loaded on ${group.loadedOn}`, { name, site: group.loadedOn }))
    if (request.kind === 'move') {
      if (group.loadedOn === null) return E.left(new DrError('E_PRECONDITION', `server group "${name}" is not loaded`, { name }))
      const offered = state.interfaces[request.site] ?? []
      const bad = group.interfaces.flatMap((i) => interfaceProblem(state, name, request.site, offered, i.name) ?? [])
      if (bad.length > 0) {
        return E.left(new DrError('E_PRECONDITION', `server group "${name}" cannot move to ${request.site}: interfaces ${bad.map((d) => d.item).join(', ')} are not unused there`, { name, discrepancies: bad }))
      }
    }
    return E.right([{ type: 'group.operation', data: { name, operation: { kind: request.kind, workflowId } } }])
  })(state)
}

/**
 * Decides the end of operation `workflowId` (nothing when the group is not running it any more).
 *
 * @public
 */
export function decideEnd(state: ServerGroupsState, name: string, workflowId: string): Decided {
  return on(name, (group) => E.right(group.operation?.workflowId === workflowId ? [{ type: 'group.operation', data: { name, operation: null } }] : []))(state)
}

/**
 * Decides a reservation (or its release, with null), against the journal as it is now — not as prevalidation saw
 * it: an interface or a data volume that another group has meanwhile loaded or reserved at that site is
 * `E_CONFLICT` (prevalidate again), so two groups never both reserve it. `mounts` are the mounts the group will
 * have (default: its current ones; a configuration change passes the new ones).
 *
 * @public
 */
export function decideReserve(state: ServerGroupsState, name: string, reservation: Reservation | null, mounts?: readonly GroupMount[]): Decided {
  return on(name, (group) => {
    if (reservation === null) return E.right([{ type: 'group.reserved', data: { name, reservation } }])
    const taken = (item: string, holder: ServerGroup): Decided =>
      E.left(new DrError('E_CONFLICT', `${item} at ${reservation.site} was taken by server group "${holder.name}" after prevalidation; prevalidate again`, { name, site: reservation.site, item, holder: holder.name }))
    for (const iface of reservation.interfaces) {
      const holder = interfaceHolder(state, name, reservation.site, iface)
      if (holder !== undefined) return taken(`interface ${iface}`, holder)
    }
    for (const path of reservation.mounts) {
      const volume = (mounts ?? group.mounts).find((m) => m.path === path)?.volume
      const holder = volume === undefined ? undefined : volumeHolder(state, name, reservation.site, volume)
      if (holder !== undefined) return taken(`volume ${volume ?? ''}`, holder)
    }
    return E.right([{ type: 'group.reserved', data: { name, reservation } }])
  })(state)
}

/**
 * Decides recording a group failover that stopped part-way.
 *
 * @public
 */
export function decidePartialFailover(state: ServerGroupsState, name: string, partial: PartialFailover): Decided {
  return on(name, () => E.right([{ type: 'group.partiallyFailedOver', data: { name, partial } }]))(state)
}

/**
 * Decides that the unload of a group at `site` is pending (the site could not be reached), or — with null — that
 * it is done. Nothing when that is recorded already.
 *
 * @public
 */
export function decideUnloadDeferred(state: ServerGroupsState, name: string, site: string | null): Decided {
  return on(name, (group) => E.right((group.pendingUnload ?? null) === site ? [] : [{ type: 'group.unloadDeferred', data: { name, site } }]))(state)
}

/**
 * Decides the end of a failover: the group is active and loaded on `site`.
 *
 * @public
 */
export function decideFailedOver(state: ServerGroupsState, name: string, site: string, forced: boolean): Decided {
  return on(name, (group) => E.right(group.active === site && group.loadedOn === site ? [] : [{ type: 'group.failedOver', data: { name, site, forced } }]))(state)
}

/**
 * Decides the members that are out of sync.
 *
 * @public
 */
export function decideHealth(state: ServerGroupsState, name: string, outOfSync: readonly string[]): Decided {
  return on(name, () => E.right([{ type: 'group.health', data: { name, outOfSync: [...outOfSync].sort() } }]))(state)
}

/**
 * Decides the cadence of the DR snapshot series.
 *
 * @public
 */
export function decideSchedule(state: ServerGroupsState, name: string, everyMs: number | null): Decided {
  return on(name, () => E.right([{ type: 'group.scheduled', data: { name, everyMs } }]))(state)
}

/**
 * Decides recording a snapshot of the DR series (nothing when one of that name is recorded already).
 *
 * @public
 */
export function decideSeriesTaken(state: ServerGroupsState, name: string, snapshot: SeriesSnapshot): Decided {
  return on(name, (group) => E.right(group.series.taken.some((s) => s.name === snapshot.name) ? [] : [{ type: 'group.seriesTaken', data: { name, snapshot } }]))(state)
}

/**
 * Decides a configuration change of a group.
 *
 * @public
 */
export function decideChange(state: ServerGroupsState, name: string, next: Pick<ServerGroup, 'interfaces' | 'nameRecords' | 'mounts' | 'config'>): Decided {
  return on(name, () => E.right([{ type: 'group.changed', data: { name, ...next } }]))(state)
}

/**
 * Decides the interface names a site offers server groups (deduplicated, sorted).
 *
 * @public
 */
export function decideOffer(site: string, interfaces: readonly string[]): Decided {
  return E.right([{ type: 'group.interfacesOffered', data: { site, interfaces: [...new Set(interfaces)].sort() } }])
}
