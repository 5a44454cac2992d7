import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { decideEndSwitch } from './decide-protection.js'
import { runFailoverHook, type SwitchContext } from './hooks.js'
import { mirrorPromoted } from './mirror-control.js'
import type { PolicyRecord } from './policy.js'
import type { NamespaceRuntime } from './runtime.js'
import { ProtectionCodec } from './state.js'
import { STEP_RETRY, switchLinkSteps } from './switch-steps.js'

/**
 * The journaled input of a failover workflow: the link, whether an operator asked for it and why, its policy (by
 * id), the shape of the run as the policy gave it when the failover started (whether it runs a pre-hook, fails
 * the mirror over, runs a post-hook), and the protection as it was then. The settings of each step (hook scripts,
 * mirror mode) are read from the policy when the step runs.
 *
 * @public
 */
export const FailoverWorkflowInput = t.type({
  namespace: t.string,
  path: t.string,
  manual: t.boolean,
  reason: t.string,
  policy: t.string,
  plan: t.type({ preHook: t.boolean, breakMirror: t.boolean, postHook: t.boolean }),
  protection: ProtectionCodec,
})

/**
 * A failover workflow's input.
 *
 * @public
 */
export type FailoverWorkflowInput = t.TypeOf<typeof FailoverWorkflowInput>

/**
 * The workflow type of a link-point failover.
 *
 * @public
 */
export const FAILOVER_WORKFLOW = 'namespace.failover'

type Access = 'read' | 'write'

function policyOf(rt: NamespaceRuntime, input: FailoverWorkflowInput): PolicyRecord {
  const policy = rt.catalog.state.policies[input.policy]
  if (policy === undefined) throw new DrError('E_PRECONDITION', `policy "${input.policy}" of link "${input.path}" no longer exists`, { namespace: input.namespace, path: input.path })
  return policy
}

function contextOf(input: FailoverWorkflowInput, policy: PolicyRecord, workflowId: string): SwitchContext {
  const { primary, destination, mirrorId } = input.protection
  return {
    namespace: input.namespace,
    path: input.path,
    policy: policy.name,
    mirrorId,
    workflowId,
    from: { site: primary.site, share: primary.share },
    to: { site: destination.site, share: destination.share },
    reason: input.reason,
  }
}

async function hookStep(rt: NamespaceRuntime, ctx: WorkflowContext, input: FailoverWorkflowInput, phase: 'pre' | 'post'): Promise<void> {
  await ctx.step(`${phase}-hook`, async () => {
    const policy = policyOf(rt, input)
    const hook = phase === 'pre' ? policy.preFailoverHook : policy.postFailoverHook
    if (hook === null) return { ok: true }
    const outcome = await runFailoverHook(rt.host(hook.site ?? input.protection.destination.site), hook, contextOf(input, policy, ctx.workflowId), phase)
    if (outcome.ok) return { ok: true }
    const aborted = phase === 'pre' && policy.onPreHookFailure === 'abort'
    rt.log.emit('namespace.hookFailed', aborted ? 'error' : 'warning', {
      namespace: input.namespace,
      path: input.path,
      phase,
      exitCode: outcome.exitCode,
      timedOut: outcome.timedOut,
      message: outcome.message,
      aborted,
    })
    if (aborted) throw new DrError('E_PRECONDITION', `failover of "${input.path}" stopped by its pre-failover hook: ${outcome.message}`, { namespace: input.namespace, path: input.path })
    return { ok: false }
  })
}

/**
 * Exports the destination share on the mirror's destination volume unless it exists there already: read-only
 * while the mirror has not been promoted (the destination is still a replica), with the primary's rights once it
 * has. Tries to create it first, so the usual case is one call; a name taken by a share of another volume is
 * `E_CONFLICT`.
 */
async function ensureDestinationShare(rt: NamespaceRuntime, input: FailoverWorkflowInput): Promise<{ created: boolean; access: Access[] }> {
  const { primary, destination, mirrorId } = input.protection
  const key = `${destination.site}/${destination.share}`
  const known = rt.mirrorStates.knownShare(mirrorId, key)
  if (known !== undefined) return { created: false, access: [...known] }
  const storage = rt.storage(destination.site)
  const access: Access[] = rt.mirrorStates.knownPromoted(mirrorId) ? [...primary.access] : ['read']
  const flight = await rt.flights.run(`share:${key}`, async () => {
    try {
      await callAdapter(storage.kind, 'createShare', () =>
        storage.createShare({ name: destination.share, volume: destination.volume, path: primary.path, protocol: primary.protocol, access }, rt.token()),
      )
    } catch (error) {
      if (!isDrError(error, 'E_CONFLICT')) throw error
      const share = await callAdapter(storage.kind, 'getShare', () => storage.getShare(destination.share))
      if (share === undefined) throw error
      if (share.volume !== destination.volume) {
        throw new DrError('E_CONFLICT', `share "${destination.share}" on ${destination.site} exports volume "${share.volume}", not the mirror's destination "${destination.volume}"`, {
          site: destination.site,
          share: destination.share,
        })
      }
      return { created: false, access: [...share.access] }
    }
    rt.log.emit('namespace.destinationShareCreated', 'info', { site: destination.site, share: destination.share, volume: destination.volume })
    return { created: true, access }
  })
  rt.mirrorStates.rememberShare(mirrorId, key, flight.value.access)
  return { created: flight.value.created && !flight.joined, access: flight.value.access }
}

/**
 * Fails the mirror over to the destination (once for all the links failing over with it; skipped when it is
 * already promoted), then gives the destination share the primary's rights if it was exported read-only.
 */
async function failOverMirror(rt: NamespaceRuntime, input: FailoverWorkflowInput, shareAccess: readonly Access[]): Promise<{ failedOver: boolean; granted: boolean }> {
  const { mirrorId, destination, primary } = input.protection
  const failedOver = await rt.mirrorStates.promote(mirrorId, { site: destination.site, volume: destination.volume }, policyOf(rt, input).mirrorFailoverMode)
  const key = `${destination.site}/${destination.share}`
  const access = rt.mirrorStates.knownShare(mirrorId, key) ?? shareAccess
  if (primary.access.every((right) => access.includes(right))) return { failedOver, granted: false }
  const storage = rt.storage(destination.site)
  await callAdapter(storage.kind, 'setShareAccess', () => storage.setShareAccess(destination.share, primary.access, rt.token()))
  rt.mirrorStates.rememberShare(mirrorId, key, primary.access)
  return { failedOver, granted: true }
}

/** Whether the switch of a failover may still be undone: not once the mirror has been promoted to its destination. */
async function switchUndoable(rt: NamespaceRuntime, input: FailoverWorkflowInput): Promise<boolean> {
  const { mirrorId, destination } = input.protection
  return !mirrorPromoted(await rt.mirrors.describe(mirrorId), { site: destination.site, volume: destination.volume })
}

/**
 * The failover of one protected link point, as a durable workflow, in the seed's order: pre-hook (a failure stops
 * the failover unless the policy says `continue`), destination share (created once, idempotently, read-only
 * while the mirror is a replica), the namespace switch in one step and its push, then — when the policy breaks
 * the mirror — the mirror failover (skipped if it is already promoted) and the primary's rights on the
 * destination share, post-hook (a failure is reported, not undone), and the `failedOver` state with
 * `namespace.linkFailedOver` (once: only while the link still records this run). Once the mirror has been
 * promoted the switch is never undone.
 *
 * @public
 */
export async function runFailoverWorkflow(rt: NamespaceRuntime, ctx: WorkflowContext, input: FailoverWorkflowInput): Promise<null> {
  const { protection, plan } = input
  if (plan.preHook) await hookStep(rt, ctx, input, 'pre')
  const share = await ctx.step('destination-share', () => ensureDestinationShare(rt, input), { retry: STEP_RETRY })
  const from = { site: protection.primary.site, share: protection.primary.share }
  const to = { site: protection.destination.site, share: protection.destination.share }
  await switchLinkSteps(rt, ctx, input, from, to, 'failingOver', () => switchUndoable(rt, input))
  const mirror = plan.breakMirror ? await ctx.step('fail-over-mirror', () => failOverMirror(rt, input, share.access), { retry: STEP_RETRY }) : null
  if (plan.postHook) await hookStep(rt, ctx, input, 'post')
  // Not a step: ending the run is idempotent (only while the link records this run), so a re-run after a crash
  // here ends it once, and the journal is spared a record per link.
  const ended = await rt.catalog.execute((state) => decideEndSwitch(state, input.namespace, input.path, ctx.workflowId, 'failedOver', null, rt.clock.now()))
  if (ended.length > 0) {
    rt.log.emit('namespace.linkFailedOver', 'warning', {
      namespace: input.namespace,
      path: input.path,
      from,
      to,
      mirrorFailedOver: mirror?.failedOver === true,
      workflowId: ctx.workflowId,
    })
  }
  return null
}
