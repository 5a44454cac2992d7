import type { GroupContext } from './context.js'
import { applyPlacement, survey } from './footprint.js'
import { leavePlan, placePlan, type LoadScope } from './plans.js'
import type { ServerGroup } from './state.js'

/**
 * The warnings of loading `group` on `site`: an interface the site does not offer or another group uses (each also
 * reported as `serverGroup.loadWarned`; the load goes on, as a VDM load does).
 *
 * @public
 */
export async function loadWarnings(cx: GroupContext, group: ServerGroup, site: string): Promise<string[]> {
  const check = await cx.prevalidate({ ...group, loadedOn: null }, site)
  const warnings: string[] = []
  for (const d of check.discrepancies.filter((x) => x.kind === 'insufficientInterfaces' || x.kind === 'interfaceInUse')) {
    warnings.push(`${d.item}: ${d.detail}`)
    cx.deps.events.emit('serverGroup.loadWarned', 'warning', { name: group.name, site, interface: d.item, detail: d.detail })
  }
  return warnings
}

/**
 * Loads the reserved part of a group on `site`: mounts its volumes on the site's host, moves its
 * virtual addresses to the site and points its name records at them. Idempotent: a repeat calls no mutating
 * adapter method for what is done already. Returns the load's warnings.
 *
 * @public
 */
export async function loadAt(cx: GroupContext, group: ServerGroup, site: string, only: LoadScope): Promise<string[]> {
  const warnings = await loadWarnings(cx, group, site)
  const footprint = await survey(cx, placePlan(group, site, only))
  await applyPlacement(cx, group.name, site, footprint.wanted)
  return warnings
}

/**
 * Unloads a group from the site a failover left: dismounts its volumes there and releases the addresses the site
 * still holds; its name records stay (they point at the group where it is now). Idempotent.
 *
 * @public
 */
export async function unloadAt(cx: GroupContext, group: ServerGroup, site: string): Promise<void> {
  const footprint = await survey(cx, leavePlan(group, site, false))
  await applyPlacement(cx, group.name, site, footprint.wanted)
}
