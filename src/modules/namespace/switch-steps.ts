import { backoffDelay, isRetryable, type RetryPolicy } from '../../kernel/retry.js'
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
 *    instant). Its compensation puts `from` back (and pushes that, best effort) — unless `mayUndo` says the switch
 *    must stand (a failover whose mirror has been promoted meanwhile: referring clients back to the old source
 *    would split the data). A `mayUndo` that rejects fails the compensation, which leaves the workflow resumable.
 * 2. `push-namespace`: the namespace server gets the link's new targets in a versioned patch. The wait for that
 *    (coalesced) patch does not hold a failover slot, so one patch serves every link switched meanwhile.
 *    Transient failures are retried as {@link SWITCH_RETRY} says; past its attempts the step fails (and the switch
 *    is undone) only if it may be undone — a switch that must stand keeps retrying, with the link `failingOver`,
 *    until the server takes it or the workflow is aborted.
 *
 * Both are idempotent: a re-run after a crash finds the switch done and pushes the link again.
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
  mayUndo: () => Promise<boolean> = async () => true,
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
        if (!(await mayUndo())) return
        await rt.catalog.execute((state) => decideSwitch(state, namespace, path, to, from, during, rt.clock.now()))
        await rt.publisher.request(namespace, [path]).catch(() => undefined)
      },
    },
  )
  await ctx.step('push-namespace', async (step) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await rt.failovers.outside(() => rt.publisher.request(namespace, [path]))
        return null
      } catch (error) {
        if (!isRetryable(SWITCH_RETRY, error)) throw error
        if (attempt >= SWITCH_RETRY.attempts && (await mayUndo().catch(() => false))) throw error
      }
      await rt.clock.sleep(backoffDelay(SWITCH_RETRY, attempt), step.signal)
    }
  })
}
