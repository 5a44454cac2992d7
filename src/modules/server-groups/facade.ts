import { randomUUID } from 'node:crypto'
import type { Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError, toDrError } from '../../kernel/errors.js'
import { getOrThrow } from '../../kernel/either.js'
import { InjectedCrash, type WorkflowEngine } from '../../kernel/workflow.js'
import type { EvMirrorView } from '../ev-mirror/index.js'
import type { GroupContext } from './context.js'
import { decideChange, decideDefine, decideOffer, decideDelete, decideHealth, decideLoad, decideOperation, decideReserve, decideSchedule, decideUnload } from './decide.js'
import { GROUP_FAILOVER_WORKFLOW, GroupFailoverWorkflowInput, runGroupFailover } from './failover.js'
import { loadAt, unloadAt } from './identity.js'
import {
  ChangeGroupInput,
  DefineGroupInput,
  GroupFailoverInput,
  GroupRefInput,
  GroupResyncInput,
  GroupSiteInput,
  OfferInterfacesInput,
  PrevalidateInput,
  ReinitializeInput,
  ScheduleInput,
  type ChangeGroupOptions,
  type DefineGroupOptions,
  type GroupFailoverOptions,
  type GroupRef,
  type GroupResyncOptions,
  type GroupSiteOptions,
  type OfferInterfacesOptions,
  type PrevalidateOptions,
  type ReinitializeOptions,
  type ScheduleOptions,
} from './inputs.js'
import type { Discrepancy, Prevalidation } from './prevalidate.js'
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
 * One member's line of `serverGroups.info` (the "replicate info" of a VDM): whether it is replicated, whether it
 * is alive or out of sync, and its last complete transfer.
 *
 * @public
 */
export interface GroupMemberInfo {
  readonly id: string
  readonly state: 'replicated' | 'non-replicated'
  readonly repState: 'alive' | 'out-of-sync'
  readonly lastTransferred: string | null
  readonly source: string
  readonly destination: string
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
  readonly #schedules = new Map<string, AbortController>()

  /** @internal Built by the module opener; reach it through the system. */
  constructor(cx: GroupContext, workflows: WorkflowEngine) {
    this.#cx = cx
    this.#workflows = workflows
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

  /** Unloads a group: dismounts its volumes, releases its addresses and deletes its name records. */
  async unload(ref: GroupRef): Promise<void> {
    const input = decode(GroupRefInput, ref, 'serverGroups.unload options')
    const group = this.#cx.group(input.name)
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
    this.#refuse(group.name, found, input.onDiscrepancy ?? 'terminate', 'configuration change')
    const reservation = { site, interfaces: [...found.available.interfaces], mounts: [...found.available.mounts], forced: found.discrepancies.length > 0, reason: 'configChange' as const, at: this.#cx.deps.clock.now() }
    await this.#cx.commit((state) => decideReserve(state, group.name, reservation))
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
    if (running !== null && running.kind === 'failover') return (await this.#drive(group.name, running.workflowId, () => this.#workflows.resume(running.workflowId))) as unknown as GroupFailoverResult
    const target = this.#cx.other(group)
    const found = await this.#cx.prevalidate(group, target)
    this.#cx.deps.events.emit('serverGroup.checked', found.discrepancies.length > 0 ? 'warning' : 'info', { name: group.name, site: target, reason: 'failover', discrepancies: found.discrepancies })
    this.#refuse(group.name, found, input.onDiscrepancy ?? 'terminate', 'failover')
    const run = { name: group.name, from: group.active, target, forced: found.discrepancies.length > 0, interfaces: [...found.available.interfaces], mounts: [...found.available.mounts] }
    return (await this.#start(group.name, 'failover', GROUP_FAILOVER_WORKFLOW, run)) as unknown as GroupFailoverResult
  }

  /** Resynchronises every member back towards the group's previous site (in parallel); see `evMirrors.resync`. */
  async resync(options: GroupResyncOptions): Promise<readonly EvMirrorView[]> {
    const input = decode(GroupResyncInput, options, 'serverGroups.resync options')
    const group = this.#cx.group(input.name)
    const extra = { ...(input.acknowledgeDataLoss === true ? { acknowledgeDataLoss: true as const } : {}), ...(input.safetySnapshot === true ? { safetySnapshot: true as const } : {}) }
    return Promise.all(group.members.map((id) => this.#cx.deps.evMirrors.resync({ id, ...extra })))
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
    return Promise.all(
      group.members.map(async (id): Promise<GroupMemberInfo> => {
        const rel = await this.#cx.deps.evMirrors.get({ id })
        return {
          id,
          state: rel.lastTransferred === null ? 'non-replicated' : 'replicated',
          repState: group.outOfSync.includes(id) ? 'out-of-sync' : 'alive',
          lastTransferred: rel.lastTransferred?.name ?? null,
          source: `${rel.source.site}/${rel.source.volume}`,
          destination: `${rel.destination.site}/${rel.destination.volume}`,
        }
      }),
    )
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
    this.#schedules.get(input.name)?.abort()
    this.#schedules.delete(input.name)
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
      if (op === null) continue
      if ((await this.#workflows.history(op.workflowId))?.status !== 'running') await this.#cx.commit((state) => decideOperation(state, group.name, null))
      else await this.#drive(group.name, op.workflowId, () => this.#workflows.resume(op.workflowId)).catch(() => undefined)
    }
  }

  /** Starts the series loops of the scheduled groups (and stops those no longer scheduled). */
  startSchedules(): void {
    for (const group of Object.values(this.#cx.store.state.groups)) {
      const every = group.series.everyMs
      const running = this.#schedules.get(group.name)
      if (every === null) {
        running?.abort()
        this.#schedules.delete(group.name)
        continue
      }
      running?.abort()
      const controller = new AbortController()
      this.#schedules.set(group.name, controller)
      void this.#loop(group.name, every, controller.signal)
    }
  }

  /** Stops every series loop. */
  stopSchedules(): void {
    for (const controller of this.#schedules.values()) controller.abort()
    this.#schedules.clear()
  }

  async #loop(name: string, everyMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#cx.deps.clock.sleep(everyMs, signal)
      } catch {
        return
      }
      if (signal.aborted || this.#cx.store.state.groups[name] === undefined) return
      await this.#seriesSnapshot(name, 'schedule').catch(() => undefined)
    }
  }

  async #seriesSnapshot(name: string, reason: string): Promise<SeriesSnapshot> {
    const group = this.#cx.group(name)
    const snapshot = `${name}.dr.${group.series.next}`
    await this.#start(name, 'snapshot', GROUP_SNAPSHOT_WORKFLOW, { name, snapshot, reason })
    const taken = this.#cx.group(name).series.taken.find((s) => s.name === snapshot)
    if (taken === undefined) throw new DrError('E_INTERNAL', `series snapshot "${snapshot}" was not recorded`, { name })
    return taken
  }

  #refuse(name: string, found: Prevalidation, decision: 'terminate' | 'force', what: string): void {
    if (found.discrepancies.length === 0) return
    const blocking = found.discrepancies.filter((d) => d.blocksLoad)
    if (decision === 'terminate' || blocking.length > 0) {
      const why = decision === 'terminate' ? 'terminated' : 'blocked'
      throw new DrError('E_PRECONDITION', `${what} of server group "${name}" ${why}: ${found.discrepancies.map((d) => `${d.kind} ${d.item}`).join('; ')}`, {
        name,
        site: found.site,
        discrepancies: found.discrepancies,
        blocking: blocking.length > 0,
      })
    }
  }

  async #start(name: string, kind: 'failover' | 'snapshot', type: string, input: Json): Promise<Json> {
    const stale = this.#cx.group(name).operation
    if (stale !== null && (await this.#workflows.history(stale.workflowId))?.status !== 'running') await this.#cx.commit((state) => decideOperation(state, name, null))
    const workflowId = `${type}:${name}:${randomUUID()}`
    await this.#cx.commit((state) => decideOperation(state, name, { kind, workflowId }))
    return this.#drive(name, workflowId, () => this.#workflows.run(type, workflowId, input))
  }

  async #drive(name: string, workflowId: string, run: () => Promise<Json>): Promise<Json> {
    try {
      const result = await run()
      await this.#cx.commit((state) => decideOperation(state, name, null))
      return result
    } catch (error) {
      if (error instanceof InjectedCrash) throw error
      if ((await this.#workflows.history(workflowId))?.status !== 'running') await this.#cx.commit((state) => decideOperation(state, name, null))
      throw toDrError(error)
    }
  }
}
