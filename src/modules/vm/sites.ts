import { DrError } from '../../kernel/errors.js'
import type { DrPlan, VmPlacement } from './inputs.js'
import type { VmState } from './state.js'

/**
 * Every site a plan's backups are replicated to: its destination first, then its tertiary sites.
 *
 * @public
 */
export function sitesOf(plan: DrPlan): string[] {
  return [plan.destination, ...(plan.tertiary ?? []).map((t) => t.site)]
}

/**
 * The alternate-host rule of `plan` for the hosts of `site` (its destination or a tertiary site);
 * `E_INVALID_INPUT` naming the field `site` for any other site.
 *
 * @public
 */
export function placementAt(plan: DrPlan, site: string): VmPlacement {
  if (site === plan.destination) return plan.placement
  const tertiary = (plan.tertiary ?? []).find((t) => t.site === site)
  if (tertiary !== undefined) return tertiary.placement
  throw new DrError('E_INVALID_INPUT', `invalid site: field "site" must be the destination or a tertiary site of plan "${plan.id}", got "${site}"`, {
    what: 'site',
    violations: [{ path: 'site', expected: sitesOf(plan).join(' | '), actual: JSON.stringify(site) }],
  })
}

/**
 * The catalog key of the mirror record of VM `vmId`'s backup volume towards `site`: the VM id for the plan's
 * destination, `<vmId>@<site>` for a tertiary site.
 *
 * @public
 */
export function mirrorKey(plan: DrPlan, vmId: string, site: string): string {
  return site === plan.destination ? vmId : `${vmId}@${site}`
}

/**
 * The mirror relationships of `plan` towards `site`, per VM, sorted by VM id.
 *
 * @public
 */
export function planMirrors(state: VmState, plan: DrPlan, site: string): Array<{ readonly vmId: string; readonly mirror: string }> {
  return Object.entries(state.mirrors)
    .filter(([, record]) => record.planId === plan.id && (record.site ?? plan.destination) === site)
    .map(([key, record]) => ({ vmId: key.split('@')[0] ?? key, mirror: record.mirror }))
    .sort((a, b) => (a.vmId < b.vmId ? -1 : a.vmId > b.vmId ? 1 : 0))
}

/**
 * The VMs `plan` protects that the catalog knows of: those with a backup taken for the plan on its source, and
 * those with a backup mirror of the plan. Sorted.
 *
 * @public
 */
export function planVms(state: VmState, plan: DrPlan): string[] {
  const backedUp = Object.entries(state.backups)
    .filter(([, backups]) => backups.some((b) => b.site === plan.source && b.planId === plan.id))
    .map(([vmId]) => vmId)
  const mirrored = Object.entries(state.mirrors)
    .filter(([, record]) => record.planId === plan.id)
    .map(([key]) => key.split('@')[0] ?? key)
  return [...new Set([...backedUp, ...mirrored])].sort()
}
