import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { decideEndSwitch } from './decide-protection.js'
import { runFailoverHook, type SwitchContext } from './hooks.js'
import { mirrorPromoted } from './mirror-control.js'
import { PolicyRecordCodec, type HookRecord } from './policy.js'
import type { NamespaceRuntime } from './runtime.js'
import { ProtectionCodec } from './state.js'
import { STEP_RETRY, switchLinkSteps } from './switch-steps.js'

/**
 * The journaled input of a failover workflow: the link, whether an operator asked for it, why, and the policy and
 * protection as they were when it started (a policy edited meanwhile applies from the next failover on).
 *
 * @public
 */
export const FailoverWorkflowInput = t.type({
  namespace: t.string,
  path: t.string,
  manual: t.boolean,
  reason: t.string,
  policy: PolicyRecordCodec,
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

function contextOf(input: FailoverWorkflowInput, workflowId: string): SwitchContext {
  const { primary, destination, mirrorId } = input.protection
  return {
    namespace: input.namespace,
    path: input.path,
    policy: input.policy.name,
    mirrorId,
    workflowId,
    from: { site: primary.site, share: primary.share },
    to: { site: destination.site, share: destination.share },
    reason: input.reason,
  }
}

async function hookStep(rt: NamespaceRuntime, ctx: WorkflowContext, input: FailoverWorkflowInput, hook: HookRecord, phase: 'pre' | 'post'): Promise<void> {
  await ctx.step(`${phase}-hook`, async () => {
    const context = contextOf(input, ctx.workflowId)
    const outcome = await runFailoverHook(rt.host(hook.site ?? input.protection.destination.site), hook, context, phase)
    if (outcome.ok) return { ok: true }
    const aborted = phase === 'pre' && input.policy.onPreHookFailure === 'abort'
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

/** Creates the destination share on the mirror's destination volume unless it exists there already. */
async function ensureDestinationShare(rt: NamespaceRuntime, input: FailoverWorkflowInput): Promise<{ created: boolean }> {
  const { primary, destination } = input.protection
  const storage = rt.storage(destination.site)
  const existing = async (): Promise<boolean> => {
    const share = await callAdapter(storage.kind, 'getShare', () => storage.getShare(destination.share))
    if (share === undefined) return false
    if (share.volume !== destination.volume) {
      throw new DrError('E_CONFLICT', `share "${destination.share}" on ${destination.site} exports volume "${share.volume}", not the mirror's destination "${destination.volume}"`, {
        site: destination.site,
        share: destination.share,
      })
    }
    return true
  }
  const flight = await rt.flights.run(`share:${destination.site}/${destination.share}`, async () => {
    if (await existing()) return { created: false }
    try {
      await callAdapter(storage.kind, 'createShare', () =>
        storage.createShare({ name: destination.share, volume: destination.volume, path: primary.path, protocol: primary.protocol, access: primary.access }, rt.token()),
      )
    } catch (error) {
      if (isDrError(error, 'E_CONFLICT') && (await existing())) return { created: false }
      throw error
    }
    rt.log.emit('namespace.destinationShareCreated', 'info', { site: destination.site, share: destination.share, volume: destination.volume })
    return { created: true }
  })
  return { created: flight.value.created && !flight.joined }
}

/** Fails the mirror over to the destination unless it already has been (by another link, or before a crash). */
async function failOverMirror(rt: NamespaceRuntime, input: FailoverWorkflowInput): Promise<{ failedOver: boolean; epoch: number }> {
  const { mirrorId, destination } = input.protection
  const flight = await rt.flights.run(`mirror:${mirrorId}`, async () => {
    const before = await rt.mirrors.describe(mirrorId)
    if (mirrorPromoted(before, destination)) return { failedOver: false, epoch: before.epoch }
    await rt.mirrors.failover(mirrorId, { mode: input.policy.mirrorFailoverMode })
    return { failedOver: true, epoch: (await rt.mirrors.describe(mirrorId)).epoch }
  })
  return { failedOver: flight.value.failedOver && !flight.joined, epoch: flight.value.epoch }
}

/**
 * The failover of one protected link point, as a durable workflow: pre-hook (a failure stops the failover unless
 * the policy says `continue`), destination share (created once, idempotently), mirror failover (when the policy
 * breaks the mirror; skipped if it is already promoted), the namespace switch in one write, post-hook (a
 * failure is reported, not undone), and the `failedOver` state with `namespace.linkFailedOver`.
 *
 * @public
 */
export async function runFailoverWorkflow(rt: NamespaceRuntime, ctx: WorkflowContext, input: FailoverWorkflowInput): Promise<null> {
  const { policy, protection } = input
  if (policy.preFailoverHook !== null) await hookStep(rt, ctx, input, policy.preFailoverHook, 'pre')
  await ctx.step('destination-share', () => ensureDestinationShare(rt, input), { retry: STEP_RETRY })
  const mirror = policy.breakMirror ? await ctx.step('fail-over-mirror', () => failOverMirror(rt, input), { retry: STEP_RETRY }) : null
  const from = { site: protection.primary.site, share: protection.primary.share }
  const to = { site: protection.destination.site, share: protection.destination.share }
  await switchLinkSteps(rt, ctx, input, from, to, 'failingOver')
  if (policy.postFailoverHook !== null) await hookStep(rt, ctx, input, policy.postFailoverHook, 'post')
  await ctx.step('complete', async () => {
    const ended = await rt.catalog.execute((state) => decideEndSwitch(state, input.namespace, input.path, ctx.workflowId, 'failedOver', null, rt.clock.now()))
    if (ended.length > 0) {
      rt.log.emit('namespace.linkFailedOver', 'warning', {
        namespace: input.namespace,
        path: input.path,
        from,
        to,
        mirrorFailedOver: mirror !== null,
        workflowId: ctx.workflowId,
      })
    }
    return null
  })
  return null
}
