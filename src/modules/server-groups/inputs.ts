import * as t from 'io-ts'
import { Duration, JsonValue, Name } from '../../kernel/codecs.js'

const Address = t.refinement(t.string, (s) => s.length > 0 && s.length <= 255 && !/\s/.test(s), 'Address (1-255 characters, no spaces)')
const MountPath = t.refinement(t.string, (s) => /^\/[A-Za-z0-9._/-]{0,254}$/.test(s) && !s.includes('..'), 'MountPath (absolute, no "..")')
const Interface = t.type({ name: Name, address: Address })
const NameRecord = t.type({ name: Address, address: Address })
const Mount = t.type({ path: MountPath, volume: Name })
const Decision = t.keyof({ terminate: null, force: null })
const PositiveDuration = t.refinement(Duration, (n) => n > 0, 'PositiveDuration')

/**
 * Options of `serverGroups.define`: the name, its two sites (the first is where it starts active), its network
 * identity (interfaces with their virtual addresses, name records), its mounts, the expandable-volume
 * relationships of its volumes, and the embedder's configuration (shares, exports, user mappings…).
 *
 * @public
 */
export const DefineGroupInput = t.intersection(
  [
    t.type({ name: Name, sites: t.tuple([Name, Name]), members: t.array(Name) }),
    t.partial({ interfaces: t.array(Interface), nameRecords: t.array(NameRecord), mounts: t.array(Mount), config: JsonValue }),
  ],
  'DefineGroupOptions',
)

/**
 * What `serverGroups.define` takes.
 *
 * @public
 */
export type DefineGroupOptions = t.OutputOf<typeof DefineGroupInput>

/**
 * Options of `serverGroups.offerInterfaces`: the interface names a site offers server groups.
 *
 * @public
 */
export const OfferInterfacesInput = t.type({ site: Name, interfaces: t.array(Name) }, 'OfferInterfacesOptions')

/**
 * What `serverGroups.offerInterfaces` takes.
 *
 * @public
 */
export type OfferInterfacesOptions = t.OutputOf<typeof OfferInterfacesInput>

/**
 * Names one server group.
 *
 * @public
 */
export const GroupRefInput = t.type({ name: Name }, 'GroupRef')

/**
 * What the single-group methods take.
 *
 * @public
 */
export type GroupRef = t.OutputOf<typeof GroupRefInput>

/**
 * Options of `serverGroups.unload`: the group, and optionally the site to unload it from when that is not where it
 * is loaded (finishing an unload a failover deferred).
 *
 * @public
 */
export const GroupUnloadInput = t.intersection([t.type({ name: Name }), t.partial({ site: Name })], 'GroupUnloadOptions')

/**
 * What `serverGroups.unload` takes.
 *
 * @public
 */
export type GroupUnloadOptions = t.OutputOf<typeof GroupUnloadInput>

/**
 * Options of `serverGroups.replicatedDefinition`: the site, the expandable volume there (a member's) and the DR
 * series snapshot whose replicated configuration carries the group's definition.
 *
 * @public
 */
export const ReplicatedDefinitionInput = t.type({ site: Name, volume: Name, snapshot: Name }, 'ReplicatedDefinitionOptions')

/**
 * What `serverGroups.replicatedDefinition` takes.
 *
 * @public
 */
export type ReplicatedDefinitionOptions = t.OutputOf<typeof ReplicatedDefinitionInput>

/**
 * Options of `serverGroups.load` and `serverGroups.move`: the group and the site.
 *
 * @public
 */
export const GroupSiteInput = t.type({ name: Name, site: Name }, 'GroupSiteOptions')

/**
 * What `serverGroups.load` and `serverGroups.move` take.
 *
 * @public
 */
export type GroupSiteOptions = t.OutputOf<typeof GroupSiteInput>

/**
 * Options of `serverGroups.failover`: the group, and what to do when prevalidation finds discrepancies —
 * `terminate` (default: nothing reserved, nothing changed) or `force` (reserve what exists and proceed).
 *
 * @public
 */
export const GroupFailoverInput = t.intersection([t.type({ name: Name }), t.partial({ onDiscrepancy: Decision })], 'GroupFailoverOptions')

/**
 * What `serverGroups.failover` takes.
 *
 * @public
 */
export type GroupFailoverOptions = t.OutputOf<typeof GroupFailoverInput>

/**
 * Options of `serverGroups.changeConfiguration`: the group's new identity, mounts or configuration (each optional),
 * and what to do when the other site lacks something the change needs.
 *
 * @public
 */
export const ChangeGroupInput = t.intersection(
  [t.type({ name: Name }), t.partial({ interfaces: t.array(Interface), nameRecords: t.array(NameRecord), mounts: t.array(Mount), config: JsonValue, onDiscrepancy: Decision })],
  'ChangeGroupOptions',
)

/**
 * What `serverGroups.changeConfiguration` takes.
 *
 * @public
 */
export type ChangeGroupOptions = t.OutputOf<typeof ChangeGroupInput>

/**
 * Options of `serverGroups.schedule`: the cadence of the DR snapshot series (null stops it).
 *
 * @public
 */
export const ScheduleInput = t.type({ name: Name, every: t.union([PositiveDuration, t.null]) }, 'ScheduleOptions')

/**
 * What `serverGroups.schedule` takes.
 *
 * @public
 */
export type ScheduleOptions = t.OutputOf<typeof ScheduleInput>

/**
 * Options of `serverGroups.reinitialize`: the group and the one member relationship to transfer again.
 *
 * @public
 */
export const ReinitializeInput = t.type({ name: Name, member: Name }, 'ReinitializeOptions')

/**
 * What `serverGroups.reinitialize` takes.
 *
 * @public
 */
export type ReinitializeOptions = t.OutputOf<typeof ReinitializeInput>

/**
 * Options of `serverGroups.resync`: the group, and the acknowledgement (or safety snapshot) each member's resync
 * needs when its old primary was written after the common snapshot.
 *
 * @public
 */
export const GroupResyncInput = t.intersection([t.type({ name: Name }), t.partial({ acknowledgeDataLoss: t.literal(true), safetySnapshot: t.literal(true) })], 'GroupResyncOptions')

/**
 * What `serverGroups.resync` takes.
 *
 * @public
 */
export type GroupResyncOptions = t.OutputOf<typeof GroupResyncInput>

/**
 * Options of `serverGroups.prevalidate` (the compare command): the group and the site to check (default: the
 * site it is not active on).
 *
 * @public
 */
export const PrevalidateInput = t.intersection([t.type({ name: Name }), t.partial({ site: Name })], 'PrevalidateOptions')

/**
 * What `serverGroups.prevalidate` takes.
 *
 * @public
 */
export type PrevalidateOptions = t.OutputOf<typeof PrevalidateInput>
