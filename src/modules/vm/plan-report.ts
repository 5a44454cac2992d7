import { callAdapter } from '../../kernel/errors.js'
import type { HostInfo, VmInfo } from '../../ports/host.js'
import { siteOf, type VmContext } from './context.js'
import type { DrPlan } from './inputs.js'
import { isProtected, validatePlan, type DrPlanReport } from './placement.js'
import { sitesOf } from './sites.js'

/**
 * The VMs registered on the plan's source site that it protects.
 *
 * @public
 */
export async function protectedVms(ctx: VmContext, plan: DrPlan): Promise<VmInfo[]> {
  const host = siteOf(ctx, plan.source).host
  const vms = await callAdapter(host.kind, 'listVms', () => host.listVms())
  return vms.filter((vm) => isProtected(plan, vm))
}

/**
 * Validates `plan` against the VMs it protects now and the hosts of every site it replicates to (see
 * `validatePlan`), and publishes the result: `vm.planWarning` per warning and `vm.planUnplaceable` per site with
 * VMs that cannot be placed.
 *
 * @public
 */
export async function reportPlan(ctx: VmContext, plan: DrPlan): Promise<DrPlanReport> {
  const vms = await protectedVms(ctx, plan)
  const hostsBySite: Record<string, readonly HostInfo[]> = {}
  for (const site of sitesOf(plan)) {
    const host = siteOf(ctx, site).host
    hostsBySite[site] = await callAdapter(host.kind, 'listHosts', () => host.listHosts())
  }
  const source = siteOf(ctx, plan.source).host
  const sourceHosts = new Set([...vms.map((vm) => vm.host), ...(await source.listHosts().catch(() => [])).map((h) => h.name)])
  const needs = vms.map((vm) => ({ vmId: vm.id, cpus: vm.cpus, memoryMb: vm.memoryMb, tags: vm.tags, paths: vm.disks.map((disk) => disk.mountPath) }))
  const report = validatePlan(plan, needs, hostsBySite, sourceHosts)
  for (const warning of report.warnings) ctx.events.emit('vm.planWarning', 'warning', { planId: plan.id, ...warning })
  for (const site of [{ site: plan.destination, unplaced: report.unplaced }, ...report.tertiary]) {
    if (site.unplaced.length > 0) ctx.events.emit('vm.planUnplaceable', 'error', { planId: plan.id, site: site.site, vms: site.unplaced })
  }
  return report
}
