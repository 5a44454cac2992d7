import * as t from 'io-ts'
import { DrError, toDrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { Json } from '../../kernel/codecs.js'
import type { EventSink } from '../../kernel/events.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { ConstituentIo } from './constituent-io.js'
import { decideAbortGroup, decideCommitSnapshot, decideOpenGroup, decideRecordFences } from './decide.js'
import type { VolumeEvents } from './events.js'
import {
  GROUP_LABEL,
  CallGuard,
  InflightCalls,
  deleteGroupSnapshots,
  fenceConstituent,
  snapshotConstituent,
  unfenceConstituent,
  type CallLimits,
} from './fence-ops.js'
import {
  volumeKey,
  type FenceRecord,
  type GroupRecord,
  type SnapshotEntry,
  type SnapshotMember,
  type VolumeCatalogState,
  type VolumeJournalEvent,
} from './state.js'

/**
 * The workflow type of a consistency-group snapshot.
 *
 * @public
 */
export const GROUP_WORKFLOW = 'volume.snapshot'

/**
 * The journaled input of a consistency-group snapshot: the volume, the overall snapshot name, the clients allowed
 * to read it (null: any) and the maximum fence-hold time.
 *
 * @public
 */
export const GroupWorkflowInput = t.type({
  site: t.string,
  volume: t.string,
  name: t.string,
  allowedClients: t.union([t.array(t.string), t.null]),
  maxFenceHoldMs: t.number,
})

/**
 * One consistency-group snapshot's journaled input.
 *
 * @public
 */
export type GroupWorkflowInput = t.TypeOf<typeof GroupWorkflowInput>

/**
 * What the consistency-group workflow needs.
 *
 * @public
 */
export interface GroupWorkflowDeps {
  readonly catalog: JournaledStore<VolumeCatalogState, VolumeJournalEvent>
  readonly io: (site: string) => ConstituentIo
  readonly events: EventSink<VolumeEvents>
  readonly clock: Clock
  readonly unfenceRetry: RetryPolicy
}

type Target = GroupRecord['fenceOrder'][number]

/**
 * The consistency-group snapshot of an expandable volume, as a durable workflow of nine steps:
 *
 * `open` (persist the group: members in fence order, deadline) → `fence:namespace` → `fence:ols` →
 * `fence:data` (every data constituent in parallel) → `snapshot` (every member in parallel) → `unfence:data`
 * (in parallel) → `unfence:ols` → `unfence:namespace` → `commit` (catalog entry and group close in one journal
 * event).
 *
 * The namespace is fenced first and unfenced last, so it never accepts a request while a constituent it points
 * into is fenced. Every step is idempotent (a fence or a member snapshot that is already there is adopted), so a
 * coordinator that died after a step but before its journal record repeats it harmlessly. The deadline is
 * checked before every fence and snapshot step and bounds every call in them; once the commit has begun (the
 * data constituents are being unfenced) it is finished whatever the time.
 *
 * On any failure — a fence or snapshot refused, unreachable storage, the caller's signal, the deadline — the
 * compensation of `open` runs: it waits for fences still under way, unfences in exact reverse order (data
 * constituents, then the OLS, then the namespace; each unfence retried with backoff, and nothing earlier in the
 * order is touched until it succeeds), deletes every member snapshot labelled with the group, and closes the
 * group as failed. No catalog entry exists for a group that did not commit.
 *
 * @public
 */
export class GroupSnapshotWorkflow {
  readonly #deps: GroupWorkflowDeps
  readonly #inflight = new InflightCalls()

  constructor(deps: GroupWorkflowDeps) {
    this.#deps = deps
  }

  /** The workflow body. Resolves with the committed catalog entry. */
  async run(ctx: WorkflowContext, input: GroupWorkflowInput): Promise<Json> {
    const failure: { error?: DrError } = {}
    try {
      return await this.#run(ctx, input, failure)
    } catch (thrown) {
      failure.error = toDrError(thrown)
      throw thrown
    }
  }

  async #run(ctx: WorkflowContext, input: GroupWorkflowInput, failure: { error?: DrError }): Promise<Json> {
    const { catalog, clock } = this.#deps
    const group = (await ctx.step(
      'open',
      async () => {
        const decided = await catalog.execute((state) =>
          decideOpenGroup(state, { site: input.site, name: input.volume, id: ctx.workflowId, snapshotName: input.name, at: clock.now(), maxFenceHoldMs: input.maxFenceHoldMs }),
        )
        const opened = catalog.state.volumes[volumeKey(input.site, input.volume)]?.group
        if (opened?.id !== ctx.workflowId) throw new DrError('E_CONFLICT', `consistency group ${ctx.workflowId} could not open`, { group: ctx.workflowId })
        if (decided.length > 0) {
          this.#emit('volume.groupStarted', 'info', { ...this.#where(input, opened), members: opened.fenceOrder.map((m) => m.volume), deadline: opened.deadline })
        }
        return opened as unknown as Json
      },
      { compensate: async (opened) => this.#abort(input, opened as unknown as GroupRecord, failure.error) },
    )) as unknown as GroupRecord
    const limits: CallLimits = { clock, deadline: group.deadline, signal: ctx.signal, group: group.id, inflight: this.#inflight }
    const namespace = group.fenceOrder.filter((m) => m.role === 'namespace')
    const ols = group.fenceOrder.filter((m) => m.role === 'ols')
    const data = group.fenceOrder.filter((m) => m.role === 'data')

    const firstFence = await ctx.step('fence:namespace', async () => this.#fence(input, group, limits, namespace))
    await ctx.step('fence:ols', async () => this.#fence(input, group, limits, ols))
    await ctx.step('fence:data', async () => this.#fence(input, group, limits, data))
    const members = (await ctx.step('snapshot', async () => this.#snapshot(input, group, limits) as unknown as Json)) as unknown as SnapshotMember[]
    await ctx.step('unfence:data', async () => {
      this.#checkDeadline(limits, 'commit')
      return this.#unfence(input, group, data)
    })
    await ctx.step('unfence:ols', async () => this.#unfence(input, group, ols))
    const lastUnfence = await ctx.step('unfence:namespace', async () => this.#unfence(input, group, namespace))
    return ctx.step('commit', async () => {
      const entry: SnapshotEntry = {
        id: group.snapshotId,
        site: input.site,
        volume: input.volume,
        name: input.name,
        createdAt: clock.now(),
        valid: true,
        allowedClients: input.allowedClients,
        members,
      }
      const decided = await catalog.execute((state) => decideCommitSnapshot(state, group.id, entry))
      const committed = catalog.state.snapshots[String(group.snapshotId)] ?? entry
      if (decided.length > 0) {
        const fenceWindowMs = Math.max(0, lastUnfence - firstFence)
        this.#emit('volume.catalogUpdated', 'info', { site: input.site, volume: input.volume, snapshot: input.name, id: committed.id, change: 'added' })
        this.#emit('volume.groupCommitted', 'info', { ...this.#where(input, group), id: committed.id, fenceWindowMs, order: group.fenceOrder.map((m) => m.volume) })
      }
      return committed as unknown as Json
    })
  }

  /** Fences `targets` (in parallel when several), records the fences in the group record; returns when it began. */
  async #fence(input: GroupWorkflowInput, group: GroupRecord, limits: CallLimits, targets: readonly Target[]): Promise<number> {
    this.#checkDeadline(limits, 'fencing')
    const startedAt = this.#deps.clock.now()
    const io = this.#deps.io(input.site)
    const guard = new CallGuard(limits, 'fencing')
    try {
      const fences = await Promise.all(
        targets.map(async (target): Promise<FenceRecord> => {
          await guard.run('fence', () => fenceConstituent(io, target.volume))
          const order = group.fenceOrder.findIndex((m) => m.volume === target.volume) + 1
          const fence: FenceRecord = { volume: target.volume, role: target.role, order, at: this.#deps.clock.now() }
          this.#emit('volume.constituentFenced', 'info', { ...this.#where(input, group), constituent: target.volume, role: target.role, order, at: fence.at })
          return fence
        }),
      )
      await this.#deps.catalog.execute((state) => decideRecordFences(state, input.site, input.volume, group.id, fences))
      return startedAt
    } finally {
      guard.dispose()
    }
  }

  /** Takes every member's snapshot in parallel (adopting replays) and returns the member rows. */
  async #snapshot(input: GroupWorkflowInput, group: GroupRecord, limits: CallLimits): Promise<SnapshotMember[]> {
    this.#checkDeadline(limits, 'taking snapshots')
    const io = this.#deps.io(input.site)
    const labels = { [GROUP_LABEL]: group.id, 'drkit.volume': input.volume, 'drkit.snapshotId': String(group.snapshotId) }
    const guard = new CallGuard(limits, 'taking snapshots')
    try {
      return await Promise.all(
        group.fenceOrder.map(async (target): Promise<SnapshotMember> => {
          const info = await guard.run('snapshot', () => snapshotConstituent(io, target.volume, input.name, labels))
          const at = this.#deps.clock.now()
          this.#emit('volume.constituentSnapshotted', 'info', { ...this.#where(input, group), constituent: target.volume, role: target.role, snapshot: info.name, at })
          return { volume: target.volume, role: target.role, ordinal: target.ordinal, snapshot: info.name, timestamp: at }
        }),
      )
    } finally {
      guard.dispose()
    }
  }

  /**
   * Unfences `targets` — issued in reverse fence order, in parallel when several — each retried until it
   * succeeds; returns when the last did.
   */
  async #unfence(input: GroupWorkflowInput, group: GroupRecord, targets: readonly Target[]): Promise<number> {
    const io = this.#deps.io(input.site)
    const results = await Promise.allSettled([...targets].reverse().map(async (target) => this.#unfenceOne(io, input, group, target)))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw toDrError(failed.reason)
    return this.#deps.clock.now()
  }

  async #unfenceOne(io: ConstituentIo, input: GroupWorkflowInput, group: GroupRecord, target: Target): Promise<void> {
    const where = this.#where(input, group)
    const attempts = await unfenceConstituent(io, target.volume, this.#deps.unfenceRetry, this.#deps.clock, (attempt, delayMs, error) =>
      this.#emit('volume.unfenceRetried', 'warning', { ...where, constituent: target.volume, attempt, delayMs, code: error.code }),
    )
    const order = group.fenceOrder.findIndex((m) => m.volume === target.volume) + 1
    this.#emit('volume.constituentUnfenced', 'info', { ...where, constituent: target.volume, role: target.role, order, at: this.#deps.clock.now(), attempts })
  }

  /**
   * The compensation of `open`: waits for fences still under way, unfences in exact reverse fence order (data
   * constituents in parallel, all before the OLS, the namespace last — a failure stops before anything earlier
   * in the order is touched, leaving the workflow resumable), waits for snapshots still under way, deletes the
   * group's member snapshots and closes the group as failed.
   */
  async #abort(input: GroupWorkflowInput, group: GroupRecord, cause: DrError | undefined): Promise<void> {
    const { catalog, clock } = this.#deps
    await this.#inflight.settle(group.id, 'fence')
    const io = this.#deps.io(input.site)
    const phases = [group.fenceOrder.filter((m) => m.role === 'data'), group.fenceOrder.filter((m) => m.role === 'ols'), group.fenceOrder.filter((m) => m.role === 'namespace')]
    for (const phase of phases) {
      const fenced = await Promise.all(phase.map(async (target) => ((await io.storage.isFenced(target.volume).catch(() => true)) ? target : undefined)))
      await this.#unfence(
        input,
        group,
        fenced.filter((target): target is Target => target !== undefined),
      )
    }
    await this.#inflight.settle(group.id, 'snapshot')
    for (const target of group.fenceOrder) await deleteGroupSnapshots(io, target.volume, group.id)
    const error = cause ?? new DrError('E_INTERNAL', `consistency group ${group.id} failed`)
    const decided = await catalog.execute((state) => decideAbortGroup(state, input.site, input.volume, group.id, error.code, clock.now()))
    if (decided.length > 0) this.#emit('volume.groupFailed', 'error', { ...this.#where(input, group), cause: error.message, code: error.code })
  }

  #checkDeadline(limits: CallLimits, phase: string): void {
    if (limits.signal.aborted) throw new DrError('E_ABORTED', `consistency group ${limits.group} was aborted before ${phase}`, { group: limits.group })
    if (this.#deps.clock.now() >= limits.deadline) {
      throw new DrError('E_TIMEOUT', `consistency group ${limits.group} exceeded its maximum fence-hold time before ${phase}`, {
        group: limits.group,
        deadline: limits.deadline,
      })
    }
  }

  #where(input: GroupWorkflowInput, group: GroupRecord): { site: string; volume: string; group: string; snapshot: string } {
    return { site: input.site, volume: input.volume, group: group.id, snapshot: group.snapshotName }
  }

  #emit<K extends keyof VolumeEvents & string>(name: K, severity: 'info' | 'warning' | 'error', payload: VolumeEvents[K]): void {
    this.#deps.events.emit(name, severity, payload)
  }
}
