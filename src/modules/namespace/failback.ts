import * as t from 'io-ts'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { decideEndSwitch } from './decide-protection.js'
import type { NamespaceRuntime } from './runtime.js'
import { ProtectionCodec } from './state.js'
import { switchLinkSteps } from './switch-steps.js'

/**
 * The journaled input of a failback workflow: the link and its protection as it was when the failback started.
 *
 * @public
 */
export const FailbackWorkflowInput = t.type({ namespace: t.string, path: t.string, protection: ProtectionCodec })

/**
 * A failback workflow's input.
 *
 * @public
 */
export type FailbackWorkflowInput = t.TypeOf<typeof FailbackWorkflowInput>

/**
 * The workflow type of a link-point failback.
 *
 * @public
 */
export const FAILBACK_WORKFLOW = 'namespace.failback'

/**
 * The failback of a failed-over link point, as a durable workflow: the namespace switch from the destination
 * share back to the original primary share (one write), then the `protected` state and
 * `namespace.linkFailedBack`. Its preconditions (the mirror replicates from the original primary again, the
 * primary share answers) are checked before it starts.
 *
 * @public
 */
export async function runFailbackWorkflow(rt: NamespaceRuntime, ctx: WorkflowContext, input: FailbackWorkflowInput): Promise<null> {
  const { primary, destination } = input.protection
  const from = { site: destination.site, share: destination.share }
  const to = { site: primary.site, share: primary.share }
  await switchLinkSteps(rt, ctx, input, from, to, 'failingBack')
  const ended = await rt.catalog.execute((state) => decideEndSwitch(state, input.namespace, input.path, ctx.workflowId, 'protected', null, rt.clock.now()))
  if (ended.length > 0) rt.log.emit('namespace.linkFailedBack', 'info', { namespace: input.namespace, path: input.path, from, to, workflowId: ctx.workflowId })
  return null
}
