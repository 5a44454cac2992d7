import * as E from 'fp-ts/lib/Either.js'
import { decode } from '../../kernel/decode.js'
import { DrError } from '../../kernel/errors.js'
import type { Referral } from '../../ports/network.js'
import { decideCreateNamespace, decideAddTarget, decideCreateNode, decideDeleteNode, decideMove, decideRemoveTarget, decideRename, findNode } from './decide-tree.js'
import {
  decideAddThreshold,
  decideCreatePolicy,
  decideDeletePolicy,
  decideProtect,
  decideRemoveThreshold,
  decideUnprotect,
  decideUpdatePolicy,
  findProtection,
  linksUsingPolicy,
  policyByName,
} from './decide-protection.js'
import type { HistoryFilter, NamespaceEvent } from './event-log.js'
import {
  AddTargetInput,
  CreateLinkInput,
  HistoryInput,
  MoveInput,
  NamespaceInput,
  NodeInput,
  PolicyNameInput,
  ProbeNowInput,
  ProtectInput,
  RemoveTargetInput,
  RenameInput,
  ResolveInput,
  ShareReportInput,
  ThresholdNameInput,
  SwitchInput,
  type HistoryOptions,
  type ResolveOptions,
  type SwitchOptions,
  type ProtectOptions,
} from './inputs.js'
import { mirrorReturnedTo } from './mirror-control.js'
import type { MonitorPass, ShareMonitor } from './monitor.js'
import { CreatePolicyInput, UpdatePolicyInput, type CreatePolicyOptions, type PolicyRecord, type UpdatePolicyOptions } from './policy.js'
import { buildProtection } from './protect.js'
import { changedPaths } from './publisher.js'
import type { NamespaceRuntime } from './runtime.js'
import { allNodes, type NamespaceJournalEvent, type NamespaceNode, type NamespaceState } from './state.js'
import type { SwitchRunner } from './switch-runner.js'
import { AddThresholdInput, DEFAULT_THRESHOLD_EVERY_MS, type AddThresholdOptions, type ThresholdRecord } from './thresholds.js'
import type { DrEither } from '../../kernel/either.js'

type Decide = (state: NamespaceState) => DrEither<readonly NamespaceJournalEvent[]>

/**
 * The namespace module's public face (`dr.namespace`): a logical namespace of folders and link points whose
 * changes are pushed to the namespace server; reusable data-protection policies; protection of link points by a
 * mirror; share-level monitoring with automatic or operator failover, failback, threshold monitors and an
 * event history. Every method validates its input (`E_INVALID_INPUT`, changing nothing) and rejects with
 * `DrError`.
 *
 * @public
 */
export class NamespaceFacade {
  readonly #rt: NamespaceRuntime
  readonly #runner: SwitchRunner
  readonly #monitor: ShareMonitor

  /** @internal Built by `openNamespaceModule`; reach it as `dr.namespace`. */
  constructor(rt: NamespaceRuntime, runner: SwitchRunner, monitor: ShareMonitor) {
    this.#rt = rt
    this.#runner = runner
    this.#monitor = monitor
  }

  /** Starts managing a namespace, adopting the links the namespace server already has (A-1 acquire). */
  async createNamespace(options: { namespace: string }): Promise<readonly NamespaceNode[]> {
    const { namespace } = decode(NamespaceInput, options, 'namespace.createNamespace options')
    if (this.#rt.catalog.state.namespaces[namespace] !== undefined) throw new DrError('E_CONFLICT', `namespace "${namespace}" is already managed`, { namespace })
    const links = await this.#rt.publisher.read(namespace)
    await this.#change(namespace, (state) => decideCreateNamespace(state, namespace, links, this.#rt.clock.now()))
    this.#rt.log.emit('namespace.created', 'info', { namespace, adoptedLinks: links.length })
    return this.list({ namespace })
  }

  /** Every folder and link of a namespace, in path order. */
  async list(options: { namespace: string }): Promise<readonly NamespaceNode[]> {
    const { namespace } = decode(NamespaceInput, options, 'namespace.list options')
    if (this.#rt.catalog.state.namespaces[namespace] === undefined) throw new DrError('E_NOT_FOUND', `namespace "${namespace}" is not managed by drkit`, { namespace })
    return allNodes(this.#rt.catalog.state)
      .filter((node) => node.namespace === namespace)
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  /** One folder or link (with its targets and protection). */
  async get(options: { namespace: string; path: string }): Promise<NamespaceNode> {
    const { namespace, path } = decode(NodeInput, options, 'namespace.get options')
    return unwrap(findNode(this.#rt.catalog.state, namespace, path))
  }

  /** Creates a folder (its parent must exist). */
  async createFolder(options: { namespace: string; path: string }): Promise<NamespaceNode> {
    const { namespace, path } = decode(NodeInput, options, 'namespace.createFolder options')
    await this.#change(namespace, (state) => decideCreateNode(state, namespace, path, 'folder', [], this.#rt.clock.now()))
    this.#rt.log.emit('namespace.changed', 'info', { namespace, path, change: 'created' })
    return this.get({ namespace, path })
  }

  /** Creates a link point with one or more targets and pushes it to the namespace server. */
  async createLink(options: { namespace: string; path: string; targets: ReadonlyArray<{ site: string; share: string; state?: 'active' | 'standby' }> }): Promise<NamespaceNode> {
    const input = decode(CreateLinkInput, options, 'namespace.createLink options')
    const targets = input.targets.map((target) => ({ site: target.site, share: target.share, state: target.state ?? 'standby' }))
    await this.#change(input.namespace, (state) => decideCreateNode(state, input.namespace, input.path, 'link', targets, this.#rt.clock.now()))
    this.#rt.log.emit('namespace.changed', 'info', { namespace: input.namespace, path: input.path, change: 'created' })
    return this.get({ namespace: input.namespace, path: input.path })
  }

  /** Renames the last segment of a folder's or link's path. */
  async rename(options: { namespace: string; path: string; name: string }): Promise<NamespaceNode> {
    const { namespace, path, name } = decode(RenameInput, options, 'namespace.rename options')
    const events = await this.#change(namespace, (state) => decideRename(state, namespace, path, name))
    const to = movedTo(events) ?? path
    if (to !== path) this.#rt.log.emit('namespace.changed', 'info', { namespace, path, change: 'moved', to })
    return this.get({ namespace, path: to })
  }

  /** Moves a folder (with everything below it) or a link to a new path. */
  async move(options: { namespace: string; from: string; to: string }): Promise<NamespaceNode> {
    const { namespace, from, to } = decode(MoveInput, options, 'namespace.move options')
    const events = await this.#change(namespace, (state) => decideMove(state, namespace, from, to))
    if (events.length > 0) this.#rt.log.emit('namespace.changed', 'info', { namespace, path: from, change: 'moved', to })
    return this.get({ namespace, path: to })
  }

  /** Deletes an empty folder or an unprotected link. */
  async delete(options: { namespace: string; path: string }): Promise<void> {
    const { namespace, path } = decode(NodeInput, options, 'namespace.delete options')
    await this.#change(namespace, (state) => decideDeleteNode(state, namespace, path))
    this.#rt.log.emit('namespace.changed', 'info', { namespace, path, change: 'deleted' })
  }

  /** Adds a target (a share on a site) to a link. */
  async addTarget(options: { namespace: string; path: string; site: string; share: string; state?: 'active' | 'standby' }): Promise<NamespaceNode> {
    const input = decode(AddTargetInput, options, 'namespace.addTarget options')
    const target = { site: input.site, share: input.share, state: input.state ?? 'standby' }
    await this.#change(input.namespace, (state) => decideAddTarget(state, input.namespace, input.path, target))
    this.#rt.log.emit('namespace.changed', 'info', { namespace: input.namespace, path: input.path, change: 'targetsChanged' })
    return this.get({ namespace: input.namespace, path: input.path })
  }

  /** Removes a target from a link; the last target of a link is never removed. */
  async removeTarget(options: { namespace: string; path: string; site: string; share: string }): Promise<NamespaceNode> {
    const input = decode(RemoveTargetInput, options, 'namespace.removeTarget options')
    await this.#change(input.namespace, (state) => decideRemoveTarget(state, input.namespace, input.path, input.site, input.share))
    this.#rt.log.emit('namespace.changed', 'info', { namespace: input.namespace, path: input.path, change: 'targetsChanged' })
    return this.get({ namespace: input.namespace, path: input.path })
  }

  /**
   * Where a client resolving `path` is referred, as the namespace server answers it. With a `principal`, the
   * server checks that client's rights on the link (a domain controller's check) and refuses one without them.
   */
  async resolve(options: ResolveOptions): Promise<Referral> {
    const { namespace, path, principal } = decode(ResolveInput, options, 'namespace.resolve options')
    return this.#rt.publisher.resolve(namespace, path, principal)
  }

  /**
   * Writes drkit's whole copy of a namespace to the namespace server now (re-reading its version first): repairs
   * drift, such as links edited on the server outside drkit (`namespace.driftDetected`).
   */
  async push(options: { namespace: string }): Promise<{ version: number }> {
    const { namespace } = decode(NamespaceInput, options, 'namespace.push options')
    if (this.#rt.catalog.state.namespaces[namespace] === undefined) throw new DrError('E_NOT_FOUND', `namespace "${namespace}" is not managed by drkit`, { namespace })
    return { version: await this.#rt.publisher.pushAll(namespace) }
  }

  /** Saves a new data-protection policy under a unique name. */
  async createPolicy(options: CreatePolicyOptions): Promise<PolicyRecord> {
    const input = decode(CreatePolicyInput, options, 'namespace.createPolicy options')
    await this.#rt.catalog.execute((state) => decideCreatePolicy(state, input, this.#rt.clock.now()))
    const policy = unwrap(policyByName(this.#rt.catalog.state, input.name))
    this.#rt.log.emit('namespace.policySaved', 'info', { policy: policy.name, id: policy.id, created: true, links: 0 })
    return policy
  }

  /** Changes a policy's settings; every link it protects follows from its next probe or failover on. */
  async updatePolicy(options: UpdatePolicyOptions): Promise<PolicyRecord> {
    const { name, ...settings } = decode(UpdatePolicyInput, options, 'namespace.updatePolicy options')
    await this.#rt.catalog.execute((state) => decideUpdatePolicy(state, name, settings, this.#rt.clock.now()))
    const policy = unwrap(policyByName(this.#rt.catalog.state, name))
    const links = linksUsingPolicy(this.#rt.catalog.state, policy.id).length
    this.#rt.log.emit('namespace.policySaved', 'info', { policy: policy.name, id: policy.id, created: false, links })
    return policy
  }

  /** Deletes a policy; refused with `E_PRECONDITION` while a link uses it. */
  async deletePolicy(options: { name: string }): Promise<void> {
    const { name } = decode(PolicyNameInput, options, 'namespace.deletePolicy options')
    const policy = unwrap(policyByName(this.#rt.catalog.state, name))
    await this.#rt.catalog.execute((state) => decideDeletePolicy(state, name))
    this.#rt.log.emit('namespace.policyDeleted', 'info', { policy: name, id: policy.id })
  }

  /** A policy by name or by id. */
  async getPolicy(options: { name: string }): Promise<PolicyRecord> {
    const { name } = decode(PolicyNameInput, options, 'namespace.getPolicy options')
    const state = this.#rt.catalog.state
    return state.policies[name] ?? unwrap(policyByName(state, name))
  }

  /** Every policy, by name. */
  async listPolicies(): Promise<readonly PolicyRecord[]> {
    return Object.values(this.#rt.catalog.state.policies).sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  /**
   * Protects a link point: policy, mirror and destination share name (the seed's Table 2). Rejected with
   * `E_NOT_FOUND` when the mirror or policy does not exist and `E_PRECONDITION` when the primary share is not on
   * the mirror's source volume.
   */
  async protect(options: ProtectOptions): Promise<NamespaceNode> {
    const input = decode(ProtectInput, options, 'namespace.protect options')
    const protection = await buildProtection(this.#rt, input)
    await this.#rt.catalog.execute((state) => decideProtect(state, input.namespace, input.path, protection))
    const { primary, destination } = protection
    this.#rt.log.emit('namespace.linkProtected', 'info', {
      namespace: input.namespace,
      path: input.path,
      policy: input.policy,
      mirrorId: input.mirrorId,
      primary: { site: primary.site, share: primary.share },
      destination: { site: destination.site, share: destination.share },
    })
    return this.get({ namespace: input.namespace, path: input.path })
  }

  /** Removes a link's protection (refused while it fails over or back). */
  async unprotect(options: { namespace: string; path: string }): Promise<NamespaceNode> {
    const { namespace, path } = decode(NodeInput, options, 'namespace.unprotect options')
    const events = await this.#rt.catalog.execute((state) => decideUnprotect(state, namespace, path))
    if (events.length > 0) this.#rt.log.emit('namespace.linkUnprotected', 'info', { namespace, path })
    return this.get({ namespace, path })
  }

  /**
   * Fails a protected link over to its destination share now (the operator's failover), with its policy's hooks
   * and mirror setting. Resolves when it has completed; a failed-over link is left as it is. `E_PRECONDITION`
   * when the mirror has not completed its initial copy (the link becomes `failoverRequired`). An aborted `signal`
   * stops it before its next step (`E_ABORTED`): the link goes back to its primary (`failoverError`), unless its
   * mirror has been promoted meanwhile, when it stays on its destination (`failedOver`, with the error).
   */
  async failover(options: SwitchOptions): Promise<NamespaceNode> {
    const { namespace, path, signal } = decode(SwitchInput, options, 'namespace.failover options')
    unwrap(findProtection(this.#rt.catalog.state, namespace, path))
    await this.#runner.failover(namespace, path, { manual: true, reason: 'requested by an operator', ...(signal === undefined ? {} : { signal }) })
    return this.get({ namespace, path })
  }

  /**
   * Moves a failed-over link back to its original primary share. `E_PRECONDITION` unless the mirror replicates
   * from the primary's volume again (resynced and failed back) and the primary share answers.
   */
  async failback(options: SwitchOptions): Promise<NamespaceNode> {
    const { namespace, path, signal } = decode(SwitchInput, options, 'namespace.failback options')
    const { protection } = unwrap(findProtection(this.#rt.catalog.state, namespace, path))
    if (protection.state === 'failedOver') {
      const { primary } = protection
      const mirror = await this.#rt.mirrors.describe(protection.mirrorId)
      if (!mirrorReturnedTo(mirror, { site: primary.site, volume: primary.volume })) {
        throw new DrError('E_PRECONDITION', `mirror "${protection.mirrorId}" does not replicate from ${primary.site}/${primary.volume}; resync and fail it back first`, {
          namespace,
          path,
          mirrorId: protection.mirrorId,
        })
      }
      const policy = this.#rt.catalog.state.policies[protection.policy]
      const probe = await this.#rt.prober.primary(() => this.#rt.storage(primary.site), primary.site, primary.share, policy?.access ?? ['read'], policy?.probeTimeoutMs ?? 5_000)
      if (!probe.ok) throw new DrError('E_PRECONDITION', `primary share ${primary.site}/${primary.share} is not accessible: ${probe.detail}`, { namespace, path })
    }
    await this.#runner.failback(namespace, path, signal)
    return this.get({ namespace, path })
  }

  /**
   * An "inaccessible" status report for a primary share (what a remote agent sends): every link it backs is
   * handled at once as if its probes had run out. A report for a link already failed over changes nothing.
   */
  async reportInaccessible(options: { site: string; share: string }): Promise<MonitorPass> {
    const { site, share } = decode(ShareReportInput, options, 'namespace.reportInaccessible options')
    return this.#monitor.report(site, share)
  }

  /** Runs one monitoring pass now (every watched share by default, or only the due ones) and the due thresholds. */
  async probeNow(options: { all?: boolean } = {}): Promise<MonitorPass> {
    const { all } = decode(ProbeNowInput, options, 'namespace.probeNow options')
    return this.#monitor.pass(all ?? true)
  }

  /** Resolves once no failover or failback runs. */
  async idle(): Promise<void> {
    await this.#runner.idle()
  }

  /** Resumes every failover and failback a crash or restart interrupted and waits for them. */
  async recover(): Promise<{ resumed: number; failed: number }> {
    return this.#runner.recover()
  }

  /** Adds a threshold monitor (e.g. volume used above 50 % raises an out-of-space event). */
  async addThreshold(options: AddThresholdOptions): Promise<ThresholdRecord> {
    const input = decode(AddThresholdInput, options, 'namespace.addThreshold options')
    const threshold: ThresholdRecord = {
      name: input.name,
      site: input.site,
      volume: input.volume ?? null,
      metric: input.metric,
      above: input.above,
      severity: input.severity,
      everyMs: input.every ?? DEFAULT_THRESHOLD_EVERY_MS,
    }
    await this.#rt.catalog.execute((state) => decideAddThreshold(state, threshold))
    return threshold
  }

  /** Removes a threshold monitor. */
  async removeThreshold(options: { name: string }): Promise<void> {
    const { name } = decode(ThresholdNameInput, options, 'namespace.removeThreshold options')
    await this.#rt.catalog.execute((state) => decideRemoveThreshold(state, name))
  }

  /** Every threshold monitor, by name. */
  async listThresholds(): Promise<readonly ThresholdRecord[]> {
    return Object.values(this.#rt.catalog.state.thresholds).sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  /** Recorded namespace events (oldest first), filtered. */
  async history(options: HistoryOptions = {}): Promise<readonly NamespaceEvent[]> {
    const input = decode(HistoryInput, options, 'namespace.history options')
    return this.#rt.log.query(input as HistoryFilter)
  }

  /** Commits a tree change and pushes the namespace to the server (resolving once the server has it). */
  async #change(namespace: string, decide: Decide): Promise<readonly NamespaceJournalEvent[]> {
    const events = await this.#rt.catalog.execute(decide)
    if (events.length > 0) await this.#rt.publisher.request(namespace, changedPaths(this.#rt.catalog, namespace, events))
    return events
  }
}

function unwrap<A>(either: DrEither<A>): A {
  if (E.isLeft(either)) throw either.left
  return either.right
}

function movedTo(events: readonly NamespaceJournalEvent[]): string | undefined {
  const moved = events.find((event) => event.type === 'node.moved')
  return moved?.type === 'node.moved' ? moved.data.to : undefined
}
