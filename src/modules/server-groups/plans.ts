import type { PlacementPlan } from './footprint.js'
import type { ServerGroup } from './state.js'

/**
 * The part of a group a load is limited to: what a reservation holds (name records: all when not listed).
 *
 * @public
 */
export interface LoadScope {
  readonly interfaces: readonly string[]
  readonly mounts: readonly string[]
  readonly nameRecords?: readonly string[]
}

type Definition = Pick<ServerGroup, 'interfaces' | 'nameRecords' | 'mounts'>

/**
 * Loading `group` (or only `only` of it) on `site`: its volumes mounted on the site's host, its virtual addresses
 * held by the site, its name records pointing at them.
 *
 * @public
 */
export function placePlan(group: Definition, site: string, only: LoadScope | null = null): PlacementPlan {
  return {
    registry: site,
    mounts: group.mounts.filter((m) => only === null || only.mounts.includes(m.path)).map((m) => ({ site, path: m.path, volume: m.volume, mounted: true })),
    addresses: group.interfaces.filter((i) => only === null || only.interfaces.includes(i.name)).map((i) => ({ address: i.address, owner: site })),
    names: group.nameRecords.filter((r) => only?.nameRecords === undefined || only.nameRecords.includes(r.name)).map((r) => ({ name: r.name, address: r.address })),
  }
}

/**
 * Unloading `group` from `site`: its volumes dismounted there, the addresses the site holds released, and — with
 * `names` — its name records deleted where they still point at its addresses (a record pointing elsewhere is not
 * the group's to delete).
 *
 * @public
 */
export function leavePlan(group: Definition, site: string, names: boolean): PlacementPlan {
  return {
    registry: site,
    mounts: group.mounts.map((m) => ({ site, path: m.path, volume: m.volume, mounted: false })),
    addresses: group.interfaces.map((i) => ({ address: i.address, releasedBy: site })),
    names: names ? group.nameRecords.map((r) => ({ name: r.name, deletedIf: r.address })) : [],
  }
}

/**
 * Moving `group` from `from` to `to`: dismounted at `from`, mounted at `to`, its addresses moved to `to`, its name
 * records pointing at them.
 *
 * @public
 */
export function movePlan(group: Definition, from: string, to: string): PlacementPlan {
  const place = placePlan(group, to)
  return { ...place, mounts: [...leavePlan(group, from, false).mounts, ...place.mounts] }
}

/**
 * Applying a configuration change to a group loaded on `site`: what the change drops is dismounted, released and
 * deleted there; what it keeps or adds is mounted, held and pointed at.
 *
 * @public
 */
export function changePlan(old: Definition, next: Definition, site: string): PlacementPlan {
  const place = placePlan(next, site)
  const dropped = {
    mounts: old.mounts.filter((m) => !next.mounts.some((n) => n.path === m.path && n.volume === m.volume)),
    interfaces: old.interfaces.filter((i) => !next.interfaces.some((n) => n.address === i.address)),
    nameRecords: old.nameRecords.filter((r) => !next.nameRecords.some((n) => n.name === r.name)),
  }
  const leave = leavePlan(dropped, site, true)
  return { registry: site, mounts: [...leave.mounts, ...place.mounts], addresses: [...leave.addresses, ...place.addresses], names: [...leave.names, ...place.names] }
}
