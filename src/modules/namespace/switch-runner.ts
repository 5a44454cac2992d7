import { randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import type { Json } from '../../kernel/codecs.js'
import { DrError, isDrError, toDrError } from '../../kernel/errors.js'
import { InjectedCrash, type RunOptions } from '../../kernel/workflow.js'
import { decideBeginSwitch, decideDpTransition, decideFailedSwitch, findProtection } from './decide-protection.js'
import { FAILBACK_WORKFLOW, FailbackWorkflowInput, runFailbackWorkflow } from './failback.js'
import { FAILOVER_WORKFLOW, FailoverWorkflowInput, runFailoverWorkflow } from './failover.js'
import { mirrorPromoted } from './mirror-control.js'
import type { NamespaceRuntime } from './runtime.js'
import { allNodes, nodeAt, type NamespaceNode, type Protection } from './state.js'

type Kind = 'failover' | 'failback'

/**
 * Starts, joins and resumes the failover and failback workflows of link points, at most the configured number
 * at once, and records how each ended: `failedOver` / `protected` when it completed; when it failed, where its
 * link is (`failoverError` on the primary, or `failedOver` on the destination when the switch had to stand). A
 * workflow interrupted by a crash, or whose compensation could not finish, keeps its link `failingOver` /
 * `failingBack` and is resumed by {@link SwitchRunner.recover} from the workflow id the link records.
 *
 * @public
 */
export class SwitchRunner {
  readonly #rt: NamespaceRuntime
  readonly #inFlight = new Map<string, Promise<void>>()
  readonly #calls = new Set<Promise<void>>()
  #sequence = 0

  constructor(rt: NamespaceRuntime) {
    this.#rt = rt
    rt.workflows.register(FAILOVER_WORKFLOW, { input: FailoverWorkflowInput, run: (ctx, input) => runFailoverWorkflow(rt, ctx, input) })
    rt.workflows.register(FAILBACK_WORKFLOW, { input: FailbackWorkflowInput, run: (ctx, input) => runFailbackWorkflow(rt, ctx, input) })
  }

  /**
   * Fails a protected link over (or joins its running failover). Resolves once it has ended — at once if the
   * link is failed over already — and rejects with the failure. A mirror that has not completed its initial copy
   * is refused: the link becomes `failoverRequired` with the reason and the call rejects with `E_PRECONDITION`.
   */
  failover(namespace: string, path: string, options: { manual: boolean; reason: string; signal?: AbortSignal }): Promise<void> {
    return this.#track(this.#failover(namespace, path, options))
  }

  /** Fails a failed-over link back to its primary share (or joins its running failback). */
  failback(namespace: string, path: string, signal?: AbortSignal): Promise<void> {
    return this.#track(this.#failback(namespace, path, signal))
  }

  async #failover(namespace: string, path: string, options: { manual: boolean; reason: string; signal?: AbortSignal }): Promise<void> {
    const found = findProtection(this.#rt.catalog.state, namespace, path)
    if (E.isLeft(found)) throw found.left
    const release = this.#rt.mirrorStates.hold(found.right.protection.mirrorId)
    try {
      const state = found.right.protection.state
      if (state !== 'failingOver' && state !== 'failedOver') await this.#checkMirror(namespace, path, found.right.protection)
      const workflowId = this.#id(FAILOVER_WORKFLOW, namespace, path)
      const decided = await this.#rt.catalog.execute((s) => decideBeginSwitch(s, namespace, path, 'failover', workflowId, this.#rt.clock.now()))
      if (decided.length === 0) return await this.#join(namespace, path)
      this.#rt.log.emit('namespace.failoverStarted', 'warning', { namespace, path, workflowId, manual: options.manual })
      const input = this.#failoverInput(namespace, path, options.manual, options.reason)
      return await this.#drive('failover', namespace, path, workflowId, () => this.#rt.workflows.run(FAILOVER_WORKFLOW, workflowId, input, runOptions(options.signal)))
    } finally {
      release()
    }
  }

  /** Refuses a failover to a destination that holds no complete copy yet (the mirror's initial copy has not completed). */
  async #checkMirror(namespace: string, path: string, protection: Protection): Promise<void> {
    const mirror = await this.#rt.mirrorStates.describe(protection.mirrorId)
    const { destination } = protection
    if (mirrorPromoted(mirror, { site: destination.site, volume: destination.volume }) || mirror.lastPlayedBack !== null) return
    const reason = `mirror "${protection.mirrorId}" has not completed its initial copy: ${destination.site}/${destination.volume} holds no complete copy to fail over to`
    const changed = await this.#rt.catalog.execute((s) =>
      decideDpTransition(s, namespace, path, ['protected', 'protectionDisabled', 'failoverError'], 'failoverRequired', this.#rt.clock.now(), reason),
    )
    if (changed.length > 0) {
      this.#rt.log.emit('namespace.failoverRequired', 'critical', { namespace, path, primary: { site: protection.primary.site, share: protection.primary.share }, reason })
    }
    throw new DrError('E_PRECONDITION', `link "${path}" cannot fail over: ${reason}`, { namespace, path, mirrorId: protection.mirrorId })
  }

  async #failback(namespace: string, path: string, signal: AbortSignal | undefined): Promise<void> {
    const workflowId = this.#id(FAILBACK_WORKFLOW, namespace, path)
    const decided = await this.#rt.catalog.execute((state) => decideBeginSwitch(state, namespace, path, 'failback', workflowId, this.#rt.clock.now()))
    if (decided.length === 0) return this.#join(namespace, path)
    const input: FailbackWorkflowInput = { namespace, path, protection: this.#protection(namespace, path) }
    return this.#drive('failback', namespace, path, workflowId, () => this.#rt.workflows.run(FAILBACK_WORKFLOW, workflowId, input, runOptions(signal)))
  }

  /**
   * Resumes every failover and failback a crash interrupted (links in `failingOver` / `failingBack`, and runs
   * that had already settled their link but not recorded their end) and waits for them; returns how many
   * completed and how many failed.
   */
  async recover(): Promise<{ resumed: number; failed: number }> {
    const busy = allNodes(this.#rt.catalog.state).filter(
      (node) => node.protection !== null && node.protection.workflowId !== null && (node.protection.state === 'failingOver' || node.protection.state === 'failingBack'),
    )
    const owned = new Set(busy.map((node) => node.protection?.workflowId))
    const ours = (id: string): boolean => (id.startsWith(`${FAILOVER_WORKFLOW}:`) || id.startsWith(`${FAILBACK_WORKFLOW}:`)) && !owned.has(id)
    const orphans = (await this.#rt.workflows.listRunning()).filter(ours)
    const outcomes = await Promise.allSettled([...busy.map((node) => this.#resume(node)), ...orphans.map((id) => this.#rt.workflows.resume(id))])
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected').length
    return { resumed: outcomes.length - failed, failed }
  }

  /** Resolves once no failover or failback runs. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#calls.size > 0) await Promise.allSettled([...this.#inFlight.values(), ...this.#calls])
  }

  #track(call: Promise<void>): Promise<void> {
    this.#calls.add(call)
    const forget = (): void => {
      this.#calls.delete(call)
    }
    call.then(forget, forget)
    return call
  }

  async #join(namespace: string, path: string): Promise<void> {
    const node = nodeAt(this.#rt.catalog.state, namespace, path)
    const workflowId = node?.protection?.workflowId
    if (node === undefined || workflowId === null || workflowId === undefined) return
    await (this.#inFlight.get(workflowId) ?? this.#resume(node))
  }

  #resume(node: NamespaceNode): Promise<void> {
    const protection = node.protection
    const workflowId = protection?.workflowId
    if (protection === null || workflowId === null || workflowId === undefined) return Promise.resolve()
    const running = this.#inFlight.get(workflowId)
    if (running !== undefined) return running
    const kind: Kind = protection.state === 'failingBack' ? 'failback' : 'failover'
    const { namespace, path } = node
    return this.#drive(kind, namespace, path, workflowId, async () => {
      if ((await this.#rt.workflows.history(workflowId)) !== undefined) return this.#rt.workflows.resume(workflowId)
      const input: Json =
        kind === 'failover' ? this.#failoverInput(namespace, path, false, 'resumed after a restart') : { namespace, path, protection: this.#protection(namespace, path) }
      return this.#rt.workflows.run(kind === 'failover' ? FAILOVER_WORKFLOW : FAILBACK_WORKFLOW, workflowId, input)
    })
  }

  #drive(kind: Kind, namespace: string, path: string, workflowId: string, run: () => Promise<unknown>): Promise<void> {
    const existing = this.#inFlight.get(workflowId)
    if (existing !== undefined) return existing
    const mirrorId = nodeAt(this.#rt.catalog.state, namespace, path)?.protection?.mirrorId
    const release = mirrorId === undefined ? () => undefined : this.#rt.mirrorStates.hold(mirrorId)
    const driven = this.#rt.failovers
      .submit(async () => {
        try {
          await run()
        } catch (error) {
          if (error instanceof InjectedCrash || isDrError(error, 'E_FENCED')) throw error
          throw await this.#failed(kind, namespace, path, workflowId, toDrError(error))
        }
      })
      .finally(() => {
        release()
        this.#inFlight.delete(workflowId)
      })
    this.#inFlight.set(workflowId, driven)
    return driven
  }

  /**
   * Records how a failed workflow left its link and returns the failure. A run whose journal still says running
   * (its compensation could not finish) keeps the link `failingOver` / `failingBack`, to be resumed.
   */
  async #failed(kind: Kind, namespace: string, path: string, workflowId: string, failure: DrError): Promise<DrError> {
    const history = await this.#rt.workflows.history(workflowId).catch(() => undefined)
    if (history?.status === 'running') return failure
    const ended = await this.#rt.catalog.execute((state) => decideFailedSwitch(state, namespace, path, workflowId, kind, failure.message, this.#rt.clock.now()))
    const change = ended[0]
    if (change?.type === 'link.dpChanged') {
      const payload = { namespace, path, workflowId, code: failure.code, message: failure.message, state: change.data.state }
      if (kind === 'failover') this.#rt.log.emit('namespace.failoverFailed', 'error', payload)
      else this.#rt.log.emit('namespace.failbackFailed', 'error', payload)
    }
    return failure
  }

  #protection(namespace: string, path: string): Protection {
    const protection = nodeAt(this.#rt.catalog.state, namespace, path)?.protection
    if (protection === null || protection === undefined) throw new DrError('E_PRECONDITION', `link "${path}" of namespace "${namespace}" is not protected`, { namespace, path })
    return protection
  }

  #failoverInput(namespace: string, path: string, manual: boolean, reason: string): FailoverWorkflowInput {
    const protection = this.#protection(namespace, path)
    const policy = this.#rt.catalog.state.policies[protection.policy]
    if (policy === undefined) throw new DrError('E_CORRUPT', `link "${path}" refers to unknown policy "${protection.policy}"`, { namespace, path })
    const plan = { preHook: policy.preFailoverHook !== null, breakMirror: policy.breakMirror, postHook: policy.postFailoverHook !== null }
    return { namespace, path, manual, reason, policy: policy.id, plan, protection }
  }

  #id(type: string, namespace: string, path: string): string {
    return `${type}:${namespace}:${path}:${this.#rt.clock.now()}.${this.#sequence++}.${randomUUID().slice(0, 8)}`
  }
}

function runOptions(signal: AbortSignal | undefined): RunOptions {
  return signal === undefined ? {} : { signal }
}
