import { callAdapter } from '../../kernel/errors.js'
import type { GroupContext } from './context.js'
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

/**
 * Loads a group on `site` (or only the reserved part of it): mounts its volumes on the site's host, moves its
 * virtual addresses to the site and points its name records at them. Idempotent. Returns the warnings of
 * interfaces the site does not offer or another group uses (the load goes on, as a VDM load does).
 *
 * @public
 */
export async function loadAt(cx: GroupContext, group: ServerGroup, site: string, only: LoadScope | null): Promise<string[]> {
  const { host, network } = cx.deps.sites(site)
  const check = await cx.prevalidate({ ...group, loadedOn: null }, site)
  const warnings: string[] = []
  for (const d of check.discrepancies.filter((x) => x.kind === 'insufficientInterfaces' || x.kind === 'interfaceInUse')) {
    warnings.push(`${d.item}: ${d.detail}`)
    cx.deps.events.emit('serverGroup.loadWarned', 'warning', { name: group.name, site, interface: d.item, detail: d.detail })
  }
  for (const mount of group.mounts.filter((m) => only === null || only.mounts.includes(m.path))) {
    const existing = await callAdapter(host.kind, 'getMount', () => host.getMount(mount.path))
    if (existing?.volume === mount.volume) continue
    await callAdapter(host.kind, 'mount', () => host.mount({ path: mount.path, volume: mount.volume, identity: `${group.name}:${mount.volume}`, options: { group: group.name }, readOnly: false }, cx.deps.token()))
  }
  const identity = network.identity
  for (const iface of group.interfaces.filter((i) => only === null || only.interfaces.includes(i.name))) {
    await callAdapter(network.kind, 'claimAddress', () => identity.claimAddress(iface.address, site, cx.deps.token()))
  }
  for (const record of group.nameRecords.filter((r) => only?.nameRecords === undefined || only.nameRecords.includes(r.name))) {
    await callAdapter(network.kind, 'setNameRecord', () => identity.setNameRecord(record.name, record.address, cx.deps.token()))
  }
  return warnings
}

/**
 * Unloads a group from `site`: dismounts its volumes there and releases the addresses the site holds for it;
 * its name records are deleted too unless they now point at the other site (`keepNames`). Idempotent.
 *
 * @public
 */
export async function unloadAt(cx: GroupContext, group: ServerGroup, site: string, keepNames: boolean): Promise<void> {
  const { host, network } = cx.deps.sites(site)
  for (const mount of group.mounts) {
    const existing = await callAdapter(host.kind, 'getMount', () => host.getMount(mount.path))
    if (existing?.volume === mount.volume) await callAdapter(host.kind, 'dismount', () => host.dismount(mount.path, cx.deps.token()))
  }
  const identity = network.identity
  for (const iface of group.interfaces) await callAdapter(network.kind, 'releaseAddress', () => identity.releaseAddress(iface.address, site, cx.deps.token()))
  if (!keepNames) for (const record of group.nameRecords) await callAdapter(network.kind, 'deleteNameRecord', () => identity.deleteNameRecord(record.name, cx.deps.token()))
}
