import * as t from 'io-ts'
import { JsonValue } from '../../kernel/codecs.js'

const nullable = <C extends t.Mixed>(codec: C) => t.union([codec, t.null])

/**
 * A network interface of a server group: its name and the virtual address it carries.
 *
 * @public
 */
export const GroupInterfaceCodec = t.type({ name: t.string, address: t.string }, 'GroupInterface')

/**
 * A name record of a server group: the name and the address it points to.
 *
 * @public
 */
export const GroupNameRecordCodec = t.type({ name: t.string, address: t.string }, 'GroupNameRecord')

/**
 * A mount of a server group: the path and the expandable volume mounted there.
 *
 * @public
 */
export const GroupMountCodec = t.type({ path: t.string, volume: t.string }, 'GroupMount')

/**
 * One mount of a server group.
 *
 * @public
 */
export type GroupMount = t.TypeOf<typeof GroupMountCodec>

/**
 * What a server group holds at a site (prevalidation step 794/799): the interfaces, mount paths and name records
 * reserved for it, why, and whether the reservation was forced with a partial set. A reservation is drkit's own
 * record (journaled, decided against every other group's): the ports have no reservation call.
 *
 * @public
 */
export const ReservationCodec = t.intersection(
  [
    t.type({ site: t.string, interfaces: t.array(t.string), mounts: t.array(t.string), forced: t.boolean, reason: t.keyof({ failover: null, configChange: null }), at: t.number }),
    t.partial({ nameRecords: t.array(t.string) }),
  ],
  'Reservation',
)

/**
 * A reservation.
 *
 * @public
 */
export type Reservation = t.TypeOf<typeof ReservationCodec>

/**
 * One snapshot of the DR snapshot series: its name, when it was taken, and per member relationship the
 * snapshot and the transfer sequence number it was stamped with.
 *
 * @public
 */
export const SeriesSnapshotCodec = t.type(
  { name: t.string, at: t.number, reason: t.string, members: t.array(t.type({ id: t.string, snapshot: t.string, sequence: t.number })) },
  'SeriesSnapshot',
)

/**
 * One DR series snapshot.
 *
 * @public
 */
export type SeriesSnapshot = t.TypeOf<typeof SeriesSnapshotCodec>

/**
 * A group failover that stopped part-way: the site it was going to, the members that did fail over there and
 * those that could not (with why). The group stays active and loaded where it was until a failover completes.
 *
 * @public
 */
export const PartialFailoverCodec = t.type(
  { target: t.string, failedOver: t.array(t.string), failed: t.array(t.type({ member: t.string, code: t.string, message: t.string })), at: t.number },
  'PartialFailover',
)

/**
 * A partial failover.
 *
 * @public
 */
export type PartialFailover = t.TypeOf<typeof PartialFailoverCodec>

/**
 * The operation a server group is running — the durable workflow that holds the group until it settles: its kind
 * and workflow id. One at a time: starting another is refused with `E_CONFLICT`.
 *
 * @public
 */
export const GroupOperationCodec = t.type(
  { kind: t.keyof({ failover: null, snapshot: null, load: null, unload: null, move: null, change: null, resync: null }), workflowId: t.string },
  'GroupOperation',
)

/**
 * An operation under way on a group.
 *
 * @public
 */
export type GroupOperation = t.TypeOf<typeof GroupOperationCodec>

/**
 * A server group (virtual server): its two sites and the one it is active on, the site it is loaded on (null:
 * unloaded), its network identity (interfaces with addresses, name records), its mounts, the expandable-volume
 * relationships of its volumes, the embedder's configuration (shares, exports, user mappings…), a reservation
 * in force, the operation under way, the per-member replication health, the DR snapshot series; and, when
 * there is one, the site where an unload was deferred (it could not be reached) and a failover that stopped
 * part-way.
 *
 * @public
 */
export const ServerGroupCodec = t.intersection([
  t.type({
    name: t.string,
    sites: t.tuple([t.string, t.string]),
    active: t.string,
    loadedOn: nullable(t.string),
    interfaces: t.array(GroupInterfaceCodec),
    nameRecords: t.array(GroupNameRecordCodec),
    mounts: t.array(GroupMountCodec),
    members: t.array(t.string),
    config: JsonValue,
    reservation: nullable(ReservationCodec),
    forced: t.boolean,
    operation: nullable(GroupOperationCodec),
    outOfSync: t.array(t.string),
    series: t.type({ everyMs: nullable(t.number), next: t.number, taken: t.array(SeriesSnapshotCodec) }),
    createdAt: t.number,
  }),
  t.partial({ pendingUnload: t.string, partialFailover: PartialFailoverCodec }),
], 'ServerGroup')

/**
 * One server group.
 *
 * @public
 */
export type ServerGroup = t.TypeOf<typeof ServerGroupCodec>

/**
 * The module state: server groups by name and the interface names each site offers server groups.
 *
 * @public
 */
export const ServerGroupsStateCodec = t.type({ groups: t.record(t.string, ServerGroupCodec), interfaces: t.record(t.string, t.array(t.string)) }, 'ServerGroupsState')

/**
 * The module state.
 *
 * @public
 */
export type ServerGroupsState = t.TypeOf<typeof ServerGroupsStateCodec>

/**
 * The empty state.
 *
 * @public
 */
export const emptyServerGroupsState: ServerGroupsState = { groups: {}, interfaces: {} }

const Named = { name: t.string }

/**
 * The journal events of the module.
 *
 * @public
 */
export const ServerGroupsJournalEventCodec = t.union([
  t.type({ type: t.literal('group.defined'), data: ServerGroupCodec }),
  t.type({ type: t.literal('group.interfacesOffered'), data: t.type({ site: t.string, interfaces: t.array(t.string) }) }),
  t.type({ type: t.literal('group.changed'), data: t.type({ ...Named, interfaces: t.array(GroupInterfaceCodec), nameRecords: t.array(GroupNameRecordCodec), mounts: t.array(GroupMountCodec), config: JsonValue }) }),
  t.type({ type: t.literal('group.loaded'), data: t.type({ ...Named, site: t.string }) }),
  t.type({ type: t.literal('group.unloaded'), data: t.type(Named) }),
  t.type({ type: t.literal('group.reserved'), data: t.type({ ...Named, reservation: nullable(ReservationCodec) }) }),
  t.type({ type: t.literal('group.operation'), data: t.type({ ...Named, operation: nullable(GroupOperationCodec) }) }),
  t.type({ type: t.literal('group.failedOver'), data: t.type({ ...Named, site: t.string, forced: t.boolean }) }),
  t.type({ type: t.literal('group.partiallyFailedOver'), data: t.type({ ...Named, partial: PartialFailoverCodec }) }),
  t.type({ type: t.literal('group.unloadDeferred'), data: t.type({ ...Named, site: nullable(t.string) }) }),
  t.type({ type: t.literal('group.health'), data: t.type({ ...Named, outOfSync: t.array(t.string) }) }),
  t.type({ type: t.literal('group.scheduled'), data: t.type({ ...Named, everyMs: nullable(t.number) }) }),
  t.type({ type: t.literal('group.seriesTaken'), data: t.type({ ...Named, snapshot: SeriesSnapshotCodec }) }),
  t.type({ type: t.literal('group.deleted'), data: t.type(Named) }),
])

/**
 * One journal event.
 *
 * @public
 */
export type ServerGroupsJournalEvent = t.TypeOf<typeof ServerGroupsJournalEventCodec>

/**
 * Applies one journal event to the state (immer draft).
 *
 * @public
 */
export function reduceServerGroups(draft: { groups: Record<string, ServerGroup>; interfaces: Record<string, string[]> }, event: ServerGroupsJournalEvent): void {
  if (event.type === 'group.defined') {
    draft.groups[event.data.name] = event.data
    return
  }
  if (event.type === 'group.interfacesOffered') {
    draft.interfaces[event.data.site] = event.data.interfaces
    return
  }
  const group = draft.groups[event.data.name]
  if (group === undefined) return
  switch (event.type) {
    case 'group.changed':
      group.interfaces = event.data.interfaces
      group.nameRecords = event.data.nameRecords
      group.mounts = event.data.mounts
      group.config = event.data.config
      return
    case 'group.loaded':
      group.loadedOn = event.data.site
      return
    case 'group.unloaded':
      group.loadedOn = null
      return
    case 'group.reserved':
      group.reservation = event.data.reservation
      return
    case 'group.operation':
      group.operation = event.data.operation
      return
    case 'group.failedOver':
      group.active = event.data.site
      group.loadedOn = event.data.site
      group.forced = event.data.forced
      group.reservation = null
      delete group.partialFailover
      return
    case 'group.partiallyFailedOver':
      group.partialFailover = event.data.partial
      return
    case 'group.unloadDeferred':
      if (event.data.site === null) delete group.pendingUnload
      else group.pendingUnload = event.data.site
      return
    case 'group.health':
      group.outOfSync = event.data.outOfSync
      return
    case 'group.scheduled':
      group.series.everyMs = event.data.everyMs
      return
    case 'group.seriesTaken':
      group.series.taken.push(event.data.snapshot)
      group.series.next += 1
      return
    case 'group.deleted':
      delete draft.groups[event.data.name]
      return
  }
}
