import type { HostInfo } from '../../ports/host.js'
import type { VmEvents } from './events.js'
import type { DrPlan } from './inputs.js'

/**
 * What placing a VM needs to know about it: id, size and tags.
 *
 * @public
 */
export interface VmNeed {
  readonly vmId: string
  readonly cpus: number
  readonly memoryMb: number
  readonly tags: readonly string[]
}

/**
 * Where a VM goes: the host and the candidate hosts passed over (unavailable, full, excluded or anti-affine).
 *
 * @public
 */
export interface HostChoice {
  readonly vmId: string
  readonly host: string
  readonly skipped: readonly string[]
}

/**
 * The result of placing VMs: a host for each VM that can be placed, and a reason for each that cannot.
 *
 * @public
 */
export interface PlacementResult {
  readonly placed: readonly HostChoice[]
  readonly unplaced: ReadonlyArray<{ readonly vmId: string; readonly reason: string }>
}

/**
 * A plan validation report: where every VM would be restored now, which cannot be placed and the warnings.
 *
 * @public
 */
export interface DrPlanReport extends PlacementResult {
  readonly planId: string
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

interface Free {
  cpus: number
  memoryMb: number
  readonly online: boolean
  readonly groups: Set<number>
}

/**
 * Places VMs on the destination hosts by the plan's alternate-host rule (pure). Hosts in `exclude` (the failed
 * original hosts) are never chosen. Capacity is consumed as VMs are placed, in VM id order; `explicit` uses the
 * host named for the VM id (or `tag:<tag>`), `capacity` the eligible host with the most free memory, then CPU,
 * then earliest in the list, never two VMs of one anti-affinity group on one host.
 *
 * @public
 */
export function placeVms(plan: DrPlan, vms: readonly VmNeed[], hosts: readonly HostInfo[], exclude: ReadonlySet<string>): PlacementResult {
  const free = new Map<string, Free>(
    hosts.map((h) => [h.name, { cpus: h.cpus - h.allocatedCpus, memoryMb: h.memoryMb - h.allocatedMemoryMb, online: h.online, groups: new Set<number>() }]),
  )
  const groups = plan.placement.rule === 'capacity' ? (plan.placement.antiAffinity ?? []) : []
  const placed: HostChoice[] = []
  const unplaced: Array<{ vmId: string; reason: string }> = []
  for (const vm of [...vms].sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0))) {
    const mine = groups.flatMap((group, index) => (group.includes(vm.vmId) ? [index] : []))
    const why = (name: string): string | undefined => {
      const host = free.get(name)
      if (exclude.has(name)) return `host "${name}" is the failed original host`
      if (host === undefined) return `host "${name}" is not a host of the destination site`
      if (!host.online) return `host "${name}" is not available`
      if (host.cpus < vm.cpus || host.memoryMb < vm.memoryMb) return `host "${name}" lacks the CPU or memory`
      if (mine.some((g) => host.groups.has(g))) return `host "${name}" already runs a VM of the same anti-affinity group`
      return undefined
    }
    const candidates = candidatesFor(plan, vm)
    if (candidates.length === 0) {
      unplaced.push({ vmId: vm.vmId, reason: 'the plan names no alternate host for this VM' })
      continue
    }
    const eligible = candidates.filter((name) => why(name) === undefined)
    const best = [...eligible].sort((a, b) => {
      const x = free.get(a) as Free
      const y = free.get(b) as Free
      return y.memoryMb - x.memoryMb || y.cpus - x.cpus || candidates.indexOf(a) - candidates.indexOf(b)
    })[0]
    if (best === undefined) {
      unplaced.push({ vmId: vm.vmId, reason: candidates.map((name) => why(name) ?? name).join('; ') })
      continue
    }
    const host = free.get(best) as Free
    host.cpus -= vm.cpus
    host.memoryMb -= vm.memoryMb
    for (const g of mine) host.groups.add(g)
    placed.push({ vmId: vm.vmId, host: best, skipped: candidates.filter((name) => name !== best && why(name) !== undefined) })
  }
  return { placed, unplaced }
}

function candidatesFor(plan: DrPlan, vm: VmNeed): string[] {
  if (plan.placement.rule === 'capacity') return [...plan.placement.hosts]
  const explicit: Readonly<Record<string, string>> = plan.placement.hosts
  const byId = explicit[vm.vmId]
  if (byId !== undefined) return [byId]
  const byTag = vm.tags.map((tag) => explicit[`tag:${tag}`]).find((host) => host !== undefined)
  return byTag === undefined ? [] : [byTag]
}

/**
 * Validates a plan against the VMs it protects now and the destination hosts (pure): the placement a failover
 * would make, the VMs it could not place, and warnings (both sites at one location; replication less frequent
 * than backup is fine, more frequent is pointless; no VM matched).
 *
 * @public
 */
export function validatePlan(plan: DrPlan, vms: readonly VmNeed[], hosts: readonly HostInfo[], sourceHosts: ReadonlySet<string>): DrPlanReport {
  const warnings: Array<DrPlanReport['warnings'][number]> = []
  if (plan.locations !== null && plan.locations.source === plan.locations.destination) {
    warnings.push({ code: 'same-location', message: `source and destination are both at "${plan.locations.source}": one disaster can take both` })
  }
  if (plan.replicateEveryMs < plan.backupEveryMs) {
    warnings.push({ code: 'replication-slower-than-backup', message: 'backups are replicated more often than they are taken; some replications carry nothing new' })
  }
  if (vms.length === 0) warnings.push({ code: 'no-vm-matched', message: 'the plan protects no VM registered on the source site now' })
  return { planId: plan.id, warnings, ...placeVms(plan, vms, hosts, sourceHosts) }
}
