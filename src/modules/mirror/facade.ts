import { randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { DrError, toDrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import type { Json } from '../../kernel/codecs.js'
import { isInterruption, type WorkflowEngine } from '../../kernel/workflow.js'
import type { Coordinator } from './coordinator.js'
import { decideBeginOperation, decideCreate, decideOperationFailed, decideStart, decideStop, decideTransferChanged } from './decide.js'
import { FAILOVER_WORKFLOW, FailoverWorkflowInput, runFailover } from './failover.js'
import {
  CreateMirrorInput,
  MirrorBandwidthInput,
  MirrorFailoverInput,
  ListMirrorsInput,
  MirrorId,
  MirrorResyncInput,
  MirrorReverseInput,
  splitSignal,
  type CreateMirrorOptions,
  type MirrorBandwidthOptions,
  type MirrorFailoverOptions,
  type ListMirrorsOptions,
  type MirrorResyncOptions,
  type MirrorReverseOptions,
} from './inputs.js'
import { CREATE_WORKFLOW, CreateWorkflowInput, DELETE_WORKFLOW, DeleteWorkflowInput, checkCreate, runCreate, runDelete } from './lifecycle.js'
import { RESYNC_WORKFLOW, ResyncWorkflowInput, runResync, undoScope } from './resync.js'
import { REVERSE_WORKFLOW, ReverseWorkflowInput, runReverse } from './reverse.js'
import { ResumePointCodec, type MirrorOperation, type Relationship, type ResumePoint } from './state.js'
import { mirrorStatus, type MirrorStatus } from './status.js'

/**
 * Default policies of a new relationship: cut every 30 s or at 64 MiB of changes (probed every second), play
 * back at once, 1 MiB chunks, 5 send retries before `mirror.sendFailed`, unbounded staging, 5 min drain timeout.
 *
 * @public
 */
export const MIRROR_DEFAULTS = {
  everyMs: 30_000,
  highWaterMarkBytes: 64 * 1024 * 1024,
  probeMs: 1_000,
  chunkBytes: 1024 * 1024,
  retries: 5,
  timeoutMs: 300_000,
} as const

/**
 * What `mirrors.failover` resolves with: the restart-point snapshot, the last delta set it holds, the new epoch.
 *
 * @public
 */
export interface FailoverResult {
  readonly restartPoint: string
  readonly lastApplied: number | null
  readonly epoch: number
}

const Reported = t.type({ restartPoint: t.string, lastApplied: t.union([t.number, t.null]), epoch: t.number })

/**
 * The mirror facade (`dr.mirrors`): replication relationships between a volume on one site and a volume on
 * another, with delta sets, chunked checksummed transfer, ordered playback, failover (`sync` / `default` /
 * `now`), resync by undo, failback and planned swap, epochs against split brain, status and RPO. Every method
 * validates its input first and rejects with a `DrError`; a rejected call changes nothing. Long operations are
 * durable workflows: after a crash, {@link MirrorFacade.recover} (or re-issuing the call) resumes them.
 *
 * @public
 */
export class MirrorFacade {
  readonly #co: Coordinator
  readonly #workflows: WorkflowEngine
  /** Workflow ids of operations this facade recorded and is running (their workflow may not be journaled yet). */
  readonly #driving = new Set<string>()
  #sequence = 0

  /**
   * Builds the facade over the module's coordinator; embedders get it from {@link openMirrorModule}.
   *
   * @internal
   */
  constructor(co: Coordinator, workflows: WorkflowEngine) {
    this.#co = co
    this.#workflows = workflows
    workflows.register(CREATE_WORKFLOW, { input: CreateWorkflowInput, run: (wf, input) => runCreate(co, wf, input) })
    workflows.register(DELETE_WORKFLOW, { input: DeleteWorkflowInput, run: (wf, input) => runDelete(co, wf, input) })
    workflows.register(FAILOVER_WORKFLOW, { input: FailoverWorkflowInput, run: (wf, input) => runFailover(co, wf, input) })
    workflows.register(RESYNC_WORKFLOW, { input: ResyncWorkflowInput, run: (wf, input) => runResync(co, wf, input) })
    workflows.register(REVERSE_WORKFLOW, { input: ReverseWorkflowInput, run: (wf, input) => runReverse(co, wf, input) })
  }

  /**
   * Creates a relationship from `source` to `destination` and (unless `start: false`) starts it: the destination
   * volume is created with the source's size and block size (or an empty existing one is sized to match) and
   * made read-only; the initial copy sends only allocated blocks.
   */
  async create(options: CreateMirrorOptions): Promise<MirrorStatus> {
    const input = decode(CreateMirrorInput, options, 'mirrors.create options')
    const now = this.#co.deps.clock.now()
    const destinationVolume = input.destination.volume ?? input.source.volume
    const id = input.id ?? `${input.source.site}-${input.source.volume}-${input.destination.site}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)
    const rel: Relationship = {
      id,
      a: { site: input.source.site, volume: input.source.volume },
      b: { site: input.destination.site, volume: destinationVolume },
      primary: 'a',
      state: 'stopped',
      epoch: 1,
      cut: {
        everyMs: input.cut?.every ?? MIRROR_DEFAULTS.everyMs,
        highWaterMarkBytes: input.cut?.highWaterMark ?? MIRROR_DEFAULTS.highWaterMarkBytes,
        probeMs: input.cut?.probe ?? MIRROR_DEFAULTS.probeMs,
      },
      playback: { everyMs: input.playback?.every ?? null, highWaterMarkBytes: input.playback?.highWaterMark ?? null },
      transfer: {
        chunkBytes: input.transfer?.chunkSize ?? MIRROR_DEFAULTS.chunkBytes,
        retries: input.transfer?.retries ?? MIRROR_DEFAULTS.retries,
        stagingMaxBytes: input.transfer?.stagingMax ?? null,
        ...(input.transfer?.bandwidth === undefined ? {} : { bandwidthBytesPerSecond: input.transfer.bandwidth }),
        ...(input.transfer?.backlogMax === undefined ? {} : { backlogMaxBytes: input.transfer.backlogMax }),
      },
      restartPoint: null,
      operation: null,
      createdAt: now,
      updatedAt: now,
    }
    const decided = decideCreate(this.#co.deps.store.state, rel)
    if (E.isLeft(decided)) throw decided.left
    this.#co.site(rel.a.site)
    this.#co.site(rel.b.site)
    await checkCreate(this.#co, rel, input.destination.overwrite === true)
    await this.#workflows.run(CREATE_WORKFLOW, this.#runId(CREATE_WORKFLOW, id), { relationship: rel, start: input.start ?? true })
    return this.status(id)
  }

  /** Starts (or resumes, without a full copy) replication of a stopped relationship. */
  async start(id: string): Promise<MirrorStatus> {
    const rel = this.#rel(id, 'mirrors.start')
    const refused = decideStart(this.#co.deps.store.state, rel.id, 0)
    if (E.isLeft(refused)) throw refused.left
    if (refused.right.length > 0) {
      await this.#co.attach(rel, rel.epoch, { source: null, destination: null })
      const decided = await this.#co.commit((state) => decideStart(state, rel.id, this.#co.deps.clock.now()))
      if (decided.length > 0) this.#co.deps.events.emit('mirror.started', 'info', { id: rel.id })
    }
    return this.status(rel.id)
  }

  /** Stops replication; waits for a playback in progress, so the destination is left at a whole delta set. */
  async stop(id: string): Promise<MirrorStatus> {
    const rel = this.#rel(id, 'mirrors.stop')
    const refused = decideStop(this.#co.deps.store.state, rel.id, 0)
    if (E.isLeft(refused)) throw refused.left
    if (refused.right.length > 0) {
      for (const ref of [rel.a, rel.b]) await (await this.#co.agent(ref.site)).detach(rel.id, ref.volume)
      const decided = await this.#co.commit((state) => decideStop(state, rel.id, this.#co.deps.clock.now()))
      if (decided.length > 0) this.#co.deps.events.emit('mirror.stopped', 'info', { id: rel.id })
    }
    return this.status(rel.id)
  }

  /** Deletes a relationship and the mirror's snapshots, staging and records on both sites; the volumes stay. */
  async delete(id: string): Promise<void> {
    const rel = this.#rel(id, 'mirrors.delete')
    await this.#operation(rel, 'delete', DELETE_WORKFLOW, () => ({ id: rel.id }), undefined)
  }

  /**
   * Sets the bandwidth the source of a relationship may use (bytes per second, e.g. `"10MiB"`), or lifts the
   * limit (`null`). It is recorded in the relationship, applies at once to the channel in use and stays with the
   * relationship across restarts and reversals. Re-issuing it after a failure finishes it.
   */
  async setBandwidth(id: string, options: MirrorBandwidthOptions): Promise<MirrorStatus> {
    const rel = this.#rel(id, 'mirrors.setBandwidth')
    const input = decode(MirrorBandwidthInput, options, 'mirrors.setBandwidth options')
    const { bandwidthBytesPerSecond: _previous, ...rest } = rel.transfer
    const transfer = input.bandwidth === null ? rest : { ...rest, bandwidthBytesPerSecond: input.bandwidth }
    await this.#co.commit((state) => decideTransferChanged(state, rel.id, transfer, this.#co.deps.clock.now()))
    for (const ref of [rel.a, rel.b]) await (await this.#co.agent(ref.site)).setTransfer(rel.id, ref.volume, transfer)
    return this.status(rel.id)
  }

  /** The status of one relationship. */
  async status(id: string): Promise<MirrorStatus> {
    return mirrorStatus(this.#co, this.#rel(id, 'mirrors.status'))
  }

  /** The status of every relationship (optionally only those touching `site`), by id. */
  async list(options: ListMirrorsOptions = {}): Promise<readonly MirrorStatus[]> {
    const input = decode(ListMirrorsInput, options, 'mirrors.list options')
    const rels = Object.values(this.#co.deps.store.state.relationships)
      .filter((r) => input.site === undefined || r.a.site === input.site || r.b.site === input.site)
      .sort((x, y) => x.id.localeCompare(y.id))
    return Promise.all(rels.map((r) => mirrorStatus(this.#co, r)))
  }

  /** Cuts a delta set now on the current primary; resolves with its number. */
  async cutNow(id: string): Promise<{ readonly deltaSet: number }> {
    const rel = this.#rel(id, 'mirrors.cutNow')
    if (rel.state !== 'replicating') throw new DrError('E_PRECONDITION', `mirror "${rel.id}" is ${rel.state}; cutNow needs replicating`, { id: rel.id })
    return { deltaSet: await (await this.#co.source(rel)).cutNow('manual') }
  }

  /**
   * Fails over to the destination: `sync` (both sites up; converge, source read-only, last delta set, zero loss
   * — fails at once, changing nothing, when the source cannot be reached), `default` (apply what was completely
   * received) or `now` (promote without applying). Leaves a held restart-point snapshot, the destination
   * writable and the epoch raised.
   */
  async failover(id: string, options: MirrorFailoverOptions): Promise<FailoverResult> {
    const key = decode(MirrorId, id, 'mirrors.failover id')
    const { rest, signal } = splitSignal(options, 'mirrors.failover options')
    const input = decode(MirrorFailoverInput, rest, 'mirrors.failover options')
    const rel = this.#co.rel(key)
    if (rel.operation === null) {
      if (input.mode === 'sync' && rel.state !== 'replicating') throw new DrError('E_PRECONDITION', `failover with sync needs mirror "${rel.id}" replicating`, { id: rel.id })
      const src = rel.primary === 'a' ? rel.a : rel.b
      const dst = rel.primary === 'a' ? rel.b : rel.a
      if (input.mode === 'sync' && !(await this.#co.reachable(dst.site, src.site))) {
        throw new DrError('E_UNAVAILABLE', `failover with sync of mirror "${rel.id}": source site ${src.site} cannot be reached`, { id: rel.id, site: src.site })
      }
      if ((await this.#co.destination(rel)).played === null) {
        throw new DrError('E_PRECONDITION', `mirror "${rel.id}": the initial copy is not complete; there is nothing consistent to fail over to`, { id: rel.id })
      }
    }
    const result = await this.#operation(
      rel,
      'failover',
      FAILOVER_WORKFLOW,
      (resume) => ({ id: rel.id, mode: input.mode, toEpoch: resume?.toEpoch ?? rel.epoch + 1, timeoutMs: input.timeout ?? MIRROR_DEFAULTS.timeoutMs, finishOnly: resume !== null }),
      signal,
    )
    return decode(Reported, result, 'failover result')
  }

  /**
   * Rebuilds the old source from the new primary after a failover and starts reverse replication: undo of what the
   * old source changed after the restart point (its values fetched from the restart point), or a full copy with
   * `mirror.fullCopyRequired` when the undo information is gone. The old source's later writes are lost, so one
   * of `acknowledgeDataLoss: true` or `safetySnapshot: true` (keep them in a held snapshot) is required when there
   * are any.
   */
  async resync(id: string, options: MirrorResyncOptions = {}): Promise<MirrorStatus> {
    const key = decode(MirrorId, id, 'mirrors.resync id')
    const { rest, signal } = splitSignal(options, 'mirrors.resync options')
    const input = decode(MirrorResyncInput, rest, 'mirrors.resync options')
    const rel = this.#co.rel(key)
    if (rel.operation === null && rel.state === 'failedOver' && input.acknowledgeDataLoss !== true && input.safetySnapshot !== true) {
      const scope = await undoScope(this.#co, rel).catch(() => ({ base: null, changedBlocks: 0 }))
      if (scope.changedBlocks > 0) {
        throw new DrError('E_PRECONDITION', `resync of mirror "${rel.id}" would undo ${scope.changedBlocks} blocks written on the old source; pass acknowledgeDataLoss: true or safetySnapshot: true`, { id: rel.id, blocks: scope.changedBlocks })
      }
    }
    await this.#operation(
      rel,
      'resync',
      RESYNC_WORKFLOW,
      () => ({ id: rel.id, acknowledgeDataLoss: input.acknowledgeDataLoss === true, safetySnapshot: input.safetySnapshot === true, timeoutMs: input.timeout ?? MIRROR_DEFAULTS.timeoutMs }),
      signal,
    )
    return this.status(rel.id)
  }

  /** Returns replication to its original direction (the original source becomes writable again). Re-issuable. */
  async failback(id: string, options: MirrorReverseOptions = {}): Promise<MirrorStatus> {
    return this.#reverse(id, 'failback', options)
  }

  /** Reverses the direction of a healthy relationship (planned role swap), without a full copy. Re-issuable. */
  async swap(id: string, options: MirrorReverseOptions = {}): Promise<MirrorStatus> {
    return this.#reverse(id, 'swap', options)
  }

  /**
   * Resumes every operation of this module that a crash interrupted; resolves once they have all settled. An
   * operation recorded by a coordinator that stopped before its workflow started changed nothing: it is recorded
   * as failed (`mirror.operationFailed`, code `E_ABORTED`), so the relationship returns to the state it had (or
   * keeps the resume point of an earlier attempt) and the operation can be issued again.
   */
  async recover(): Promise<void> {
    for (const rel of Object.values(this.#co.deps.store.state.relationships)) {
      const op = rel.operation
      if (op === null || op.workflowId === '' || this.#driving.has(op.workflowId)) continue
      const history = await this.#workflows.history(op.workflowId)
      if (history === undefined) await this.#neverStarted(rel, op)
      else if (history.status === 'running') await this.#drive(rel, op, () => this.#workflows.resume(op.workflowId)).catch(() => undefined)
    }
  }

  async #reverse(id: string, kind: 'failback' | 'swap', options: MirrorReverseOptions): Promise<MirrorStatus> {
    const key = decode(MirrorId, id, `mirrors.${kind} id`)
    const { rest, signal } = splitSignal(options, `mirrors.${kind} options`)
    const input = decode(MirrorReverseInput, rest, `mirrors.${kind} options`)
    const rel = this.#co.rel(key)
    await this.#operation(
      rel,
      kind,
      REVERSE_WORKFLOW,
      (resume) => ({
        id: rel.id,
        kind,
        fromEpoch: rel.epoch,
        toEpoch: resume?.toEpoch ?? rel.epoch + 1,
        timeoutMs: input.timeout ?? MIRROR_DEFAULTS.timeoutMs,
        finishOnly: resume !== null,
        finalDeltaSet: resume?.finalDeltaSet ?? null,
      }),
      signal,
    )
    return this.status(rel.id)
  }

  /**
   * Starts operation `kind` as a workflow and records its outcome. The same operation already recorded is
   * continued under its workflow id: resumed if a crash interrupted it, started from this call's input if the
   * coordinator that recorded it stopped before its workflow started.
   */
  async #operation(rel: Relationship, kind: MirrorOperation['kind'], type: string, input: (resume: ResumePoint | null) => Json, signal: AbortSignal | undefined): Promise<Json> {
    const options = signal === undefined ? {} : { signal }
    const running = rel.operation
    if (running !== null && running.kind === kind && running.workflowId !== '') {
      const history = await this.#workflows.history(running.workflowId)
      if (history === undefined || history.status === 'running') {
        return this.#tracked(running.workflowId, () => this.#drive(rel, running, () => this.#workflows.run(type, running.workflowId, input(running.resume), options)))
      }
    }
    const workflowId = this.#runId(type, rel.id)
    return this.#tracked(workflowId, async () => {
      await this.#co.commit((state) => decideBeginOperation(state, rel.id, kind, workflowId, this.#co.deps.clock.now()))
      const started = this.#co.rel(rel.id)
      const operation = started.operation
      if (operation === null) throw new DrError('E_INTERNAL', `mirror "${rel.id}": operation ${kind} was not recorded`)
      this.#co.deps.events.emit('mirror.operationStarted', 'info', { id: rel.id, kind, state: started.state, resumed: operation.resume !== null })
      return this.#drive(rel, operation, () => this.#workflows.run(type, workflowId, input(operation.resume), options))
    })
  }

  /** Runs `drive` with `workflowId` marked as driven here, so {@link MirrorFacade.recover} leaves it alone. */
  async #tracked(workflowId: string, drive: () => Promise<Json>): Promise<Json> {
    this.#driving.add(workflowId)
    try {
      return await drive()
    } finally {
      this.#driving.delete(workflowId)
    }
  }

  /** Records that `operation`, whose workflow never started, failed having changed nothing. */
  async #neverStarted(rel: Relationship, operation: MirrorOperation): Promise<void> {
    const message = `mirror "${rel.id}": the coordinator stopped before the ${operation.kind} started; nothing was changed, issue it again`
    await this.#drive(rel, operation, () => Promise.reject(new DrError('E_ABORTED', message, { id: rel.id, resume: operation.resume }))).catch(() => undefined)
  }

  async #drive(rel: Relationship, operation: MirrorOperation, run: () => Promise<Json>): Promise<Json> {
    try {
      return await run()
    } catch (error) {
      if (isInterruption(error)) throw error
      const failure = toDrError(error)
      const raw = failure.details['resume']
      const resume = ResumePointCodec.is(raw) ? raw : null
      const epoch = Math.max(rel.epoch, resume?.toEpoch ?? 0)
      if (this.#co.deps.store.state.relationships[rel.id]?.operation?.workflowId === operation.workflowId || resume !== null) {
        await this.#co.commit((state) => decideOperationFailed(state, rel.id, epoch, resume, this.#co.deps.clock.now()))
        const after = this.#co.deps.store.state.relationships[rel.id]
        this.#co.deps.events.emit('mirror.operationFailed', 'error', {
          id: rel.id,
          kind: operation.kind,
          state: after?.state ?? rel.state,
          resumable: after?.operation !== null && after?.operation !== undefined,
          code: failure.code,
          message: failure.message,
        })
      }
      throw failure
    }
  }

  #rel(id: string, what: string): Relationship {
    return this.#co.rel(decode(MirrorId, id, `${what} id`))
  }

  #runId(type: string, id: string): string {
    return `${type}:${id}:${this.#co.deps.clock.now()}.${this.#sequence++}.${randomUUID().slice(0, 8)}`
  }
}
