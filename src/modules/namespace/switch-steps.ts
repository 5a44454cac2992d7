import type { RetryPolicy } from '../../kernel/retry.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { decideSwitch, type ShareRef } from './decide-protection.js'
import type { NamespaceRuntime } from './runtime.js'
import type { DpState } from './state.js'

/**
 * How namespace and storage steps of a failover retry transient failures (adapter errors, unavailability,
 * timeouts, and a namespace version race): 4 attempts, 200 ms doubling up to 2 s.
 *
 * @public
 */
export const SWITCH_RETRY: RetryPolicy = {
  attempts: 4,
  initialDelayMs: 200,
  maxDelayMs: 2_000,
  retryOn: (error) => ['E_ADAPTER', 'E_UNAVAILABLE', 'E_TIMEOUT', 'E_CONFLICT'].includes(error.code),
}

/**
 * How storage and mirror steps of a failover retry transient failures (adapter errors, unavailability,
 * timeouts — not conflicts, which no retry resolves): 4 attempts, 200 ms doubling up to 2 s.
 *
 * @public
 */
export const STEP_RETRY: RetryPolicy = { ...SWITCH_RETRY, retryOn: (error) => ['E_ADAPTER', 'E_UNAVAILABLE', 'E_TIMEOUT'].includes(error.code) }

/**
 * The namespace switch of a failover or failback, as two durable steps:
 *
 * 1. `switch-link`: drkit's copy replaces `from` by `to` in one journal event (the link keeps a target at every
 *    instant). Its compensation puts `from` back (and pushes that, best effort), so a failover that cannot reach
 *    the namespace server leaves drkit's copy agreeing with the server: still on `from`.
 * 2. `push-namespace`: the namespace server gets the whole document in one write, in which the link has `to`
 *    instead of `from`. The wait for that (coalesced) write does not hold a failover slot, so one write serves
 *    every link switched meanwhile.
 *
 * Both are idempotent: a re-run after a crash finds the switch done and the document current.
 *
 * @public
 */
export async function switchLinkSteps(
  rt: NamespaceRuntime,
  ctx: WorkflowContext,
  link: { namespace: string; path: string },
  from: ShareRef,
  to: ShareRef,
  during: DpState,
): Promise<void> {
  const { namespace, path } = link
  await ctx.step(
    'switch-link',
    async () => {
      await rt.catalog.execute((state) => decideSwitch(state, namespace, path, from, to, during, rt.clock.now()))
      return null
    },
    {
      compensate: async () => {
        await rt.catalog.execute((state) => decideSwitch(state, namespace, path, to, from, during, rt.clock.now()))
        await rt.publisher.request(namespace).catch(() => undefined)
      },
    },
  )
  await ctx.step(
    'push-namespace',
    async () => {
      await rt.failovers.outside(() => rt.publisher.request(namespace))
      return null
    },
    { retry: SWITCH_RETRY },
  )
}
