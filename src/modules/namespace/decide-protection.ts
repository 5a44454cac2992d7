import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import { findLink } from './decide-tree.js'
import { applyPolicySettings, basePolicy, type PolicyRecord, type PolicySettingsInput } from './policy.js'
import { allNodes, type DpState, type NamespaceJournalEvent, type NamespaceNode, type NamespaceState, type Protection, type Target } from './state.js'
import type { ThresholdRecord } from './thresholds.js'
import type * as t from 'io-ts'

type Events = DrEither<readonly NamespaceJournalEvent[]>

/**
 * A share on a site, as failover and failback name the two ends of a switch.
 *
 * @public
 */
export interface ShareRef {
  readonly site: string
  readonly share: string
}

/**
 * The policy named `name`, or `E_NOT_FOUND`.
 *
 * @public
 */
export function policyByName(state: NamespaceState, name: string): DrEither<PolicyRecord> {
  const policy = Object.values(state.policies).find((p) => p.name === name)
  return policy === undefined ? E.left(new DrError('E_NOT_FOUND', `policy "${name}" does not exist`, { policy: name })) : E.right(policy)
}

/**
 * Decides to save a new policy under a unique name; its id is `policy-<n>`.
 *
 * @public
 */
export function decideCreatePolicy(
  state: NamespaceState,
  input: { name: string; automaticFailover: boolean; breakMirror: boolean } & t.TypeOf<typeof PolicySettingsInput>,
  at: number,
): Events {
  if (Object.values(state.policies).some((p) => p.name === input.name)) {
    return E.left(new DrError('E_CONFLICT', `policy "${input.name}" already exists`, { policy: input.name }))
  }
  const policy = applyPolicySettings(basePolicy(`policy-${state.policySeq + 1}`, input.name, input.automaticFailover, input.breakMirror, at), input, at)
  return E.right([{ type: 'policy.saved', data: { policy } }])
}

/**
 * Decides to change a policy's settings; every link protected by it follows from its next probe or failover on.
 *
 * @public
 */
export function decideUpdatePolicy(state: NamespaceState, name: string, settings: t.TypeOf<typeof PolicySettingsInput>, at: number): Events {
  return E.map((policy: PolicyRecord): readonly NamespaceJournalEvent[] => [{ type: 'policy.saved', data: { policy: applyPolicySettings(policy, settings, at) } }])(
    policyByName(state, name),
  )
}

/**
 * The protected links that use policy `id`.
 *
 * @public
 */
export function linksUsingPolicy(state: NamespaceState, id: string): NamespaceNode[] {
  return allNodes(state).filter((node) => node.protection?.policy === id)
}

/**
 * Decides to delete a policy; refused with `E_PRECONDITION` while a link uses it.
 *
 * @public
 */
export function decideDeletePolicy(state: NamespaceState, name: string): Events {
  const policy = policyByName(state, name)
  if (E.isLeft(policy)) return policy
  const users = linksUsingPolicy(state, policy.right.id)
  if (users.length > 0) {
    return E.left(
      new DrError('E_PRECONDITION', `policy "${name}" protects ${users.length} link(s), e.g. "${users[0]?.path ?? ''}"; unprotect them first`, {
        policy: name,
        links: users.slice(0, 10).map((n) => `${n.namespace}:${n.path}`),
      }),
    )
  }
  return E.right([{ type: 'policy.deleted', data: { id: policy.right.id } }])
}

/**
 * Decides to protect a link point. The link must exist, not be protected yet (one policy per link), and refer
 * to the primary share; the policy must exist. Validation against the mirror and the storage is done by the
 * caller before (it needs I/O).
 *
 * @public
 */
export function decideProtect(state: NamespaceState, namespace: string, path: string, protection: Protection): Events {
  const link = findLink(state, namespace, path)
  if (E.isLeft(link)) return link
  if (link.right.protection !== null) {
    return E.left(new DrError('E_CONFLICT', `link "${path}" is already protected by a policy`, { namespace, path }))
  }
  if (state.policies[protection.policy] === undefined) return E.left(new DrError('E_NOT_FOUND', `policy "${protection.policy}" does not exist`, { policy: protection.policy }))
  const { site, share } = protection.primary
  if (!link.right.targets.some((target) => target.site === site && target.share === share)) {
    return E.left(new DrError('E_PRECONDITION', `${site}/${share} is not a target of link "${path}"`, { namespace, path, site, share }))
  }
  return E.right([{ type: 'link.protected', data: { namespace, path, protection } }])
}

/**
 * Decides to stop protecting a link; refused while a failover or failback runs on it.
 *
 * @public
 */
export function decideUnprotect(state: NamespaceState, namespace: string, path: string): Events {
  const link = findLink(state, namespace, path)
  if (E.isLeft(link)) return link
  const protection = link.right.protection
  if (protection === null) return E.right([])
  if (protection.state === 'failingOver' || protection.state === 'failingBack') {
    return E.left(new DrError('E_PRECONDITION', `link "${path}" is ${protection.state}; wait for it to finish`, { namespace, path }))
  }
  return E.right([{ type: 'link.unprotected', data: { namespace, path } }])
}

/**
 * The protection of the link at `path`, or `E_NOT_FOUND` / `E_PRECONDITION` (not protected).
 *
 * @public
 */
export function findProtection(state: NamespaceState, namespace: string, path: string): DrEither<{ link: NamespaceNode; protection: Protection }> {
  const link = findLink(state, namespace, path)
  if (E.isLeft(link)) return link
  const protection = link.right.protection
  if (protection === null) return E.left(new DrError('E_PRECONDITION', `link "${path}" of namespace "${namespace}" is not protected`, { namespace, path }))
  return E.right({ link: link.right, protection })
}

/**
 * Decides a monitoring transition of a link's DP state: only from one of `from` (otherwise nothing happens, so a
 * late or repeated report changes nothing).
 *
 * @public
 */
export function decideDpTransition(
  state: NamespaceState,
  namespace: string,
  path: string,
  from: readonly DpState[],
  to: DpState,
  at: number,
  lastError: string | null = null,
): Events {
  const found = findProtection(state, namespace, path)
  if (E.isLeft(found)) return E.right([])
  const { protection } = found.right
  if (!from.includes(protection.state)) return E.right([])
  return E.right([{ type: 'link.dpChanged', data: { namespace, path, state: to, at, workflowId: null, lastError } }])
}

/**
 * Decides to start a failover (`failingOver`, recording the workflow id) or a failback (`failingBack`). Returns
 * no events when the link already is in the target state or the workflow's state (the caller joins or does
 * nothing): a second report for a failed-over link does nothing.
 *
 * @public
 */
export function decideBeginSwitch(state: NamespaceState, namespace: string, path: string, kind: 'failover' | 'failback', workflowId: string, at: number): Events {
  const found = findProtection(state, namespace, path)
  if (E.isLeft(found)) return found
  const { link, protection } = found.right
  const current = protection.state
  const running = kind === 'failover' ? 'failingOver' : 'failingBack'
  if (current === running || (kind === 'failover' && current === 'failedOver')) return E.right([])
  if (kind === 'failback' && current !== 'failedOver') {
    return E.left(new DrError('E_PRECONDITION', `link "${path}" is ${current}; only a failed-over link can fail back`, { namespace, path, state: current }))
  }
  if (kind === 'failover' && current === 'failingBack') {
    return E.left(new DrError('E_PRECONDITION', `link "${path}" is failing back; wait for it to finish`, { namespace, path }))
  }
  const from = kind === 'failover' ? protection.primary : protection.destination
  if (kind === 'failover' && !link.targets.some((target) => target.site === from.site && target.share === from.share)) {
    return E.left(new DrError('E_PRECONDITION', `link "${path}" no longer refers to its primary share ${from.site}/${from.share}`, { namespace, path }))
  }
  return E.right([{ type: 'link.dpChanged', data: { namespace, path, state: running, at, workflowId, lastError: null } }])
}

/**
 * Decides the namespace switch of a failover or failback: `from` is replaced by `to`, in place and active, in
 * one event, so the link never has zero targets; the DP state becomes `state`. Nothing happens when the switch
 * is already done.
 *
 * @public
 */
export function decideSwitch(state: NamespaceState, namespace: string, path: string, from: ShareRef, to: ShareRef, next: DpState, at: number): Events {
  const link = findLink(state, namespace, path)
  if (E.isLeft(link)) return link
  const targets = link.right.targets
  const is = (target: ShareRef, ref: ShareRef): boolean => target.site === ref.site && target.share === ref.share
  const hasTo = targets.some((target) => is(target, to))
  const hasFrom = targets.some((target) => is(target, from))
  if (hasTo && (!hasFrom || is(to, from))) return E.right([])
  if (!hasFrom) {
    return E.left(new DrError('E_PRECONDITION', `link "${path}" refers to neither ${from.site}/${from.share} nor ${to.site}/${to.share}`, { namespace, path }))
  }
  const switched: Target[] = []
  for (const target of targets) {
    if (is(target, to)) continue
    switched.push(is(target, from) ? { site: to.site, share: to.share, state: 'active' } : { ...target, state: 'standby' })
  }
  return E.right([{ type: 'link.switched', data: { namespace, path, targets: switched, state: next, at } }])
}

/**
 * Decides the end of a failover or failback workflow: the DP state becomes `to` (with the error, if any), but
 * only while the link still records that workflow, so a late or replayed end changes nothing.
 *
 * @public
 */
export function decideEndSwitch(state: NamespaceState, namespace: string, path: string, workflowId: string, to: DpState, lastError: string | null, at: number): Events {
  const found = findProtection(state, namespace, path)
  if (E.isLeft(found)) return E.right([])
  if (found.right.protection.workflowId !== workflowId) return E.right([])
  return E.right([{ type: 'link.dpChanged', data: { namespace, path, state: to, at, workflowId: null, lastError } }])
}

/**
 * Decides how a failover or failback that failed ends, from where its link now is (only while the link still
 * records that workflow): a failover whose link is back on its primary is `failoverError`, one whose link stays
 * on its destination (the switch was not undone because the mirror had been promoted) is `failedOver`; a failback
 * whose link is back on its destination is `failedOver`, one whose link is on its primary is `protected`.
 *
 * @public
 */
export function decideFailedSwitch(state: NamespaceState, namespace: string, path: string, workflowId: string, kind: 'failover' | 'failback', lastError: string, at: number): Events {
  const found = findProtection(state, namespace, path)
  if (E.isLeft(found) || found.right.protection.workflowId !== workflowId) return E.right([])
  const { link, protection } = found.right
  const refers = (ref: ShareRef): boolean => link.targets.some((target) => target.site === ref.site && target.share === ref.share)
  const onDestination = refers(protection.destination) && !refers(protection.primary)
  const to: DpState = kind === 'failover' ? (onDestination ? 'failedOver' : 'failoverError') : onDestination ? 'failedOver' : 'protected'
  return E.right([{ type: 'link.dpChanged', data: { namespace, path, state: to, at, workflowId: null, lastError } }])
}

/**
 * Decides to add a threshold monitor under a unique name.
 *
 * @public
 */
export function decideAddThreshold(state: NamespaceState, threshold: ThresholdRecord): Events {
  if (state.thresholds[threshold.name] !== undefined) {
    return E.left(new DrError('E_CONFLICT', `threshold "${threshold.name}" already exists`, { threshold: threshold.name }))
  }
  return E.right([{ type: 'threshold.saved', data: { threshold } }])
}

/**
 * Decides to remove a threshold monitor.
 *
 * @public
 */
export function decideRemoveThreshold(state: NamespaceState, name: string): Events {
  if (state.thresholds[name] === undefined) return E.left(new DrError('E_NOT_FOUND', `threshold "${name}" does not exist`, { threshold: name }))
  return E.right([{ type: 'threshold.removed', data: { name } }])
}
