import { randomUUID } from 'node:crypto'
import type { Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError, toDrError } from '../../kernel/errors.js'
import { getOrThrow } from '../../kernel/either.js'
import { InjectedCrash, type WorkflowEngine } from '../../kernel/workflow.js'
import { Cadence, type EvMirrorView } from '../ev-mirror/index.js'
import type { GroupContext } from './context.js'
import { decideChange, decideDefine, decideOffer, decideDelete, decideHealth, decideLoad, decideOperation, decideReserve, decideSchedule, decideUnload, decideUnloadDeferred } from './decide.js'
import { definitionOf } from './definition.js'
import { memberInfo, type GroupMemberInfo } from './member-info.js'
import { GROUP_FAILOVER_WORKFLOW, GroupFailoverWorkflowInput, runGroupFailover } from './failover.js'
import { loadAt, unloadAt } from './identity.js'
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
import { refuseDiscrepancies, type Discrepancy, type Prevalidation } from './prevalidate.js'
import { GROUP_SNAPSHOT_WORKFLOW, GroupSnapshotWorkflowInput, runGroupSnapshot } from './series.js'
import type { SeriesSnapshot, ServerGroup } from './state.js'

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
  readonly #workflows: WorkflowEngine
  readonly #schedules: Cadence
  /** The operations this process is starting or driving (never run twice at once). */
  readonly #live = new Set<string>()

  /** @internal Built by the module opener; reach it through the system. */
  constructor(cx: GroupContext, workflows: WorkflowEngine) {
    this.#cx = cx
    this.#workflows = workflows
    this.#schedules = new Cadence(cx.deps.clock)
    workflows.register(GROUP_FAILOVER_WORKFLOW, { input: GroupFailoverWorkflowInput, run: (wf, input) => runGroupFailover(cx, wf, input) })
    workflows.register(GROUP_SNAPSHOT_WORKFLOW, { input: GroupSnapshotWorkflowInput, run: (wf, input) => runGroupSnapshot(cx, wf, input) })
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
   * Loads a group on a site: mounts, addresses and name records. `E_CONFLICT` when it is loaded anywhere; an
   * interface the site does not offer or another group uses is a warning (in the result and an event).
   */
  async load(options: GroupSiteOptions): Promise<{ readonly warnings: readonly string[] }> {
    const input = decode(GroupSiteInput, options, 'serverGroups.load options')
    const group = this.#cx.group(input.name)
    this.#cx.deps.sites(input.site)
    getOrThrow(decideLoad(this.#cx.store.state, input.name, input.site))
    const warnings = await loadAt(this.#cx, group, input.site, null)
    await this.#cx.commit((state) => decideLoad(state, input.name, input.site))
    this.#cx.deps.events.emit('serverGroup.loaded', 'info', { name: input.name, site: input.site, warnings })
    return { warnings }
  }

  /**
   * Unloads a group: dismounts its volumes, releases its addresses and deletes its name records. With `site`
   * other than where it is loaded — typically where a failover had to defer the unload (`group.pendingUnload`) —
   * it finishes that unload instead: dismounts there and releases the addresses that site still holds, leaving
   * the name records, which point at the group where it is now.
   */
  async unload(options: GroupUnloadOptions): Promise<void> {
    const input = decode(GroupUnloadInput, options, 'serverGroups.unload options')
    const group = this.#cx.group(input.name)
    if (input.site !== undefined && input.site !== group.loadedOn) {
      this.#cx.deps.sites(input.site)
      await this.#finishUnload(group, input.site)
      return
    }
    if (group.loadedOn === null) return
    await unloadAt(this.#cx, group, group.loadedOn, false)
    await this.#cx.commit((state) => decideUnload(state, input.name))
    this.#cx.deps.events.emit('serverGroup.unloaded', 'info', { name: input.name, site: group.loadedOn })
  }

  /**
   * Moves a loaded group to another site (unload + load). Every interface it uses must be offered there and unused
   * by any other group: otherwise `E_PRECONDITION` and the group stays where it was.
   */
  async move(options: GroupSiteOptions): Promise<{ readonly warnings: readonly string[] }> {
    const input = decode(GroupSiteInput, options, 'serverGroups.move options')
    const group = this.#cx.group(input.name)
    this.#cx.deps.sites(input.site)
    if (group.loadedOn === null) throw new DrError('E_PRECONDITION', `server group "${input.name}" is not loaded`, { name: input.name })
    const found = await this.#cx.prevalidate(group, input.site)
    const bad = found.discrepancies.filter((d) => d.kind === 'insufficientInterfaces' || d.kind === 'interfaceInUse')
    if (bad.length > 0) throw new DrError('E_PRECONDITION', `server group "${input.name}" cannot move to ${input.site}: interfaces ${bad.map((d) => d.item).join(', ')} are not unused there`, { name: input.name, discrepancies: bad })
    await this.unload({ name: input.name })
    return this.load(input)
  }

  /**
   * Changes a group's identity, mounts or configuration. The other site is checked for what the change needs
   * first (automatically); with discrepancies, `terminate` (default) refuses with `E_PRECONDITION` changing
   * nothing, `force` reserves what exists and applies the change, flagged forced.
   */
  async changeConfiguration(options: ChangeGroupOptions): Promise<{ readonly discrepancies: readonly Discrepancy[] }> {
    const input = decode(ChangeGroupInput, options, 'serverGroups.changeConfiguration options')
    const group = this.#cx.group(input.name)
    const next = {
      interfaces: input.interfaces ?? group.interfaces,
      nameRecords: input.nameRecords ?? group.nameRecords,
      mounts: input.mounts ?? group.mounts,
      config: input.config ?? group.config,
    }
    const site = this.#cx.other(group)
    const found = await this.#cx.prevalidate({ ...group, ...next }, site)
    this.#cx.deps.events.emit('serverGroup.checked', found.discrepancies.length > 0 ? 'warning' : 'info', { name: group.name, site, reason: 'configChange', discrepancies: found.discrepancies })
    refuseDiscrepancies(group.name, found, input.onDiscrepancy ?? 'terminate', 'configuration change')
    const { interfaces, mounts, nameRecords } = found.available
    const reservation = { site, interfaces: [...interfaces], mounts: [...mounts], nameRecords: [...nameRecords], forced: found.discrepancies.length > 0, reason: 'configChange' as const, at: this.#cx.deps.clock.now() }
    await this.#cx.commit((state) => decideReserve(state, group.name, reservation, next.mounts))
    await this.#cx.commit((state) => decideChange(state, group.name, next))
    if (group.loadedOn !== null) await loadAt(this.#cx, this.#cx.group(group.name), group.loadedOn, null)
    this.#cx.deps.events.emit('serverGroup.changed', 'info', { name: group.name })
    return { discrepancies: found.discrepancies }
  }

  /**
   * Fails the group over to its other site: prevalidation and reservation, member failovers in parallel, load at
   * the destination once every member is writable, unload at the source if reachable. With discrepancies,
   * `terminate` (default) refuses with `E_PRECONDITION` (details list them) and changes nothing; `force`
   * reserves what exists and proceeds — except past a blocking discrepancy (a missing volume, or a data volume
   * another group has mounted), which refuses even a forced failover.
   */
  async failover(options: GroupFailoverOptions): Promise<GroupFailoverResult> {
    const input = decode(GroupFailoverInput, options, 'serverGroups.failover options')
    const group = this.#cx.group(input.name)
    const running = group.operation
    if (running !== null && this.#live.has(running.workflowId)) throw new DrError('E_CONFLICT', `server group "${group.name}" is running ${running.kind}`, { name: group.name })
    if (running !== null && running.kind === 'failover') return (await this.#drive(group.name, running.workflowId, () => this.#workflows.resume(running.workflowId))) as unknown as GroupFailoverResult
    const target = this.#cx.other(group)
    const found = await this.#cx.prevalidate(group, target)
    this.#cx.deps.events.emit('serverGroup.checked', found.discrepancies.length > 0 ? 'warning' : 'info', { name: group.name, site: target, reason: 'failover', discrepancies: found.discrepancies })
    refuseDiscrepancies(group.name, found, input.onDiscrepancy ?? 'terminate', 'failover')
    const { interfaces, mounts, nameRecords } = found.available
    const run = { name: group.name, from: group.active, target, forced: found.discrepancies.length > 0, interfaces: [...interfaces], mounts: [...mounts], nameRecords: [...nameRecords] }
    return (await this.#start(group.name, 'failover', GROUP_FAILOVER_WORKFLOW, run)) as unknown as GroupFailoverResult
  }

  /**
   * Resynchronises every member back towards the group's previous site (in parallel; see `evMirrors.resync`), then
   * finishes an unload a failover had to defer there — the old site must be reachable for a resync anyway.
   */
  async resync(options: GroupResyncOptions): Promise<readonly EvMirrorView[]> {
    const input = decode(GroupResyncInput, options, 'serverGroups.resync options')
    const group = this.#cx.group(input.name)
    const extra = { ...(input.acknowledgeDataLoss === true ? { acknowledgeDataLoss: true as const } : {}), ...(input.safetySnapshot === true ? { safetySnapshot: true as const } : {}) }
    const members = await Promise.all(group.members.map((id) => this.#cx.deps.evMirrors.resync({ id, ...extra })))
    if (group.pendingUnload !== undefined) await this.#finishUnload(group, group.pendingUnload)
    return members
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
   * Resumes every operation a crash interrupted (and closes the record of one whose workflow the system already
   * finished); resolves once they have settled.
   */
  async recover(): Promise<void> {
    for (const group of Object.values(this.#cx.store.state.groups)) {
      const op = group.operation
      if (op === null || this.#live.has(op.workflowId)) continue
      if ((await this.#workflows.history(op.workflowId))?.status !== 'running') await this.#cx.commit((state) => decideOperation(state, group.name, null))
      else await this.#drive(group.name, op.workflowId, () => this.#workflows.resume(op.workflowId)).catch(() => undefined)
    }
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
    await this.#start(name, 'snapshot', GROUP_SNAPSHOT_WORKFLOW, { name, snapshot, reason })
    const taken = this.#cx.group(name).series.taken.find((s) => s.name === snapshot)
    if (taken === undefined) throw new DrError('E_INTERNAL', `series snapshot "${snapshot}" was not recorded`, { name })
    return taken
  }

  /** Dismounts a group where it is not loaded (an unload a failover deferred) and clears the pending record. */
  async #finishUnload(group: ServerGroup, site: string): Promise<void> {
    await unloadAt(this.#cx, group, site, true)
    await this.#cx.commit((state) => decideUnloadDeferred(state, group.name, null))
    this.#cx.deps.events.emit('serverGroup.unloaded', 'info', { name: group.name, site })
  }

  async #start(name: string, kind: 'failover' | 'snapshot', type: string, input: Json): Promise<Json> {
    const stale = this.#cx.group(name).operation
    if (stale !== null && (await this.#workflows.history(stale.workflowId))?.status !== 'running') await this.#cx.commit((state) => decideOperation(state, name, null))
    const workflowId = `${type}:${name}:${randomUUID()}`
    this.#live.add(workflowId)
    try {
      await this.#cx.commit((state) => decideOperation(state, name, { kind, workflowId }))
    } catch (error) {
      this.#live.delete(workflowId)
      throw error
    }
    return this.#drive(name, workflowId, () => this.#workflows.run(type, workflowId, input))
  }

  /** Runs (or resumes) a group operation's workflow in this process and closes its record once it has settled. */
  async #drive(name: string, workflowId: string, run: () => Promise<Json>): Promise<Json> {
    this.#live.add(workflowId)
    try {
      const result = await run()
      await this.#cx.commit((state) => decideOperation(state, name, null))
      return result
    } catch (error) {
      if (error instanceof InjectedCrash) throw error
      if ((await this.#workflows.history(workflowId))?.status !== 'running') await this.#cx.commit((state) => decideOperation(state, name, null))
      throw toDrError(error)
    } finally {
      this.#live.delete(workflowId)
    }
  }
}
