import * as t from 'io-ts'
import type { HostInfo } from '../../ports/host.js'
import type { VmEvents } from './events.js'
import type { DrPlan, VmPlacement } from './inputs.js'
import { translatePath } from './path-map.js'

/**
 * What placing a VM needs to know about it: id, size, tags and the paths of its disks.
 *
 * @public
 */
export interface VmNeed {
  readonly vmId: string
  readonly cpus: number
  readonly memoryMb: number
  readonly tags: readonly string[]
  readonly paths: readonly string[]
}

/**
 * Where a VM goes: the host (a host of the site placed on) and the candidate hosts passed over (unavailable,
 * full, excluded or anti-affine), as the plan names them.
 *
 * @public
 */
export const HostChoiceCodec = t.type({ vmId: t.string, host: t.string, skipped: t.array(t.string) }, 'HostChoice')

/**
 * One VM's host.
 *
 * @public
 */
export type HostChoice = t.TypeOf<typeof HostChoiceCodec>

/**
 * A VM that cannot be placed, and why.
 *
 * @public
 */
export const UnplacedVmCodec = t.type({ vmId: t.string, reason: t.string }, 'UnplacedVm')

/**
 * The result of placing VMs: a host for each VM that can be placed, and a reason for each that cannot.
 *
 * @public
 */
export const PlacementResultCodec = t.type({ placed: t.array(HostChoiceCodec), unplaced: t.array(UnplacedVmCodec) }, 'PlacementResult')

/**
 * One placement result.
 *
 * @public
 */
export type PlacementResult = t.TypeOf<typeof PlacementResultCodec>

/**
 * A plan validation report: where every VM would be restored now on the destination, which cannot be placed (no
 * host, or a disk path the plan's path map does not translate), the same per tertiary site, and the warnings.
 *
 * @public
 */
export interface DrPlanReport extends PlacementResult {
  readonly planId: string
  readonly tertiary: ReadonlyArray<PlacementResult & { readonly site: string }>
  readonly warnings: ReadonlyArray<{ readonly code: VmEvents['vm.planWarning']['code']; readonly message: string }>
}

/**
 * True when `vm` (its id, tags and current host) is protected by `plan`.
 *
 * @public
 */
export function isProtected(plan: DrPlan, vm: { readonly id: string; readonly tags: readonly string[]; readonly host: string }): boolean {
  const p = plan.protect
  return (p.vms ?? []).includes(vm.id) || vm.tags.some((tag) => (p.tags ?? []).includes(tag)) || (p.hosts ?? []).includes(vm.host)
}

/**
 * The site-qualified name of a host a plan names (`hv-s1` on the site placed on, or `site/host`).
 *
 * @public
 */
export function qualifiedHost(site: string, name: string): string {
  return name.includes('/') ? name : `${site}/${name}`
}

interface Free {
  readonly name: string
  cpus: number
  memoryMb: number
  readonly online: boolean
  readonly groups: Set<number>
}

/**
 * Places VMs on the hosts of `site` by a placement rule (pure). Host names are compared with their site, so a
 * host of `site` that shares its name with a source host is still a candidate, and hosts in `exclude` (site-
 * qualified: the failed original hosts) are never chosen. A VM in `pinned` (registered on a host of `site`
 * already, e.g. by an earlier run that failed after registering it) stays on that host: it is not moved, and its
 * allocation is counted there already. Capacity is consumed as VMs are placed, in VM id order; `explicit` uses the
 * host named for the VM id (or `tag:<tag>`), `capacity` the eligible host with the most free memory, then CPU,
 * then earliest in the list, never two VMs of one anti-affinity group on one host.
 *
 * @public
 */
export function placeVms(
  placement: VmPlacement,
  site: string,
  vms: readonly VmNeed[],
  hosts: readonly HostInfo[],
  exclude: ReadonlySet<string>,
  pinned: ReadonlyMap<string, string> = new Map(),
): PlacementResult {
  const free = new Map<string, Free>(
    hosts.map((h) => [`${site}/${h.name}`, { name: h.name, cpus: h.cpus - h.allocatedCpus, memoryMb: h.memoryMb - h.allocatedMemoryMb, online: h.online, groups: new Set<number>() }]),
  )
  const groups = placement.rule === 'capacity' ? (placement.antiAffinity ?? []) : []
  const placed: HostChoice[] = []
  const unplaced: Array<{ vmId: string; reason: string }> = []
  const ordered = [...vms].sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0))
  const groupsOf = (vm: VmNeed): number[] => groups.flatMap((group, index) => (group.includes(vm.vmId) ? [index] : []))
  for (const vm of ordered) {
    const host = pinned.get(vm.vmId)
    if (host === undefined) continue
    for (const g of groupsOf(vm)) free.get(`${site}/${host}`)?.groups.add(g)
    placed.push({ vmId: vm.vmId, host, skipped: [] })
  }
  for (const vm of ordered.filter((v) => !pinned.has(v.vmId))) {
    const mine = groupsOf(vm)
    const why = (name: string): string | undefined => {
      const key = qualifiedHost(site, name)
      const host = free.get(key)
      if (exclude.has(key)) return `host "${name}" is the failed original host`
      if (host === undefined) return `host "${name}" is not a host of site ${site}`
      if (!host.online) return `host "${name}" is not available`
      if (host.cpus < vm.cpus || host.memoryMb < vm.memoryMb) return `host "${name}" lacks the CPU or memory`
      if (mine.some((g) => host.groups.has(g))) return `host "${name}" already runs a VM of the same anti-affinity group`
      return undefined
    }
    const candidates = candidatesFor(placement, vm)
    if (candidates.length === 0) {
      unplaced.push({ vmId: vm.vmId, reason: 'the plan names no alternate host for this VM' })
      continue
    }
    const best = candidates
      .filter((name) => why(name) === undefined)
      .sort((a, b) => {
        const x = free.get(qualifiedHost(site, a)) as Free
        const y = free.get(qualifiedHost(site, b)) as Free
        return y.memoryMb - x.memoryMb || y.cpus - x.cpus || candidates.indexOf(a) - candidates.indexOf(b)
      })[0]
    if (best === undefined) {
      unplaced.push({ vmId: vm.vmId, reason: candidates.map((name) => why(name) ?? name).join('; ') })
      continue
    }
    const host = free.get(qualifiedHost(site, best)) as Free
    host.cpus -= vm.cpus
    host.memoryMb -= vm.memoryMb
    for (const g of mine) host.groups.add(g)
    placed.push({ vmId: vm.vmId, host: host.name, skipped: candidates.filter((name) => name !== best && why(name) !== undefined) })
  }
  return { placed: placed.sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0)), unplaced }
}

function candidatesFor(placement: VmPlacement, vm: VmNeed): string[] {
  if (placement.rule === 'capacity') return [...placement.hosts]
  const explicit: Readonly<Record<string, string>> = placement.hosts
  const byId = explicit[vm.vmId]
  if (byId !== undefined) return [byId]
  const byTag = vm.tags.map((tag) => explicit[`tag:${tag}`]).find((host) => host !== undefined)
  return byTag === undefined ? [] : [byTag]
}

/**
 * The VMs of `vms` whose disk paths the plan's path map does not translate, with the reason (pure).
 *
 * @public
 */
export function unmappedVms(plan: DrPlan, vms: readonly VmNeed[]): Array<{ vmId: string; reason: string }> {
  return vms.flatMap((vm) => {
    try {
      for (const path of vm.paths) translatePath(plan.pathMap, path)
      return []
    } catch (error) {
      return [{ vmId: vm.vmId, reason: error instanceof Error ? error.message : String(error) }]
    }
  })
}

/**
 * Validates a plan against the VMs it protects now and the hosts of its destination (and of each tertiary site)
 * (pure): the placement a failover would make, the VMs it could not place (no host, or a disk path the path map
 * does not translate: that VM's restore would fail), and warnings (both sites at one location; replication more
 * frequent than backup; no VM matched; an anti-affinity group naming a VM the plan does not protect).
 * `sourceHosts` are the source site's host names, never chosen.
 *
 * @public
 */
export function validatePlan(
  plan: DrPlan,
  vms: readonly VmNeed[],
  hostsBySite: Readonly<Record<string, readonly HostInfo[]>>,
  sourceHosts: ReadonlySet<string>,
): DrPlanReport {
  const warnings: Array<DrPlanReport['warnings'][number]> = []
  if (plan.locations !== null && plan.locations.source === plan.locations.destination) {
    warnings.push({ code: 'same-location', message: `source and destination are both at "${plan.locations.source}": one disaster can take both` })
  }
  if (plan.replicateEveryMs < plan.backupEveryMs) {
    warnings.push({ code: 'replication-more-frequent-than-backup', message: 'backups are replicated more often than they are taken; some replications carry nothing new' })
  }
  if (vms.length === 0) warnings.push({ code: 'no-vm-matched', message: 'the plan protects no VM registered on the source site now' })
  const known = new Set(vms.map((vm) => vm.vmId))
  const strangers = (plan.placement.rule === 'capacity' ? (plan.placement.antiAffinity ?? []) : []).flat().filter((vmId) => !known.has(vmId))
  if (strangers.length > 0) {
    warnings.push({ code: 'anti-affinity-unknown-vm', message: `anti-affinity names VMs the plan does not protect now: ${[...new Set(strangers)].join(', ')}` })
  }
  const exclude = new Set([...sourceHosts].map((host) => qualifiedHost(plan.source, host)))
  const unmapped = unmappedVms(plan, vms)
  const placeable = vms.filter((vm) => !unmapped.some((u) => u.vmId === vm.vmId))
  const at = (site: string, placement: VmPlacement): PlacementResult => {
    const result = placeVms(placement, site, placeable, hostsBySite[site] ?? [], exclude)
    return { placed: result.placed, unplaced: [...result.unplaced, ...unmapped].sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0)) }
  }
  const tertiary = (plan.tertiary ?? []).map((replica) => ({ site: replica.site, ...at(replica.site, replica.placement) }))
  return { planId: plan.id, warnings, ...at(plan.destination, plan.placement), tertiary }
}
