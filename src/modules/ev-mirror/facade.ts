import { randomUUID } from 'node:crypto'
import * as t from 'io-ts'
import type { Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import { getOrThrow } from '../../kernel/either.js'
import { isInterruption, type RunOptions, type WorkflowContext, type WorkflowEngine } from '../../kernel/workflow.js'
import { constituentName } from '../volume/index.js'
import { Cadence } from './cadence.js'
import type { EvContext } from './context.js'
import { decideBegin, decideCreate, decideDeleted, decideEnd } from './decide.js'
import { EV_FAILOVER_WORKFLOW, EvFailoverWorkflowInput, runEvFailover, type EvFailoverResult } from './failover.js'
import {
  CreateEvMirrorInput,
  EvFailoverInput,
  EvMirrorRefInput,
  EvReplicatedConfigurationInput,
  EvResyncInput,
  EvSnapshotRefInput,
  EvTransferInput,
  type CreateEvMirrorOptions,
  type EvFailoverOptions,
  type EvMirrorRef,
  type EvReplicatedConfigurationOptions,
  type EvResyncOptions,
  type EvSnapshotRef,
  type EvTransferOptions,
} from './inputs.js'
import { EV_RESYNC_WORKFLOW, EvResyncWorkflowInput, oldPrimaryChanges, refuseDataLoss, runEvResync } from './resync.js'
import { EV_SETUP_WORKFLOW, EvSetupWorkflowInput, runEvSetup } from './setup.js'
import { ignoreMissing, releaseStaleHolds, snapshotNamed } from './side-ops.js'
import { directionOf, pairEnds, type EvOperation, type EvRelationship, type EvSide, type MemberRelationship } from './state.js'
import { TransferStepsInput, snapshotConfigKey, transferSteps } from './transfer-steps.js'

/**
 * The workflow type of a transfer.
 *
 * @public
 */
export const EV_TRANSFER_WORKFLOW = 'evMirror.transfer'

/**
 * The journaled input of a transfer: relationship, snapshot, sequence, what is replicated with it, and whether to
 * take the snapshot first.
 *
 * @public
 */
export const EvTransferWorkflowInput = t.intersection([TransferStepsInput, t.type({ take: t.boolean })])

/**
 * A relationship as the facade returns it: its record with the current source, destination and direction.
 *
 * @public
 */
export type EvMirrorView = EvRelationship & { readonly source: EvSide; readonly destination: EvSide; readonly direction: 'forward' | 'reversed' }

/**
 * What a transfer resolves with: the snapshot now served at the destination, its base (null: a baseline) and its
 * overall snapshot id in the destination catalog.
 *
 * @public
 */
export interface EvTransferResult {
  readonly snapshot: string
  readonly base: string | null
  readonly id: number
}

const TransferResult = t.type({ snapshot: t.string, base: t.union([t.string, t.null]), id: t.number })
const FailoverResult = t.type({ presented: t.string, epoch: t.number, sourceReadOnly: t.boolean })

/** Reads the configuration record a transfer replicated with `snapshot` onto a namespace constituent. */
async function readSnapshotConfiguration(cx: EvContext, site: string, namespace: string, snapshot: string): Promise<Json> {
  const storage = cx.sites(site).storage
  const config = await callAdapter(storage.kind, 'getConfig', () => storage.getConfig(namespace, snapshotConfigKey(snapshot))).catch((e: unknown) => ignoreMissing(e))
  if (config === undefined) throw new DrError('E_NOT_FOUND', `no replicated configuration for snapshot "${snapshot}" on ${site}/${namespace}`, { site, constituent: namespace, snapshot })
  return config
}

/**
 * Expandable-volume replication (`dr.evMirrors`): mirroring setup with one member relationship per constituent
 * pair plus the whole-volume relationship; transfers of consistency-group snapshots (destination resized first,
 * members in parallel and resumable, configuration and catalog copied, and only then the destination's read
 * redirect moved); failover presenting the newest complete snapshot read-write; resync back through the common
 * snapshot. Every method validates its input and rejects with a `DrError`; a rejected call changes nothing.
 * Long operations are durable workflows: {@link EvMirrorFacade.recover} resumes those a crash interrupted.
 *
 * @public
 */
export class EvMirrorFacade {
  readonly #cx: EvContext
  readonly #workflows: WorkflowEngine
  readonly #schedules: Cadence
  /**
   * The operations this process is starting or driving, by workflow id (never run twice at once): how to abort one
   * and when it has settled.
   */
  readonly #live = new Map<string, { readonly controller: AbortController; readonly settled: Promise<unknown> }>()

  /** @internal Built by the module opener; reach it through the system. */
  constructor(cx: EvContext, workflows: WorkflowEngine) {
    this.#cx = cx
    this.#workflows = workflows
    this.#schedules = new Cadence(cx.clock)
    workflows.register(EV_SETUP_WORKFLOW, { input: EvSetupWorkflowInput, run: (wf, input) => runEvSetup(cx, wf, input) })
    workflows.register(EV_TRANSFER_WORKFLOW, { input: EvTransferWorkflowInput, run: (wf, input) => runTransfer(cx, wf, input) })
    workflows.register(EV_FAILOVER_WORKFLOW, { input: EvFailoverWorkflowInput, run: (wf, input) => runEvFailover(cx, wf, input) })
    workflows.register(EV_RESYNC_WORKFLOW, { input: EvResyncWorkflowInput, run: (wf, input) => runEvResync(cx, wf, input) })
  }

  /**
   * Sets up mirroring of a source expandable volume to a destination site: the destination volume is created with
   * the source's geometry (or an existing one of that geometry is used), resized to the source's members, and
   * each destination constituent is given its source's id. `E_NOT_FOUND` for an unknown source, `E_CONFLICT`
   * when a volume already takes part in a relationship.
   */
  async create(options: CreateEvMirrorOptions): Promise<EvMirrorView> {
    const input = decode(CreateEvMirrorInput, options, 'evMirrors.create options')
    const cx = this.#cx
    cx.sites(input.source.site)
    cx.sites(input.destination.site)
    await cx.record(input.source)
    const volume = input.destination.volume ?? input.source.volume
    const id = input.id ?? `${input.source.site}-${input.source.volume}-${input.destination.site}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)
    const now = cx.clock.now()
    const side = (site: string, v: string, vserver: string | undefined): EvSide => ({ site, volume: v, repository: `${site}/${v}`, vserver: vserver ?? site })
    const rel: EvRelationship = {
      id,
      type: 'mirror',
      a: side(input.source.site, input.source.volume, input.source.vserver),
      b: side(input.destination.site, volume, input.destination.vserver),
      primary: 'a',
      state: 'replicating',
      epoch: 1,
      config: { scheduleMs: input.config?.schedule ?? null, authorizedUsers: input.config?.authorizedUsers ?? null, extra: input.config?.extra ?? null },
      pairs: [],
      idMap: [],
      sequence: 0,
      lastTransferred: null,
      operation: null,
      createdAt: now,
      updatedAt: now,
    }
    getOrThrow(decideCreate(cx.store.state, rel))
    await this.#workflows.run(EV_SETUP_WORKFLOW, `${EV_SETUP_WORKFLOW}:${id}:${randomUUID()}`, { relationship: rel } as unknown as Json)
    if (rel.config.scheduleMs !== null) this.startSchedules()
    return this.get({ id })
  }

  /** One relationship; `E_NOT_FOUND` when there is none. */
  async get(ref: EvMirrorRef): Promise<EvMirrorView> {
    const input = decode(EvMirrorRefInput, ref, 'evMirrors.get options')
    return view(this.#cx.rel(input.id))
  }

  /** Every relationship, by id. */
  async list(): Promise<readonly EvMirrorView[]> {
    return Object.values(this.#cx.store.state.relationships)
      .sort((x, y) => x.id.localeCompare(y.id))
      .map(view)
  }

  /** The member relationships of a relationship (one per active constituent pair), by key. */
  async memberRelationships(ref: EvMirrorRef): Promise<ReadonlyArray<MemberRelationship & { readonly key: string }>> {
    const input = decode(EvMirrorRefInput, ref, 'evMirrors.memberRelationships options')
    this.#cx.rel(input.id)
    return Object.entries(this.#cx.store.state.members)
      .filter(([, m]) => m.relationship === input.id)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([key, m]) => ({ key, ...m }))
  }

  /**
   * Transfers a snapshot of the source (a new consistency-group snapshot unless `snapshot` names one) to the
   * destination: an update from the last transferred snapshot, or a baseline the first time. Readers at the
   * destination see the previous complete snapshot until it is done. `E_CONFLICT` while another operation runs,
   * `E_PRECONDITION` after a failover or for an invalid snapshot.
   */
  async transfer(options: EvTransferOptions): Promise<EvTransferResult> {
    const input = decode(EvTransferInput, options, 'evMirrors.transfer options')
    const rel = this.#cx.rel(input.id)
    const sequence = rel.sequence + 1
    const run = { id: rel.id, snapshot: input.snapshot ?? `${rel.id}.${sequence}`, sequence, take: input.snapshot === undefined, ...(input.attachment === undefined ? {} : { attachment: input.attachment }) }
    try {
      return decode(TransferResult, await this.#operation(rel, 'transfer', EV_TRANSFER_WORKFLOW, run, input.signal), 'transfer result')
    } catch (error) {
      if (!isInterruption(error) && error instanceof DrError) this.#cx.events.emit('evMirror.transferFailed', 'error', { id: rel.id, snapshot: run.snapshot, code: error.code, message: error.message })
      throw error
    }
  }

  /**
   * Fails over to the destination: presents it read-write at the newest snapshot complete on every constituent
   * and raises the epoch (transfers of the old epoch are refused from then on). Works with the source down. A
   * transfer under way is aborted first (`evMirror.transferPreempted`): its compensation keeps the previous
   * complete snapshot, which is what is presented. A source that answers but cannot be made read-only stops the
   * failover (`E_PRECONDITION`, nothing changed) unless `force` is given.
   */
  async failover(options: EvFailoverOptions): Promise<EvFailoverResult> {
    const input = decode(EvFailoverInput, options, 'evMirrors.failover options')
    for (let attempt = 0; ; attempt++) {
      const rel = this.#cx.rel(input.id)
      const running = rel.operation
      if (running !== null && running.kind === 'transfer' && attempt < 3) {
        await this.#preempt(rel, running)
        continue
      }
      const run = { id: rel.id, epoch: running?.kind === 'failover' ? rel.epoch : rel.epoch + 1, ...(input.force === true ? { force: true } : {}) }
      return decode(FailoverResult, await this.#operation(rel, 'failover', EV_FAILOVER_WORKFLOW, run, undefined), 'failover result')
    }
  }

  /**
   * Resynchronises the old primary from the failed-over destination and reverses the relationship: the old
   * primary is restored to the common snapshot (its later writes are lost, so `acknowledgeDataLoss` or
   * `safetySnapshot` is required when there are any; `E_PRECONDITION` otherwise, changing nothing), resized to
   * match, and updated from the common snapshot — or by a baseline when there is none.
   */
  async resync(options: EvResyncOptions): Promise<EvMirrorView> {
    const input = decode(EvResyncInput, options, 'evMirrors.resync options')
    const rel = this.#cx.rel(input.id)
    if (rel.operation?.kind !== 'resync') {
      // Refused early, changing nothing; the workflow checks again once the old primary can no longer change.
      getOrThrow(decideBegin(this.#cx.store.state, rel.id, { kind: 'resync', workflowId: '', since: 0 }, 0))
      refuseDataLoss(rel.id, await oldPrimaryChanges(this.#cx, rel.id), input)
    }
    const epoch = rel.epoch + 1
    const consent = { safetySnapshot: input.safetySnapshot === true, acknowledgeDataLoss: input.acknowledgeDataLoss === true }
    const run = { id: rel.id, snapshot: input.snapshot ?? `${rel.id}.resync.${epoch}`, ...consent, epoch, sequence: rel.sequence + 1 }
    await this.#operation(rel, 'resync', EV_RESYNC_WORKFLOW, run, input.signal)
    return this.get({ id: rel.id })
  }

  /** The configuration replicated with a snapshot (XFER.5/6), read from the destination; `E_NOT_FOUND` if none. */
  async snapshotConfiguration(ref: EvSnapshotRef): Promise<Json> {
    const input = decode(EvSnapshotRefInput, ref, 'evMirrors.snapshotConfiguration options')
    const rel = this.#cx.rel(input.id)
    const { destination } = directionOf(rel)
    const ns = rel.pairs.find((p) => p.role === 'namespace' && p.state === 'active')
    if (ns === undefined) throw new DrError('E_NOT_FOUND', `mirror "${rel.id}" has no namespace pair yet`, { id: rel.id, snapshot: input.snapshot })
    return readSnapshotConfiguration(this.#cx, destination.site, pairEnds(rel, ns).destination, input.snapshot)
  }

  /**
   * The configuration a transfer replicated with `snapshot` onto expandable volume `volume` of `site` — with its
   * `attachment` — read from that site's storage alone: no relationship record or catalog is needed, so a DR site
   * whose coordinator lost its journal can still read it. `E_NOT_FOUND` if there is none.
   */
  async replicatedConfiguration(options: EvReplicatedConfigurationOptions): Promise<Json> {
    const input = decode(EvReplicatedConfigurationInput, options, 'evMirrors.replicatedConfiguration options')
    return readSnapshotConfiguration(this.#cx, input.site, constituentName(input.volume, 'namespace', 0), input.snapshot)
  }

  /**
   * Deletes a relationship: releases every hold it has on either side and forgets it; the volumes and snapshots
   * stay (the replica stays read-only; `volumes.setReplica` with null gives it to clients). A side that cannot be
   * reached refuses the deletion (with the adapter's error), which can be retried.
   */
  async delete(ref: EvMirrorRef): Promise<void> {
    const input = decode(EvMirrorRefInput, ref, 'evMirrors.delete options')
    const rel = this.#cx.rel(input.id)
    if (rel.operation !== null) throw new DrError('E_CONFLICT', `mirror "${rel.id}" is running ${rel.operation.kind}`, { id: rel.id })
    for (const side of [rel.a, rel.b]) await releaseStaleHolds(this.#cx, rel.id, side, []).catch((e: unknown) => ignoreMissing(e))
    this.#schedules.clear(rel.id)
    await this.#cx.commit((state) => decideDeleted(state, rel.id, this.#cx.clock.now()))
    this.#cx.events.emit('evMirror.deleted', 'info', { id: rel.id })
  }

  /**
   * Resumes every operation a crash interrupted (and closes the record of one whose workflow the system already
   * finished); resolves once they have settled.
   */
  async recover(): Promise<void> {
    for (const rel of Object.values(this.#cx.store.state.relationships)) {
      const op = rel.operation
      if (op === null || this.#live.has(op.workflowId)) continue
      if ((await this.#workflows.history(op.workflowId))?.status !== 'running') {
        await this.#cx.commit((state) => decideEnd(state, rel.id, op.workflowId, this.#cx.clock.now()))
        continue
      }
      await this.#drive(rel, op, (options) => this.#workflows.resume(op.workflowId, options), undefined).catch(() => undefined)
    }
  }

  /**
   * Starts a transfer loop for every replicating relationship whose configuration has a schedule (and stops the
   * loops of the others): every `scheduleMs`, a new consistency-group snapshot is transferred (continuous
   * mirroring, seed 001 §3.11). A failed round is reported by `evMirror.transferFailed` and retried next time.
   */
  startSchedules(): void {
    for (const rel of Object.values(this.#cx.store.state.relationships)) {
      this.#schedules.set(rel.id, rel.config.scheduleMs, async () => {
        const now = this.#cx.store.state.relationships[rel.id]
        if (now === undefined) return false
        if (now.state === 'replicating' && now.operation === null) await this.transfer({ id: rel.id }).catch(() => undefined)
        return true
      })
    }
  }

  /** Stops every transfer loop. */
  stopSchedules(): void {
    this.#schedules.stop()
  }

  async #operation(rel: EvRelationship, kind: EvOperation['kind'], type: string, input: Json, signal: AbortSignal | undefined): Promise<Json> {
    const running = rel.operation
    if (running !== null && this.#live.has(running.workflowId)) throw new DrError('E_CONFLICT', `mirror "${rel.id}" is running ${running.kind}`, { id: rel.id, running: running.kind })
    if (running !== null && running.kind === kind) return this.#drive(rel, running, (options) => this.#workflows.resume(running.workflowId, options), signal)
    if (running !== null && (await this.#workflows.history(running.workflowId))?.status !== 'running') {
      await this.#cx.commit((state) => decideEnd(state, rel.id, running.workflowId, this.#cx.clock.now()))
    }
    const operation: EvOperation = { kind, workflowId: `${type}:${rel.id}:${randomUUID()}`, since: this.#cx.clock.now() }
    const tracked = this.#track(operation.workflowId)
    try {
      await this.#cx.commit((state) => decideBegin(state, rel.id, operation, this.#cx.clock.now()))
    } catch (error) {
      tracked.settle()
      throw error
    }
    return this.#drive(rel, operation, (options) => this.#workflows.run(type, operation.workflowId, input, options), signal, tracked)
  }

  /** Records that this process drives workflow `id` (from before its operation is journaled until it settles). */
  #track(id: string): { readonly controller: AbortController; settle(): void } {
    const controller = new AbortController()
    let settle = (): void => undefined
    this.#live.set(id, { controller, settled: new Promise<void>((resolve) => (settle = resolve)) })
    return {
      controller,
      settle: () => {
        this.#live.delete(id)
        settle()
      },
    }
  }

  /** Runs (or resumes) an operation's workflow, abortable through {@link EvMirrorFacade.#preempt}, and closes its record once it has settled. */
  async #drive(rel: EvRelationship, operation: EvOperation, run: (options: RunOptions) => Promise<Json>, signal: AbortSignal | undefined, tracked = this.#track(operation.workflowId)): Promise<Json> {
    try {
      const result = await run({ signal: signal === undefined ? tracked.controller.signal : AbortSignal.any([signal, tracked.controller.signal]) })
      await this.#cx.commit((state) => decideEnd(state, rel.id, operation.workflowId, this.#cx.clock.now()))
      return result
    } catch (error) {
      if (isInterruption(error)) throw error
      const history = await this.#workflows.history(operation.workflowId)
      if (history?.status !== 'running') await this.#cx.commit((state) => decideEnd(state, rel.id, operation.workflowId, this.#cx.clock.now()))
      throw error
    } finally {
      tracked.settle()
    }
  }

  /**
   * Aborts a transfer so that a failover can run: the one this process drives is signalled and awaited; one a
   * crash interrupted is resumed already aborted, which runs its compensations. Either way the destination keeps
   * the previous complete snapshot.
   */
  async #preempt(rel: EvRelationship, operation: EvOperation): Promise<void> {
    const live = this.#live.get(operation.workflowId)
    if (live !== undefined) {
      live.controller.abort()
      await live.settled
    } else {
      await this.#drive(rel, operation, (options) => this.#workflows.resume(operation.workflowId, options), AbortSignal.abort()).catch((e: unknown) => {
        if (isInterruption(e) || !isDrError(e, 'E_ABORTED')) throw e
      })
    }
    this.#cx.events.emit('evMirror.transferPreempted', 'warning', { id: rel.id, workflowId: operation.workflowId, by: 'failover' })
  }
}

/** The transfer workflow: takes the snapshot first when asked, then the transfer steps. */
async function runTransfer(cx: EvContext, wf: WorkflowContext, input: t.TypeOf<typeof EvTransferWorkflowInput>): Promise<Json> {
  if (input.take) {
    const { source } = cx.sides(input.id)
    await wf.step('snapshot', async () => {
      if ((await snapshotNamed(cx, source, input.snapshot)) === undefined) await cx.volumes.snapshot({ site: source.site, volume: source.volume, name: input.snapshot })
      return input.snapshot
    })
  }
  return { ...(await transferSteps(cx, wf, input)) }
}

function view(rel: EvRelationship): EvMirrorView {
  return { ...rel, ...directionOf(rel) }
}
