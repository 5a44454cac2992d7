import { isDeepStrictEqual } from 'node:util'
import type { Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError } from '../../kernel/errors.js'
import { getOrThrow } from '../../kernel/either.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import { Cadence, type EvMirrorView } from '../ev-mirror/index.js'
import { GROUP_CHANGE_WORKFLOW, GroupChangeResult, GroupChangeWorkflowInput, runGroupChange } from './change.js'
import type { GroupContext } from './context.js'
import { decideDefine, decideOffer, decideDelete, decideHealth, decideSchedule } from './decide.js'
import { definitionOf } from './definition.js'
import { memberInfo, type GroupMemberInfo } from './member-info.js'
import { GROUP_FAILOVER_WORKFLOW, GroupFailoverWorkflowInput, runGroupFailover } from './failover.js'
import {
  ChangeGroupInput,
  DefineGroupInput,
  GroupFailoverInput,
  GroupRefInput,
  GroupResyncInput,
  GroupSiteInput,
  GroupUnloadInput,
  OfferInterfacesInput,
  PrevalidateInput,
  ReinitializeInput,
  ReplicatedDefinitionInput,
  ScheduleInput,
  type ChangeGroupOptions,
  type GroupFailoverOptions,
  type GroupRef,
  type GroupResyncOptions,
  type GroupSiteOptions,
  type GroupUnloadOptions,
  type DefineGroupOptions,
  type OfferInterfacesOptions,
  type PrevalidateOptions,
  type ReinitializeOptions,
  type ReplicatedDefinitionOptions,
  type ScheduleOptions,
} from './inputs.js'
import { GroupOperations } from './operations.js'
import { GROUP_LOAD_WORKFLOW, GROUP_MOVE_WORKFLOW, GroupPlacedResult, runGroupLoad, runGroupMove } from './placement.js'
import { refuseDiscrepancies, type Discrepancy, type Prevalidation } from './prevalidate.js'
import { GROUP_RESYNC_WORKFLOW, GroupResyncWorkflowInput, checkResyncable, runGroupResync } from './resync.js'
import { GROUP_SNAPSHOT_WORKFLOW, GroupSnapshotWorkflowInput, runGroupSnapshot } from './series.js'
import type { SeriesSnapshot, ServerGroup } from './state.js'
import { GROUP_UNLOAD_WORKFLOW, GroupSiteWorkflowInput, runGroupUnload } from './unload.js'

/**
 * What a group failover resolves with: where the group is now, whether it was forced, its members and the
 * warnings of its load.
 *
 * @public
 */
export interface GroupFailoverResult {
  readonly site: string
  readonly forced: boolean
  readonly members: readonly string[]
  readonly warnings: readonly string[]
}

/**
 * Server groups (virtual servers, `dr.serverGroups`): a configuration and its network identity (interfaces with
 * virtual addresses, name records), mounts and expandable-volume relationships, replicated and failed over
 * together. A failover is prevalidated first: what the group needs at the other site is reserved, and
 * discrepancies are reported — `terminate` changes nothing, `force` reserves what exists and proceeds, flagged
 * forced. A DR snapshot series of group-consistent snapshots is kept at the other site. Every method validates
 * its input and rejects with a `DrError`; a rejected call changes nothing.
 *
 * @public
 */
export class ServerGroupFacade {
  readonly #cx: GroupContext
  readonly #operations: GroupOperations
  readonly #schedules: Cadence

  /** @internal Built by the module opener; reach it through the system. */
  constructor(cx: GroupContext, workflows: WorkflowEngine) {
    this.#cx = cx
    this.#operations = new GroupOperations(cx, workflows)
    this.#schedules = new Cadence(cx.deps.clock)
    workflows.register(GROUP_FAILOVER_WORKFLOW, { input: GroupFailoverWorkflowInput, run: (wf, input) => runGroupFailover(cx, wf, input) })
    workflows.register(GROUP_SNAPSHOT_WORKFLOW, { input: GroupSnapshotWorkflowInput, run: (wf, input) => runGroupSnapshot(cx, wf, input) })
    workflows.register(GROUP_LOAD_WORKFLOW, { input: GroupSiteWorkflowInput, run: (wf, input) => runGroupLoad(cx, wf, input) })
    workflows.register(GROUP_UNLOAD_WORKFLOW, { input: GroupSiteWorkflowInput, run: (wf, input) => runGroupUnload(cx, wf, input) })
    workflows.register(GROUP_MOVE_WORKFLOW, { input: GroupSiteWorkflowInput, run: (wf, input) => runGroupMove(cx, wf, input) })
    workflows.register(GROUP_CHANGE_WORKFLOW, { input: GroupChangeWorkflowInput, run: (wf, input) => runGroupChange(cx, wf, input) })
    workflows.register(GROUP_RESYNC_WORKFLOW, { input: GroupResyncWorkflowInput, run: (wf, input) => runGroupResync(cx, wf, input) })
  }

  /** Declares the interface names a site offers server groups (replacing what it offered before). */
  async offerInterfaces(options: OfferInterfacesOptions): Promise<void> {
    const input = decode(OfferInterfacesInput, options, 'serverGroups.offerInterfaces options')
    this.#cx.deps.sites(input.site)
    await this.#cx.commit(() => decideOffer(input.site, input.interfaces))
  }

  /** Defines a server group, active (not yet loaded) on its first site. Its members must exist (`E_NOT_FOUND`). */
  async define(options: DefineGroupOptions): Promise<ServerGroup> {
    const input = decode(DefineGroupInput, options, 'serverGroups.define options')
    for (const site of input.sites) this.#cx.deps.sites(site)
    for (const id of input.members) await this.#cx.deps.evMirrors.get({ id })
    const group: ServerGroup = {
      name: input.name,
      sites: [input.sites[0], input.sites[1]],
      active: input.sites[0],
      loadedOn: null,
      interfaces: input.interfaces ?? [],
      nameRecords: input.nameRecords ?? [],
      mounts: input.mounts ?? [],
      members: [...input.members],
      config: input.config ?? null,
      reservation: null,
      forced: false,
      operation: null,
      outOfSync: [],
      series: { everyMs: null, next: 1, taken: [] },
      createdAt: this.#cx.deps.clock.now(),
    }
    await this.#cx.commit((state) => decideDefine(state, group))
    this.#cx.deps.events.emit('serverGroup.defined', 'info', { name: group.name, sites: group.sites, members: group.members })
    return this.#cx.group(group.name)
  }

  /** One server group; `E_NOT_FOUND` when there is none. */
  async get(ref: GroupRef): Promise<ServerGroup> {
    return this.#cx.group(decode(GroupRefInput, ref, 'serverGroups.get options').name)
  }

  /** Every server group, by name. */
  async list(): Promise<readonly ServerGroup[]> {
    return Object.values(this.#cx.store.state.groups).sort((x, y) => x.name.localeCompare(y.name))
  }

  /**
   * Compares what the group needs with what a site has (default: the site it would fail over to) and reports the
   * discrepancies, reserving nothing.
   */
  async prevalidate(options: PrevalidateOptions): Promise<Prevalidation> {
    const input = decode(PrevalidateInput, options, 'serverGroups.prevalidate options')
    const group = this.#cx.group(input.name)
    const site = input.site ?? this.#cx.other(group)
    this.#cx.deps.sites(site)
    const found = await this.#cx.prevalidate(group, site)
    this.#cx.deps.events.emit('serverGroup.checked', found.discrepancies.length > 0 ? 'warning' : 'info', { name: group.name, site, reason: 'compare', discrepancies: found.discrepancies })
    return found
  }

  /**
   * Loads a group on a site (durable workflow `serverGroup.load`): mounts, addresses and name records. `E_CONFLICT`
   * when it is loaded anywhere or another operation runs on it; an interface the site does not offer or another
   * group uses is a warning (in the result and an event). A failure puts back what the load had changed.
   */
  async load(options: GroupSiteOptions): Promise<{ readonly warnings: readonly string[] }> {
    const input = decode(GroupSiteInput, options, 'serverGroups.load options')
    this.#cx.group(input.name)
    this.#cx.deps.sites(input.site)
    const request = { name: input.name, site: input.site }
    const result = await this.#operations.run(input.name, { request: { kind: 'load', site: input.site }, type: GROUP_LOAD_WORKFLOW, matches: same(request), input: async () => request })
    return { warnings: decode(GroupPlacedResult, result, 'load result').warnings }
  }

  /**
   * Unloads a group (durable workflow `serverGroup.unload`): dismounts its volumes, releases its addresses and
   * deletes its name records; a failure puts them back. With `site` other than where it is loaded — typically where
   * a failover had to defer the unload (`group.pendingUnload`) — it finishes that unload instead: dismounts there
   * and releases the addresses that site still holds, leaving the name records, which point at the group where it
   * is now. Nothing happens for a group loaded nowhere when no site is named.
   */
  async unload(options: GroupUnloadOptions): Promise<void> {
    const input = decode(GroupUnloadInput, options, 'serverGroups.unload options')
    this.#cx.group(input.name)
    if (input.site !== undefined) this.#cx.deps.sites(input.site)
    // Without a site, a re-issued unload is the one a crash interrupted, wherever the group is recorded now.
    const matches = (journaled: Json): boolean => GroupSiteWorkflowInput.is(journaled) && journaled.site === (input.site ?? journaled.site)
    const build = async (): Promise<Json | null> => {
      const site = input.site ?? this.#cx.group(input.name).loadedOn
      return site === null ? null : { name: input.name, site }
    }
    await this.#operations.run(input.name, { request: { kind: 'unload' }, type: GROUP_UNLOAD_WORKFLOW, matches, input: build })
  }

  /**
   * Moves a loaded group to another site (durable workflow `serverGroup.move`: unload + load, dismounting before
   * mounting). Every interface it uses must be offered there and unused by any other group: otherwise
   * `E_PRECONDITION` and the group stays where it was; so it does when the move fails on the way. Moving a group to
   * the site it is loaded on does nothing.
   */
  async move(options: GroupSiteOptions): Promise<{ readonly warnings: readonly string[] }> {
    const input = decode(GroupSiteInput, options, 'serverGroups.move options')
    const group = this.#cx.group(input.name)
    this.#cx.deps.sites(input.site)
    if (group.loadedOn === input.site && group.operation?.kind !== 'move') return { warnings: [] }
    const request = { name: input.name, site: input.site }
    const result = await this.#operations.run(input.name, { request: { kind: 'move', site: input.site }, type: GROUP_MOVE_WORKFLOW, matches: same(request), input: async () => request })
    return { warnings: decode(GroupPlacedResult, result, 'move result').warnings }
  }

  /**
   * Changes a group's identity, mounts or configuration (durable workflow `serverGroup.change`). The other site is
   * checked for what the change needs first (automatically); with discrepancies, `terminate` (default) refuses with
   * `E_PRECONDITION` changing nothing, `force` reserves what exists and applies the change, flagged forced. Where
   * the group is loaded the change is applied: what it drops is dismounted, released and deleted there, what it
   * adds is mounted, claimed and pointed at. A failure undoes the change.
   */
  async changeConfiguration(options: ChangeGroupOptions): Promise<{ readonly discrepancies: readonly Discrepancy[] }> {
    const input = decode(ChangeGroupInput, options, 'serverGroups.changeConfiguration options')
    this.#cx.group(input.name)
    const change = {
      ...(input.interfaces === undefined ? {} : { interfaces: input.interfaces }),
      ...(input.nameRecords === undefined ? {} : { nameRecords: input.nameRecords }),
      ...(input.mounts === undefined ? {} : { mounts: input.mounts }),
      ...(input.config === undefined ? {} : { config: input.config }),
    }
    const build = async (): Promise<Json> => {
      const group = this.#cx.group(input.name)
      const site = this.#cx.other(group)
      const found = await this.#cx.prevalidate({ ...group, ...change }, site)
      this.#cx.deps.events.emit('serverGroup.checked', found.discrepancies.length > 0 ? 'warning' : 'info', { name: group.name, site, reason: 'configChange', discrepancies: found.discrepancies })
      refuseDiscrepancies(group.name, found, input.onDiscrepancy ?? 'terminate', 'configuration change')
      const { interfaces, mounts, nameRecords } = found.available
      const reserve = { site, interfaces: [...interfaces], mounts: [...mounts], nameRecords: [...nameRecords], forced: found.discrepancies.length > 0 }
      return { name: group.name, change, reserve, discrepancies: found.discrepancies.map((d) => ({ ...d })) }
    }
    const matches = (journaled: Json): boolean => GroupChangeWorkflowInput.is(journaled) && isDeepStrictEqual(journaled.change, change)
    const result = await this.#operations.run(input.name, { request: { kind: 'change' }, type: GROUP_CHANGE_WORKFLOW, matches, input: build })
    return decode(GroupChangeResult, result, 'change result')
  }

  /**
   * Fails the group over to its other site (durable workflow `serverGroup.failover`): prevalidation and
   * reservation, member failovers in parallel, load at the destination once every member is writable, unload at
   * the source if reachable. With discrepancies, `terminate` (default) refuses with `E_PRECONDITION` (details list
   * them) and changes nothing; `force` reserves what exists and proceeds — except past a blocking discrepancy (a
   * missing volume, or a data volume another group has mounted), which refuses even a forced failover. Re-issued
   * after a crash, it resumes the interrupted failover.
   */
  async failover(options: GroupFailoverOptions): Promise<GroupFailoverResult> {
    const input = decode(GroupFailoverInput, options, 'serverGroups.failover options')
    const build = async (): Promise<Json> => {
      const group = this.#cx.group(input.name)
      const target = this.#cx.other(group)
      const found = await this.#cx.prevalidate(group, target)
      this.#cx.deps.events.emit('serverGroup.checked', found.discrepancies.length > 0 ? 'warning' : 'info', { name: group.name, site: target, reason: 'failover', discrepancies: found.discrepancies })
      refuseDiscrepancies(group.name, found, input.onDiscrepancy ?? 'terminate', 'failover')
      const { interfaces, mounts, nameRecords } = found.available
      return { name: group.name, from: group.active, target, forced: found.discrepancies.length > 0, interfaces: [...interfaces], mounts: [...mounts], nameRecords: [...nameRecords] }
    }
    this.#cx.group(input.name)
    const result = await this.#operations.run(input.name, { request: { kind: 'failover' }, type: GROUP_FAILOVER_WORKFLOW, matches: () => true, input: build })
    return result as unknown as GroupFailoverResult
  }

  /**
   * Resynchronises every member back towards the group's previous site (durable workflow `serverGroup.resync`):
   * first finishes an unload a failover had to defer there, then resyncs the members in parallel (see
   * `evMirrors.resync`; members resynchronised already are left alone). `E_PRECONDITION`, changing nothing, when a
   * member is not failed over to the site the group is active on, or when there is nothing to resync.
   */
  async resync(options: GroupResyncOptions): Promise<readonly EvMirrorView[]> {
    const input = decode(GroupResyncInput, options, 'serverGroups.resync options')
    const group = this.#cx.group(input.name)
    const request = { name: input.name, acknowledgeDataLoss: input.acknowledgeDataLoss === true, safetySnapshot: input.safetySnapshot === true }
    const build = async (): Promise<Json> => {
      await checkResyncable(this.#cx, this.#cx.group(input.name), true)
      return request
    }
    await this.#operations.run(group.name, { request: { kind: 'resync' }, type: GROUP_RESYNC_WORKFLOW, matches: same(request), input: build })
    return Promise.all(group.members.map((id) => this.#cx.deps.evMirrors.get({ id })))
  }

  /**
   * The definition of a group as a DR series snapshot replicated it onto expandable volume `volume` of `site` (a
   * member's volume there), read from that site's storage alone — what a DR site needs to recreate the group
   * with `define` when the coordinator's journal is gone. `E_NOT_FOUND` when the snapshot carries none.
   */
  async replicatedDefinition(options: ReplicatedDefinitionOptions): Promise<DefineGroupOptions> {
    const input = decode(ReplicatedDefinitionInput, options, 'serverGroups.replicatedDefinition options')
    return definitionOf(await this.#cx.deps.evMirrors.replicatedConfiguration(input), input)
  }

  /** Takes a group-consistent snapshot of the DR series now. */
  async snapshot(ref: GroupRef): Promise<SeriesSnapshot> {
    const input = decode(GroupRefInput, ref, 'serverGroups.snapshot options')
    return this.#seriesSnapshot(input.name, 'manual')
  }

  /** Sets (or stops, with null) the cadence of the DR snapshot series; the module takes them on that schedule. */
  async schedule(options: ScheduleOptions): Promise<void> {
    const input = decode(ScheduleInput, options, 'serverGroups.schedule options')
    this.#cx.group(input.name)
    await this.#cx.commit((state) => decideSchedule(state, input.name, input.every))
    this.startSchedules()
  }

  /** The replication state of every member ("replicate info"). */
  async info(ref: GroupRef): Promise<readonly GroupMemberInfo[]> {
    const group = this.#cx.group(decode(GroupRefInput, ref, 'serverGroups.info options').name)
    return Promise.all(group.members.map(async (id) => memberInfo(group, id, await this.#cx.deps.evMirrors.get({ id }))))
  }

  /** Transfers one member again (a new snapshot), leaving the other members alone; clears its out-of-sync mark. */
  async reinitialize(options: ReinitializeOptions): Promise<GroupMemberInfo> {
    const input = decode(ReinitializeInput, options, 'serverGroups.reinitialize options')
    const group = this.#cx.group(input.name)
    if (!group.members.includes(input.member)) throw new DrError('E_NOT_FOUND', `"${input.member}" is not a member of server group "${input.name}"`, { name: input.name, member: input.member })
    await this.#cx.deps.evMirrors.transfer({ id: input.member })
    await this.#cx.commit((state) => decideHealth(state, input.name, (state.groups[input.name]?.outOfSync ?? []).filter((id) => id !== input.member)))
    this.#cx.deps.events.emit('serverGroup.memberReinitialized', 'info', { name: input.name, member: input.member })
    const line = (await this.info({ name: input.name })).find((m) => m.id === input.member)
    if (line === undefined) throw new DrError('E_INTERNAL', `member ${input.member} vanished`, { name: input.name })
    return line
  }

  /**
   * Deletes a group (its volumes and relationships stay). Refused with `E_PRECONDITION` while it is loaded with
   * data volumes mounted. A DR snapshot is taken first, before the deletion is replicated.
   */
  async delete(ref: GroupRef): Promise<void> {
    const input = decode(GroupRefInput, ref, 'serverGroups.delete options')
    getOrThrow(decideDelete(this.#cx.store.state, input.name))
    const group = this.#cx.group(input.name)
    const replicating = await Promise.all(group.members.map(async (id) => (await this.#cx.deps.evMirrors.get({ id })).state === 'replicating'))
    if (group.members.length > 0 && replicating.every(Boolean)) await this.#seriesSnapshot(input.name, 'beforeDelete')
    this.#schedules.clear(input.name)
    await this.#cx.commit((state) => decideDelete(state, input.name))
    this.#cx.deps.events.emit('serverGroup.deleted', 'info', { name: input.name })
  }

  /**
   * Resumes every group operation a crash interrupted — load, unload, move, configuration change, resync, failover,
   * series snapshot — (and closes the record of one whose workflow has ended meanwhile, reporting
   * `serverGroup.operationFailed` when it failed); resolves once they have settled.
   */
  async recover(): Promise<void> {
    await this.#operations.recover()
  }

  /** Starts the series loops of the scheduled groups (and stops those no longer scheduled). */
  startSchedules(): void {
    for (const group of Object.values(this.#cx.store.state.groups)) {
      this.#schedules.set(group.name, group.series.everyMs, async () => {
        if (this.#cx.store.state.groups[group.name] === undefined) return false
        await this.#seriesSnapshot(group.name, 'schedule').catch(() => undefined)
        return true
      })
    }
  }

  /** Stops every series loop. */
  stopSchedules(): void {
    this.#schedules.stop()
  }

  async #seriesSnapshot(name: string, reason: string): Promise<SeriesSnapshot> {
    const group = this.#cx.group(name)
    const snapshot = `${name}.dr.${group.series.next}`
    const matches = (journaled: Json): boolean => GroupSnapshotWorkflowInput.is(journaled) && journaled.snapshot === snapshot
    await this.#operations.run(name, { request: { kind: 'snapshot' }, type: GROUP_SNAPSHOT_WORKFLOW, matches, input: async () => ({ name, snapshot, reason }) })
    const taken = this.#cx.group(name).series.taken.find((s) => s.name === snapshot)
    if (taken === undefined) throw new DrError('E_INTERNAL', `series snapshot "${snapshot}" was not recorded`, { name })
    return taken
  }
}

/** Whether a journaled workflow input is `request` (the same call re-issued). */
function same(request: Json): (journaled: Json) => boolean {
  return (journaled) => isDeepStrictEqual(journaled, request)
}
