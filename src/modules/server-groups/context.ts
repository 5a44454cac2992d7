import { getOrThrow } from '../../kernel/either.js'
import { callAdapter } from '../../kernel/errors.js'
import type { Decision, JournaledStore } from '../../kernel/store.js'
import type { HostPort } from '../../ports/host.js'
import type { NetworkPort } from '../../ports/network.js'
import { findGroup } from './decide.js'
import type { ServerGroupsModuleDeps } from './module.js'
import { prevalidate, type Prevalidation } from './prevalidate.js'
import type { ServerGroup, ServerGroupsJournalEvent, ServerGroupsState } from './state.js'

/**
 * What a site offers server groups: its network port (identity registry, probes) and its host port (mounts,
 * I/O actors).
 *
 * @public
 */
export interface ServerGroupSite {
  readonly network: NetworkPort
  readonly host: HostPort
}

/**
 * The toolbox the facade and the workflows share.
 *
 * @public
 */
export class GroupContext {
  readonly deps: Omit<ServerGroupsModuleDeps, 'stateStore' | 'workflows'>
  readonly store: JournaledStore<ServerGroupsState, ServerGroupsJournalEvent>

  constructor(deps: Omit<ServerGroupsModuleDeps, 'stateStore' | 'workflows'> & { readonly store: JournaledStore<ServerGroupsState, ServerGroupsJournalEvent> }) {
    this.deps = deps
    this.store = deps.store
  }

  /** The group `name`; `E_NOT_FOUND` when there is none. */
  group(name: string): ServerGroup {
    return getOrThrow(findGroup(this.store.state, name))
  }

  /** Runs a pure decision and journals its events. */
  commit(decide: Decision<ServerGroupsState, ServerGroupsJournalEvent>): Promise<readonly ServerGroupsJournalEvent[]> {
    return this.store.execute(decide)
  }

  /** The site a group is not active on (where it fails over to). */
  other(group: ServerGroup): string {
    return group.sites[0] === group.active ? group.sites[1] : group.sites[0]
  }

  /**
   * Gathers the facts of `site` — its host's mounts, its volumes, and from its NetworkPort's identity registry who
   * holds each of the group's addresses and where each of its name records points — and prevalidates `group` (as
   * it is, or as a change would make it) against them.
   */
  async prevalidate(group: ServerGroup, site: string): Promise<Prevalidation> {
    const { host, network } = this.deps.sites(site)
    const hostMounts = await callAdapter(host.kind, 'listMounts', () => host.listMounts())
    const volumes = (await this.deps.volumes.list({ site })).map((v) => v.name)
    const identity = network.identity
    const addressOwners: Record<string, string | undefined> = {}
    for (const { address } of group.interfaces) addressOwners[address] = await callAdapter(network.kind, 'addressOwner', () => identity.addressOwner(address))
    const nameRecords: Record<string, string | undefined> = {}
    for (const { name } of group.nameRecords) nameRecords[name] = await callAdapter(network.kind, 'getNameRecord', () => identity.getNameRecord(name))
    return prevalidate(this.store.state, group, { site, offered: this.store.state.interfaces[site] ?? [], hostMounts, volumes, addressOwners, nameRecords })
  }
}
