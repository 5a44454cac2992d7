import { DrError } from '../../kernel/errors.js'
import type { GroupMount, ServerGroup, ServerGroupsState } from './state.js'

/**
 * What keeps a server group from loading properly at a site: an interface the site does not offer
 * (`insufficientInterfaces`) or that another group uses (`interfaceInUse`), an address another group carries or
 * a site holds outside drkit (`addressInUse`), a name record that already points at an address that is not the
 * group's (`nameRecordInUse`), a volume the site does not have (`missingFileSystem`), a data volume another
 * group has mounted (`fsMountedInOtherGroup`), or a mount path taken by another volume (`mountPathTaken`).
 *
 * @public
 */
export type DiscrepancyKind = 'insufficientInterfaces' | 'interfaceInUse' | 'addressInUse' | 'nameRecordInUse' | 'missingFileSystem' | 'fsMountedInOtherGroup' | 'mountPathTaken'

/**
 * One discrepancy: its kind, the item (interface, address, name record or mount path), a detail, and whether it
 * blocks loading (a blocking discrepancy cannot be forced).
 *
 * @public
 */
export interface Discrepancy {
  readonly kind: DiscrepancyKind
  readonly item: string
  readonly detail: string
  readonly blocksLoad: boolean
}

/**
 * The facts about the target site that prevalidation compares with the requirements: the interfaces it offers,
 * what its host has mounted, the expandable volumes it has, which site holds each of the group's addresses and
 * where each of its name records points (as the NetworkPort's identity registry says, undefined: nobody/none).
 *
 * @public
 */
export interface SiteFacts {
  readonly site: string
  readonly offered: readonly string[]
  readonly hostMounts: ReadonlyArray<{ readonly path: string; readonly volume: string }>
  readonly volumes: readonly string[]
  readonly addressOwners: Readonly<Record<string, string | undefined>>
  readonly nameRecords: Readonly<Record<string, string | undefined>>
}

/**
 * What prevalidation found: the discrepancies, and the interfaces, mount paths and name records that are
 * available (what a reservation takes).
 *
 * @public
 */
export interface Prevalidation {
  readonly site: string
  readonly discrepancies: readonly Discrepancy[]
  readonly available: { readonly interfaces: readonly string[]; readonly mounts: readonly string[]; readonly nameRecords: readonly string[] }
}

/** The other groups that hold something at `site`: loaded there, or with a reservation there. */
function holders(state: ServerGroupsState, name: string, site: string): ServerGroup[] {
  return Object.values(state.groups).filter((g) => g.name !== name && (g.loadedOn === site || g.reservation?.site === site))
}

/**
 * The other group that holds interface `iface` at `site` (loaded there with it, or holding a reservation there
 * that names it or belongs to a group that has it), if any.
 *
 * @public
 */
export function interfaceHolder(state: ServerGroupsState, name: string, site: string, iface: string): ServerGroup | undefined {
  return holders(state, name, site).find((g) => g.interfaces.some((i) => i.name === iface) || g.reservation?.interfaces.includes(iface) === true)
}

/**
 * The other group that has data volume `volume` mounted, or reserved for mounting, at `site`, if any.
 *
 * @public
 */
export function volumeHolder(state: ServerGroupsState, name: string, site: string, volume: string): ServerGroup | undefined {
  return holders(state, name, site).find((g) => g.mounts.some((m) => m.volume === volume))
}

/**
 * What keeps interface `iface` from serving group `name` at `site`, decided on the journal alone: the site does not
 * offer it (`offered`: the interface names it offers), or another group uses it there. Undefined when it is free.
 *
 * @public
 */
export function interfaceProblem(state: ServerGroupsState, name: string, site: string, offered: readonly string[], iface: string): Discrepancy | undefined {
  if (!offered.includes(iface)) return { kind: 'insufficientInterfaces', item: iface, detail: `${site} does not offer interface ${iface}`, blocksLoad: false }
  const user = interfaceHolder(state, name, site, iface)
  return user === undefined ? undefined : { kind: 'interfaceInUse', item: iface, detail: `used by server group ${user.name}`, blocksLoad: false }
}

/** Whether `owner` holding one of the group's addresses is the group itself (where it is, or was left, loaded). */
function ownedByGroup(group: ServerGroup, owner: string): boolean {
  return group.loadedOn === owner || group.pendingUnload === owner
}

/**
 * Compares the interfaces, addresses, name records and mounts `group` needs with what `facts` says the target
 * site has (FIG. 53 steps 791–793). Pure: the caller gathers the facts from the ports.
 *
 * @public
 */
export function prevalidate(state: ServerGroupsState, group: ServerGroup, facts: SiteFacts): Prevalidation {
  const discrepancies: Discrepancy[] = []
  const interfaces: string[] = []
  for (const wanted of group.interfaces) {
    const unusable = interfaceProblem(state, group.name, facts.site, facts.offered, wanted.name)
    const carrier = Object.values(state.groups).find((g) => g.name !== group.name && g.loadedOn !== null && g.interfaces.some((i) => i.address === wanted.address))
    const owner = facts.addressOwners[wanted.address]
    if (unusable !== undefined) discrepancies.push(unusable)
    else if (carrier !== undefined) discrepancies.push({ kind: 'addressInUse', item: wanted.address, detail: `carried by server group ${carrier.name}`, blocksLoad: false })
    else if (owner !== undefined && !ownedByGroup(group, owner)) discrepancies.push({ kind: 'addressInUse', item: wanted.address, detail: `held by site ${owner} outside drkit`, blocksLoad: false })
    else interfaces.push(wanted.name)
  }
  const ours = new Set(group.interfaces.map((i) => i.address))
  const nameRecords: string[] = []
  for (const record of group.nameRecords) {
    const points = facts.nameRecords[record.name]
    if (points !== undefined && points !== record.address && !ours.has(points)) {
      const other = Object.values(state.groups).find((g) => g.name !== group.name && g.nameRecords.some((r) => r.name === record.name))
      const by = other === undefined ? 'outside drkit' : `by server group ${other.name}`
      discrepancies.push({ kind: 'nameRecordInUse', item: record.name, detail: `points at ${points}, set ${by}`, blocksLoad: false })
    } else nameRecords.push(record.name)
  }
  const mounts: string[] = []
  for (const mount of group.mounts) {
    const discrepancy = mountDiscrepancy(state, group, facts, mount)
    if (discrepancy === undefined) mounts.push(mount.path)
    else discrepancies.push(discrepancy)
  }
  return { site: facts.site, discrepancies, available: { interfaces, mounts, nameRecords } }
}

function mountDiscrepancy(state: ServerGroupsState, group: ServerGroup, facts: SiteFacts, mount: GroupMount): Discrepancy | undefined {
  const holder = volumeHolder(state, group.name, facts.site, mount.volume)
  const mounted = facts.hostMounts.find((m) => m.volume === mount.volume && m.path !== mount.path)
  const taken = facts.hostMounts.find((m) => m.path === mount.path && m.volume !== mount.volume)
  if (!facts.volumes.includes(mount.volume)) return { kind: 'missingFileSystem', item: mount.path, detail: `${facts.site} has no volume ${mount.volume}`, blocksLoad: true }
  if (holder !== undefined || mounted !== undefined) {
    const by = holder !== undefined ? `server group ${holder.name}` : `path ${mounted?.path ?? ''}`
    return { kind: 'fsMountedInOtherGroup', item: mount.path, detail: `volume ${mount.volume} is mounted by ${by}`, blocksLoad: true }
  }
  if (taken !== undefined) return { kind: 'mountPathTaken', item: mount.path, detail: `path holds volume ${taken.volume}`, blocksLoad: true }
  return undefined
}

/**
 * Applies the caller's choice to a prevalidation (FIG. 53 steps 796–799): with discrepancies, `terminate` refuses
 * with `E_PRECONDITION` (the list in `details.discrepancies`), and so does `force` past a blocking one
 * (`details.blocking`); otherwise nothing happens.
 *
 * @public
 */
export function refuseDiscrepancies(name: string, found: Prevalidation, decision: 'terminate' | 'force', what: string): void {
  if (found.discrepancies.length === 0) return
  const blocking = found.discrepancies.filter((d) => d.blocksLoad)
  if (decision === 'force' && blocking.length === 0) return
  const why = decision === 'terminate' ? 'terminated' : 'blocked'
  throw new DrError('E_PRECONDITION', `${what} of server group "${name}" ${why}: ${found.discrepancies.map((d) => `${d.kind} ${d.item}`).join('; ')}`, {
    name,
    site: found.site,
    discrepancies: found.discrepancies,
    blocking: blocking.length > 0,
  })
}
