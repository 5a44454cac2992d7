import type { ServerGroup, ServerGroupsState } from './state.js'

/**
 * What keeps a server group from loading properly at a site: an interface the site does not offer
 * (`insufficientInterfaces`) or that another group uses (`interfaceInUse`), an address another group carries
 * (`addressInUse`), a volume the site does not have (`missingFileSystem`), a data volume another group has
 * mounted (`fsMountedInOtherGroup`), or a mount path taken by another volume (`mountPathTaken`).
 *
 * @public
 */
export type DiscrepancyKind = 'insufficientInterfaces' | 'interfaceInUse' | 'addressInUse' | 'missingFileSystem' | 'fsMountedInOtherGroup' | 'mountPathTaken'

/**
 * One discrepancy: its kind, the item (interface, address or mount path), a detail, and whether it blocks
 * loading (a blocking discrepancy cannot be forced).
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
 * what its host has mounted, who holds each address, and the expandable volumes it has.
 *
 * @public
 */
export interface SiteFacts {
  readonly site: string
  readonly offered: readonly string[]
  readonly hostMounts: ReadonlyArray<{ readonly path: string; readonly volume: string }>
  readonly volumes: readonly string[]
}

/**
 * What prevalidation found: the discrepancies, and the interfaces and mount paths that are available (what a
 * reservation takes).
 *
 * @public
 */
export interface Prevalidation {
  readonly site: string
  readonly discrepancies: readonly Discrepancy[]
  readonly available: { readonly interfaces: readonly string[]; readonly mounts: readonly string[] }
}

/** The other groups that hold something at `site`: loaded there, or with a reservation there. */
function holders(state: ServerGroupsState, group: ServerGroup, site: string): ServerGroup[] {
  return Object.values(state.groups).filter((g) => g.name !== group.name && (g.loadedOn === site || g.reservation?.site === site))
}

/**
 * Compares the interfaces, addresses and mounts `group` needs with what `facts` says the target site has (FIG. 53
 * steps 791–793). Pure: the caller gathers the facts from the ports.
 *
 * @public
 */
export function prevalidate(state: ServerGroupsState, group: ServerGroup, facts: SiteFacts): Prevalidation {
  const others = holders(state, group, facts.site)
  const discrepancies: Discrepancy[] = []
  const interfaces: string[] = []
  for (const wanted of group.interfaces) {
    const user = others.find((g) => g.interfaces.some((i) => i.name === wanted.name) || g.reservation?.interfaces.includes(wanted.name) === true)
    const carrier = Object.values(state.groups).find((g) => g.name !== group.name && g.loadedOn !== null && g.interfaces.some((i) => i.address === wanted.address))
    if (!facts.offered.includes(wanted.name)) discrepancies.push({ kind: 'insufficientInterfaces', item: wanted.name, detail: `${facts.site} does not offer interface ${wanted.name}`, blocksLoad: false })
    else if (user !== undefined) discrepancies.push({ kind: 'interfaceInUse', item: wanted.name, detail: `used by server group ${user.name}`, blocksLoad: false })
    else if (carrier !== undefined) discrepancies.push({ kind: 'addressInUse', item: wanted.address, detail: `carried by server group ${carrier.name}`, blocksLoad: false })
    else interfaces.push(wanted.name)
  }
  const mounts: string[] = []
  for (const mount of group.mounts) {
    const holder = others.find((g) => g.mounts.some((m) => m.volume === mount.volume))
    const mounted = facts.hostMounts.find((m) => m.volume === mount.volume && m.path !== mount.path)
    const taken = facts.hostMounts.find((m) => m.path === mount.path && m.volume !== mount.volume)
    if (!facts.volumes.includes(mount.volume)) discrepancies.push({ kind: 'missingFileSystem', item: mount.path, detail: `${facts.site} has no volume ${mount.volume}`, blocksLoad: true })
    else if (holder !== undefined || mounted !== undefined) {
      const by = holder !== undefined ? `server group ${holder.name}` : `path ${mounted?.path ?? ''}`
      discrepancies.push({ kind: 'fsMountedInOtherGroup', item: mount.path, detail: `volume ${mount.volume} is mounted by ${by}`, blocksLoad: true })
    } else if (taken !== undefined) discrepancies.push({ kind: 'mountPathTaken', item: mount.path, detail: `path holds volume ${taken.volume}`, blocksLoad: true })
    else mounts.push(mount.path)
  }
  return { site: facts.site, discrepancies, available: { interfaces, mounts } }
}
